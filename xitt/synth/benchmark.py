"""`xitt synth`: the offline synthetic multilingual benchmark and its tiny pretrained encoder.

    xitt synth --out .cache/synth [--seed 0] [--languages 5] [--size default|small]

writes ``<out>/data/<task>/<split>-<lang>.<ext>`` (the XTREME file formats ``xitt.data`` reads),
``<out>/data/synth_text/train-<lang>.txt`` (unlabelled text per language, for MLM-mixed
intermediates), the intermediate tasks' training sets in every synthetic language too (their
exact "translations": the languages are rule-based transforms of English; not synth_para, whose
English voice variants have no rendering there), ``<out>/encoder/`` (a tiny BERT pretrained
with masked-language modelling on unlabelled text of every language: the demo's "mBERT") and
``<out>/manifest.json``. The tasks are declared in ``xitt/tasks/synth.yaml``; the languages
and the grammar are in ``xitt.synth_lang``, the example generators in ``xitt.synth_tasks``.

Deterministic: the same arguments give byte-identical data files and bit-identical encoder
weights (one torch thread). When ``<out>/manifest.json`` already records the same arguments and
the same generator code, nothing is rebuilt (``--force`` rebuilds).
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from xitt.synth import generators as st
from xitt.synth.languages import PROFILES, Language, all_words, make_languages, text_of

INTERMEDIATES = ("synth_nli", "synth_nli_hard", "synth_qa", "synth_qa_mc", "synth_para")
TARGETS = ("synth_xnli", "synth_ner", "synth_xquad", "synth_tatoeba")
# Examples per split. Intermediate tasks are English only; targets have English train/dev and a
# test set in every language (the same items, realised per language); pretrain = documents per language.
SIZES: dict[str, dict[str, int]] = {
    "default": {
        "intermediate_train": 3000,
        "intermediate_dev": 300,
        "target_train": 3000,
        "target_dev": 300,
        "test": 300,
        "retrieval": 300,
        "pretrain": 3000,
        "text": 1000,
    },
    "small": {
        "intermediate_train": 400,
        "intermediate_dev": 100,
        "target_train": 300,
        "target_dev": 100,
        "test": 100,
        "retrieval": 100,
        "pretrain": 800,
        "text": 200,
    },
}
# The tiny encoder and its pretraining (see xitt.pretrain.pretrain_encoder).
ENCODER = {"hidden": 64, "layers": 2, "heads": 2, "intermediate": 128, "max_position": 128}
PRETRAIN = {"epochs": 4.0, "batch_size": 32, "lr": 2e-3, "max_length": 96}


def _rng(seed: int, *parts: str) -> random.Random:
    # random.Random seeds strings through SHA-512: stable across processes (unlike hash()).
    return random.Random("xitt-synth-" + "-".join([str(seed), *parts]))


# ------------------------------------------------------------------------------------- writers


def _clean(text: str) -> str:
    if "\t" in text or "\n" in text:
        raise ValueError(f"synthetic text must not contain tabs or newlines: {text!r}")
    return text


def _write_tsv(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join("\t".join(_clean(c) for c in row) + "\n" for row in rows), encoding="utf-8")


def _write_tagging(path: Path, sentences) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "".join("".join(f"{t.text}\t{t.tag}\n" for t in s) + "\n" for s in sentences), encoding="utf-8"
    )


def _write_squad(path: Path, examples: list[dict], title: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = [
        {
            "title": f"{title}-{i}",
            "paragraphs": [
                {
                    "context": ex["context"],
                    "qas": [{"id": ex["id"], "question": ex["question"], "answers": ex["answers"]}],
                }
            ],
        }
        for i, ex in enumerate(examples)
    ]
    path.write_text(json.dumps({"version": "1.1", "data": data}, ensure_ascii=False) + "\n", encoding="utf-8")


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


# ------------------------------------------------------------------------------- task builders
# Each builder writes one task: (root, seed, sizes, languages) -> None.


def _nli_builder(n_premise: int, n_people: int, p_neg: float, target: bool) -> Callable:
    def build(root: Path, name: str, seed: int, sizes: dict, langs: dict[str, Language]) -> None:
        kind = "target" if target else "intermediate"
        for split in ("train", "dev"):
            rng = _rng(seed, name, split)
            items = [
                st.nli_item(rng, n_premise=n_premise, n_people=n_people, p_neg=p_neg)
                for _ in range(sizes[f"{kind}_{split}"])
            ]
            _write_tsv(root / name / f"{split}-en.tsv", [st.nli_row(it, langs["en"]) for it in items])
            if split == "train" and not target:  # exact "translations" (translate-train conditions)
                for code, lang in langs.items():
                    if code != "en":
                        _write_tsv(root / name / f"train-{code}.tsv", [st.nli_row(it, lang) for it in items])
        if target:
            rng = _rng(seed, name, "test")
            items = [
                st.nli_item(rng, n_premise=n_premise, n_people=n_people, p_neg=p_neg)
                for _ in range(sizes["test"])
            ]
            for code, lang in langs.items():
                _write_tsv(root / name / f"test-{code}.tsv", [st.nli_row(it, lang) for it in items])

    return build


def _qa_builder(n_facts: int, n_people: int, p_neg: float, target: bool, mc: bool = False) -> Callable:
    def build(root: Path, name: str, seed: int, sizes: dict, langs: dict[str, Language]) -> None:
        kind = "target" if target else "intermediate"
        # an intermediate's training set also in every synthetic language: its exact "translation"
        train_codes = ["en"] if target else list(langs)
        splits = [("train", sizes[f"{kind}_train"], train_codes), ("dev", sizes[f"{kind}_dev"], ["en"])]
        if target:
            splits.append(("test", sizes["test"], list(langs)))
        for split, n, codes in splits:
            rng = _rng(seed, name, split)
            items = [st.qa_item(rng, n_facts=n_facts, n_people=n_people, p_neg=p_neg) for _ in range(n)]
            for code in codes:
                if mc:
                    choice_rng = _rng(seed, name, split, "choices")  # the same distractors in every language
                    _write_jsonl(
                        root / name / f"{split}-{code}.jsonl",
                        [st.mc_example(choice_rng, it, langs[code]) for it in items],
                    )
                else:
                    examples = [
                        st.qa_example(it, langs[code], f"{name}-{split}-{i}") for i, it in enumerate(items)
                    ]
                    _write_squad(root / name / f"{split}-{code}.json", examples, f"{name}-{split}")

    return build


def _paraphrase(root: Path, name: str, seed: int, sizes: dict, langs: dict[str, Language]) -> None:
    for split in ("train", "dev"):
        rng = _rng(seed, name, split)
        _write_tsv(
            root / name / f"{split}-en.tsv",
            [st.paraphrase_row(rng) for _ in range(sizes[f"intermediate_{split}"])],
        )


def _ner(root: Path, name: str, seed: int, sizes: dict, langs: dict[str, Language]) -> None:
    for split in ("train", "dev"):
        rng = _rng(seed, name, split)
        _write_tagging(
            root / name / f"{split}-en.tsv",
            [st.ner_tokens(rng, langs["en"]) for _ in range(sizes[f"target_{split}"])],
        )
    rng = _rng(seed, name, "test")
    clauses = [
        st.fact(rng, verb=rng.choice(("thing", "person", "live", "work", "visit")), p_place=0.5, p_neg=0.15)
        for _ in range(sizes["test"])
    ]
    for code, lang in langs.items():
        _write_tagging(root / name / f"test-{code}.tsv", [st.ner_tokens(rng, lang, c) for c in clauses])


def _tatoeba(root: Path, name: str, seed: int, sizes: dict, langs: dict[str, Language]) -> None:
    rng = _rng(seed, name, "test")
    clauses, seen = [], set()
    while len(clauses) < sizes["retrieval"]:  # distinct English sentences: one gold partner each
        c = st.fact(rng, p_place=0.3, p_neg=0.1)
        key = text_of(st.realize(c, langs["en"]))
        if key not in seen:
            seen.add(key)
            clauses.append(c)
    for code, lang in langs.items():
        if code != "en":
            _write_tsv(
                root / name / f"test-{code}.tsv",
                [(text_of(st.realize(c, lang)), text_of(st.realize(c, langs["en"]))) for c in clauses],
            )


BUILDERS: dict[str, Callable] = {
    "synth_nli": _nli_builder(n_premise=1, n_people=1, p_neg=0.0, target=False),
    "synth_nli_hard": _nli_builder(n_premise=2, n_people=2, p_neg=0.25, target=False),
    "synth_qa": _qa_builder(n_facts=3, n_people=2, p_neg=0.0, target=False),
    "synth_qa_mc": _qa_builder(n_facts=4, n_people=2, p_neg=0.1, target=False, mc=True),
    "synth_para": _paraphrase,
    "synth_xnli": _nli_builder(n_premise=1, n_people=2, p_neg=0.15, target=True),
    "synth_ner": _ner,
    "synth_xquad": _qa_builder(n_facts=4, n_people=2, p_neg=0.15, target=True),
    "synth_tatoeba": _tatoeba,
}


TEXT_CORPUS = "synth_text"  # unlabelled text per language for MLM-mixed intermediates


def write_text(root: Path, seed: int, langs: dict[str, Language], per_language: int) -> None:
    """``<root>/synth_text/train-<lang>.txt``: ``per_language`` unlabelled sentences per language, one
    a line (a seed stream of their own: not the pretraining documents)."""
    shutil.rmtree(root / TEXT_CORPUS, ignore_errors=True)
    (root / TEXT_CORPUS).mkdir(parents=True)
    for code, lang in langs.items():
        rng = _rng(seed, TEXT_CORPUS, code)
        lines = [_clean(st.plain_sentence(rng, lang)) for _ in range(per_language)]
        (root / TEXT_CORPUS / f"train-{code}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def pretraining_documents(seed: int, langs: dict[str, Language], per_language: int) -> list[str]:
    """Unlabelled documents of 1-6 sentences, ``per_language`` per language (not parallel: each
    language draws its own facts, as mBERT's Wikipedias do), interleaved language by language."""
    out = []
    rngs = {code: _rng(seed, "pretrain", code) for code in langs}
    for _ in range(per_language):
        for code, lang in langs.items():
            rng = rngs[code]
            out.append(" ".join(st.plain_sentence(rng, lang) for _ in range(rng.randint(1, 6))))
    return out


# ---------------------------------------------------------------------------------- the entry


def _code_fingerprint() -> str:
    here = Path(__file__).parent
    text = b"".join(
        (here / f).read_bytes()
        for f in (
            "benchmark.py",
            "languages.py",
            "generators.py",
            "pretrain.py",
            "tiny.py",
            "../train/mlm.py",
        )
    )
    return hashlib.sha1(text).hexdigest()[:12]


def write_data(
    out_dir: str | Path,
    *,
    seed: int = 0,
    n_languages: int = 5,
    size: str = "default",
    anchor_scale: float = 1.0,
    tasks: tuple[str, ...] | None = None,
) -> dict[str, Language]:
    """Write every task's files under ``<out_dir>/<task>/``; returns the languages used."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {sorted(SIZES)}, got {size!r}.")
    unknown = sorted(set(tasks or ()) - set(BUILDERS))
    if unknown:
        raise ValueError(f"unknown synthetic task(s) {unknown}; known: {sorted(BUILDERS)}.")
    langs = make_languages(seed, n_languages, anchor_scale=anchor_scale)
    root = Path(out_dir)
    for name in tasks or tuple(BUILDERS):
        shutil.rmtree(root / name, ignore_errors=True)
        BUILDERS[name](root, name, seed, SIZES[size], langs)
    if tasks is None:
        write_text(root, seed, langs, SIZES[size]["text"])
    return langs


def main_synth(
    out_dir: str | Path,
    *,
    seed: int = 0,
    n_languages: int = 5,
    size: str = "default",
    anchor_scale: float = 1.0,
    pretrain: bool = True,
    force: bool = False,
    encoder: dict | None = None,
    pretrain_args: dict | None = None,
    log=print,
) -> dict[str, Any]:
    """Build ``<out>/data``, ``<out>/encoder`` (unless ``pretrain=False``) and ``<out>/manifest.json``.

    Returns the manifest: {arguments, languages: {code: description}, tasks, pretraining, code,
    seconds}. Skips all work when the manifest on disk has the same arguments and code (``force``
    rebuilds).
    """
    out = Path(out_dir)
    enc_cfg, pre_cfg = {**ENCODER, **(encoder or {})}, {**PRETRAIN, **(pretrain_args or {})}
    arguments = {
        "seed": seed,
        "n_languages": n_languages,
        "size": size,
        "anchor_scale": anchor_scale,
        "pretrain": pretrain,
        "encoder": enc_cfg,
        "pretrain_args": pre_cfg,
    }
    manifest_path = out / "manifest.json"
    if not force and manifest_path.is_file():
        old = json.loads(manifest_path.read_text(encoding="utf-8"))
        if old.get("arguments") == arguments and old.get("code") == _code_fingerprint():
            log(f"synth: {out} is up to date (same arguments and code); --force rebuilds it.")
            return old
    t0 = time.time()
    manifest_path.unlink(missing_ok=True)
    log(f"synth: writing {len(BUILDERS)} tasks to {out / 'data'} ...")
    langs = write_data(out / "data", seed=seed, n_languages=n_languages, size=size, anchor_scale=anchor_scale)
    log(
        f"synth: wrote {len(BUILDERS)} tasks in {len(langs)} languages to {out / 'data'} ({time.time() - t0:.1f} s)"
    )
    info: dict[str, Any] = {}
    if pretrain:
        from xitt.synth.pretrain import pretrain_encoder
        from xitt.synth.tiny import build_tokenizer

        docs = pretraining_documents(seed, langs, SIZES[size]["pretrain"])
        tokenizer = build_tokenizer(docs + all_words(langs))
        shutil.rmtree(out / "encoder", ignore_errors=True)
        log(f"synth: pretraining the tiny encoder on {len(docs)} documents (progress every 10%) ...")
        info = pretrain_encoder(docs, tokenizer, out / "encoder", seed=seed, log=log, **enc_cfg, **pre_cfg)
        info["vocab_size"] = len(tokenizer)
        log(
            f"synth: pretrained the tiny encoder ({info['parameters']} parameters, {info['steps']} steps, "
            f"MLM loss {info['loss_first']:.2f} -> {info['loss_last']:.2f}, masked accuracy "
            f"{info['masked_accuracy_last']:.1f}%) in {info['wall_time']:.0f} s -> {out / 'encoder'}"
        )
    manifest = {
        "arguments": arguments,
        "code": _code_fingerprint(),
        "synthetic": True,
        "languages": {code: lang.profile.description for code, lang in langs.items()},
        "anchors": {code: list(lang.anchors) for code, lang in langs.items() if code != "en"},
        "tasks": list(BUILDERS),
        "pretraining": info,
        "seconds": round(time.time() - t0, 1),
    }
    out.mkdir(parents=True, exist_ok=True)
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return manifest


def add_arguments(parser) -> None:
    """The options of `xitt synth` (xitt.cli adds them to its sub-parser)."""
    parser.add_argument(
        "--out", default=".cache/synth", help="output folder (data/, encoder/, manifest.json)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the languages, the data and the encoder")
    parser.add_argument(
        "--languages",
        type=int,
        default=len(PROFILES),
        dest="n_languages",
        help=f"number of synthetic languages besides English (1-{len(PROFILES)})",
    )
    parser.add_argument(
        "--size", choices=sorted(SIZES), default="default", help="examples per split (see xitt.synth.SIZES)"
    )
    parser.add_argument(
        "--anchor-scale",
        type=float,
        default=1.0,
        help="multiplies each language's share of anchor words shared with English (0 = names only)",
    )
    parser.add_argument("--no-pretrain", action="store_true", help="write the data only, no encoder")
    parser.add_argument(
        "--force", action="store_true", help="rebuild even when the manifest says it is up to date"
    )


def run(args) -> int:
    """`xitt synth` with parsed ``args`` (see ``add_arguments``)."""
    main_synth(
        args.out,
        seed=args.seed,
        n_languages=args.n_languages,
        size=args.size,
        anchor_scale=args.anchor_scale,
        pretrain=not args.no_pretrain,
        force=args.force,
    )
    return 0
