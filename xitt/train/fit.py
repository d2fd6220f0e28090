"""``fit``: the training loop shared by intermediate stages and target runs.

A plain PyTorch loop: AdamW, linear warmup + linear decay, gradient accumulation, max grad norm,
epochs or max_steps, English-dev evaluation to keep the best checkpoint (``select_on``),
bf16/fp16 autocast on CUDA only, dynamic padding and length-grouped batches. One seed drives data
order (a numpy Generator), head init and dropout (torch's RNG, seeded by the caller right before
the head is built): with a fixed thread count the same seed gives bit-identical scores.

Per-step overhead is kept off the host (``xitt bench`` pairs the loop with transformers.Trainer):
the loss stays on the device and is read every ``CHECK_EVERY`` steps, before each dev evaluation
and at the end (``LossWatch``; a non-finite loss still fails the run); torch's fused AdamW, as the
Trainer uses; modules switched to train mode once per epoch and after evaluations; batches padded
in numpy; evaluation under ``torch.inference_mode``; the best weights copied into one kept CPU
copy, only when the dev score improved.

Multi-task intermediates: one fresh head per task on the shared encoder; every epoch is all
tasks' batches shuffled together, so tasks are sampled in proportion to their size. The
optimiser settings and epochs of a multi-task stage are those of its first task; each task keeps
its own batch size and max length.

An unlabelled objective (``unlabelled`` set: xitt.train.mlm.MlmData, the MLM of MLM-mixed
intermediates) is one more task whose batches come from its own ``epoch_batches`` and which
is never scored on English dev; its mask stream is a buffer of its head, so a resumed stage masks
as an uninterrupted one.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from xitt.grid.spec import TrainConfig
from xitt.run.preempt import requested, stop_if_requested, training
from xitt.run.progress import StageBar
from xitt.train.heads import Head, collate, feature_length
from xitt.train.predict import TaskData, autocast, dev_scores
from xitt.train.resume import LoopState, Resume, capture, restore

log = logging.getLogger("xitt")

# With fp16 the loss scaler skips overflowing steps by design; this many in a row is divergence.
DIVERGED_FP16_STEPS = 50


class Diverged(RuntimeError):
    """The training loss became non-finite: the run fails (it is never recorded as done)."""


# The loss is read on the host (a device sync) only every this many steps, before each dev
# evaluation and at the end: a diverged run stops at most this many steps late, never finishes.
CHECK_EVERY = 50


class LossWatch:
    """The training losses kept on the device: ``add(loss)`` each optimiser step (no host sync, no
    device op), ``check(step)`` reads the pending ones back in one sync, sets ``last`` (their mean
    over the finite ones, for the progress bar and log) and raises ``Diverged`` at the step where
    more than ``allowed`` non-finite losses came in a row (0 in fp32/bf16; with fp16 the loss
    scaler skips the odd overflowing step)."""

    def __init__(self, allowed: int, desc: str, lr: float):
        self.allowed, self.desc, self.lr = allowed, desc, lr
        self.last, self.run, self.pending = float("nan"), 0, []

    def add(self, loss: torch.Tensor) -> None:
        self.pending.append(loss.detach())

    def check(self, step: int) -> None:
        if not self.pending:
            return
        values = torch.stack(self.pending).float().tolist()
        self.pending = []
        finite = [v for v in values if math.isfinite(v)]
        if finite:
            self.last = math.fsum(finite) / len(finite)
        for at, value in enumerate(values, start=step - len(values) + 1):
            self.run = 0 if math.isfinite(value) else self.run + 1
            if self.run > self.allowed:
                raise Diverged(
                    f"{self.desc}: the training loss is {value} at step {at} (diverged); lower "
                    f"train.lr (now {self.lr:g}) or check the data."
                )


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


def task_epoch(td, rng: np.random.Generator) -> list[list[int]]:
    """One epoch of a task's batches: an unlabelled objective draws its own (xitt.train.mlm)."""
    if getattr(td, "unlabelled", False):
        return td.epoch_batches(rng)
    return epoch_batches(td.train, td.cfg.batch_size, rng, td.cfg.group_by_length)


