"""Task data: readers of local files in the XTREME file formats and of hub rows, and ``load_split``,
the one door through which training reads data: the prepared, verified copy (xitt/data/cache.py).

Local layout (also written by ``xitt synth``)::

    <data_dir>/<task>/<split>-<lang>.<ext>      split in {train, dev, test}

train/dev are in the task's ``train_language`` (en); test exists for every evaluation language.
No header lines; TSV is read with quoting off (``csv.QUOTE_NONE``), so quotes stay in sentences.

=====================  =====  ==============================================================
kind                   ext    one example
=====================  =====  ==============================================================
classification         tsv    ``sentence<TAB>label``            (label NAME from ``labels``)
pair_classification    tsv    ``sentence1<TAB>sentence2<TAB>label``
tagging                tsv    ``token<TAB>tag`` per line, a blank line between sentences
span_qa                json   SQuAD v1.1 JSON (``data[].paragraphs[].qas[]``)
multiple_choice        jsonl  ``{"context", "question", "choices": [...], "label": int}``
retrieval              tsv    ``sentence_in_lang<TAB>english_sentence``, line i aligned with i
=====================  =====  ==============================================================

Retrieval: the gold pairs are the lines with both sides filled; a line with one side empty is a
sentence without a partner (BUCC-style mining). BUCC tunes its threshold on ``dev-<lang>.tsv``
(the sample split) and reports ``test-<lang>.tsv``; Tatoeba/mAP tasks need only ``test``.

The data dir is ``--data-dir``, else ``XITT_DATA_DIR``, else the grid's ``data_dir`` (relative
paths are relative to the current directory), else ``~/.cache/xitt``. ``xitt prepare`` turns local
files and hub datasets into prepared copies there (a local file wins over the hub); runs read only
those, never the hub.

Every loader returns a list of plain dicts (the same keys for local and hub data):
classification ``{text, label}``; pair_classification ``{text, text_pair, label}`` (label =
index into ``task.labels``); tagging ``{tokens, tags}`` (tag names); span_qa ``{id, context,
question, answers: [{text, answer_start}]}``; multiple_choice ``{context, question, choices,
label}``; retrieval ``{src, tgt}`` (either may be ""); unlabelled text (``kind: text``, the MLM
objective's corpora, one text per line in ``.txt`` files) ``{text}``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from xitt.data import cache
from xitt.tasks import Task

EXTENSIONS = {
    "classification": "tsv",
    "pair_classification": "tsv",
    "tagging": "tsv",
    "span_qa": "json",
    "multiple_choice": "jsonl",
    "retrieval": "tsv",
    "text": "txt",  # unlabelled text for the MLM objective (xitt/grid/intermediates.py)
}
SPLITS = ("train", "dev", "test")
DEFAULT_DATA_DIR = "~/.cache/xitt"


class DataError(ValueError):
    """Task data cannot be found or read; the message names the task, the source and the fix."""


def set_offline_flags(offline: bool | None = None) -> bool:
    """Set HF_HUB_OFFLINE/HF_DATASETS_OFFLINE when asked (or XITT_OFFLINE=1); call before HF imports.

    Set later, every hub id takes 23-46 s to time out instead of failing at once.
    """
    offline = offline if offline is not None else os.environ.get("XITT_OFFLINE", "") not in ("", "0")
    if offline:
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["HF_DATASETS_OFFLINE"] = "1"
    return bool(offline) or os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")


def resolve_data_dir(cli_value: str | None = None, grid_value: str | None = None) -> Path:
    """--data-dir, else XITT_DATA_DIR, else the grid's data_dir, else ~/.cache/xitt (absolute)."""
    value = cli_value or os.environ.get("XITT_DATA_DIR") or grid_value or DEFAULT_DATA_DIR
    return Path(value).expanduser().resolve()


def local_path(task: Task, split: str, lang: str, data_dir: Path | None) -> Path | None:
    """The local input file of one split: ``<data_dir>/<task>/<split>-<lang>.<ext>``, or for the
    unlabelled text and translations of xitt/data/conditions.py the file in their own folder."""
    if task.source.get("folder") is not None:
        return condition_path(task, split, lang, data_dir)
    if data_dir is None:
        return None
    return Path(data_dir) / task.name / f"{split}-{lang}.{EXTENSIONS[task.kind]}"


