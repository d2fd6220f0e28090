"""Small files in the formats XTREME-R's download scripts (and CCGbank) produce, for the converters.

Formats: Mewsli-X ``wikinews_mentions-test.jsonl`` / ``candidate_set_entities.jsonl`` /
``wikipedia_pairs-{train,dev}.jsonl`` (google-research/xtreme@838c13b69daafb9328785d16caae2711e4012123
third_party/utils_mewslix.py: ContextualMentions, Entity, MentionEntityPair; file names from
scripts/download_data.sh download_mewslix); XQuAD-R ``xquad-r/<lang>.json``
(google-research-datasets/lareqa xquad-r/de.json: SQuAD JSON plus ``sentences`` and
``sentence_breaks`` per paragraph); CCGbank ``data/AUTO/<sec>/*.auto`` (one ``ID=`` line, then
one derivation whose leaves read ``(<L category POS POS word category>)``).
"""

from __future__ import annotations

import json
from pathlib import Path

WORDS = "river city north table music green winter market paper light stone garden".split()


def _entity(qid: str, description: str, lang: str) -> dict:
    # utils_mewslix.Entity: sentence_spans index into description
    return {
        "entity_id": qid,
        "title": description.split()[0],
        "description": description,
        "sentence_spans": [{"start": 0, "end": len(description)}],
        "description_language": lang,
        "description_url": f"https://{lang}.wikipedia.org/wiki/{qid}",
    }


def _context(doc_id: str, lang: str, first: str, second: str) -> dict:
    # utils_mewslix.Context (document_title/url/id, language, text, sentence_spans)
    text = f"{first} {second}"
    return {
        "document_title": doc_id,
        "document_url": f"https://{lang}.wikinews.org/wiki/{doc_id}",
        "document_id": doc_id,
        "language": lang,
        "text": text,
        "sentence_spans": [{"start": 0, "end": len(first)}, {"start": len(first) + 1, "end": len(text)}],
    }


def _mention(example_id: str, qid: str, text: str, word: str) -> dict:
    start = text.index(word)  # utils_mewslix.Mention with a TextSpan
    return {
        "example_id": example_id,
        "entity_id": qid,
        "mention_span": {"start": start, "end": start + len(word), "text": word},
    }


def mewslix(folder: Path, languages) -> Path:
    """wikinews_mentions-test.jsonl (ContextualMentions), candidate_set_entities.jsonl (Entity) and
    wikipedia_pairs-{train,dev}.jsonl (MentionEntityPair), the schema of utils_mewslix.py."""
    folder.mkdir(parents=True, exist_ok=True)
    docs, entities, pairs = [], [], []
    for li, lang in enumerate(languages):
        for d in range(3):
            first = f"{WORDS[d]} {WORDS[d + 1]} went to the {WORDS[d + 2]}."
            context = _context(f"{lang}-{d}", lang, first, f"The {WORDS[d + 3]} was {WORDS[d + 4]}.")
            qid = f"Q{li * 10 + d}"
            docs.append(
                {
                    "context": context,
                    "mentions": [_mention(f"{lang}-{d}-0", qid, context["text"], WORDS[d + 2])],
                }
            )
            entities.append(_entity(qid, f"{WORDS[d + 2]} is a place", lang))
        entities.append(_entity(f"Q{li * 10 + 9}", "a distractor", lang))
    for d, word in enumerate(WORDS[:6]):
        context = _context(
            f"wiki-{d}", "en", f"The {word} was {WORDS[d + 1]}.", f"It went to the {WORDS[d + 2]}."
        )
        cm = {"context": context, "mention": _mention(f"wiki-{d}-0", f"Q{d}", context["text"], word)}
        pairs.append({"contextual_mention": cm, "entity": _entity(f"Q{d}", f"{word} is a place", "en")})
    (folder / "wikinews_mentions-test.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (folder / "candidate_set_entities.jsonl").write_text("".join(json.dumps(e) + "\n" for e in entities))
    for split, rows in (("train", pairs[:4]), ("dev", pairs[4:])):
        (folder / f"wikipedia_pairs-{split}.jsonl").write_text("".join(json.dumps(p) + "\n" for p in rows))
    return folder


def lareqa(folder: Path, languages) -> Path:
    (folder / "xquad-r").mkdir(parents=True, exist_ok=True)
    for lang in languages:
        sentences = [f"The {w} is {WORDS[(i + 3) % len(WORDS)]}." for i, w in enumerate(WORDS[:4])]
        context = " ".join(sentences)
        breaks, start = [], 0
        for s in sentences:
            breaks.append([start, start + len(s)])
            start += len(s) + 1
        qas = [
            {
                "id": f"q{i}",
                "question": f"What is the {WORDS[i]}?",
                "answers": [
                    {
                        "text": WORDS[(i + 3) % len(WORDS)],
                        "answer_start": context.index(WORDS[(i + 3) % len(WORDS)]),
                    }
                ],
            }
            for i in range(3)
        ]
        doc = {
            "data": [
                {
                    "paragraphs": [
                        {"context": context, "qas": qas, "sentences": sentences, "sentence_breaks": breaks}
                    ]
                }
            ]
        }
        (folder / "xquad-r" / f"{lang}.json").write_text(json.dumps(doc))
    return folder


def ccgbank(root: Path, sentences_per_section: int = 4) -> Path:
    for section in ("00", "02", "03"):
        auto = root / "data" / "AUTO" / section
        auto.mkdir(parents=True, exist_ok=True)
        lines = []
        for i in range(sentences_per_section):
            subject, verb = WORDS[i % len(WORDS)], WORDS[(i + 5) % len(WORDS)]
            lines.append(f"ID=wsj_{section}01.{i + 1} PARSER=GOLD NUMPARSE=1")
            lines.append(
                f"(<T S[dcl] 0 2> (<L NP NNP NNP {subject} NP>) (<T S[dcl]\\NP 0 2> "
                f"(<L (S[dcl]\\NP)/NP VBZ VBZ {verb} (S[dcl]\\NP_1)/NP_2>) (<L NP NN NN {WORDS[i]} NP>) ) )"
            )
        (auto / f"wsj_{section}01.auto").write_text("\n".join(lines) + "\n")
    return root


def convert_all(data_dir: Path, work: Path, reg) -> None:
    """Write the three kinds of files and run `xitt convert` on each into ``data_dir``."""
    from xitt.cli import main

    languages = reg.get("mewslix").languages
    assert (
        main(["convert", "mewslix", str(mewslix(work / "mewslix", languages)), "--data-dir", str(data_dir)])
        == 0
    )
    languages = reg.get("lareqa").languages
    assert (
        main(["convert", "lareqa", str(lareqa(work / "lareqa", languages)), "--data-dir", str(data_dir)]) == 0
    )
    assert main(["convert", "ccg", str(ccgbank(work / "ccgbank")), "--data-dir", str(data_dir)]) == 0
