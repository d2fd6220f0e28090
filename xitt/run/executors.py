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
from xitt.grid.spec import GridSpec, RunSpec, SpecError, StageSpec, expand_grid
from xitt.run.jobs import console, do_run, fail_run, remove_checkpoint, stage_job
from xitt.run.preempt import (
    Preempted,
    catch_preemption,
    clear_resume,
    requested,
    resume_folder,
    stop_if_requested,
)
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


def _tidy(grid: GridSpec, exp: Path, stages, runs, todo, ckpt: dict[str, Path]) -> None:
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
    for stage in stages:
        if done_stage(exp, stage.stage_id) is not None:
            Claim(stage_dir(exp, stage.stage_id)).clear_if_stale()
            clear_resume(resume_folder(root, stage.stage_id))
        _cleanup(grid, exp, ckpt[stage.stage_id], all_runs.get(stage.stage_id, []))


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
    """Run every pending stage and run of ``grid`` into ``exp_dir``; returns counts
    {runs, done, failed, skipped, ran, stages_trained, busy}; on SLURM also submitted, queued (jobs of an
    earlier call still pending or running) and checkpoints_removed, or only submitted and queued when
    not ``wait``ing for the jobs."""
    offline = xdata.set_offline_flags()  # before any HF library is imported
    exp = Path(exp_dir).resolve()
    ddir = xdata.resolve_data_dir(data_dir, grid.data_dir)
    used = str(ddir)  # recorded in each config.yaml / result.json
    stages, runs = expand_grid(grid, seeds=seeds)
    stages = [dataclasses.replace(s, data_dir=used) for s in stages]
    runs = [r.with_data_dir(used) for r in runs]
    ckpt = {s.stage_id: checkpoint_path(grid, exp, s.stage_id) for s in stages}
    todo = [r for r in runs if run_state(run_dir(exp, r.run_id))[0] != "done"]
    needed = {r.stage.stage_id for r in todo if r.stage is not None}
    todo_stages = [
        s for s in stages if s.stage_id in needed and not stage_ready(exp, s.stage_id, ckpt[s.stage_id])
    ]
    _tidy(grid, exp, stages, runs, todo, ckpt)
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
        stages={s.stage_id: s.intermediate for s in todo_stages},
        workers=workers if kind == "local" else 1,
    )
    bar.show()
    ctx = dict(
        grid=grid,
        exp=exp,
        stages=stages,
        ckpt=ckpt,
        todo=todo,
        fail_fast=fail_fast,
        bar=bar,
    )
    if kind == "slurm":
        from xitt.run import slurm

        if fail_fast:
            log.warning("--fail-fast does not apply to SLURM: submitted jobs run independently.")
        sub = slurm.submit(grid, exp, stages, ckpt, todo, todo_stages, _dependants(grid))
        counts = slurm.wait(sub, bar) if wait else {"submitted": len(sub.jobs), "queued": len(sub.live)}
    elif kind == "local":
        counts = _run_local(workers=workers, progress=progress, **ctx)
    else:
        raise ValueError(f"executor must be 'local' or 'slurm', got {kind!r}.")
    states = [run_state(run_dir(exp, r.run_id))[0] for r in runs]
    return {
        "runs": len(runs),
        "done": states.count("done"),
        "failed": states.count("failed") + states.count("corrupt"),
        "skipped": len(runs) - len(todo),
        **counts,
    }


# -------------------------------------------------------------------------------------- local


def _cleanup(grid: GridSpec, exp: Path, ckpt: Path, dependants: Sequence[RunSpec]) -> None:
    remove_checkpoint(grid.keep_checkpoints, exp, ckpt, dependants)


def _dependants(grid: GridSpec) -> dict[str, list[RunSpec]]:
    """Every run of every seed of the grid, by stage id (checkpoints go only when all are done)."""
    out: dict[str, list[RunSpec]] = {}
    for r in expand_grid(grid)[1]:
        if r.stage is not None:
            out.setdefault(r.stage.stage_id, []).append(r)
    return out


def _groups(stages, todo) -> tuple[list[RunSpec], dict[str, list[RunSpec]]]:
    free = [r for r in todo if r.stage is None]
    by_stage: dict[str, list[RunSpec]] = {s.stage_id: [] for s in stages}
    for r in todo:
        if r.stage is not None:
            by_stage[r.stage.stage_id].append(r)
    return free, {k: v for k, v in by_stage.items() if v}


def _run_local(*, grid, exp, stages, ckpt, todo, fail_fast, bar, progress, workers) -> dict:
    """Stage by stage in this process (or ``_run_pool``). SIGTERM/SIGUSR2 stop it with ``Preempted``:
    at the running stage's or run's next optimizer step (after saving its resume state), or at the
    end of the running stage or run when it is not training."""
    if workers > 1:
        return _run_pool(
            grid=grid,
            exp=exp,
            stages=stages,
            ckpt=ckpt,
            todo=todo,
            fail_fast=fail_fast,
            bar=bar,
            workers=workers,
        )
    with catch_preemption():
        return _run_serial(grid, exp, stages, ckpt, todo, fail_fast, bar, progress)


