"""Regenerate the tiny test fixtures (deterministic): python tests/data/tiny/make_tiny.py

Small hand-made grammars, English train/dev and test in en + de ("de" swaps half the content
words for made-up translations, so zero-shot transfer is partial). Names are shared.
"""

import json
import random
from pathlib import Path

HERE = Path(__file__).parent
NAMES = ["anna", "bob", "carl", "dora", "emil", "fay", "gus", "hana"]
CITIES = ["paris", "rome", "oslo", "lima", "kyiv", "doha"]
GOOD = ["good", "great", "nice", "fine", "happy"]
BAD = ["bad", "awful", "sad", "poor", "ugly"]
NOUNS = ["film", "meal", "book", "song", "game"]
COLORS = ["red", "blue", "green", "black"]
DE = {"good": "gut", "nice": "nett", "happy": "froh", "bad": "schlecht", "sad": "traurig", "film": "film",
      "meal": "essen", "book": "buch", "the": "der", "is": "ist", "was": "war", "very": "sehr",
      "lives": "wohnt", "in": "in", "where": "wo", "does": "tut", "live": "wohnen", "met": "traf",
      "car": "auto", "red": "rot", "blue": "blau"}


def tr(text, lang):
    return text if lang == "en" else " ".join(DE.get(w, w) for w in text.split(" "))


def cls_rows(rng, n, lang):
    rows = []
    for _ in range(n):
        pos = rng.random() < 0.5
        adj = rng.choice(GOOD if pos else BAD)
        rows.append(f"{tr(f'the {rng.choice(NOUNS)} was very {adj}', lang)}\t{'pos' if pos else 'neg'}")
    return rows


def nli_rows(rng, n, lang):
    rows = []
    for _ in range(n):
        car, color = rng.choice(NAMES), rng.choice(COLORS)
        premise = f"the car of {car} is {color}"
        kind = rng.choice(["entailment", "neutral", "contradiction"])
        if kind == "entailment":
            hyp = f"the car of {car} is {color}"
        elif kind == "contradiction":
            hyp = f"the car of {car} is {rng.choice([c for c in COLORS if c != color])}"
        else:
            hyp = f"the car of {rng.choice([x for x in NAMES if x != car])} is {color}"
        rows.append(f"{tr(premise, lang)}\t{tr(hyp, lang)}\t{kind}")
    return rows


def ner_sents(rng, n, lang):
    out = []
    for _ in range(n):
        a, b = rng.sample(NAMES, 2)
        words = [(a, "B-PER"), ("met", "O"), (b, "B-PER"), ("in", "O"), (rng.choice(CITIES), "B-LOC")]
        if rng.random() < 0.5:
            words = [("yesterday", "O")] + words
        out.append("\n".join(f"{tr(w, lang)}\t{t}" for w, t in words))
    return out


def qa_doc(rng, n, lang, split):
    paras = []
    for i in range(n):
        people = rng.sample(NAMES, 3)
        cities = [rng.choice(CITIES) for _ in people]
        context = " . ".join(tr(f"{p} lives in {c}", lang) for p, c in zip(people, cities)) + " ."
        k = rng.randrange(3)
        question = tr(f"where does {people[k]} live ?", lang)
        sentence_start = sum(len(tr(f"{p} lives in {c}", lang)) + 3 for p, c in zip(people[:k], cities[:k]))
        start = sentence_start + len(tr(f"{people[k]} lives in ", lang))
        assert context[start:start + len(cities[k])] == cities[k]
        qas = [{"id": f"{split}-{lang}-{i}", "question": question,
                "answers": [{"text": cities[k], "answer_start": start}]}]
        paras.append({"context": context, "qas": qas})
    return {"version": "1.1", "data": [{"title": "tiny", "paragraphs": paras}]}


def mc_rows(rng, n, lang):
    rows = []
    for _ in range(n):
        p, c = rng.choice(NAMES), rng.choice(CITIES)
        wrong = rng.sample([x for x in CITIES if x != c], 2)
        choices = [c] + wrong
        rng.shuffle(choices)
        rows.append(json.dumps({"context": tr(f"{p} lives in {c} .", lang), "question": tr(f"where does {p} live ?", lang),
                                "choices": choices, "label": choices.index(c)}))
    return rows


def main():
    sizes = {"train": 160, "dev": 40, "test": 40}
    for split, n in sizes.items():
        langs = ["en"] if split != "test" else ["en", "de"]
        for lang in langs:
            rng = random.Random(f"{split}-{lang}")
            files = {"tiny_cls": ("tsv", "\n".join(cls_rows(rng, n, lang)) + "\n"),
                     "tiny_nli": ("tsv", "\n".join(nli_rows(rng, n, lang)) + "\n"),
                     "tiny_ner": ("tsv", "\n\n".join(ner_sents(rng, n, lang)) + "\n"),
                     "tiny_qa": ("json", json.dumps(qa_doc(rng, n // 2, lang, split), indent=0) + "\n"),
                     "tiny_mc": ("jsonl", "\n".join(mc_rows(rng, n // 2, lang)) + "\n")}
            for task, (ext, text) in files.items():
                if task == "tiny_nli" and split == "test":
                    continue
                folder = HERE / task
                folder.mkdir(exist_ok=True)
                (folder / f"{split}-{lang}.{ext}").write_text(text, encoding="utf-8")
    rng = random.Random("tatoeba")
    for lang in ["de"]:
        rows = []
        for _ in range(30):
            en = f"the {rng.choice(NOUNS)} of {rng.choice(NAMES)} was {rng.choice(GOOD + BAD)}"
            rows.append(f"{tr(en, lang)}\t{en}")
        (HERE / "tiny_tatoeba").mkdir(exist_ok=True)
        (HERE / "tiny_tatoeba" / f"test-{lang}.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
