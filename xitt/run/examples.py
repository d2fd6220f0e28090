"""Per-example scores from saved predictions (``examples.csv.gz``) and English-dev scores
(``dev_scores.csv``): the two extra files of ``xitt collect`` (columns in :mod:`xitt.schema`).

A run folder with ``predictions/<lang>.jsonl.gz`` (``save_predictions: true``; lines
``{index, id?, prediction, reference}`` from :func:`xitt.train.chain.write_predictions`) becomes one
row per test example with a numerator and a denominator, so that any resample of the examples
scores as 100 * sum(numerator) / sum(denominator), and the full sample gives back the run's
recorded primary score (the normalisers and chunkers are those of :mod:`xitt.train.metrics`):

* ``accuracy`` (classification, pair classification, multiple choice): correct / 1;
* ``squad_em_f1`` / ``mlqa_em_f1``: the question's (EM + F1) / 2 on [0, 1] / 1, with the same
  normalisation as the run's score (MLQA's for the languages it defines, else English's);
* ``f1_seqeval`` (XTREME's seqeval 0.0.12 chunks): 2 x true-positive chunks / (predicted + gold
  chunks) of the sentence; corpus F1 = 2 TP / (P + G) is a ratio of these sums;
* ``accuracy`` on a tagging task (CCG): correct tags / tags of the sentence.

* retrieval targets (lines from :func:`xitt.train.retrieval.evaluate_retrieval`): ``tatoeba_accuracy``
  hit / 1 (prediction = the retrieved row, reference = the gold one); ``map_at_20`` (per-language
  or shared pool) the query's AP@20 / 1 (prediction = its top-20 ids, reference = its relevant
  ids; the formula of :func:`xitt.train.metrics.mean_average_precision_at_k`); ``bucc_f1`` per
  source sentence 2 x true-positive pairs / (mined + gold pairs) at the threshold tuned on the
  sample split, so that 2 TP / (P + G) is the corpus F1. The pool (the candidates, BUCC's mining
  and its threshold) stays that of the full test set: a resample reweights the queries, it does
  not rebuild the pool.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from xitt.run.store import read_result, run_dir
from xitt.schema import (
    DEV_SCORES_FILE,
    EXAMPLE_COLUMNS,
    EXAMPLES_FILE,
    SCORE_COLUMNS,
    atomic_write_bytes,
    validate_examples,
    validate_scores,
    write_scores,
)
from xitt.tasks import Registry, Task
from xitt.train.metrics import (
    MLQA_LANGUAGES,
    mean_average_precision_at_k,
    mlqa_em_f1,
    squad_em_f1,
    xtreme_chunks,
)


def _qa(row: dict, metric: str, language: str) -> tuple[float, float]:
    pred, refs = {0: row["prediction"]}, {0: row["reference"]}
    if metric == "mlqa_em_f1":
        out = mlqa_em_f1(pred, refs, language if language in MLQA_LANGUAGES else "en")
    else:
        out = squad_em_f1(pred, refs)
    return out["em_f1"] / 100.0, 1.0


def _tag_f1(row: dict) -> tuple[float, float]:
    gold, pred = xtreme_chunks([row["reference"]]), xtreme_chunks([row["prediction"]])
    return 2.0 * len(gold & pred), float(len(gold) + len(pred))


def example_values(task: Task, rows: Iterable[dict], language: str) -> list[tuple[int, float, float]]:
    """(example index, numerator, denominator) per prediction line of ``task`` in ``language``."""
    out = []
    for row in rows:
        if task.metric in ("squad_em_f1", "mlqa_em_f1"):
            num, den = _qa(row, task.metric, language)
        elif task.metric == "f1_seqeval":
            num, den = _tag_f1(row)
        elif task.metric == "accuracy" and task.kind == "tagging":
            num = float(sum(p == r for p, r in zip(row["prediction"], row["reference"])))
            den = float(len(row["reference"]))
        elif task.metric in ("accuracy", "tatoeba_accuracy"):
            num, den = float(row["prediction"] == row["reference"]), 1.0
        elif task.metric == "map_at_20":
            num, den = mean_average_precision_at_k([row["prediction"]], [row["reference"]], k=20) / 100.0, 1.0
        elif task.metric == "bucc_f1":
            predicted, gold = row["prediction"], row["reference"]
            num, den = 2.0 * len(set(predicted) & set(gold)), float(len(predicted) + len(gold))
        else:
            raise ValueError(f"task {task.name!r}: metric {task.metric!r} has no per-example form.")
        out.append((int(row["index"]), num, den))
    return out


def run_examples(exp_dir: str | Path, run_id: str, task: Task, metric: str) -> pd.DataFrame:
    """The example rows (EXAMPLE_COLUMNS) of one run's saved predictions; empty when it saved none."""
    rows = []
    for path in sorted((run_dir(exp_dir, run_id) / "predictions").glob("*.jsonl.gz")):
        language = path.name[: -len(".jsonl.gz")]
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            lines = [json.loads(line) for line in fh if line.strip()]
        rows += [(run_id, language, metric, *v) for v in example_values(task, lines, language)]
    return pd.DataFrame(rows, columns=list(EXAMPLE_COLUMNS))


