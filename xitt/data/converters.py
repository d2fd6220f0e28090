"""``xitt convert``: the files XTREME-R's download scripts produce -> xitt's local layout.

Each converter reads the official files and writes ``<data_dir>/<task>/<split>-<lang>.tsv`` in
the formats of xitt/data/loaders.py; ``xitt prepare`` then verifies and caches them.

* Mewsli-X (google-research/xtreme scripts/download_data.sh download_mewslix -> the builder's
  ``wikinews_mentions-test.jsonl``, ``candidate_set_entities.jsonl`` and
  ``wikipedia_pairs-{train,dev}.jsonl``; schema: google-research/xtreme third_party/utils_mewslix.py,
  Entity / ContextualMentions / MentionEntityPair). A mention is written as XTREME-R's
  ``preprocess_mention`` writes it ("<mention>: <left> { <mention> } <right>" inside the mention's
  sentence, braces of the sentence turned into parentheses), an entity as
  ``preprocess_entity_description`` (its sentences joined by spaces). Three outputs:
  ``test-<lang>.tsv``, one line per mention (mention <TAB> gold description), then up to
  ``max_candidates`` other entities described in the language (empty left side): one pool per
  language; ``shared/entities.tsv`` (entity id <TAB> description, EVERY entity of the candidate
  set) and ``shared/mentions-<lang>.tsv`` (example id <TAB> mention <TAB> gold entity id): the one
  shared pool XTREME-R ranks every language's mentions against (``candidate_pool: shared``);
  ``train-en.tsv`` / ``dev-en.tsv`` from the English Wikipedia pairs (mention <TAB> description),
  the dual encoder's training data (xitt.train.dual), when those files are there.
* LAReQA (scripts/download_data.sh download_lareqa -> ``xquad-r/<lang>.json``, SQuAD JSON with
  ``sentences`` and ``sentence_breaks`` per paragraph; google-research-datasets/lareqa). One line
  per question: question <TAB> the sentence that contains its answer; every other sentence of the
  language as a line with an empty left side.

  The TSVs are the monolingual, line-aligned simplification (``candidate_pool: language``, the
  aligned line the one relevant answer); XTREME-R ranks against one multilingual pool and counts
  the parallel answers in all languages as relevant (``candidate_pool: shared``, xitt.train.pool).
* CCG (CCGbank 1.1, LDC2005T13, licensed): the leaves ``(<L category POS POS word category>)`` of
  ``data/AUTO/<section>/*.auto``; sections 02-21 -> train, 00 -> dev, as is standard; one
  ``word<TAB>supertag`` line per token, a blank line between sentences.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from xitt.data.loaders import DataError
from xitt.schema import atomic_write_text

CCG_TRAIN = tuple(f"{n:02d}" for n in range(2, 22))
CCG_DEV = ("00",)
_LEAF = re.compile(r"\(<L (\S+) \S+ \S+ (\S+) \S+>\)")


def _clean(text: str) -> str:
    """One line of a TSV cell: tabs and newlines become spaces."""
    return " ".join(str(text).split())


def _write_tsv(path: Path, rows: Iterable[Sequence[str]]) -> int:
    lines = ["\t".join(_clean(c) for c in row) for row in rows]
    atomic_write_text(path, "\n".join(lines) + "\n")
    return len(lines)


def _jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        raise DataError(
            f"{path} does not exist; run XTREME-R's download script first (see xitt/data/converters.py)."
        )
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


_BRACES = re.compile(r"\{(.*?)\}")


def mention_text(context: dict, span: dict) -> str:
    """One mention as XTREME-R's utils_mewslix.preprocess_mention writes it: the sentence that
    holds the mention (the whole text when no sentence does), braces in it turned into
    parentheses, the mention marked with "{ ... }" and repeated in front."""
    text, start, end = context["text"], span["start"], span["end"]
    begin, stop = 0, len(text)
    for b, e in context.get("sentence_spans") or []:
        if b <= start < e and b < end <= e:
            begin, stop = b, e
            break
    left = _BRACES.sub(r"(\1)", text[begin:start])
    right = _BRACES.sub(r"(\1)", text[end:stop])
    mention = span.get("text", text[start:end])
    query = f"{mention}: {left} {{ {mention} }} {right}"
    return " ".join(query.splitlines()).replace("  ", " ").strip()


def entity_text(entity: dict) -> str:
    """An entity as utils_mewslix.preprocess_entity_description writes it: its sentences joined by spaces."""
    description = entity["description"]
    spans = entity.get("sentence_spans")
    text = " ".join(description[s["start"] : s["end"]] for s in spans) if spans else description
    return " ".join(text.splitlines()).replace("  ", " ").strip()


def _spans(context: dict) -> dict:
    spans = context.get("sentence_spans") or []
    return {
        **context,
        "sentence_spans": [(s["start"], s["end"]) if isinstance(s, dict) else s for s in spans],
    }


def _mewslix_pairs(src: Path, data_dir: Path) -> dict[str, int]:
    """wikipedia_pairs-{train,dev}.jsonl -> mewslix/{train,dev}-en.tsv (mention <TAB> description)."""
    written = {}
    for split in ("train", "dev"):
        path = Path(src) / f"wikipedia_pairs-{split}.jsonl"
        if not path.is_file():
            continue
        rows = [
            (
                mention_text(
                    _spans(p["contextual_mention"]["context"]),
                    p["contextual_mention"]["mention"]["mention_span"],
                ),
                entity_text(p["entity"]),
            )
            for p in _jsonl(path)
        ]
        written[f"{split}-en"] = _write_tsv(Path(data_dir) / "mewslix" / f"{split}-en.tsv", rows)
    return written


def convert_mewslix(
    src: Path, data_dir: Path, languages: Sequence[str], *, max_candidates: int = 1000
) -> dict[str, int]:
    """Mewsli-X test mentions, candidates and training pairs -> mewslix/ (see the module docstring);
    returns lines per language (and per training split)."""
    mentions = _jsonl(Path(src) / "wikinews_mentions-test.jsonl")
    entities = {e["entity_id"]: e for e in _jsonl(Path(src) / "candidate_set_entities.jsonl")}
    written = {}
    shared = Path(data_dir) / "mewslix" / "shared"
    for lang in languages:
        rows, queries, gold = [], [], set()
        for doc in mentions:
            context = _spans(doc["context"])
            if context.get("language") != lang:
                continue
            for mention in doc["mentions"]:
                entity = entities.get(mention["entity_id"])
                if entity is None:
                    raise DataError(
                        f"Mewsli-X mention {mention.get('example_id')} links to {mention['entity_id']}, "
                        "which is not in candidate_set_entities.jsonl: the download is incomplete; run it again."
                    )
                query = mention_text(context, mention["mention_span"])
                rows.append((query, entity_text(entity)))
                queries.append((mention["example_id"], query, entity["entity_id"]))
                gold.add(entity["entity_id"])
        pool = sorted(
            e for e, v in entities.items() if v.get("description_language") == lang and e not in gold
        )
        rows += [("", entity_text(entities[e])) for e in pool[:max_candidates]]
        if rows:
            written[lang] = _write_tsv(Path(data_dir) / "mewslix" / f"test-{lang}.tsv", rows)
            _write_tsv(shared / f"mentions-{lang}.tsv", queries)
    _write_tsv(shared / "entities.tsv", [(e, entity_text(v)) for e, v in entities.items()])
    written.update(_mewslix_pairs(src, data_dir))
    return written


def convert_lareqa(src: Path, data_dir: Path, languages: Sequence[str]) -> dict[str, int]:
    """XQuAD-R <lang>.json -> lareqa/test-<lang>.tsv (and a copy of the file in lareqa/xquad-r/ for
    the shared pool); returns lines per language."""
    written = {}
    for lang in languages:
        path = Path(src) / "xquad-r" / f"{lang}.json"
        if not path.is_file():
            path = Path(src) / f"{lang}.json"
        if not path.is_file():
            raise DataError(
                f"{path} does not exist; run XTREME-R's scripts/download_data.sh (download_lareqa) first."
            )
        doc = json.loads(path.read_text(encoding="utf-8"))
        rows, used = [], set()
        for article in doc["data"]:
            for para in article["paragraphs"]:
                sentences, breaks = para["sentences"], para["sentence_breaks"]
                for qa in para["qas"]:
                    start = qa["answers"][0]["answer_start"]
                    index = next((i for i, (b, e) in enumerate(breaks) if b <= start <= e), len(breaks) - 1)
                    rows.append((qa["question"], sentences[index]))
                    used.add(sentences[index])
                rows += [("", s) for s in sentences if s not in used]
                used.update(sentences)
        written[lang] = _write_tsv(Path(data_dir) / "lareqa" / f"test-{lang}.tsv", rows)
        # the original file too: candidate_pool 'shared' (xitt.train.pool) ranks against all languages
        keep = Path(data_dir) / "lareqa" / "xquad-r" / f"{lang}.json"
        keep.parent.mkdir(parents=True, exist_ok=True)
        keep.write_bytes(path.read_bytes())
    return written


def ccg_sentences(auto_file: Path) -> list[list[tuple[str, str]]]:
    """(word, supertag) per token of every derivation in one CCGbank AUTO file."""
    out = []
    for line in auto_file.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("ID="):
            continue
        leaves = [(word, cat) for cat, word in _LEAF.findall(line)]
        if leaves:
            out.append(leaves)
    return out


def convert_ccg(src: Path, data_dir: Path) -> dict[str, int]:
    """CCGbank data/AUTO -> ccg/train-en.tsv and ccg/dev-en.tsv; returns sentences per split."""
    auto = Path(src) / "data" / "AUTO"
    if not auto.is_dir():
        raise DataError(
            f"{auto} does not exist. CCGbank is licensed by the LDC (LDC2005T13, "
            "https://catalog.ldc.upenn.edu/LDC2005T13): obtain it, unpack it, and pass its root folder "
            "(the one holding data/AUTO/00 ... 24) to `xitt convert ccg`."
        )
    written = {}
    for split, sections in (("train", CCG_TRAIN), ("dev", CCG_DEV)):
        sentences = [
            s for sec in sections for f in sorted((auto / sec).glob("*.auto")) for s in ccg_sentences(f)
        ]
        if not sentences:
            raise DataError(
                f"no derivations in sections {sections[0]}-{sections[-1]} of {auto}; is the CCGbank copy complete?"
            )
        text = "\n\n".join("\n".join(f"{w}\t{t}" for w, t in s) for s in sentences) + "\n"
        atomic_write_text(Path(data_dir) / "ccg" / f"{split}-en.tsv", text)
        written[split] = len(sentences)
    return written
