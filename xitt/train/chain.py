"""The chain, one readable function per stage: ``train_stage`` (intermediate) and ``run_target``.

    encoder --train_stage--> checkpoint (encoder only) --run_target--> English target training
            --> zero-shot evaluation in every target language --> scores

A target training shared by several targets (XQuAD and MLQA on SQuAD) is split in two:
``xitt.train.shared`` trains it once (``fit_target`` + save) and evaluates it per run
(``evaluate_languages``). Both train with ``xitt.train.fit.fit``; retrieval targets skip training
and go to ``xitt.train.retrieval``, or with ``retrieval_training: dual`` to ``xitt.train.dual``.
This module also loads encoders and featurised splits (cached by fingerprint).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import os
import random
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xitt.data import cache as data_cache
from xitt.data import loaders as xdata
from xitt.grid.spec import RunSpec, StageSpec, TrainConfig
from xitt.run.store import RunResult, StageRecord
from xitt.tasks import Registry, Task, registry
from xitt.train import conditions
from xitt.train.checkpoint import write_manifest
from xitt.train.dual import run_dual
from xitt.train.fit import fit
from xitt.train.heads import Head, featurize, num_outputs
from xitt.train.metrics import METRICS
from xitt.train.predict import TaskData, evaluate_split, write_predictions
from xitt.train.resume import Resume
from xitt.train.retrieval import evaluate_retrieval

log = logging.getLogger("xitt")


# ------------------------------------------------------------------------------ loading, caching


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def load_encoder(path: str):
    """(encoder, tokenizer) from a hub id or a local folder; only the encoder, never a task head."""
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    looks_local = path.startswith((".", "/", "~")) or os.sep in path.strip("/").split("/", 1)[-1]
    if looks_local and not Path(path).expanduser().is_dir():
        # transformers would say "Repo id must be in the form ...": say what is really wrong.
        raise FileNotFoundError(
            f"encoder folder {path} does not exist; build it (e.g. `xitt synth`) or fix "
            "the encoder path in the grid."
        )
    return AutoModel.from_pretrained(path), AutoTokenizer.from_pretrained(path)


@functools.lru_cache(maxsize=16)
def _folder_digest(folder: str, stamp: tuple) -> str:
    digest = hashlib.sha1()
    for name, _, _ in stamp:
        with open(Path(folder) / name, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:12]


def encoder_fingerprint(encoder, path: str) -> str:
    """Which weights a chain started from, for provenance: a hash of a local folder's files (memoised
    on their names, sizes and mtimes), or ``hub-id@commit`` as transformers resolved it."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        return f"{path}@{getattr(encoder.config, '_commit_hash', None) or 'unresolved'}"
    stamp = tuple(
        (f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in sorted(folder.iterdir()) if f.is_file()
    )
    return _folder_digest(str(folder.resolve()), stamp)


_FEATURES: dict[tuple, tuple[list[dict], list[dict], str]] = {}


def tokenizer_fingerprint(tokenizer) -> str:
    """A hash of the full tokenizer definition, memoised on the object (never by id(): ids are reused)."""
    if not getattr(tokenizer, "_xitt_fingerprint", None):
        text = (
            tokenizer.backend_tokenizer.to_str()
            if getattr(tokenizer, "is_fast", False)
            else str(tokenizer.get_vocab())
        )
        tokenizer._xitt_fingerprint = hashlib.sha1(text.encode()).hexdigest()[:12]
    return tokenizer._xitt_fingerprint


def task_labels(task: Task, data_dir: Path | None) -> list[str] | None:
    """Label names: the task's ``labels``, or for tagging without them the sorted English training tags."""
    if task.labels:
        return list(task.labels)
    if task.kind == "tagging":
        train, _ = xdata.load_split(task, "train", task.train_language, data_dir)
        return sorted({t for ex in train for t in ex["tags"]})
    return None


def features_for(
    task: Task,
    split: str,
    lang: str,
    tokenizer,
    cfg: TrainConfig,
    data_dir: Path | None,
    labels: Sequence[str] | None,
) -> tuple[list[dict], list[dict], str]:
    """(examples, features, data fingerprint), tokenised once per process and shared between runs."""
    key = (
        tokenizer_fingerprint(tokenizer),
        task.name,
        task.version,
        split,
        lang,
        cfg.max_length,
        cfg.doc_stride,
        tuple(labels or ()),
        str(data_dir),
        cfg.max_train_examples if split == "train" else cfg.max_eval_examples,
    )
    if key not in _FEATURES:
        examples, fp = xdata.load_split(task, split, lang, data_dir)
        if split != "train" and cfg.max_eval_examples > 0:
            examples = examples[: cfg.max_eval_examples]
        if split == "train" and 0 < cfg.max_train_examples < len(examples):
            # A fixed subsample (seed 0): the same training set for every seed of the grid.
            keep = np.sort(
                np.random.default_rng(0).choice(len(examples), cfg.max_train_examples, replace=False)
            )
            examples = [examples[i] for i in keep]
        feats = featurize(task.kind, with_question_template(task, examples), tokenizer, cfg, labels)
        _FEATURES[key] = (examples, feats, fp)
    return _FEATURES[key]


def with_question_template(task: Task, examples: list[dict]) -> list[dict]:
    """Multiple choice: the question written as the task's ``fields.question_template`` says
    (XCOPA: "What was the {question}?", so that the first segment reads "<premise> What was the
    cause?" as in XTREME's run_xcopa.py); the examples unchanged without a template."""
    template = task.fields.get("question_template") if task.kind == "multiple_choice" else None
    if not template:
        return examples
    return [{**e, "question": template.format(question=e["question"])} for e in examples]


# --------------------------------------------------------------------------------- the stages


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _threads(cfg: TrainConfig) -> None:
    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)