def condition_path(task: Task, split: str, lang: str, data_dir: Path | None) -> Path | None:
    """The first existing candidate file of an MLM text corpus or a translation (else the first
    candidate, for the error message); see xitt/data/conditions.py for the layouts."""
    from xitt.data.conditions import candidates

    folder = task.source["folder"] or data_dir
    if folder is None:
        return None
    found = candidates(task, split, lang, Path(folder))
    return next((p for p in found if p.is_file()), found[0])


# ------------------------------------------------------------------------------- local readers


def _tsv_rows(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return [row for row in csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)]


# XNLI's translate-train files spell one label "contradictory" (google-research/xtreme,
# third_party/processors/xnli.py get_translate_train_examples maps it to "contradiction").
LABEL_ALIASES = {"contradictory": "contradiction"}


def _label_index(task: Task, value: Any, where: str) -> int:
    labels = list(task.labels or [])
    if isinstance(value, str) and value not in labels and LABEL_ALIASES.get(value) in labels:
        value = LABEL_ALIASES[value]
    if isinstance(value, str) and value in labels:
        return labels.index(value)
    if isinstance(value, str) and value.lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, int) and 0 <= value < len(labels):
        return value
    raise DataError(f"{where}: label {value!r} is not one of task '{task.name}' labels {labels}.")


def _read_tagging(path: Path) -> list[dict]:
    out, tokens, tags = [], [], []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            line = line.rstrip("\n")
            if not line.strip():
                if tokens:
                    out.append({"tokens": tokens, "tags": tags})
                tokens, tags = [], []
                continue
            parts = line.split("\t")
            if len(parts) < 2:
                raise DataError(f"{path}:{n}: expected 'token<TAB>tag', got {line!r}.")
            tokens.append(parts[0])
            tags.append(parts[-1])
    if tokens:
        out.append({"tokens": tokens, "tags": tags})
    return out


def _read_squad(path: Path) -> list[dict]:
    doc = json.loads(path.read_text(encoding="utf-8"))
    out = []
    for article in doc.get("data", []):
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                answers = [
                    {"text": a["text"], "answer_start": int(a["answer_start"])} for a in qa.get("answers", [])
                ]
                out.append(
                    {
                        "id": str(qa["id"]),
                        "context": para["context"],
                        "question": qa["question"],
                        "answers": answers,
                    }
                )
    return out


def read_local(task: Task, path: Path) -> list[dict]:
    """Examples of one local file (format by ``task.kind``, see the module docstring)."""
    kind = task.kind
    if kind == "text":  # one text per line, as jiant's MLM task files (jiant/tasks/lib/templates/mlm.py)
        lines = path.read_text(encoding="utf-8").splitlines()
        return [{"text": line.strip()} for line in lines if line.strip()]
    if kind == "tagging":
        return _read_tagging(path)
    if kind == "span_qa":
        return _read_squad(path)
    if kind == "multiple_choice":
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return [
            {
                "context": r.get("context", ""),
                "question": r.get("question", ""),
                "choices": list(r["choices"]),
                "label": int(r["label"]),
            }
            for r in rows
        ]
    rows = _tsv_rows(path)
    width = {"classification": 2, "pair_classification": 3, "retrieval": 2}[kind]
    for n, row in enumerate(rows, 1):
        if len(row) != width:
            raise DataError(
                f"{path}:{n}: expected {width} tab-separated columns for a {kind} task, got {len(row)}."
            )
    if kind == "retrieval":
        return [{"src": r[0], "tgt": r[1]} for r in rows]
    if kind == "classification":
        return [
            {"text": r[0], "label": _label_index(task, r[1], f"{path}:{n}")} for n, r in enumerate(rows, 1)
        ]
    return [
        {"text": r[0], "text_pair": r[1], "label": _label_index(task, r[2], f"{path}:{n}")}
        for n, r in enumerate(rows, 1)
    ]


# ---------------------------------------------------------------------------------- hub rows


def _get(row: Mapping, name: str) -> Any:
    value: Any = row
    for part in name.split("."):  # dotted names reach into nested columns: choices.text
        value = value[part]
    return value


