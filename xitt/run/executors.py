"""Run a grid as a DAG: intermediate stages first, then the target runs that reuse them.

``execute`` is what ``xitt run`` calls. It expands the grid, checks the encoder folders, prepares
every data split the pending work needs (``xitt prepare``: verified copies in the data dir; then
the hub is switched off for the runs), then runs what is not done yet:

* ``local`` (default): sequentially, stage by stage (a stage, then all its target runs, then its
  checkpoint is removed unless ``keep_checkpoints``), or with ``workers > 1`` on a small process
  pool that submits a stage's runs as soon as the stage is done;
* ``slurm``: one job per stage and per run, runs ``afterok`` on their stage, at most
  ``max_jobs`` at once, a cleanup job per stage checkpoint, queued jobs recognised on a re-run
  (``xitt/run/slurm.py``); requeued on preemption/timeout (a requeued job takes over its own claim).

The job bodies (train a stage, a run; record a failed stage's runs) are in ``xitt/run/jobs.py``;
a failed stage's runs are recorded failed with its error and never started.

Preemption: SIGTERM/SIGUSR2 make the training stages and runs save a resume state at their next
optimizer step and stop (``xitt/run/preempt.py``, ``xitt/train/resume.py``); ``execute`` then
raises ``Preempted`` (``xitt run`` exits 128 + the signal) and the next call goes on from there.

Idempotent: finished runs and stages are skipped; failed, corrupt or half-written ones re-run;
an O_EXCL claim per folder keeps two workers off the same run. A failing run records its error
(traceback in ``train.log``, last line in ``result.json``) and the others go on unless
``fail_fast``. Stage checkpoints live in ``grid.checkpoint_dir/<stage_id>``, by default outside the
repository (``checkpoint_path``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from xitt.data import loaders as xdata
from xitt.grid.spec import GridSpec, RunSpec, SpecError, StageSpec, TrainSpec, expand_grid, trainings_of
from xitt.run.jobs import console, do_run, fail_run, node_id, remove_checkpoint, stage_job
from xitt.run.preempt import catch_preemption, clear_resume, resume_folder, stop_if_requested
from xitt.run.progress import GridProgress
from xitt.run.store import (
    Claim,
    done_stage,
    run_dir,
    run_seconds,
    run_state,
    stage_dir,
    stage_ready,
    stage_seconds,
)
from xitt.run.workers import run_pool as _run_pool
from xitt.tasks import registry

log = logging.getLogger("xitt")
DEFAULT_CHECKPOINT_DIR = "~/.cache/xitt/checkpoints"


# ------------------------------------------------------------------------------ helpers on disk


def checkpoint_path(grid_or_dir: GridSpec | str | None, exp_dir: Path, stage_id: str) -> Path:
    """Where stage ``stage_id`` keeps its checkpoint: ``checkpoint_root(...)/<stage_id>``."""
    return checkpoint_root(grid_or_dir, exp_dir) / stage_id


def checkpoint_root(grid_or_dir: GridSpec | str | None, exp_dir: Path) -> Path:
    """The folder of an experiment's stage checkpoints (and of its resume states, under ``resume/``):
    the grid's ``checkpoint_dir`` when it sets one, else ``<XITT_CHECKPOINT_DIR or
    ~/.cache/xitt/checkpoints>/<exp name>-<hash of the experiment folder>``: outside the repository (a
    stage checkpoint of XLM-R large is ~2.2 GB) and apart for every experiment folder. Never inside a
    stage or run folder, whose files the checkpoint save's clean-up would otherwise delete."""
    base = grid_or_dir.checkpoint_dir if isinstance(grid_or_dir, GridSpec) else grid_or_dir
    exp = Path(exp_dir).resolve()
    if base:
        folder = Path(base).expanduser().resolve()
    else:
        root = Path(os.environ.get("XITT_CHECKPOINT_DIR") or DEFAULT_CHECKPOINT_DIR).expanduser().resolve()
        folder = root / f"{exp.name}-{hashlib.sha1(str(exp).encode()).hexdigest()[:8]}"
    if folder.is_relative_to(exp) and not folder.is_relative_to(exp / "checkpoints"):
        raise SpecError(
            f"checkpoint_dir {base} would put checkpoints among the experiment's run or stage folders; "
            f"use a folder of its own, e.g. {exp / 'checkpoints'} or one outside the experiment."
        )
    return folder