def make_optimizer(modules: Sequence[torch.nn.Module], cfg: TrainConfig, total: int):
    """AdamW (no weight decay on biases and LayerNorm) with linear warmup (``warmup_steps``, else
    ``warmup_ratio`` of the steps) and linear decay to 0."""

    def no_decay(name: str) -> bool:
        return name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name

    # each parameter once: an MLM head's output layer is the encoder's tied word embeddings
    named = list({id(p): (n, p) for m in modules for n, p in m.named_parameters()}.values())
    groups = [
        {"params": [p for n, p in named if not no_decay(n)], "weight_decay": cfg.weight_decay},
        {"params": [p for n, p in named if no_decay(n)], "weight_decay": 0.0},
    ]
    # torch's fused AdamW kernel on CPU and CUDA (transformers.Trainer's default optimizer since
    # torch 2.8): at BERT-base size the per-tensor loop took 0.3-0.6 s of a ~2 s CPU step; it
    # rounds differently from the per-tensor loop (scores of runs before this change differ in
    # the last bits). Elsewhere the foreach path (one kernel per op over all tensors).
    devices = {p.device.type for _, p in named}
    fast = {"fused": True} if devices in ({"cpu"}, {"cuda"}) else {"foreach": True}
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr, **fast)
    warmup = cfg.warmup_steps if cfg.warmup_steps > 0 else int(cfg.warmup_ratio * total)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: s / max(1, warmup) if s < warmup else max(0.0, (total - s) / max(1, total - warmup)),
    )
    return optimizer, schedule


def keep_state(modules: Sequence[torch.nn.Module], kept: list[dict] | None) -> list[dict]:
    """A CPU copy of the modules' state dicts (a second copy of XLM-R large must not sit in GPU
    memory); later calls copy into ``kept`` in place instead of allocating it again."""
    if kept is None:
        return [{k: v.detach().to("cpu", copy=True) for k, v in m.state_dict().items()} for m in modules]
    with torch.no_grad():
        for m, state in zip(modules, kept):
            for k, v in m.state_dict().items():
                state[k].copy_(v)
    return kept


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
    resume: Resume | None = None,
    evaluate: bool = True,
) -> dict[str, Any]:
    """Train encoder + heads on the tasks' English training sets; returns dev scores and steps.

    With ``select_on: dev`` the weights of the best English-dev evaluation (mean primary metric
    over the tasks) are restored at the end; with ``patience`` > 0 training stops after that many
    evaluations in a row without a better one (jiant's --no_improvements_for_n_evals). With
    ``resume``, a saved state of this job and phase is loaded first, a state is saved every
    ``resume_every_min`` minutes, and on SIGTERM/SIGUSR2 one is saved before ``Preempted`` is raised
    (``xitt/train/resume.py``). With ``evaluate=False`` (a target without English dev data: the dual
    encoder of ``xitt/train/dual.py``) nothing is evaluated, ``dev`` is {} and the final weights stay;
    ``select_on`` must then be ``last``. A head with a ``collate`` method batches its own features.
    """
    run = _Loop(encoder, heads, tasks, seed, pad_id, device, desc, resume, evaluate)
    loop = run.loop
    with training(), StageBar(run.total, desc, progress, initial=loop.step) as bar:
        while not loop.done:
            run.epoch(bar)
            if not loop.stopped and (
                loop.step >= run.total or (not run.cfg.eval_every and run.cfg.select_on == "dev")
            ):
                loop.stopped = run.evaluate()  # once per epoch, and always at the end
            loop.epoch, loop.position, loop.epoch_rng = loop.epoch + 1, 0, None
            loop.done = loop.step >= run.total or loop.stopped
        if resume is not None and requested():  # it came during the last evaluation: keep its result
            run.save()
            stop_if_requested()
    if run.best_state is not None:
        for module, state in zip(run.modules, run.best_state):
            module.load_state_dict(state)
        loop.dev = loop.best
    return {
        "dev": loop.dev,
        "steps": loop.step,
        "best_step": loop.best_step if loop.best is not None else loop.step,
    }


