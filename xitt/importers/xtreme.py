"""XTREME submission folders -> the scores.csv contract (``xitt import --format xtreme``).

The layout is the one google-research/xtreme's ``evaluate.py`` scores (commit
838c13b69daafb9328785d16caae2711e4012123; facts, not code): ``--prediction_folder`` and
``--label_folder`` each hold one sub-folder per task, and in it ``test-<lang>.<suffix>``, the
suffix ``json`` for the QA tasks (xquad, mlqa, tydiqa) and ``tsv`` otherwise (``get_suffix``).
The readers, and the tolerance they give:

* ``read_label`` (xnli, pawsx, tatoeba): one label per line, each line stripped of surrounding
  whitespace; predictions and labels must have the same number of lines;
* ``read_tag`` (panx, udpos): one tag per line, stripped; a blank line ends a sentence;
* ``read_squad`` (xquad, mlqa, tydiqa): JSON, its ``data`` list when present (the gold SQuAD
  file) or the mapping itself (predictions, question id -> answer text). Scoring runs over the gold
  questions (``third_party/evaluate_squad.py`` / ``evaluate_mlqa.py``): a question without a
  prediction scores 0, a prediction id no question has is never looked at.

Scored with xitt's own metrics (``xitt.train.metrics.evaluate``) under the target's registry
metric; its first column is the primary row. bucc2018 (pairs of ids, a tuned threshold in xitt),
xcopa, mewslix and lareqa are not read here. Submission folders (relative to the imported folder)
are named by ``--pattern``, default ``{encoder}/{intermediate}/seed{seed}``; the task sub-folder
gives the target. Every task in a submission needs its labels under ``--labels``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from xitt.importers.duplicates import resolve_duplicates
from xitt.importers.folders import pattern_regex, run_names
from xitt.importers.tidy import fill_from_registry
from xitt.schema import SchemaError, validate_scores
from xitt.tasks import registry
from xitt.train.metrics import METRICS, evaluate, mlqa_em_f1, squad_em_f1

LINE_TASKS = ("xnli", "pawsx", "tatoeba")
TAG_TASKS = ("panx", "udpos")
QA_TASKS = ("xquad", "mlqa", "tydiqa")
TASKS = LINE_TASKS + TAG_TASKS + QA_TASKS


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise SchemaError(f"{path} is not UTF-8 text: {err}") from err


def read_labels(path: Path) -> list[str]:
    """One label per line, stripped (xtreme ``read_label``)."""
    return [line.strip() for line in _text(path).splitlines()]


def read_tags(path: Path) -> list[list[str]]:
    """Sentences of tags: one stripped tag per line, a blank line between sentences (``read_tag``)."""
    sentences, current = [], []
    for line in _text(path).splitlines():
        if line.strip():
            current.append(line.strip())
        elif current:
            sentences.append(current)
            current = []
    return sentences + ([current] if current else [])


def _json(path: Path):
    try:
        return json.loads(_text(path))
    except json.JSONDecodeError as err:
        raise SchemaError(f"{path} is not valid JSON: {err}") from err


def read_qa(prediction: Path, label: Path) -> tuple[dict, dict]:
    """(question id -> predicted text, question id -> gold answer texts). Every prediction is
    kept; the scorer's ``official=True`` ignores ids no gold question has, as the official
    scripts never look them up."""
    data = _json(label)
    articles = data["data"] if isinstance(data, dict) and "data" in data else data
    try:
        gold = {
            qa["id"]: [a["text"] for a in qa["answers"]]
            for article in articles
            for paragraph in article["paragraphs"]
            for qa in paragraph["qas"]
        }
    except (KeyError, TypeError) as err:
        raise SchemaError(
            f"{label} is not a SQuAD-format gold file (data/paragraphs/qas/answers): {err!r}"
        ) from err
    predicted = _json(prediction)
    if not isinstance(predicted, dict):
        raise SchemaError(
            f"{prediction} holds a {type(predicted).__name__}, not {{question id: answer text}}."
        )
    return {q: str(a) for q, a in predicted.items()}, gold


def score_file(task: str, metric: str, prediction: Path, label: Path, language: str) -> dict[str, float]:
    """Score one ``test-<language>`` prediction file against its label file; returns the metric's
    columns (0-100)."""
    if task in QA_TASKS:  # evaluate() is the runner's strict scorer: call the official reading
        predictions, gold = read_qa(prediction, label)
        if metric == "mlqa_em_f1":
            return mlqa_em_f1(predictions, gold, language, official=True)
        return squad_em_f1(predictions, gold, official=True)
    reader = read_tags if task in TAG_TASKS else read_labels
    predictions, references = reader(prediction), reader(label)
    if len(predictions) != len(references):
        raise SchemaError(
            f"{prediction} has {len(predictions)} {'sentences' if task in TAG_TASKS else 'lines'} but "
            f"{label} has {len(references)}; XTREME needs one prediction per test example, in order."
        )
    return evaluate(
        "accuracy" if task == "tatoeba" else metric, predictions=predictions, references=references
    )


def _submission_rows(run: Path, names: dict[str, str], labels: Path) -> list[dict]:
    reg, rows = registry(), []
    for task_dir in sorted(p for p in run.iterdir() if p.is_dir()):
        task = task_dir.name
        if task not in TASKS:
            raise SchemaError(f"{task_dir}: xitt reads the XTREME tasks {', '.join(TASKS)}, not '{task}'.")
        if not (labels / task).is_dir():
            raise SchemaError(
                f"{task_dir} has predictions but {labels / task} has no labels; add them or remove it."
            )
        metric = reg.tasks[task].metric
        suffix = "json" if task in QA_TASKS else "tsv"
        for prediction in sorted(task_dir.glob(f"test-*.{suffix}")):
            language = prediction.name[len("test-") : -len(suffix) - 1]
            label = labels / task / prediction.name
            if not label.is_file():
                raise SchemaError(f"{prediction} has no label file {label}.")
            scores = score_file(task, metric, prediction, label, language)
            primary = METRICS["accuracy" if task == "tatoeba" else metric].primary
            for column, value in scores.items():
                rows.append(
                    {
                        **names,
                        "target": task,
                        "language": language,
                        "metric": column,
                        "primary": column == primary,
                        "score": value,
                        "origin": str(prediction),
                    }
                )
    return rows


def import_xtreme(folder: Path, *, labels: Path, pattern: str, on_duplicate: str = "error") -> pd.DataFrame:
    """XTREME submission folders under ``folder``, scored against ``labels`` -> validated scores
    frame (see the module docstring)."""
    folder, labels = Path(folder), Path(labels)
    if not labels.is_dir():
        raise FileNotFoundError(
            f"no label folder at {labels} (--labels: <task>/test-<lang>.tsv|json, as XTREME's)"
        )
    regex = pattern_regex(pattern, required=("encoder", "intermediate", "seed"))
    runs = sorted({p.parent.parent for p in folder.rglob("test-*.*") if p.suffix in (".tsv", ".json")})
    runs = [r for r in runs if labels.resolve() not in (r.resolve(), *r.resolve().parents)]
    if not runs:
        raise FileNotFoundError(f"no <task>/test-<lang>.tsv|json prediction files under {folder}")
    rows = []
    if folder in runs:
        raise SchemaError(
            f"{folder} is itself one submission (it holds the task folders); import the folder above it, "
            f"laid out as --pattern {pattern!r} says (e.g. <encoder>/<intermediate>/seed<seed>/<task>/...)."
        )
    for run in runs:
        names = run_names(regex, run.relative_to(folder).as_posix(), str(run), pattern)
        rows += _submission_rows(run, {k: names[k] for k in ("encoder", "intermediate", "seed")}, labels)
    frame = resolve_duplicates(fill_from_registry(pd.DataFrame(rows)), on_duplicate, source=str(folder))
    return validate_scores(frame.drop(columns="origin"), source=str(folder))
