"""The chain, one readable function per stage: ``train_stage`` (intermediate) and ``run_target``.

    encoder --train_stage--> checkpoint (encoder only) --run_target--> English target training
            --> zero-shot evaluation in every target language --> scores

Both share ``fit``, a plain PyTorch loop: AdamW, linear warmup + linear decay, gradient
accumulation, max grad norm, epochs or max_steps, English-dev evaluation to keep the best
checkpoint (``select_on``), bf16/fp16 autocast on CUDA only, dynamic padding and length-grouped
batches. One seed drives data order (a numpy Generator), head init and dropout (torch's RNG,
seeded right before the head is built): with a fixed thread count the same seed gives
bit-identical scores.

Multi-task intermediates: one fresh head per task on the shared encoder; every epoch is all
tasks' batches shuffled together, so tasks are sampled in proportion to their size. The
optimiser settings and epochs of a multi-task stage are those of its first task; each task keeps
its own batch size and max length.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import json
import logging
import math
import os
import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xitt.data import cache as data_cache
from xitt.data import loaders as xdata
from xitt.grid.spec import RunSpec, StageSpec, TrainConfig
from xitt.run.progress import StageBar
from xitt.run.store import RunResult, StageRecord
from xitt.tasks import Registry, Task, registry
from xitt.train.checkpoint import write_manifest
from xitt.train.heads import Head, collate, decode, feature_length, featurize, num_outputs
from xitt.train.metrics import METRICS, MLQA_LANGUAGES, evaluate

log = logging.getLogger("xitt")


# ------------------------------------------------------------------------------ loading, caching

# With fp16 the loss scaler skips overflowing steps by design; this many in a row is divergence.
DIVERGED_FP16_STEPS = 50


class Diverged(RuntimeError):
    """The training loss became non-finite: the run fails (it is never recorded as done)."""


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


# ---------------------------------------------------------------------------------- the loop


@dataclass
class TaskData:
    task: Task
    cfg: TrainConfig
    labels: list[str] | None
    train: list[dict]
    dev_examples: list[dict]
    dev: list[dict]


def epoch_batches(
    features: Sequence[dict], batch_size: int, rng: np.random.Generator, group_by_length: bool
) -> list[list[int]]:
    """Shuffled batches of feature indices; length-grouped (sorted inside mega-batches of 50 batches)."""
    order = rng.permutation(len(features))
    if group_by_length:
        mega = batch_size * 50
        order = np.concatenate(
            [
                sorted(order[i : i + mega], key=lambda j: -feature_length(features[j]))
                for i in range(0, len(order), mega)
            ]
        ).astype(int)
    batches = [order[i : i + batch_size].tolist() for i in range(0, len(order), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def autocast(device: torch.device, precision: str):
    if device.type != "cuda" or precision == "fp32":
        return torch.autocast("cpu", enabled=False)
    if precision == "fp16":
        return torch.autocast("cuda", dtype=torch.float16)
    return torch.autocast(
        "cuda", dtype=torch.bfloat16, enabled=precision == "bf16" or torch.cuda.is_bf16_supported()
    )


@torch.no_grad()
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


def make_optimizer(modules: Sequence[torch.nn.Module], cfg: TrainConfig, total: int):
    """AdamW (no weight decay on biases and LayerNorm) with linear warmup (``warmup_steps``, else
    ``warmup_ratio`` of the steps) and linear decay to 0."""

    def no_decay(name: str) -> bool:
        return name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name

    named = [(n, p) for m in modules for n, p in m.named_parameters()]
    groups = [
        {"params": [p for n, p in named if not no_decay(n)], "weight_decay": cfg.weight_decay},
        {"params": [p for n, p in named if no_decay(n)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr)
    warmup = cfg.warmup_steps if cfg.warmup_steps > 0 else int(cfg.warmup_ratio * total)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: s / max(1, warmup) if s < warmup else max(0.0, (total - s) / max(1, total - warmup)),
    )
    return optimizer, schedule


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


def fit(
    encoder,
    heads: dict[str, Head],
    tasks: dict[str, TaskData],
    *,
    seed: int,
    pad_id: int,
    device,
    desc: str,
    progress: bool = True,
) -> dict[str, Any]:
    """Train encoder + heads on the tasks' English training sets; returns dev scores and steps.

    With ``select_on: dev`` the weights of the best English-dev evaluation (mean primary metric
    over the tasks) are restored at the end; with ``patience`` > 0 training stops after that many
    evaluations in a row without a better one (jiant's --no_improvements_for_n_evals).
    """
    cfg = next(iter(tasks.values())).cfg  # optimiser settings: the first task's
    rng = np.random.default_rng(seed)
    modules = [encoder, *heads.values()]
    params = [p for m in modules for p in m.parameters()]
    per_epoch = sum(math.ceil(len(td.train) / td.cfg.batch_size) for td in tasks.values())
    total = cfg.max_steps if cfg.max_steps > 0 else max(1, math.ceil(cfg.epochs * per_epoch / cfg.grad_accum))
    optimizer, schedule = make_optimizer(modules, cfg, total)
    scaler = torch.amp.GradScaler("cuda") if device.type == "cuda" and cfg.precision == "fp16" else None

    def dev_eval() -> dict[str, float]:
        flat = dev_scores(encoder, heads, tasks, pad_id, device)
        log.info(
            "%s: step %d dev %s",
            desc,
            step,
            json.dumps({k: round(v, 2) for k, v in flat.items()}),
            extra={"detail": True},
        )
        return flat

    step, micro, best, best_state, best_step, dev, diverged = 0, 0, None, None, 0, {}, 0
    stale, stopped = 0, False  # evaluations since the best one; early stop (patience)

    def checkpoint_eval() -> bool:
        """Evaluate on English dev, keep the best weights; True when patience has run out."""
        nonlocal best, best_state, best_step, dev, stale
        dev = dev_eval()
        if cfg.select_on == "dev" and (best is None or dev["selection"] > best["selection"]):
            best, best_step, stale = dev, step, 0
            # on the CPU: a second copy of XLM-R large must not sit in GPU memory
            best_state = [
                {k: v.detach().to("cpu", copy=True) for k, v in m.state_dict().items()} for m in modules
            ]
        else:
            stale += 1
        return 0 < cfg.patience <= stale

    with StageBar(total, desc, progress) as bar:
        while step < total and not stopped:
            plan = [
                (name, b)
                for name, td in tasks.items()
                for b in epoch_batches(td.train, td.cfg.batch_size, rng, td.cfg.group_by_length)
            ]
            plan = [plan[i] for i in rng.permutation(len(plan))]  # tasks mixed in proportion to size
            for name, idx in plan:
                encoder.train()
                heads[name].train()
                batch = {
                    k: v.to(device) for k, v in collate([tasks[name].train[i] for i in idx], pad_id).items()
                }
                with autocast(device, cfg.precision):
                    loss, _ = heads[name](encoder, batch)
                loss = loss / cfg.grad_accum
                (scaler.scale(loss) if scaler else loss).backward()
                micro += 1
                if micro % cfg.grad_accum:
                    continue
                if scaler:
                    scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
                scaler.step(optimizer) if scaler else optimizer.step()
                if scaler:
                    scaler.update()
                schedule.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                value = loss.item() * cfg.grad_accum
                diverged = diverged + 1 if not math.isfinite(value) else 0
                # fp16's scaler skips the odd overflowing step by design; a run of them is divergence.
                if diverged > (DIVERGED_FP16_STEPS if scaler else 0):
                    raise Diverged(
                        f"{desc}: the training loss is {value} at step {step} (diverged); lower train.lr "
                        f"(now {cfg.lr:g}) or check the data."
                    )
                bar.step(value)
                if cfg.eval_every and step % cfg.eval_every == 0 and step < total and cfg.select_on == "dev":
                    stopped = checkpoint_eval()
                if step >= total or stopped:
                    break
            if not stopped and (step >= total or (not cfg.eval_every and cfg.select_on == "dev")):
                stopped = checkpoint_eval()  # once per epoch, and always at the end
    if best_state is not None:
        for module, state in zip(modules, best_state):
            module.load_state_dict(state)
        dev = best
    return {"dev": dev, "steps": step, "best_step": best_step if best is not None else step}


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
) -> StageRecord:
    """Intermediate training of one (encoder, intermediate, seed) on the data in ``stage.data_dir``;
    saves the ENCODER ONLY to ``checkpoint``.

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
    set_seed(stage.seed)  # head init, dropout and data order
    hidden = encoder.config.hidden_size
    heads = {n: Head(td.task.kind, hidden, num_outputs(td.task.kind, td.labels)) for n, td in tasks.items()}
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


def save_encoder(encoder, tokenizer, folder: Path) -> None:
    """Write the encoder (no head) into ``folder`` via a temporary sibling, so a crash leaves no half checkpoint."""
    for stale in folder.parent.glob(folder.name + ".tmp*"):  # left by a worker killed while saving
        shutil.rmtree(stale, ignore_errors=True)
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    encoder.cpu().save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    for path in tmp.iterdir():
        path.chmod(0o644)  # safetensors is written 0600; shared cluster folders need it readable
    write_manifest(tmp)
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)


