"""Run a grid as a DAG: intermediate stages first, then the target runs that reuse them.

``execute`` is what ``xitt run`` calls. It expands the grid, checks the encoder folders, prepares
every data split the pending work needs (``xitt prepare``: verified copies in the data dir; then
the hub is switched off for the runs), then runs what is not done yet:

* ``local`` (default): sequentially, stage by stage (a stage, then all its target runs, then its
  checkpoint is removed unless ``keep_checkpoints``), or with ``workers > 1`` on a small process
  pool that submits a stage's runs as soon as the stage is done;
* ``slurm``: submitit job arrays per DAG level (one array of stages, one array of dependent runs
  per stage with ``afterok`` on that stage's task, one array of ``none`` runs), requeued on
  preemption/timeout (the jobs are ``Checkpointable``; a requeued job takes over its own claim).

Idempotent: finished runs and stages are skipped; failed, corrupt or half-written ones re-run;
an O_EXCL claim per folder keeps two workers off the same run. A failing run records its error
(traceback in ``train.log``, last line in ``result.json``) and the others go on unless
``fail_fast``. Stage checkpoints live in ``grid.checkpoint_dir/<stage_id>``, by default outside the
repository (``checkpoint_path``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import sys
import threading
import traceback
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from xitt.data import loaders as xdata
from xitt.grid.spec import GridSpec, RunSpec, SpecError, StageSpec, expand_grid
from xitt.run.memory import retry_on_oom
from xitt.run.progress import GridProgress, interactive, not_detail
from xitt.run.store import (
    Claim,
    CorruptResult,
    RunResult,
    StageRecord,
    done_stage,
    is_claimed,
    now,
    read_stage,
    run_dir,
    run_seconds,
    run_state,
    stage_dir,
    stage_ready,
    stage_seconds,
    write_config,
    write_result,
    write_stage,
)
from xitt.tasks import registry
from xitt.train.checkpoint import missing_files

log = logging.getLogger("xitt")
HEARTBEAT_S = 600
DEFAULT_CHECKPOINT_DIR = "~/.cache/xitt/checkpoints"


# ------------------------------------------------------------------------------ helpers on disk


def checkpoint_path(grid_or_dir: GridSpec | str | None, exp_dir: Path, stage_id: str) -> Path:
    """Where stage ``stage_id`` keeps its checkpoint: ``<checkpoint_dir>/<stage_id>`` when the grid sets
    ``checkpoint_dir``, else ``<XITT_CHECKPOINT_DIR or ~/.cache/xitt/checkpoints>/<exp name>-<hash of the
    experiment folder>/<stage_id>``: outside the repository (a stage checkpoint of XLM-R large is ~2.2 GB)
    and apart for every experiment folder. Never inside a stage or run folder, whose files the
    checkpoint save's clean-up would otherwise delete."""
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
    return folder / stage_id