def _optional(row: Mapping, name: str | None) -> str:
    """A text column that some multiple-choice datasets lack (CommonsenseQA has no context): "" then."""
    try:
        return str(_get(row, name)) if name else ""
    except (KeyError, TypeError):
        return ""


def _hub_example(task: Task, row: Mapping, names: Sequence[str] | None) -> dict | None:
    f, kind = task.fields, task.kind
    if kind in ("classification", "pair_classification"):
        label = _get(row, f.get("label", "label"))
        if isinstance(label, int) and label < 0:
            return None  # SNLI/MNLI rows without a gold label
        label = names[label] if (names and isinstance(label, int) and task.labels is None) else label
        out = {"text": _get(row, f.get("sentence1", f.get("sentence", "sentence")))}
        if kind == "pair_classification":
            out["text_pair"] = _get(row, f.get("sentence2", "sentence2"))
        out["label"] = _label_index(task, label, f"{task.name} (hub)")
        return out
    if kind == "tagging":
        tags = list(_get(row, f.get("tags", "tags")))
        tags = [names[t] if names and isinstance(t, int) else str(t) for t in tags]
        return {"tokens": list(_get(row, f.get("tokens", "tokens"))), "tags": tags}
    if kind == "span_qa":
        ans = _get(row, f.get("answers", "answers"))
        answers = [{"text": t, "answer_start": int(s)} for t, s in zip(ans["text"], ans["answer_start"])]
        return {
            "id": str(_get(row, f.get("id", "id"))),
            "context": _get(row, f.get("context", "context")),
            "question": _get(row, f.get("question", "question")),
            "answers": answers,
        }
    if kind == "multiple_choice":
        spec = f.get("choices", "choices")
        choices = [_get(row, c) for c in spec] if isinstance(spec, list) else list(_get(row, spec))
        label = _get(row, f.get("label", "label"))
        if isinstance(f.get("label_names"), list):  # SocialIQA: label "2" -> index in the fixed list
            label = f["label_names"].index(str(label).strip())
        elif "label_names" in f:  # CommonsenseQA: answerKey "B" -> index in choices.label
            label = list(_get(row, f["label_names"])).index(label)
        return {
            "context": _optional(row, f.get("context")),
            "question": _optional(row, f.get("question")),
            "choices": choices,
            "label": int(label),
        }
    return {
        "src": _get(row, f.get("src", "source_sentence")),
        "tgt": _get(row, f.get("tgt", "target_sentence")),
    }


def _label_names(ds, task: Task) -> list[str] | None:
    key = task.fields.get(
        "tags" if task.kind == "tagging" else "label", "tags" if task.kind == "tagging" else "label"
    )
    feature = ds.features.get(key) if "." not in key else None
    feature = getattr(feature, "feature", feature)
    return list(getattr(feature, "names", []) or []) or None


# --------------------------------------------------------------------------------- the front door

_CACHE: dict[tuple, tuple[list[dict], str]] = {}


def fingerprint_file(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()[:12]


def load_split(task: Task, split: str, lang: str, data_dir: Path | None) -> tuple[list[dict], str]:
    """(examples, fingerprint) of one split: the prepared copy (``xitt prepare``), else a local file
    in the XTREME formats (library use without a cache). Never the hub. Cached per process."""
    key = (task.name, task.version, split, lang, str(data_dir))
    if key not in _CACHE:
        try:
            prepared = cache.read_copy(Path(data_dir), task, split, lang) if data_dir else None
        except ValueError as err:
            raise DataError(f"task '{task.name}' split {split}-{lang}: {err}") from err
        path = local_path(task, split, lang, data_dir)
        if prepared is not None:
            _CACHE[key] = (prepared[0], prepared[1]["fingerprint"])
        elif path is not None and path.is_file():
            _CACHE[key] = (read_local(task, path), fingerprint_file(path))
        else:
            raise DataError(
                f"task '{task.name}' split {split}-{lang} is not prepared in {data_dir}; run "
                "`xitt prepare runs/<exp>` (with the same --data-dir) first: runs never read the hub."
            )
    return _CACHE[key]