def _task_data(
    task: Task, cfg: TrainConfig, tokenizer, data_dir: Path | None
) -> tuple[TaskData, dict[str, str]]:
    labels = task_labels(task, data_dir)
    lang = task.train_language
    _, train, fp_train = features_for(task, "train", lang, tokenizer, cfg, data_dir, labels)
    dev_examples, dev, fp_dev = features_for(task, "dev", lang, tokenizer, cfg, data_dir, labels)
    return (
        TaskData(task, cfg, labels, train, dev_examples, dev),
        {f"{task.name}/train-{lang}": fp_train, f"{task.name}/dev-{lang}": fp_dev},
    )


def train_stage(
    stage: StageSpec,
    checkpoint: str | Path,
    *,
    progress: bool = True,
    reg: Registry | None = None,
    resume: Path | None = None,
) -> StageRecord:
    """Intermediate training of one (encoder, intermediate, seed) on the data in ``stage.data_dir``;
    saves the ENCODER ONLY to ``checkpoint``. ``resume``: the folder of its mid-training resume state.

    Returns a done StageRecord with dev_scores, steps, best_step, wall_time, data_fingerprints (the
    base encoder's under "encoder") and checkpoint; the executor adds provenance and times.
    """
    reg = reg or registry()
    data_dir = Path(stage.data_dir) if stage.data_dir else None
    t0 = time.time()
    first = stage.train[stage.intermediate_tasks[0]]
    _threads(first)
    device = _device()
    encoder, tokenizer = load_encoder(stage.encoder_path)
    tasks, prints = {}, {"encoder": encoder_fingerprint(encoder, stage.encoder_path)}
    for name in stage.intermediate_tasks:
        tasks[name], fp = _task_data(reg.get(name), stage.train[name], tokenizer, data_dir)
        prints.update(fp)
        if stage.translated:  # translated training data: union with English or only
            tasks[name], fp = conditions.with_translations(tasks[name], stage.translated, tokenizer, data_dir)
            prints.update(fp)
    set_seed(stage.seed)  # head init, dropout and data order
    hidden = encoder.config.hidden_size
    heads = {n: Head(td.task.kind, hidden, num_outputs(td.task.kind, td.labels)) for n, td in tasks.items()}
    if stage.mlm:  # the MLM objective on unlabelled text: one more task of fit
        mlm_data, heads[conditions.MLM], fp = conditions.mlm_objective(
            stage.mlm, tasks, encoder, tokenizer, stage.encoder_path, data_dir, stage.seed
        )
        tasks[conditions.MLM] = mlm_data
        prints.update(fp)
    encoder.to(device)
    for head in heads.values():
        head.to(device)
    out = fit(
        encoder,
        heads,
        tasks,
        seed=stage.seed,
        pad_id=tokenizer.pad_token_id,
        device=device,
        desc=f"{stage.intermediate} s{stage.seed}",
        progress=progress,
        resume=Resume(Path(resume), {"id": stage.stage_id, "data": prints}, "stage") if resume else None,
    )
    save_encoder(encoder, tokenizer, Path(checkpoint))
    return StageRecord(
        stage_id=stage.stage_id,
        spec=dataclasses.asdict(stage),
        status="done",
        dev_scores=out["dev"],
        steps=out["steps"],
        best_step=out["best_step"],
        wall_time=time.time() - t0,
        data_fingerprints=prints,
        data=data_cache.entries(data_dir, prints),
        checkpoint=str(checkpoint),
    )


HEAD_FILE = "head.pt"