class _Loop:
    """One ``fit``: its optimizer, schedule, scaler, data Generator, LossWatch and ``LoopState``
    (loaded from ``resume`` when a state of this job and phase is there)."""

    def __init__(self, encoder, heads, tasks, seed: int, pad_id: int, device, desc: str, resume, evaluate):
        self.encoder, self.heads, self.tasks, self.pad_id, self.device = encoder, heads, tasks, pad_id, device
        self.desc, self.resume, self.evaluates = desc, resume, evaluate
        self.cfg = cfg = next(iter(tasks.values())).cfg  # optimiser settings: the first task's
        if not evaluate and cfg.select_on != "last":
            raise ValueError(f"{desc}: training without dev evaluation needs select_on: last.")
        self.rng = np.random.default_rng(seed)
        self.modules = [encoder, *heads.values()]
        per_epoch = sum(
            td.batches if getattr(td, "unlabelled", False) else math.ceil(len(td.train) / td.cfg.batch_size)
            for td in tasks.values()
        )
        self.labelled = {n: td for n, td in tasks.items() if not getattr(td, "unlabelled", False)}
        self.total = (
            cfg.max_steps if cfg.max_steps > 0 else max(1, math.ceil(cfg.epochs * per_epoch / cfg.grad_accum))
        )
        self.optimizer, self.schedule = make_optimizer(self.modules, cfg, self.total)
        self.scaler = (
            torch.amp.GradScaler("cuda") if device.type == "cuda" and cfg.precision == "fp16" else None
        )
        # fp16's scaler skips the odd overflowing step by design; a run of them is divergence.
        self.watch = LossWatch(DIVERGED_FP16_STEPS if self.scaler else 0, desc, cfg.lr)
        self.loop, self.best_state = LoopState(), None
        self.timer = SaveTimer(cfg.resume_every_min if resume is not None else 0.0)
        self.step_once = _stepper(
            encoder, heads, tasks, cfg, self.optimizer, self.schedule, self.scaler, pad_id, device
        )
        saved = resume.load() if resume is not None else None
        if saved is not None:
            self.loop, self.best_state = restore(
                *saved, self.modules, self.optimizer, self.schedule, self.scaler
            )
            self.watch.last, self.watch.run = self.loop.loss_last, self.loop.loss_run
            log.info("%s: resumed at step %d of %d", desc, self.loop.step, self.total)

    def epoch(self, bar: StageBar) -> None:
        """The rest of the current epoch's plan: optimizer steps, evaluations every ``eval_every``
        steps, a resume state when one is due (then ``Preempted`` if a signal asked for it)."""
        loop, cfg, watch = self.loop, self.cfg, self.watch
        plan = _epoch_plan(self.tasks, self.rng, loop)
        for module in self.modules:
            module.train()
        while loop.position < len(plan):
            name, idx = plan[loop.position]
            loop.position += 1
            if not self.step_once(loop, name, idx, watch):
                continue  # gradient accumulation: no optimizer step yet
            if loop.step % CHECK_EVERY == 0 or loop.step >= self.total:
                watch.check(loop.step)
            bar.step(watch.last)
            if (
                cfg.eval_every
                and loop.step % cfg.eval_every == 0
                and loop.step < self.total
                and cfg.select_on == "dev"
            ):
                loop.stopped = self.evaluate()
                for module in self.modules:
                    module.train()
            if loop.step >= self.total or loop.stopped:
                return
            if self.resume is not None and self.timer.due():
                self.save()
                stop_if_requested()

    def evaluate(self) -> bool:
        """Evaluate on English dev, keep the best weights; True when patience has run out."""
        loop, cfg = self.loop, self.cfg
        self.watch.check(loop.step)
        if not self.evaluates:
            return False  # no English dev (the dual encoder): dev stays {}
        loop.dev = dev_scores(self.encoder, self.heads, self.labelled, self.pad_id, self.device)
        log.info("%s: step %d dev %s", self.desc, loop.step, _rounded(loop.dev), extra={"detail": True})
        if cfg.select_on == "dev" and (loop.best is None or loop.dev["selection"] > loop.best["selection"]):
            loop.best, loop.best_step, loop.stale = loop.dev, loop.step, 0
            self.best_state = keep_state(self.modules, self.best_state)
        else:
            loop.stale += 1
        return 0 < cfg.patience <= loop.stale

    def save(self) -> None:
        """Write the resume state (at an optimizer-step boundary)."""
        loop = self.loop
        self.watch.check(loop.step)  # pending losses read now: the same steps, the same outcome
        loop.loss_last, loop.loss_run = self.watch.last, self.watch.run
        state = capture(loop, self.modules, self.optimizer, self.schedule, self.scaler, self.best_state)
        took = self.resume.save(*state)
        log.info(
            "%s: resume state saved at step %d (%.1fs)", self.desc, loop.step, took, extra={"detail": True}
        )