def collect_extras(
    exp_dir: str | Path, run_ids: Iterable[str], reg: Registry
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(examples, dev_scores) of the finished runs among ``run_ids``.

    ``examples``: EXAMPLE_COLUMNS for every run that saved predictions of a target with a
    per-example form; ``dev_scores``: the scores.csv columns, one row per target run with an
    English-dev ``selection`` score (language = the task's training language).
    """
    examples, dev = [], []
    for rid in run_ids:
        result = read_result(run_dir(exp_dir, rid))
        if result is None or result.status != "done":
            continue
        spec, task = result.spec, reg.get(result.spec["target"])
        examples.append(run_examples(exp_dir, rid, task, result.primary_metric))
        if "selection" in result.dev_scores:
            dev.append(
                {
                    **{k: spec[k] for k in ("encoder", "intermediate", "intermediate_family", "target")},
                    **{k: spec[k] for k in ("target_family", "seed")},
                    "run_id": rid,
                    "language": task.train_language,
                    "metric": result.primary_metric,
                    "score": float(result.dev_scores["selection"]),
                    "primary": True,
                    "task_version": spec.get("target_version", result.task_versions.get(spec["target"], "")),
                }
            )
    frame = (
        pd.concat(examples, ignore_index=True) if examples else pd.DataFrame(columns=list(EXAMPLE_COLUMNS))
    )
    dev_frame = pd.DataFrame(dev, columns=list(SCORE_COLUMNS))
    if len(dev_frame):
        dev_frame = validate_scores(dev_frame, source=f"{exp_dir} dev scores")
    return validate_examples(frame, source=f"{exp_dir} predictions"), dev_frame


def write_extras(exp_dir: str | Path, examples: pd.DataFrame, dev_scores: pd.DataFrame) -> list[Path]:
    """Write ``examples.csv.gz`` and ``dev_scores.csv`` into ``exp_dir`` (atomically, sorted, gzip
    without a time stamp so that the bytes are reproducible); an empty frame removes its old file,
    so that no stale file outlives the runs it came from. Returns the paths written."""
    exp_dir, written = Path(exp_dir), []
    ex_path, dev_path = exp_dir / EXAMPLES_FILE, exp_dir / DEV_SCORES_FILE
    if len(examples):
        text = examples.sort_values(["run_id", "language", "example"]).to_csv(
            index=False, lineterminator="\n"
        )
        atomic_write_bytes(ex_path, gzip.compress(text.encode("utf-8"), mtime=0))
        written.append(ex_path)
    else:
        ex_path.unlink(missing_ok=True)
    if len(dev_scores):
        written.append(write_scores(dev_scores, dev_path))
    else:
        dev_path.unlink(missing_ok=True)
    return written