def run_target(
    run: RunSpec,
    encoder_path: str,
    *,
    out_dir: Path | None = None,
    progress: bool = True,
    reg: Registry | None = None,
) -> RunResult:
    """Fresh head, English target training on ``run.data_dir``'s data, zero-shot evaluation in every
    language of ``run``.

    With ``train_first`` (a task of the same kind) the encoder and head are first trained on that
    task's English data with the same settings, then on the target's (XTREME-R's SIQA -> COPA).

    Returns a done RunResult with scores {lang: {metric: value}}, primary_metric, dev_scores,
    wall_time, data_fingerprints and extra {steps, best_step} (none for retrieval); the executor
    adds the stage, provenance and times. Retrieval targets skip training and evaluate the encoder
    itself (see ``evaluate_retrieval``).
    """
    reg = reg or registry()
    data_dir = Path(run.data_dir) if run.data_dir else None
    task, cfg = reg.get(run.target), run.target_train
    _threads(cfg)
    device = _device()
    t0 = time.time()
    encoder, tokenizer = load_encoder(encoder_path)
    # A stage checkpoint's base encoder is in the stage's fingerprints; a chain without one records its own.
    base = {"encoder": encoder_fingerprint(encoder, encoder_path)} if encoder_path == run.encoder_path else {}
    if not task.trains_on_target:
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
    td, prints = _task_data(task, cfg, tokenizer, data_dir)
    prints.update(base)
    set_seed(run.seed)  # head init, dropout and data order
    head = Head(task.kind, encoder.config.hidden_size, num_outputs(task.kind, td.labels))
    encoder.to(device)
    head.to(device)
    first_dev = {}
    if cfg.train_first:  # XTREME-R's XCOPA: SIQA first, then COPA, one model and head throughout
        first, first_prints = _task_data(reg.get(cfg.train_first), cfg, tokenizer, data_dir)
        prints.update(first_prints)
        out = fit(
            encoder,
            {first.task.name: head},
            {first.task.name: first},
            seed=run.seed,
            pad_id=tokenizer.pad_token_id,
            device=device,
            desc=f"{run.intermediate}->{first.task.name}->{run.target} s{run.seed}",
            progress=progress,
        )
        first_dev = {f"{first.task.name}:{k}": v for k, v in out["dev"].items()}
    fitted = fit(
        encoder,
        {task.name: head},
        {task.name: td},
        seed=run.seed,
        pad_id=tokenizer.pad_token_id,
        device=device,
        desc=f"{run.intermediate}->{run.target} s{run.seed}",
        progress=progress,
    )
    t1 = time.time()
    scores = {}
    for lang in run.languages:  # zero-shot: test sets only, no target-language tuning
        examples, feats, fp = features_for(task, "test", lang, tokenizer, cfg, data_dir, td.labels)
        prints[f"{task.name}/test-{lang}"] = fp
        scores[lang], preds, refs = evaluate_split(
            encoder, head, td, examples, feats, lang, tokenizer.pad_token_id, device
        )
        if run.save_predictions and out_dir is not None:
            write_predictions(Path(out_dir) / "predictions" / f"{lang}.jsonl.gz", task, examples, preds, refs)
    return RunResult(
        run.run_id,
        run.to_dict(),
        "done",
        scores=scores,
        primary_metric=METRICS[task.metric].primary,
        dev_scores={**first_dev, **fitted["dev"]},
        wall_time={"target": t1 - t0, "eval": time.time() - t1},
        data_fingerprints=prints,
        data=data_cache.entries(data_dir, prints),
        extra={"steps": fitted["steps"], "best_step": fitted["best_step"]},
    )


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