@contextmanager
def run_log(folder: Path):
    """Send the ``xitt`` logger to ``folder/train.log`` (appending: a re-run keeps the old attempt's log)."""
    folder.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(folder / "train.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield
    finally:
        log.removeHandler(handler)
        handler.close()


@contextmanager
def heartbeat(claim: Claim):
    """Touch the claim every HEARTBEAT_S so that a long stage never looks stale to other workers."""
    stop = threading.Event()

    def beat():
        while not stop.wait(HEARTBEAT_S):
            claim.touch()

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()


def _provenance() -> dict[str, Any]:
    from xitt.run.provenance import device_name, git_sha, package_versions

    return {"packages": package_versions(), "git_sha": git_sha(), "device": device_name()}


# --------------------------------------------------------------------------------- job bodies


def _isolated(what: str, work, *args) -> str:
    """``work(*args)``, but a folder that cannot be claimed or written (permissions, a full disk) fails
    this one stage or run, with a logged reason, instead of aborting the whole grid."""
    try:
        return work(*args)
    except OSError as err:
        log.error(
            "%s: its folder cannot be claimed or written (%s: %s); the grid goes on",
            what,
            type(err).__name__,
            err,
        )
        return "failed"


def do_stage(stage: StageSpec, exp_dir: str, ckpt: str, progress: bool = False) -> str:
    """Train one intermediate stage unless it is ready; 'done' | 'failed' | 'busy'. Never raises."""
    return _isolated(f"stage {stage.stage_id}", _do_stage, stage, exp_dir, ckpt, progress)


def _do_stage(stage: StageSpec, exp_dir: str, ckpt: str, progress: bool) -> str:
    exp, ckpt_dir = Path(exp_dir), Path(ckpt)
    folder = stage_dir(exp, stage.stage_id)
    if stage_ready(exp, stage.stage_id, ckpt_dir):
        return "done"
    claim = Claim(folder)
    if not claim.acquire():
        return "busy"
    started = now()
    try:
        with run_log(folder), heartbeat(claim):
            log.info(
                "stage %s: training %s on %s (seed %d)",
                stage.stage_id,
                stage.encoder,
                "+".join(stage.intermediate_tasks),
                stage.seed,
            )
            write_config(
                folder, {**dataclasses.asdict(stage), "stage_id": stage.stage_id, "checkpoint": str(ckpt_dir)}
            )
            try:
                from xitt.train.chain import train_stage

                record, memory = retry_on_oom(
                    lambda cfgs: train_stage(
                        dataclasses.replace(stage, train=cfgs), ckpt_dir, progress=progress
                    ),
                    stage.train,
                    f"stage {stage.stage_id}",
                )  # the record names the stage as the grid asked for it, and what memory allowed
                record = dataclasses.replace(
                    record, stage_id=stage.stage_id, spec=dataclasses.asdict(stage), memory=memory
                )
            except Exception as err:
                log.error("stage %s failed:\n%s", stage.stage_id, traceback.format_exc())
                record = StageRecord(
                    stage.stage_id, dataclasses.asdict(stage), "failed", error=f"{type(err).__name__}: {err}"
                )
            record = dataclasses.replace(
                record,
                task_versions=dict(stage.task_versions),
                started=started,
                finished=now(),
                **_provenance(),
            )
            write_stage(exp, record)
        return record.status
    finally:
        claim.release()


def do_run(run: RunSpec, exp_dir: str, ckpt: str | None, progress: bool = False) -> str:
    """Train + evaluate one target run unless done; 'done' | 'failed' | 'skipped' | 'busy'. Never raises."""
    return _isolated(f"run {run.run_id}", _do_run, run, exp_dir, ckpt, progress)


def _do_run(run: RunSpec, exp_dir: str, ckpt: str | None, progress: bool) -> str:
    exp = Path(exp_dir)
    folder = run_dir(exp, run.run_id)
    if run_state(folder)[0] == "done":
        return "skipped"
    claim = Claim(folder)
    if not claim.acquire():
        return "busy"
    started, stage = now(), None
    try:
        with run_log(folder), heartbeat(claim):
            shutil.rmtree(folder / "predictions", ignore_errors=True)
            write_config(folder, run.to_dict())
            log.info("run %s: start", run.run_id, extra={"detail": True})
            try:
                encoder_path = run.encoder_path
                if run.stage is not None:
                    stage = done_stage(exp, run.stage.stage_id)
                    if stage is None or missing_files(ckpt):
                        raise RuntimeError(stage_missing(exp, run.stage.stage_id, ckpt))
                    encoder_path = str(ckpt)
                from xitt.train.chain import run_target

                result, memory = retry_on_oom(
                    lambda cfgs: run_target(
                        dataclasses.replace(run, target_train=cfgs[run.target]),
                        encoder_path,
                        out_dir=folder,
                        progress=progress,
                    ),
                    {run.target: run.target_train},
                    f"run {run.run_id}",
                )  # the result names the run as the grid asked for it, and what memory allowed
                extra = {**result.extra, **({"memory": memory} if memory else {})}
                result = dataclasses.replace(result, run_id=run.run_id, spec=run.to_dict(), extra=extra)
                log.info("run %s: done %s", run.run_id, json.dumps(result.scores))
            except Exception as err:
                log.error("run %s failed:\n%s", run.run_id, traceback.format_exc())
                result = RunResult(run.run_id, run.to_dict(), "failed", error=f"{type(err).__name__}: {err}")
            write_result(folder, _complete(result, run, stage, started))
        return result.status
    finally:
        claim.release()


def stage_missing(exp: Path, stage_id: str, ckpt: str | None) -> str:
    try:
        record = read_stage(exp, stage_id)
    except CorruptResult as err:
        return f"intermediate stage {stage_id} is not available: {err}"
    why = (record.error if record else None) or f"no trained checkpoint at {ckpt}"
    return f"intermediate stage {stage_id} is not available: {why}"


def _complete(result: RunResult, run: RunSpec, stage: StageRecord | None, started: str) -> RunResult:
    """The chain's RunResult with what only the executor knows: the stage it built on, provenance, times."""
    wall = {"intermediate": float(stage.wall_time if stage else 0.0), **result.wall_time}
    return dataclasses.replace(
        result,
        wall_time=wall if run.stage else dict(result.wall_time),
        task_versions={run.target: run.target_version, **(stage.task_versions if stage else {})},
        data_fingerprints={**(stage.data_fingerprints if stage else {}), **result.data_fingerprints},
        data={**(stage.data if stage else {}), **result.data},
        started=started,
        finished=now(),
        extra={
            "stage_id": run.stage.stage_id if run.stage else None,
            "stage_dev_scores": dict(stage.dev_scores) if stage else {},
            "steps": result.extra.get("steps"),
            "best_step": result.extra.get("best_step"),
            **({"memory": result.extra["memory"]} if "memory" in result.extra else {}),
        },
        **_provenance(),
    )


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


def _console(progress: bool) -> None:
    """Log lines on stderr: INFO lines (stages, finished runs; not steps or dev scores, which go to
    train.log) when stderr is not a TTY (no bars there), warnings otherwise."""
    if not progress or any(getattr(h, "_xitt_console", False) for h in log.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING if interactive() else logging.INFO)
    handler.setFormatter(logging.Formatter("[xitt] %(message)s"))
    handler.addFilter(not_detail)
    handler._xitt_console = True
    log.addHandler(handler)
    log.setLevel(logging.INFO)


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
    # A worker killed between writing its result and releasing its claim leaves a done folder
    # that looks claimed; nothing visits done folders again, so clear such claims here.
    pending_ids = {r.run_id for r in todo}
    for run in runs:
        if run.run_id not in pending_ids:
            Claim(run_dir(exp, run.run_id)).clear_if_stale()
    all_runs = _dependants(grid)
    for stage in stages:
        if done_stage(exp, stage.stage_id) is not None:
            Claim(stage_dir(exp, stage.stage_id)).clear_if_stale()
        # left behind when a worker died before its clean-up: no later run would ever remove it
        _cleanup(grid, exp, ckpt[stage.stage_id], all_runs.get(stage.stage_id, []))
    check_encoders(grid)
    _console(progress)
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


def remove_checkpoint(keep: bool, exp: Path, ckpt: Path, dependants: Sequence[RunSpec]) -> bool:
    """Remove a stage checkpoint once all its dependants (every seed of the grid) are done, unless
    ``keep``; True when it was removed. Also the body of the SLURM cleanup job."""
    if keep or not ckpt.exists():
        return False
    if all(run_state(run_dir(exp, r.run_id))[0] == "done" for r in dependants):
        shutil.rmtree(ckpt, ignore_errors=True)
        log.info("removed checkpoint %s (all %d dependants done)", ckpt, len(dependants))
        return True
    return False


def _cleanup(grid: GridSpec, exp: Path, ckpt: Path, dependants: Sequence[RunSpec]) -> None:
    remove_checkpoint(grid.keep_checkpoints, exp, ckpt, dependants)


def stage_job(stage: StageSpec, exp_dir: str, ckpt: str, progress: bool = False) -> str:
    """Train the stage if needed: 'trained' | 'done' | 'failed' | 'busy' (another live worker holds it;
    nothing waits for it, so no job holds a GPU while another trains)."""
    if stage_ready(Path(exp_dir), stage.stage_id, Path(ckpt)):
        return "done"
    if is_claimed(stage_dir(exp_dir, stage.stage_id)):
        return "busy"
    state = do_stage(stage, exp_dir, ckpt, progress)
    return "trained" if state == "done" else state


def fail_run(run: RunSpec, exp_dir: str, ckpt: str | None) -> str:
    """Record a dependant of a failed stage as failed with the stage's error, without starting it:
    'failed' | 'skipped' (done) | 'busy'."""
    return _isolated(f"run {run.run_id}", _fail_run, run, exp_dir, ckpt)


def _fail_run(run: RunSpec, exp_dir: str, ckpt: str | None) -> str:
    exp = Path(exp_dir)
    folder = run_dir(exp, run.run_id)
    if run_state(folder)[0] == "done":
        return "skipped"
    claim = Claim(folder)
    if not claim.acquire():
        return "busy"
    try:
        with run_log(folder):
            error = stage_missing(exp, run.stage.stage_id, ckpt)
            log.error("run %s not started: %s", run.run_id, error)
            write_config(folder, run.to_dict())
            result = RunResult(run.run_id, run.to_dict(), "failed", error=f"RuntimeError: {error}")
            write_result(folder, _complete(result, run, None, now()))
        return "failed"
    finally:
        claim.release()


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
    free, by_stage = _groups(stages, todo)
    counts = {"ran": 0, "stages_trained": 0, "busy": 0}
    all_runs = _dependants(grid)
    work = [(None, free)] + [(sid, runs) for sid, runs in by_stage.items()]
    for stage_id, runs in work:
        job = do_run  # or fail_run: a failed stage's runs are recorded failed, not started
        if stage_id is not None:
            stage = next(s for s in stages if s.stage_id == stage_id)
            stage_state = stage_job(stage, str(exp), str(ckpt[stage_id]), progress)
            counts["stages_trained"] += stage_state == "trained"
            bar.stage_finished(stage_id, stage_seconds(exp, stage_id))
            if stage_state == "busy":  # another worker trains it: its runs wait for the next `xitt run`
                counts["busy"] += len(runs)
                continue
            job = fail_run if stage_state == "failed" else do_run
        for run in runs:
            folder = str(ckpt[stage_id]) if stage_id else None
            state = (
                do_run(run, str(exp), folder, progress) if job is do_run else fail_run(run, str(exp), folder)
            )
            counts["ran"] += int(state in ("done", "failed"))
            counts["busy"] += int(state == "busy")
            if state in ("done", "failed"):
                bar.update(state, run.run_id, run_seconds(exp, run.run_id))
            if state == "failed" and fail_fast:
                log.error("stopping after the first failure (--fail-fast): %s", run.run_id)
                return {**counts, "stopped": 1}
        if stage_id is not None:
            _cleanup(grid, exp, ckpt[stage_id], all_runs.get(stage_id, runs))
    return counts


def _die_with_parent(parent: int) -> None:
    """Pool-worker initializer: a worker whose parent `xitt run` is killed gets SIGTERM (Linux
    prctl PR_SET_PDEATHSIG) instead of idling on as an orphan; its claim then goes stale at once."""
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: workers notice the dead parent at their next task
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _run_pool(*, grid, exp, stages, ckpt, todo, fail_fast, bar, workers) -> dict:
    """A small process pool (spawned workers, no bars); a stage's runs are submitted when it is done."""
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    free, by_stage = _groups(stages, todo)
    stage_of, all_runs = {s.stage_id: s for s in stages}, _dependants(grid)
    counts = {"ran": 0, "stages_trained": 0, "busy": 0}
    left = {sid: len(runs) for sid, runs in by_stage.items()}
    stopped = False
    with ProcessPoolExecutor(
        workers, mp_context=mp.get_context("spawn"), initializer=_die_with_parent, initargs=(os.getpid(),)
    ) as pool:
        pending = {
            pool.submit(stage_job, stage_of[sid], str(exp), str(ckpt[sid])): ("stage", sid)
            for sid in by_stage
        }
        pending.update({pool.submit(do_run, r, str(exp), None): ("run", r) for r in free})
        while pending:
            finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for fut in finished:
                what, item = pending.pop(fut)
                try:
                    state = fut.result()
                except Exception as err:
                    log.error("worker for %s died: %s", item if what == "stage" else item.run_id, err)
                    state = "failed"
                if what == "stage":
                    counts["stages_trained"] += state == "trained"
                    bar.stage_finished(item, stage_seconds(exp, item))
                    if state == "busy":  # another worker trains it: its runs wait for the next `xitt run`
                        counts["busy"] += len(by_stage[item])
                    elif not stopped:  # a failed stage's runs are recorded failed, not started
                        job = fail_run if state == "failed" else do_run
                        pending.update(
                            {
                                pool.submit(job, r, str(exp), str(ckpt[item])): ("run", r)
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
                    stopped = True
                    for other in list(pending):
                        if other.cancel():
                            pending.pop(other)
    return {**counts, **({"stopped": 1} if stopped else {})}