def save_encoder(encoder, tokenizer, folder: Path, head: Head | None = None) -> None:
    """Write the encoder (and a shared target training's ``head`` as ``head.pt``) into ``folder`` via
    a temporary sibling, so a crash leaves no half checkpoint."""
    for stale in folder.parent.glob(folder.name + ".tmp*"):  # left by a worker killed while saving
        shutil.rmtree(stale, ignore_errors=True)
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    encoder.cpu().save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if head is not None:
        torch.save(head.cpu().state_dict(), tmp / HEAD_FILE)
    for path in tmp.iterdir():
        path.chmod(0o644)  # safetensors is written 0600; shared cluster folders need it readable
    write_manifest(tmp)
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)


@dataclasses.dataclass
class FittedTarget:
    """A target head trained on English data, still in memory (``fit_target``)."""

    encoder: Any
    tokenizer: Any
    head: Head
    td: TaskData  # the training task's data (train, dev, labels)
    prints: dict[str, str]  # data fingerprints (and the base encoder's under "encoder")
    dev_scores: dict[str, float]
    steps: int
    best_step: int | None
    wall_time: float


def fit_target(
    task: Task,
    cfg: TrainConfig,
    seed: int,
    encoder_path: str,
    base_path: str,
    data_dir: Path | None,
    *,
    desc: str,
    progress: bool,
    reg: Registry,
    resume: Path | None = None,
    resume_id: str = "",
) -> FittedTarget:
    """Fresh head, English training of ``task`` with ``cfg`` starting from ``encoder_path``.

    With ``train_first`` (a task of the same kind) the encoder and head are first trained on that
    task's English data with the same settings, then on ``task``'s (XTREME-R's SIQA -> COPA). The base
    encoder's fingerprint is recorded when the chain starts from it (``base_path``; a stage
    checkpoint's is in the stage's fingerprints). ``resume``: the folder of the mid-training resume
    state of ``resume_id`` (a state of the target's training skips ``train_first``: the state holds
    its weights and dev scores).
    """
    _threads(cfg)
    device = _device()
    t0 = time.time()
    encoder, tokenizer = load_encoder(encoder_path)
    base = {"encoder": encoder_fingerprint(encoder, encoder_path)} if encoder_path == base_path else {}
    td, prints = _task_data(task, cfg, tokenizer, data_dir)
    prints.update(base)
    set_seed(seed)  # head init, dropout and data order
    head = Head(task.kind, encoder.config.hidden_size, num_outputs(task.kind, td.labels))
    encoder.to(device)
    head.to(device)
    first_dev = {}
    first, first_prints = (
        _task_data(reg.get(cfg.train_first), cfg, tokenizer, data_dir) if cfg.train_first else (None, {})
    )
    prints.update(first_prints)
    res = Resume(Path(resume), {"id": resume_id, "data": prints}, "target") if resume else None
    if first is not None and (res is None or res.saved_phase() != "target"):  # XCOPA: SIQA, then COPA
        out = fit(
            encoder,
            {first.task.name: head},
            {first.task.name: first},
            seed=seed,
            pad_id=tokenizer.pad_token_id,
            device=device,
            desc=desc.replace("->", f"->{first.task.name}->", 1) if "->" in desc else desc,
            progress=progress,
            resume=dataclasses.replace(res, phase="first") if res else None,
        )
        first_dev = {f"{first.task.name}:{k}": v for k, v in out["dev"].items()}
    if res is not None:
        res.carry = {"first_dev": first_dev}  # a resumed state brings back its own
    fitted = fit(
        encoder,
        {task.name: head},
        {task.name: td},
        seed=seed,
        pad_id=tokenizer.pad_token_id,
        device=device,
        desc=desc,
        progress=progress,
        resume=res,
    )
    first_dev = res.carry["first_dev"] if res is not None else first_dev
    return FittedTarget(
        encoder,
        tokenizer,
        head,
        td,
        prints,
        {**first_dev, **fitted["dev"]},
        fitted["steps"],
        fitted["best_step"],
        time.time() - t0,
    )


def evaluate_languages(
    run: RunSpec, encoder, tokenizer, head: Head, td: TaskData, prints: dict, out_dir: Path | None
) -> dict[str, dict[str, float]]:
    """Zero-shot scores {language: {metric: value}} of ``run``'s target test sets (no target-language
    tuning); adds each test split's fingerprint to ``prints``; writes predictions when asked."""
    data_dir = Path(run.data_dir) if run.data_dir else None
    task, device = td.task, next(encoder.parameters()).device
    scores = {}
    for lang in run.languages:
        examples, feats, fp = features_for(task, "test", lang, tokenizer, td.cfg, data_dir, td.labels)
        prints[f"{task.name}/test-{lang}"] = fp
        scores[lang], preds, refs = evaluate_split(
            encoder, head, td, examples, feats, lang, tokenizer.pad_token_id, device
        )
        if run.save_predictions and out_dir is not None:
            write_predictions(Path(out_dir) / "predictions" / f"{lang}.jsonl.gz", task, examples, preds, refs)
    return scores