# ---------------------------------------------------------------------------------- retrieval


@torch.no_grad()
def embed(encoder, tokenizer, sentences: Sequence[str], cfg: TrainConfig, device) -> np.ndarray:
    """Pooled hidden states of layer ``cfg.retrieval_layer`` (an index into ``hidden_states``:
    0 = embeddings, k = output of layer k, -1 = last layer), one row per sentence, in input order.

    ``cfg.retrieval_pool``: "mean" over all tokens of the sentence, [CLS] and [SEP] included, or
    "cls", the first token (XTREME's evaluate_retrieval.py: mean_pool_embedding over the attention
    mask, --pool_skip_special_token off by default; cls_pool_embedding takes position 0).
    """
    encoder.eval()
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
    out = np.zeros((len(sentences), encoder.config.hidden_size), dtype=np.float32)
    for start in range(0, len(order), cfg.eval_batch_size):
        idx = order[start : start + cfg.eval_batch_size]
        enc = tokenizer(
            [sentences[i] for i in idx],
            truncation=True,
            max_length=cfg.max_length,
            padding=True,
            return_tensors="pt",
        ).to(device)
        with autocast(device, cfg.precision):
            states = encoder(**enc, output_hidden_states=True).hidden_states[cfg.retrieval_layer]
        if cfg.retrieval_pool == "cls":
            out[idx] = states[:, 0].float().cpu().numpy()
            continue
        mask = enc["attention_mask"].unsqueeze(-1).float()
        out[idx] = ((states.float() * mask).sum(1) / mask.sum(1).clamp(min=1)).cpu().numpy()
    return out


