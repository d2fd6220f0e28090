"""Prediction and scoring of one split: ``predict`` (logits per feature), ``score`` (the task's
metric columns), ``evaluate_split`` (both, plus decoding) and ``dev_scores`` (the English-dev
selection score of ``fit``), ``write_predictions`` (per-example outputs of a test split).
``TaskData`` is one task's featurised English training and dev data.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xitt.grid.spec import TrainConfig
from xitt.tasks import Task
from xitt.train.heads import Head, collate, decode, feature_length
from xitt.train.metrics import METRICS, MLQA_LANGUAGES, evaluate


@dataclass
class TaskData:
    task: Task
    cfg: TrainConfig
    labels: list[str] | None
    train: list[dict]
    dev_examples: list[dict]
    dev: list[dict]


def autocast(device: torch.device, precision: str):
    if device.type != "cuda" or precision == "fp32":
        return torch.autocast("cpu", enabled=False)
    if precision == "fp16":
        return torch.autocast("cuda", dtype=torch.float16)
    return torch.autocast(
        "cuda", dtype=torch.bfloat16, enabled=precision == "bf16" or torch.cuda.is_bf16_supported()
    )


@torch.inference_mode()
def predict(
    encoder, head: Head, features: Sequence[dict], cfg: TrainConfig, pad_id: int, device
) -> list[np.ndarray]:
    """Unpadded logits per feature, in the order of ``features`` (batches sorted by length for speed)."""
    encoder.eval()
    head.eval()
    order = sorted(range(len(features)), key=lambda i: feature_length(features[i]))
    out: list[Any] = [None] * len(features)
    for start in range(0, len(order), cfg.eval_batch_size):
        idx = order[start : start + cfg.eval_batch_size]
        batch = {k: v.to(device) for k, v in collate([features[i] for i in idx], pad_id).items()}
        with autocast(device, cfg.precision):
            _, logits = head(encoder, batch)
        logits = logits.float().cpu().numpy()
        for row, i in zip(logits, idx):
            out[i] = row[: feature_length(features[i])] if head.kind in ("tagging", "span_qa") else row
    return out


def score(task: Task, predictions, references, language: str) -> dict[str, float]:
    """The task's metric columns (0-100); token accuracy for tagging tasks scored by accuracy (CCG)."""
    if task.kind == "tagging" and task.metric == "accuracy":
        predictions = [t for s in predictions for t in s]
        references = [t for s in references for t in s]
    if task.metric == "mlqa_em_f1":
        lang = language if language in MLQA_LANGUAGES else "en"
        return evaluate("mlqa_em_f1", predictions=predictions, references=references, language=lang)
    return evaluate(task.metric, predictions=predictions, references=references)


def evaluate_split(encoder, head, td: TaskData, examples, features, language, pad_id, device):
    """(scores, predictions, references) of one split."""
    logits = predict(encoder, head, features, td.cfg, pad_id, device)
    allow_null = td.task.kind == "span_qa" and any(not ex["answers"] for ex in td.dev_examples)
    preds, refs = decode(td.task.kind, examples, features, logits, td.cfg, td.labels, allow_null=allow_null)
    return score(td.task, preds, refs, language), preds, refs


def dev_scores(
    encoder, heads: dict[str, Head], tasks: dict[str, TaskData], pad_id: int, device
) -> dict[str, float]:
    """English-dev scores as {"<task>.<metric>": value} plus "selection" = mean primary metric over tasks."""
    out = {
        name: evaluate_split(
            encoder, heads[name], td, td.dev_examples, td.dev, td.task.train_language, pad_id, device
        )[0]
        for name, td in tasks.items()
    }
    flat = {f"{name}.{col}": v for name, cols in out.items() for col, v in cols.items()}
    flat["selection"] = float(np.mean([out[n][METRICS[td.task.metric].primary] for n, td in tasks.items()]))
    return flat


def write_predictions(path: Path, task: Task, examples, preds, refs) -> None:
    """One JSON line per example: {index, id?, prediction, reference} (enables example-level bootstrap)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        if isinstance(preds, dict):
            for i, ex in enumerate(examples):
                fh.write(
                    json.dumps(
                        {
                            "index": i,
                            "id": ex["id"],
                            "prediction": preds[ex["id"]],
                            "reference": refs[ex["id"]],
                        }
                    )
                    + "\n"
                )
        else:
            for i, (p, r) in enumerate(zip(preds, refs)):
                fh.write(json.dumps({"index": i, "prediction": p, "reference": r}) + "\n")