def run_target(
    run: RunSpec,
    encoder_path: str,
    *,
    out_dir: Path | None = None,
    progress: bool = True,
    reg: Registry | None = None,
    resume: Path | None = None,
) -> RunResult:
    """Fresh head, English target training on ``run.data_dir``'s data (``fit_target``), zero-shot
    evaluation in every language of ``run``. (A run with a shared training: ``xitt.train.shared``.)

    Returns a done RunResult with scores {lang: {metric: value}}, primary_metric, dev_scores,
    wall_time, data_fingerprints and extra {steps, best_step} (none for retrieval); the executor
    adds the stage, provenance and times. Retrieval targets skip training and evaluate the encoder
    itself, or fine-tune it as a dual encoder (``run_retrieval``). ``resume``: the folder of its
    mid-training resume state.
    """
    reg = reg or registry()
    data_dir = Path(run.data_dir) if run.data_dir else None
    task, cfg = reg.get(run.target), run.target_train
    if not task.trains_on_target:
        return run_retrieval(run, encoder_path, data_dir=data_dir, progress=progress, reg=reg, resume=resume)
    fitted = fit_target(
        task,
        cfg,
        run.seed,
        encoder_path,
        run.encoder_path,
        data_dir,
        desc=f"{run.intermediate}->{run.target} s{run.seed}",
        progress=progress,
        reg=reg,
        resume=resume,
        resume_id=run.run_id,
    )
    t1 = time.time()
    prints = fitted.prints
    scores = evaluate_languages(
        run, fitted.encoder, fitted.tokenizer, fitted.head, fitted.td, prints, out_dir
    )
    return RunResult(
        run.run_id,
        run.to_dict(),
        "done",
        scores=scores,
        primary_metric=METRICS[task.metric].primary,
        dev_scores=fitted.dev_scores,
        wall_time={"target": fitted.wall_time, "eval": time.time() - t1},
        data_fingerprints=prints,
        data=data_cache.entries(data_dir, prints),
        extra={"steps": fitted.steps, "best_step": fitted.best_step},
    )


def run_retrieval(
    run: RunSpec,
    encoder_path: str,
    *,
    data_dir: Path | None,
    progress: bool,
    reg: Registry,
    resume: Path | None = None,
) -> RunResult:
    """A retrieval target: the encoder itself ranks (``evaluate_retrieval``), or, with
    ``retrieval_training: dual``, XTREME-R's dual-encoder fine-tuning first (``run_dual``, resumable
    from ``resume`` like any other training)."""
    task, cfg = reg.get(run.target), run.target_train
    _threads(cfg)
    device = _device()
    t0 = time.time()
    encoder, tokenizer = load_encoder(encoder_path)
    # A stage checkpoint's base encoder is in the stage's fingerprints; a chain without one records its own.
    base = {"encoder": encoder_fingerprint(encoder, encoder_path)} if encoder_path == run.encoder_path else {}
    if cfg.retrieval_training == "dual":  # XTREME-R's Mewsli-X, LAReQA
        set_seed(run.seed)
        out = run_dual(
            encoder,
            tokenizer,
            task,
            cfg,
            languages=run.languages,
            seed=run.seed,
            data_dir=data_dir,
            device=device,
            reg=reg,
            desc=f"{run.intermediate}->{run.target} s{run.seed}",
            progress=progress,
            resume=Resume(Path(resume), {"id": run.run_id, "data": base}, "target") if resume else None,
        )
        return RunResult(
            run.run_id,
            run.to_dict(),
            "done",
            scores=out["scores"],
            primary_metric=METRICS[task.metric].primary,
            wall_time=out["wall_time"],
            data_fingerprints={**base, **out["prints"]},
            data=data_cache.entries(data_dir, out["prints"]),
            extra={"steps": out["steps"], "best_step": out["steps"]},
        )
    scores, prints = evaluate_retrieval(
        encoder.to(device), tokenizer, task, run.languages, cfg, data_dir, device
    )
    return RunResult(
        run.run_id,
        run.to_dict(),
        "done",
        scores=scores,
        primary_metric=METRICS[task.metric].primary,
        wall_time={"target": 0.0, "eval": time.time() - t0},
        data_fingerprints={**base, **prints},
        data=data_cache.entries(data_dir, prints),
    )