# ----------------------------------------------------------------------------------- planning


def check_encoders(grid: GridSpec) -> None:
    """Every local encoder folder exists, checked before any training."""
    for name, path in grid.encoders:
        if path.startswith((".", "/", "~")) and not Path(path).expanduser().is_dir():
            raise FileNotFoundError(
                f"encoder '{name}': folder {path} does not exist; build it or fix the grid's encoders."
            )


def prepare_data(stages: Sequence[StageSpec], runs: Sequence[RunSpec], data_dir: Path, offline: bool) -> None:
    """``xitt prepare`` for the pending work (a no-op check of the manifests when all is prepared),
    then the hub is switched off for this process and every worker or job it starts."""
    from xitt.data.prepare import needs_of, prepare

    outcome = prepare(needs_of(stages, runs, registry()), data_dir, offline=offline)
    fresh = sum(line.status.startswith("prepared") for line in outcome.lines)
    log.info("data: %d split(s) ready in %s (%d prepared now)", len(outcome.lines), data_dir, fresh)
    os.environ["HF_DATASETS_OFFLINE"] = "1"


def _tidy(grid: GridSpec, exp: Path, nodes, runs, todo, ckpt: dict[str, Path]) -> None:
    """Clear what dead workers left behind before anything runs.

    A worker killed between writing its result and releasing its claim leaves a done folder that
    looks claimed; nothing visits done folders again, so such claims are cleared here. A worker that
    died before its clean-up leaves a checkpoint no later run would ever remove, and one killed
    after its result but before deleting its resume state leaves that state."""
    pending_ids, root = {r.run_id for r in todo}, checkpoint_root(grid, exp)
    for run in runs:
        if run.run_id not in pending_ids:
            Claim(run_dir(exp, run.run_id)).clear_if_stale()
            clear_resume(resume_folder(root, run.run_id))
    all_runs = _dependants(grid)
    for kind, node in nodes:
        nid = node_id(node)
        if done_stage(exp, nid, kind) is not None:
            Claim(stage_dir(exp, nid, kind)).clear_if_stale()
            clear_resume(resume_folder(root, nid))
        _cleanup(grid, exp, ckpt[nid], all_runs.get(nid, []))


def pending_work(grid: GridSpec, exp: Path, runs: Sequence[RunSpec], ckpt: dict[str, Path]):
    """(runs not done, shared trainings to train, stages to train): a training is trained when a
    pending run needs it and it is not ready (done with its checkpoint); a stage when a pending run
    without a ready training, or a training to train, needs it."""
    todo = [r for r in runs if run_state(run_dir(exp, r.run_id))[0] != "done"]
    todo_trainings = [
        t for t in trainings_of(todo) if not stage_ready(exp, t.train_id, ckpt[t.train_id], "training")
    ]
    train_ids = {t.train_id for t in todo_trainings}
    needed = {
        r.stage.stage_id
        for r in todo
        if r.stage is not None and (r.training is None or r.training.train_id in train_ids)
    }
    stages = {r.stage.stage_id: r.stage for r in runs if r.stage is not None}
    todo_stages = [s for sid, s in stages.items() if sid in needed and not stage_ready(exp, sid, ckpt[sid])]
    return todo, todo_trainings, todo_stages