def _retrieval_inputs(encoder, tokenizer, rows, cfg, device) -> dict[str, Any]:
    src = [i for i, r in enumerate(rows) if r["src"]]
    tgt = [i for i, r in enumerate(rows) if r["tgt"]]
    return {
        "src": embed(encoder, tokenizer, [rows[i]["src"] for i in src], cfg, device),
        "src_ids": src,
        "tgt": embed(encoder, tokenizer, [rows[i]["tgt"] for i in tgt], cfg, device),
        "tgt_ids": tgt,
        "gold": [(i, i) for i, r in enumerate(rows) if r["src"] and r["tgt"]],
    }


def evaluate_retrieval(
    encoder, tokenizer, task: Task, languages: Sequence[str], cfg: TrainConfig, data_dir: Path | None, device
) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
    """XTREME's retrieval evaluation of the encoder itself (no training): language -> metric columns.

    Tatoeba: top-1 cosine accuracy of each sentence's English partner; BUCC: margin-based mining,
    threshold tuned on the dev (sample) split; mAP@20 (Mewsli-X/LAReQA-style): every English
    sentence ranked by cosine for each query, the aligned one relevant.
    """
    from xitt.train.metrics import mine_bucc_candidates

    if task.metric == "map_at_20" and cfg.candidate_pool == "shared":
        return _evaluate_shared_pool(encoder, tokenizer, task, languages, cfg, data_dir, device)
    scores, prints = {}, {}
    for lang in languages:
        rows, prints[f"{task.name}/test-{lang}"] = xdata.load_split(task, "test", lang, data_dir)
        x = _retrieval_inputs(encoder, tokenizer, rows, cfg, device)
        if task.metric == "tatoeba_accuracy":
            scores[lang] = evaluate(task.metric, src_embeddings=x["src"], tgt_embeddings=x["tgt"])
        elif task.metric == "map_at_20":

            def unit(m):
                return m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)

            sim = unit(x["src"]) @ unit(x["tgt"]).T
            ranked = [[x["tgt_ids"][j] for j in np.argsort(-row, kind="stable")[:20]] for row in sim]
            scores[lang] = evaluate(task.metric, ranked=ranked, relevant=[[i] for i in x["src_ids"]])
        else:
            sample_rows, prints[f"{task.name}/dev-{lang}"] = xdata.load_split(task, "dev", lang, data_dir)
            s = _retrieval_inputs(encoder, tokenizer, sample_rows, cfg, device)
            scores[lang] = evaluate(
                task.metric,
                gold=x["gold"],
                sample_gold=s["gold"],
                sample_candidates=mine_bucc_candidates(s["src"], s["tgt"], s["src_ids"], s["tgt_ids"]),
                candidates=mine_bucc_candidates(x["src"], x["tgt"], x["src_ids"], x["tgt_ids"]),
            )
    return scores, prints


def _evaluate_shared_pool(encoder, tokenizer, task, languages, cfg, data_dir, device):
    """LAReQA as XTREME-R ranks it: every question against one pool of all languages' candidates."""
    from xitt.train.pool import build_shared_pool, read_xquad_r, shared_pool_scores

    if data_dir is None:
        raise FileNotFoundError(
            f"{task.name}: candidate_pool 'shared' needs local XQuAD-R files; pass --data-dir (or "
            "XITT_DATA_DIR) pointing at the folder that holds lareqa/xquad-r/<lang>.json."
        )
    files = read_xquad_r(Path(data_dir), languages, task.name)
    digest = hashlib.sha1(json.dumps(files, sort_keys=True).encode()).hexdigest()[:12]
    pool = build_shared_pool(files)
    scores = shared_pool_scores(pool, lambda texts: embed(encoder, tokenizer, texts, cfg, device))
    return scores, {f"{task.name}/xquad-r-{'+'.join(languages)}": digest}
