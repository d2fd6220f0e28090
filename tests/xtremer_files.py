"""Small files in the formats XTREME-R's download scripts (and CCGbank) produce, for the converters.

Formats: Mewsli-X ``wikinews_mentions-test.jsonl`` / ``candidate_set_entities.jsonl``
(google-research/google-research dense_representations_for_entity_retrieval/mel/mewsli-x.md, the
key tables); XQuAD-R ``xquad-r/<lang>.json`` (google-research-datasets/lareqa xquad-r/de.json:
SQuAD JSON plus ``sentences`` and ``sentence_breaks`` per paragraph); CCGbank ``data/AUTO/<sec>/*.auto``
(one ``ID=`` line, then one derivation whose leaves read ``(<L category POS POS word category>)``).
"""

from __future__ import annotations

import json
from pathlib import Path

WORDS = "river city north table music green winter market paper light stone garden".split()


def mewslix(folder: Path, languages) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    docs, entities = [], []
    for li, lang in enumerate(languages):
        for d in range(3):
            first = f"{WORDS[d]} {WORDS[d + 1]} went to the {WORDS[d + 2]}."
            second = f"The {WORDS[d + 3]} was {WORDS[d + 4]}."
            text = f"{first} {second}"
            qid = f"Q{li * 10 + d}"
            docs.append(
                {
                    "context": {
                        "document_id": f"{lang}-{d}",
                        "language": lang,
                        "text": text,
                        "sentence_spans": [[0, len(first)], [len(first) + 1, len(text)]],
                    },
                    "mentions": [
                        {
                            "example_id": f"{lang}-{d}-0",
                            "entity_id": qid,
                            "mention_span": {
                                "text": WORDS[d + 2],
                                "start": text.index(WORDS[d + 2]),
                                "end": 0,
                            },
                        }
                    ],
                }
            )
            entities.append(
                {"entity_id": qid, "description": f"{WORDS[d + 2]} is a place", "description_language": lang}
            )
        entities.append(
            {"entity_id": f"Q{li * 10 + 9}", "description": "a distractor", "description_language": lang}
        )
    (folder / "wikinews_mentions-test.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (folder / "candidate_set_entities.jsonl").write_text("".join(json.dumps(e) + "\n" for e in entities))
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