def _run_serial(grid, exp, stages, ckpt, todo, fail_fast, bar, progress) -> dict:
    free, by_stage = _groups(stages, todo)
    counts = {"ran": 0, "stages_trained": 0, "busy": 0}
    all_runs, root = _dependants(grid), str(checkpoint_root(grid, exp))
    work = [(None, free)] + [(sid, runs) for sid, runs in by_stage.items()]
    for stage_id, runs in work:
        job = do_run  # or fail_run: a failed stage's runs are recorded failed, not started
        if stage_id is not None:
            stage = next(s for s in stages if s.stage_id == stage_id)
            stage_state = stage_job(stage, str(exp), str(ckpt[stage_id]), progress)
            stop_if_requested()
            counts["stages_trained"] += stage_state == "trained"
            bar.stage_finished(stage_id, stage_seconds(exp, stage_id))
            if stage_state == "busy":  # another worker trains it: its runs wait for the next `xitt run`
                counts["busy"] += len(runs)
                continue
            job = fail_run if stage_state == "failed" else do_run
        for run in runs:
            folder = str(ckpt[stage_id]) if stage_id else None
            state = (
                do_run(run, str(exp), folder, progress, root)
                if job is do_run
                else fail_run(run, str(exp), folder)
            )
            counts["ran"] += int(state in ("done", "failed"))
            counts["busy"] += int(state == "busy")
            if state in ("done", "failed"):
                bar.update(state, run.run_id, run_seconds(exp, run.run_id))
            if state == "failed" and fail_fast:
                log.error("stopping after the first failure (--fail-fast): %s", run.run_id)
                return {**counts, "stopped": 1}
            stop_if_requested()
        if stage_id is not None:
            _cleanup(grid, exp, ckpt[stage_id], all_runs.get(stage_id, runs))
    return counts


def _die_with_parent(parent: int) -> None:
    """Pool-worker initializer: a worker whose parent `xitt run` is killed gets SIGTERM (Linux
    prctl PR_SET_PDEATHSIG) instead of idling on as an orphan; its claim then goes stale at once.
    A worker that is training saves its resume state first (``_in_worker``)."""
    import ctypes
    import signal

    _WORKER["parent"] = parent
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: workers notice the dead parent at their next task
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


_WORKER: dict[str, int] = {}


def _in_worker(job, *args):
    """A pool task: ``job(*args)``. Preempted with the parent gone (the SIGTERM of PR_SET_PDEATHSIG;
    the resume state is saved, the claim released), the worker exits instead of waiting on a queue
    nobody will write to again."""
    try:
        return job(*args)
    except Preempted as err:
        if os.getppid() != _WORKER.get("parent"):
            os._exit(128 + err.signum)
        raise


def _run_pool(*, grid, exp, stages, ckpt, todo, fail_fast, bar, workers) -> dict:
    """A small process pool (spawned workers, no bars); a stage's runs are submitted when it is done.
    SIGTERM/SIGUSR2 to ``xitt run`` reach every worker: each saves its resume state and stops; the
    waiting work is cancelled and ``Preempted`` raised once the workers are back."""
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    free, by_stage = _groups(stages, todo)
    stage_of, all_runs, root = (
        {s.stage_id: s for s in stages},
        _dependants(grid),
        str(checkpoint_root(grid, exp)),
    )
    counts = {"ran": 0, "stages_trained": 0, "busy": 0}
    left = {sid: len(runs) for sid, runs in by_stage.items()}
    stopped, preempted = False, None
    with (
        catch_preemption(forward=_to_children),
        ProcessPoolExecutor(
            workers, mp_context=mp.get_context("spawn"), initializer=_die_with_parent, initargs=(os.getpid(),)
        ) as pool,
    ):
        pending = {
            pool.submit(_in_worker, stage_job, stage_of[sid], str(exp), str(ckpt[sid])): ("stage", sid)
            for sid in by_stage
        }
        pending.update(
            {pool.submit(_in_worker, do_run, r, str(exp), None, False, root): ("run", r) for r in free}
        )
        while pending:
            finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for fut in finished:
                what, item = pending.pop(fut)
                try:
                    state = fut.result()
                except Preempted as err:
                    state, preempted = "preempted", err.signum
                except Exception as err:
                    log.error("worker for %s died: %s", item if what == "stage" else item.run_id, err)
                    state = "failed"
                if what == "stage":
                    counts["stages_trained"] += state == "trained"
                    bar.stage_finished(item, stage_seconds(exp, item))
                    if state == "busy":  # another worker trains it: its runs wait for the next `xitt run`
                        counts["busy"] += len(by_stage[item])
                    elif not stopped and state != "preempted":  # a failed stage's runs: recorded failed
                        job = fail_run if state == "failed" else do_run
                        extra = (False, root) if job is do_run else ()
                        pending.update(
                            {
                                pool.submit(_in_worker, job, r, str(exp), str(ckpt[item]), *extra): ("run", r)
                                for r in by_stage[item]
                            }
                        )
                    continue
                counts["ran"] += state in ("done", "failed")
                counts["busy"] += state == "busy"
                if state in ("done", "failed"):
                    bar.update(state, item.run_id, run_seconds(exp, item.run_id))
                if item.stage is not None:
                    sid = item.stage.stage_id
                    left[sid] -= 1
                    if left[sid] == 0:
                        _cleanup(grid, exp, ckpt[sid], all_runs.get(sid, []))
                if state == "failed" and fail_fast and not stopped:
                    log.error("stopping after the first failure (--fail-fast): %s", item.run_id)
                    stopped = _cancel_waiting(pending)
            preempted = preempted or requested()
            if preempted and not stopped:
                log.warning("preempted: the workers save their resume states; waiting work is not started")
                stopped = _cancel_waiting(pending)
    if preempted:
        raise Preempted(preempted)
    return {**counts, **({"stopped": 1} if stopped else {})}


def _cancel_waiting(pending: dict) -> bool:
    """Cancel the submitted work no worker has started yet; True."""
    for fut in list(pending):
        if fut.cancel():
            pending.pop(fut)
    return True


def _to_children(signum: int) -> None:
    """Pass a preemption signal on to the pool's workers (`kill <pid of xitt run>` reaches it alone)."""
    import multiprocessing as mp

    for child in mp.active_children():
        try:
            os.kill(child.pid, signum)
        except OSError:  # already gone
            pass