def execute(
    grid: GridSpec,
    *,
    exp_dir: Path,
    seeds: Sequence[int] | None = None,
    executor: str | None = None,
    workers: int | None = None,
    fail_fast: bool = False,
    data_dir: str | None = None,
    progress: bool = True,
    wait: bool = True,
) -> dict:
    """Run every pending stage, shared training and run of ``grid`` into ``exp_dir``; returns counts
    {runs, done, failed, skipped, ran, stages_trained, trainings_trained (grids with shared trainings),
    busy}; on SLURM also
    submitted, queued (jobs of an earlier call still pending or running) and checkpoints_removed, or
    only submitted and queued when not ``wait``ing for the jobs."""
    offline = xdata.set_offline_flags()  # before any HF library is imported
    exp = Path(exp_dir).resolve()
    ddir = xdata.resolve_data_dir(data_dir, grid.data_dir)
    used = str(ddir)  # recorded in each config.yaml / result.json
    stages, runs = expand_grid(grid, seeds=seeds)
    stages = [dataclasses.replace(s, data_dir=used) for s in stages]
    runs = [r.with_data_dir(used) for r in runs]
    trainings = trainings_of(runs)
    nodes = [("stage", s) for s in stages] + [("training", t) for t in trainings]
    ckpt = {node_id(n): checkpoint_path(grid, exp, node_id(n)) for _, n in nodes}
    todo, todo_trainings, todo_stages = pending_work(grid, exp, runs, ckpt)
    _tidy(grid, exp, nodes, runs, todo, ckpt)
    check_encoders(grid)
    console(progress)
    prepare_data(todo_stages, todo, ddir, offline)
    kind = executor or grid.executor.kind
    workers = workers or grid.executor.workers
    bar = GridProgress(
        len(runs),
        done=len(runs) - len(todo),
        enabled=progress,
        runs={r.run_id: r.target for r in todo},
        stages={s.stage_id: s.intermediate for s in todo_stages}
        | {t.train_id: f"{t.intermediate}->{t.task}" for t in todo_trainings},
        workers=workers if kind == "local" else 1,
    )
    bar.show()
    root = str(checkpoint_root(grid, exp))
    plan = Work(grid, exp, todo_stages, ckpt, root, todo, todo_trainings, fail_fast, bar)
    if kind == "slurm":
        from xitt.run import slurm

        if fail_fast:
            log.warning("--fail-fast does not apply to SLURM: submitted jobs run independently.")
        sub = slurm.submit(grid, exp, stages, ckpt, todo, todo_stages, _dependants(grid), todo_trainings)
        counts = slurm.wait(sub, bar) if wait else {"submitted": len(sub.jobs), "queued": len(sub.live)}
    elif kind == "local":
        counts = _run_pool(plan, workers) if workers > 1 else _run_local(plan, progress)
    else:
        raise ValueError(f"executor must be 'local' or 'slurm', got {kind!r}.")
    if not trainings:  # a grid without shared trainings reports what it always did
        counts.pop("trainings_trained", None)
    states = [run_state(run_dir(exp, r.run_id))[0] for r in runs]
    return {
        "runs": len(runs),
        "done": states.count("done"),
        "failed": states.count("failed") + states.count("corrupt"),
        "skipped": len(runs) - len(todo),
        **counts,
    }


# -------------------------------------------------------------------------------------- local


@dataclasses.dataclass
class Work:
    """What one `xitt run` does: the pending runs grouped by stage and by shared training."""

    grid: GridSpec
    exp: Path
    todo_stages: list[StageSpec]  # the stages to train (a ready one is not trained again)
    ckpt: dict[str, Path]  # stage or training id -> its checkpoint folder
    root: str  # checkpoint_root: resume states live under <root>/resume
    todo: list[RunSpec]
    todo_trainings: list[TrainSpec]
    fail_fast: bool
    bar: GridProgress

    def start(self, run: RunSpec) -> str | None:
        """The checkpoint ``run`` starts from: its shared training's, its stage's, or None (the encoder)."""
        nid = run.training.train_id if run.training else run.stage.stage_id if run.stage else None
        return str(self.ckpt[nid]) if nid else None

    def groups(self) -> list[tuple[StageSpec | None, list[TrainSpec], list[RunSpec]]]:
        """(stage or None, the trainings to train on it, its pending runs), ``none`` runs first."""
        train = {s.stage_id for s in self.todo_stages}
        out: dict[str, tuple] = {"": (None, [], [])}
        for r in self.todo:  # a stage nothing pending needs trained (its runs' trainings are ready): None
            sid = r.stage.stage_id if r.stage else ""
            out.setdefault(sid, (r.stage if sid in train else None, [], []))[2].append(r)
        for t in self.todo_trainings:
            out[t.stage.stage_id if t.stage else ""][1].append(t)
        return [g for g in out.values() if g[2]]


