"""A target training shared by several targets: ``train_target`` once, ``evaluate_target`` per run.

    stage checkpoint (or the encoder) --train_target--> checkpoint (encoder + head.pt)
        --evaluate_target (one per target run: XQuAD, MLQA)--> zero-shot scores

``train_target`` is ``run_target``'s training (``fit_target``) on the training task's English data
(``TrainSpec.task``, e.g. squad_v1) followed by a save; ``evaluate_target`` loads the encoder and the
head and scores the run's target languages exactly as ``run_target`` does in memory (the weights
are saved in fp32 and read back unchanged, so the scores are the same bit for bit).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from xitt.data import cache as data_cache
from xitt.data import loaders as xdata
from xitt.grid.spec import RunSpec, TrainSpec
from xitt.run.store import RunResult, StageRecord
from xitt.tasks import Registry, registry
from xitt.train.chain import (
    HEAD_FILE,
    _device,
    _threads,
    evaluate_languages,
    fit_target,
    load_encoder,
    save_encoder,
    task_labels,
)
from xitt.train.heads import Head, num_outputs
from xitt.train.metrics import METRICS
from xitt.train.predict import TaskData


def train_target(
    training: TrainSpec,
    encoder_path: str,
    checkpoint: str | Path,
    *,
    progress: bool = True,
    reg: Registry | None = None,
    resume: Path | None = None,
) -> StageRecord:
    """Train the shared target head of ``training`` from ``encoder_path`` (its stage's checkpoint or
    the encoder); save encoder + head to ``checkpoint``. ``resume``: the folder of its mid-training
    resume state (xitt/run/preempt.py).

    Returns a done StageRecord (``stage_id`` = the training id) with dev_scores (the training task's
    English dev), steps, best_step, wall_time, data_fingerprints and checkpoint.
    """
    reg = reg or registry()
    data_dir = Path(training.data_dir) if training.data_dir else None
    task = reg.get(training.task)
    desc = f"{training.intermediate}->{training.task} s{training.seed}"
    fitted = fit_target(
        task,
        training.train,
        training.seed,
        encoder_path,
        training.encoder_path,
        data_dir,
        desc=desc,
        progress=progress,
        reg=reg,
        resume=resume,
        resume_id=training.train_id,
    )
    save_encoder(fitted.encoder, fitted.tokenizer, Path(checkpoint), head=fitted.head)
    return StageRecord(
        stage_id=training.train_id,
        spec=training.to_dict(),
        status="done",
        dev_scores=fitted.dev_scores,
        steps=fitted.steps,
        best_step=fitted.best_step,
        wall_time=fitted.wall_time,
        data_fingerprints=fitted.prints,
        data=data_cache.entries(data_dir, fitted.prints),
        checkpoint=str(checkpoint),
    )


def evaluate_target(
    run: RunSpec, checkpoint: str | Path, *, out_dir: Path | None = None, reg: Registry | None = None
) -> RunResult:
    """Zero-shot evaluation of ``run``'s target from its shared training's ``checkpoint``.

    Returns a done RunResult with scores, primary_metric, wall_time {eval} and the test splits'
    data_fingerprints; the executor adds the training's dev scores, steps and times.
    """
    reg = reg or registry()
    t0 = time.time()
    data_dir = Path(run.data_dir) if run.data_dir else None
    task, trained = reg.get(run.target), reg.get(run.training.task)
    cfg = run.target_train
    _threads(cfg)
    device = _device()
    encoder, tokenizer = load_encoder(str(checkpoint))
    labels = task_labels(trained, data_dir)
    head = Head(task.kind, encoder.config.hidden_size, num_outputs(task.kind, labels))
    head.load_state_dict(torch.load(Path(checkpoint) / HEAD_FILE, map_location="cpu"))
    encoder.to(device)
    head.to(device)
    # the training's English dev examples: they tell whether the head may answer "no answer"
    dev_examples, _ = xdata.load_split(trained, "dev", trained.train_language, data_dir)
    if cfg.max_eval_examples > 0:
        dev_examples = dev_examples[: cfg.max_eval_examples]
    td = TaskData(task, cfg, labels, [], dev_examples, [])
    prints: dict[str, str] = {}
    scores = evaluate_languages(run, encoder, tokenizer, head, td, prints, out_dir)
    return RunResult(
        run.run_id,
        run.to_dict(),
        "done",
        scores=scores,
        primary_metric=METRICS[task.metric].primary,
        wall_time={"eval": time.time() - t0},
        data_fingerprints=prints,
        data=data_cache.entries(data_dir, prints),
    )
