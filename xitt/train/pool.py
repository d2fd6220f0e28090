"""One shared multilingual candidate pool and its mAP@20 (``candidate_pool: shared``): LAReQA's
and Mewsli-X's, as XTREME-R ranks them (the task YAML's ``fields.pool`` says which).

Mewsli-X (google-research/xtreme third_party/evaluate_retrieval.py task mewslix, utils_mewslix.py):
every mention of every language is ranked against ONE index of all entities of
candidate_set_entities.jsonl (exhaustive inner product over L2-normalised encodings, top 20); the
mention's entity is the one relevant item and the score is the mean reciprocal rank within the top
20 (utils_mewslix.evaluate: 0 when the entity is not among them) -- with one relevant item that is
AP@20, so mAP@20 below is the official number. Files: ``mewslix/shared/entities.tsv`` and
``mentions-<lang>.tsv`` from ``xitt convert mewslix``.

LAReQA:

XTREME-R ranks every question, in every language, against ONE pool that holds the candidate
answers of all languages; the relevant items of a question are the answer sentences of its
parallel versions in every language (google-research/xtreme third_party/utils_lareqa.py
load_data and mean_avg_prec_at_k, third_party/evaluate_retrieval.py task lareqa):

* data: XQuAD-R, one SQuAD-format JSON per language with ``sentence_breaks`` per paragraph,
  read from ``<data_dir>/lareqa/xquad-r/<lang>.json`` (``xitt convert lareqa`` keeps them there;
  they are not among the manifest-checked prepared copies);
* a candidate is a sentence of a paragraph, identified by (language, paragraph number, sentence
  position) and encoded as sentence + paragraph text, newlines removed; every sentence of every paragraph is a
  candidate, not only the answers;
* a question's relevant candidates are those whose sentence is the answer sentence of a question
  with the same id (``xling_id``) in any language; a question whose answer start lies in no
  sentence is skipped, as the official loader does;
* scores are dot products of L2-normalised encodings; AP@20 divides by min(|relevant|, 20).

xitt reports mAP@20 per question language (the official single number is their mean: XQuAD-R
has the same questions in every language). The pool holds the run's languages: restricting a
grid's LAReQA languages shrinks the pool, and the score is then not XTREME-R's.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xitt.train.metrics import mean_average_precision_at_k


@dataclass
class SharedPool:
    """Questions and candidates of all languages; ``relevant[q]`` indexes ``candidate_texts``."""

    question_texts: list[str] = field(default_factory=list)
    question_languages: list[str] = field(default_factory=list)
    question_ids: list[str] = field(default_factory=list)  # xling ids
    candidate_texts: list[str] = field(default_factory=list)
    candidate_languages: list[str] = field(default_factory=list)
    relevant: list[list[int]] = field(default_factory=list)


def _paragraph_candidates(
    pool: SharedPool, seen: dict, lang: str, para_no: int, paragraph: dict
) -> list[int]:
    context = paragraph["context"]
    indices = []
    for pos, (start, end) in enumerate(paragraph["sentence_breaks"]):
        uid = (lang, para_no, pos)
        if uid not in seen:
            seen[uid] = len(pool.candidate_texts)
            # evaluate_retrieval.py: (candidate.sentence + candidate.context).replace("\n", "")
            pool.candidate_texts.append((context[start:end] + context).replace("\n", ""))
            pool.candidate_languages.append(lang)
        indices.append(seen[uid])
    return indices


def build_shared_pool(squad_per_language: Mapping[str, dict]) -> SharedPool:
    """The pool of XQuAD-R files (language -> parsed SQuAD JSON with ``sentence_breaks``)."""
    pool, seen = SharedPool(), {}
    answer_candidates: dict[str, list[int]] = {}
    for lang, data in squad_per_language.items():
        para_no = 0
        for passage in data["data"]:
            for paragraph in passage["paragraphs"]:
                para_no += 1
                cands = _paragraph_candidates(pool, seen, lang, para_no, paragraph)
                breaks = paragraph["sentence_breaks"]
                for qa in paragraph["qas"]:
                    start = qa["answers"][0]["answer_start"]
                    pos = next((i for i, (s, e) in enumerate(breaks) if s <= start < e), None)
                    if pos is None:  # no sentence holds the answer: skipped (official loader)
                        continue
                    pool.question_texts.append(qa["question"])
                    pool.question_languages.append(lang)
                    pool.question_ids.append(qa["id"])
                    relevant = answer_candidates.setdefault(qa["id"], [])
                    if cands[pos] not in relevant:  # one entry per candidate (the official set())
                        relevant.append(cands[pos])
    pool.relevant = [answer_candidates[q] for q in pool.question_ids]
    return pool


def read_xquad_r(data_dir: Path, languages: Sequence[str], task: str = "lareqa") -> dict[str, dict]:
    folder = Path(data_dir) / task / "xquad-r"
    missing = [lang for lang in languages if not (folder / f"{lang}.json").is_file()]
    if missing:
        raise FileNotFoundError(
            f"{task}: candidate_pool 'shared' reads XQuAD-R from {folder}/<lang>.json; missing "
            f"{', '.join(missing)}. Run `xitt convert lareqa <download>/lareqa --data-dir <data_dir>` (it "
            f"keeps the XQuAD-R files there), or set task_train.{task}.candidate_pool: language."
        )
    return {lang: json.loads((folder / f"{lang}.json").read_text(encoding="utf-8")) for lang in languages}


def build_entity_pool(
    entities: Sequence[tuple[str, str]], mentions: Mapping[str, Sequence[tuple[str, str, str]]]
) -> SharedPool:
    """Mewsli-X's pool: ``entities`` [(entity id, description)] and per language the mentions
    [(example id, mention text, gold entity id)]; each mention's one relevant item is its entity."""
    pool = SharedPool(
        candidate_texts=[text for _, text in entities], candidate_languages=["" for _ in entities]
    )
    index = {entity_id: i for i, (entity_id, _) in enumerate(entities)}
    for lang, rows in mentions.items():
        for example_id, text, entity_id in rows:
            if entity_id not in index:
                raise ValueError(
                    f"mewslix: mention {example_id} ({lang}) links to {entity_id}, which is not in the "
                    "entity pool; run `xitt convert mewslix` again on a complete download."
                )
            pool.question_texts.append(text)
            pool.question_languages.append(lang)
            pool.question_ids.append(example_id)
            pool.relevant.append([index[entity_id]])
    return pool