def _cleanup(grid: GridSpec, exp: Path, ckpt: Path, dependants: Sequence[RunSpec]) -> None:
    remove_checkpoint(grid.keep_checkpoints, exp, ckpt, dependants)


def _dependants(grid: GridSpec) -> dict[str, list[RunSpec]]:
    """Every run of every seed of the grid, by stage id and by shared training id (checkpoints go only
    when all are done)."""
    out: dict[str, list[RunSpec]] = {}
    for r in expand_grid(grid)[1]:
        for nid in (r.stage.stage_id if r.stage else None, r.training.train_id if r.training else None):
            if nid is not None:
                out.setdefault(nid, []).append(r)
    return out


def _node(work: Work, kind: str, node, counts: dict, progress: bool) -> str:
    """Train a stage or shared training in this process; its state, counted and shown."""
    nid = node_id(node)
    state = stage_job(node, str(work.exp), str(work.ckpt[nid]), progress, kind)
    stop_if_requested()
    counts[f"{kind}s_trained"] += state == "trained"
    work.bar.stage_finished(nid, stage_seconds(work.exp, nid, kind))
    return state


def _run_local(work: Work, progress: bool) -> dict:
    """One process: per stage, train it, then each of its shared trainings followed by its runs (its
    checkpoint removed after them), then its other runs; a stage's checkpoint goes last. SIGTERM/SIGUSR2
    stop it with ``Preempted``: at the running node's or run's next optimizer step (after saving its
    resume state), or at the end of the running one when it is not training."""
    with catch_preemption():
        return _run_serial(work, progress)


def _run_serial(work: Work, progress: bool) -> dict:
    counts = {"ran": 0, "stages_trained": 0, "trainings_trained": 0, "busy": 0}
    all_runs, exp = _dependants(work.grid), work.exp
    for stage, trainings, runs in work.groups():
        blocked = _node(work, "stage", stage, counts, progress) if stage is not None else "done"
        for training in trainings:  # "busy" or "failed" stage: the training cannot start either
            state = (
                blocked
                if blocked in ("busy", "failed")
                else _node(work, "training", training, counts, progress)
            )
            mine = [r for r in runs if r.training and r.training.train_id == training.train_id]
            if _local_runs(work, mine, state, counts):
                return {**counts, "stopped": 1}
            _cleanup(work.grid, exp, work.ckpt[training.train_id], all_runs.get(training.train_id, mine))
        trained = {t.train_id for t in trainings}
        rest = [r for r in runs if not (r.training and r.training.train_id in trained)]
        if _local_runs(work, rest, blocked, counts):
            return {**counts, "stopped": 1}
        if runs[0].stage is not None:
            sid = runs[0].stage.stage_id
            _cleanup(work.grid, exp, work.ckpt[sid], all_runs.get(sid, runs))
    return counts


def _local_runs(work: Work, runs: Sequence[RunSpec], upstream: str, counts: dict) -> bool:
    """Run (or, after a failed stage or training, record failed) ``runs``; True to stop (--fail-fast)."""
    if upstream == "busy":  # another worker trains it: its runs wait for the next `xitt run`
        counts["busy"] += len(runs)
        return False
    for run in runs:
        exp = str(work.exp)
        if upstream == "failed":
            state = fail_run(run, exp, work.start(run))
        else:
            state = do_run(run, exp, work.start(run), work.bar.enabled, work.root)
        counts["ran"] += int(state in ("done", "failed"))
        counts["busy"] += int(state == "busy")
        if state in ("done", "failed"):
            work.bar.update(state, run.run_id, run_seconds(work.exp, run.run_id))
        if state == "failed" and work.fail_fast:
            log.error("stopping after the first failure (--fail-fast): %s", run.run_id)
            return True
        stop_if_requested()
    return False