def _rounded(scores: dict[str, float]) -> str:
    return json.dumps({k: round(v, 2) for k, v in scores.items()})


class SaveTimer:
    """Due every ``minutes`` (never when 0) and at once when a preemption signal came in."""

    def __init__(self, minutes: float):
        self.every, self.last = minutes * 60.0, time.monotonic()

    def due(self) -> bool:
        if requested() is None and not (self.every > 0 and time.monotonic() - self.last >= self.every):
            return False
        self.last = time.monotonic()
        return True


def _epoch_plan(
    tasks: dict[str, TaskData], rng: np.random.Generator, loop: LoopState
) -> list[tuple[str, list[int]]]:
    """The epoch's (task, batch indices), all tasks' batches shuffled together. A resumed epoch draws
    its plan again from the Generator's state saved when the plan was first drawn: the same order."""
    if loop.epoch_rng is None:
        loop.epoch_rng = rng.bit_generator.state
    else:
        rng.bit_generator.state = loop.epoch_rng
    plan = [(name, b) for name, td in tasks.items() for b in task_epoch(td, rng)]
    return [plan[i] for i in rng.permutation(len(plan))]  # tasks mixed in proportion to size


def _stepper(encoder, heads, tasks, cfg: TrainConfig, optimizer, schedule, scaler, pad_id: int, device):
    """``step_once(loop, name, idx, watch)``: forward + backward of one micro-batch; every
    ``grad_accum`` micro-batches an optimizer step (clipped, scaled under fp16); True after a step."""
    params = list(dict.fromkeys(p for m in [encoder, *heads.values()] for p in m.parameters()))
    batchers = {name: getattr(head, "collate", collate) for name, head in heads.items()}

    def step_once(loop: LoopState, name: str, idx: list[int], watch: LossWatch) -> bool:
        features = [tasks[name].train[i] for i in idx]
        batch = {k: v.to(device) for k, v in batchers[name](features, pad_id).items()}
        with autocast(device, cfg.precision):
            loss, _ = heads[name](encoder, batch)
        loss = loss / cfg.grad_accum
        (scaler.scale(loss) if scaler else loss).backward()
        loop.micro += 1
        if loop.micro % cfg.grad_accum:
            return False
        if scaler:
            scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        scaler.step(optimizer) if scaler else optimizer.step()
        if scaler:
            scaler.update()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        loop.step += 1
        watch.add(loss.detach() * cfg.grad_accum)
        return True

    return step_once