def _tsv(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines() if line]


def read_entity_pool(data_dir: Path, languages: Sequence[str], task: str = "mewslix") -> SharedPool:
    folder = Path(data_dir) / task / "shared"
    paths = [folder / "entities.tsv", *(folder / f"mentions-{lang}.tsv" for lang in languages)]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"{task}: candidate_pool 'shared' reads {folder}/entities.tsv and mentions-<lang>.tsv; missing "
            f"{', '.join(missing)}. Run `xitt convert mewslix <download>/mewslix --data-dir <data_dir>`, "
            f"or set task_train.{task}.candidate_pool: language."
        )
    entities = [(row[0], row[1]) for row in _tsv(paths[0])]
    return build_entity_pool(
        entities, {lang: [tuple(r) for r in _tsv(p)] for lang, p in zip(languages, paths[1:])}
    )


def shared_pool_for(
    task, languages: Sequence[str], data_dir: Path | None
) -> tuple[SharedPool, dict[str, str]]:
    """The task's shared pool (``fields.pool``: ``xquad_r`` or ``entities``) and a fingerprint of its files."""
    kind = task.fields.get("pool")
    if kind not in ("xquad_r", "entities"):
        raise ValueError(
            f"{task.name}: candidate_pool 'shared' needs fields.pool (xquad_r or entities) in {task.file}; "
            "only LAReQA and Mewsli-X have a shared pool. Set candidate_pool: language."
        )
    if data_dir is None:
        raise FileNotFoundError(
            f"{task.name}: candidate_pool 'shared' needs the local files of `xitt convert {task.name}`; "
            "pass --data-dir (or XITT_DATA_DIR) pointing at the folder that holds them."
        )
    if kind == "xquad_r":
        files = read_xquad_r(Path(data_dir), languages, task.name)
        digest = hashlib.sha1(json.dumps(files, sort_keys=True).encode()).hexdigest()[:12]
        return build_shared_pool(files), {f"{task.name}/xquad-r-{'+'.join(languages)}": digest}
    pool = read_entity_pool(Path(data_dir), languages, task.name)
    text = json.dumps([pool.candidate_texts, pool.question_texts, pool.question_ids, pool.relevant])
    return pool, {f"{task.name}/shared-{'+'.join(languages)}": hashlib.sha1(text.encode()).hexdigest()[:12]}


def _unit(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)


Outcomes = dict[str, tuple[list, list]]  # language -> (per-query predictions, references)


def shared_pool_results(
    pool: SharedPool,
    encode: Callable[[Sequence[str]], np.ndarray],
    k: int = 20,
    encode_candidates: Callable[[Sequence[str]], np.ndarray] | None = None,
) -> tuple[dict[str, dict[str, float]], Outcomes]:
    """({question language: {"map_at_20": mAP@k}}, outcomes) of every question against the whole pool.

    ``encode(texts) -> (n, d)`` embeds questions, ``encode_candidates`` (default: ``encode``) the
    candidates: one encoder, as XTREME-R's inference uses the first tower for both; the dual
    encoder cuts queries and candidates at different lengths. ``outcomes[language]``: per question
    of that language, in pool order, its top-k candidate indices (best first) and its relevant
    candidate indices: the per-query AP@k of ``mean_average_precision_at_k`` averages to the score.
    """
    questions = _unit(encode(pool.question_texts))
    candidates = _unit((encode_candidates or encode)(pool.candidate_texts))
    scores = questions @ candidates.T
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    out, outcomes = {}, {}
    for lang in dict.fromkeys(pool.question_languages):
        rows = [q for q, ql in enumerate(pool.question_languages) if ql == lang]
        ranked, relevant = [top[q].tolist() for q in rows], [list(pool.relevant[q]) for q in rows]
        out[lang] = {"map_at_20": mean_average_precision_at_k(ranked, relevant, k=k)}
        outcomes[lang] = (ranked, relevant)
    return out, outcomes


def shared_pool_scores(
    pool: SharedPool,
    encode: Callable[[Sequence[str]], np.ndarray],
    k: int = 20,
    encode_candidates: Callable[[Sequence[str]], np.ndarray] | None = None,
) -> dict[str, dict[str, float]]:
    """The scores of ``shared_pool_results``: {question language: {"map_at_20": mAP@k}}."""
    return shared_pool_results(pool, encode, k, encode_candidates)[0]
