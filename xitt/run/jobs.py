"""The bodies of the jobs of a grid: train a stage, train + evaluate a run, record a failed stage's
runs, remove a stage checkpoint. The same functions run in ``xitt run`` itself (local), in pool workers
and in SLURM jobs (``xitt/run/slurm.py``); ``xitt/run/executors.py`` decides what runs where.

None raises for a failed stage or run: each records ``failed`` with its error (traceback in
``train.log``, last line in ``stage.json`` / ``result.json``). An O_EXCL claim per folder keeps two
workers off the same stage or run; nothing waits on another worker's claim ('busy' instead).

Preemption (SIGTERM/SIGUSR2, ``xitt/run/preempt.py``): training saves a resume state in
``<checkpoint root>/resume/<id>`` and raises ``Preempted``, which passes through (the stage or run is
neither done nor failed; its claim is released) to the executor. A stage or run that ends, done or
failed, deletes its resume state.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import sys
import threading
import traceback
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from xitt.grid.spec import RunSpec, StageSpec, TrainSpec
from xitt.run.memory import retry_on_oom
from xitt.run.preempt import catch_preemption, clear_resume, resume_folder
from xitt.run.progress import interactive, not_detail
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
    run_state,
    stage_dir,
    stage_ready,
    write_config,
    write_result,
    write_stage,
)
from xitt.train.checkpoint import missing_files

log = logging.getLogger("xitt")
HEARTBEAT_S = 600


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


def do_stage(
    stage: StageSpec | TrainSpec, exp_dir: str, ckpt: str, progress: bool = False, kind: str = "stage"
) -> str:
    """Train one intermediate stage (or, with ``kind="training"``, one shared target training) unless
    it is ready; 'done' | 'failed' | 'busy'. Raises only ``Preempted``. Its resume state lives in
    ``<ckpt's parent>/resume/<id>``."""
    return _isolated(f"{kind} {node_id(stage)}", _do_stage, stage, exp_dir, ckpt, progress, kind)


def node_id(node: StageSpec | TrainSpec) -> str:
    return node.train_id if isinstance(node, TrainSpec) else node.stage_id


def _train_node(node: StageSpec | TrainSpec, exp: Path, ckpt_dir: Path, progress: bool, resume: Path):
    """(record, memory) of training ``node``: an intermediate stage from the encoder, or a shared target
    training from its stage's checkpoint (or the encoder); OOM retries halve the micro-batch."""
    if isinstance(node, TrainSpec):
        from xitt.train.shared import train_target

        start = node.encoder_path
        if node.stage is not None:
            start = str(ckpt_dir.parent / node.stage.stage_id)  # stage checkpoints live beside it
            if done_stage(exp, node.stage.stage_id) is None or missing_files(start):
                raise RuntimeError(stage_missing(exp, node.stage.stage_id, start))
        return retry_on_oom(
            lambda cfgs: train_target(
                dataclasses.replace(node, train=cfgs[node.task]),
                start,
                ckpt_dir,
                progress=progress,
                resume=resume,
            ),
            {node.task: node.train},
            f"training {node.train_id}",
        )
    from xitt.train.chain import train_stage

    return retry_on_oom(
        lambda cfgs: train_stage(
            dataclasses.replace(node, train=cfgs), ckpt_dir, progress=progress, resume=resume
        ),
        node.train,
        f"stage {node.stage_id}",
    )


def _do_stage(node, exp_dir: str, ckpt: str, progress: bool, kind: str) -> str:
    exp, ckpt_dir, nid = Path(exp_dir), Path(ckpt), node_id(node)
    folder = stage_dir(exp, nid, kind)
    if stage_ready(exp, nid, ckpt_dir, kind):
        return "done"
    claim = Claim(folder)
    if not claim.acquire():
        return "busy"
    started, resume = now(), resume_folder(ckpt_dir.parent, nid)
    spec = node.to_dict() if kind == "training" else {**dataclasses.asdict(node), "stage_id": nid}
    versions = {node.task: node.task_version} if kind == "training" else dict(node.task_versions)
    try:
        with run_log(folder), heartbeat(claim), catch_preemption():
            tasks = node.task if kind == "training" else "+".join(node.intermediate_tasks)
            log.info("%s %s: training %s on %s (seed %d)", kind, nid, node.encoder, tasks, node.seed)
            write_config(folder, {**spec, "checkpoint": str(ckpt_dir)})
            try:
                record, memory = _train_node(node, exp, ckpt_dir, progress, resume)
                # the record names the node as the grid asked for it, and what memory allowed
                record = dataclasses.replace(record, stage_id=nid, spec=spec, memory=memory)
            except Exception as err:
                log.error("%s %s failed:\n%s", kind, nid, traceback.format_exc())
                record = StageRecord(nid, spec, "failed", error=f"{type(err).__name__}: {err}")
            record = dataclasses.replace(
                record, task_versions=versions, started=started, finished=now(), **_provenance()
            )
            write_stage(exp, record, kind)
            clear_resume(resume)
        return record.status
    finally:
        claim.release()


def do_run(
    run: RunSpec, exp_dir: str, ckpt: str | None, progress: bool = False, resume_root: str | None = None
) -> str:
    """Train + evaluate one target run unless done (evaluate only when it has a shared training:
    ``ckpt`` is then that training's checkpoint, else its stage's); 'done' | 'failed' | 'skipped' |
    'busy'. Raises only ``Preempted``. Its resume state lives in ``<resume_root>/resume/<run_id>``
    (none without a root)."""
    return _isolated(f"run {run.run_id}", _do_run, run, exp_dir, ckpt, progress, resume_root)


def _result(run: RunSpec, exp: Path, ckpt: str | None, folder: Path, progress: bool, resume: Path | None):
    """(RunResult, stage record, training record) of one run: evaluated from its shared training's
    checkpoint, or trained from its stage's checkpoint (or the encoder) and evaluated."""
    stage = done_stage(exp, run.stage.stage_id) if run.stage is not None else None
    if run.training is not None:
        training = done_stage(exp, run.training.train_id, "training")
        if training is None or missing_files(ckpt):
            raise RuntimeError(start_missing(exp, run, ckpt))
        from xitt.train.shared import evaluate_target

        return evaluate_target(run, ckpt, out_dir=folder), stage, training
    encoder_path = run.encoder_path
    if run.stage is not None:
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
            resume=resume,
        ),
        {run.target: run.target_train},
        f"run {run.run_id}",
    )
    return (
        dataclasses.replace(result, extra={**result.extra, **({"memory": memory} if memory else {})}),
        stage,
        None,
    )


def _do_run(run: RunSpec, exp_dir: str, ckpt: str | None, progress: bool, resume_root: str | None) -> str:
    exp = Path(exp_dir)
    folder = run_dir(exp, run.run_id)
    if run_state(folder)[0] == "done":
        return "skipped"
    claim = Claim(folder)
    if not claim.acquire():
        return "busy"
    started, stage, training = now(), None, None
    resume = resume_folder(resume_root, run.run_id) if resume_root else None
    try:
        with run_log(folder), heartbeat(claim), catch_preemption():
            shutil.rmtree(folder / "predictions", ignore_errors=True)
            write_config(folder, run.to_dict())
            log.info("run %s: start", run.run_id, extra={"detail": True})
            try:
                result, stage, training = _result(run, exp, ckpt, folder, progress, resume)
                # the result names the run as the grid asked for it, and what memory allowed
                result = dataclasses.replace(result, run_id=run.run_id, spec=run.to_dict())
                log.info("run %s: done %s", run.run_id, json.dumps(result.scores))
            except Exception as err:
                log.error("run %s failed:\n%s", run.run_id, traceback.format_exc())
                result = RunResult(run.run_id, run.to_dict(), "failed", error=f"{type(err).__name__}: {err}")
            write_result(folder, _complete(result, run, stage, started, training))
            clear_resume(resume)
        return result.status
    finally:
        claim.release()


def stage_missing(exp: Path, stage_id: str, ckpt: str | None, kind: str = "stage") -> str:
    what = "intermediate stage" if kind == "stage" else "shared target training"
    try:
        record = read_stage(exp, stage_id, kind)
    except CorruptResult as err:
        return f"{what} {stage_id} is not available: {err}"
    why = (record.error if record else None) or f"no trained checkpoint at {ckpt}"
    return f"{what} {stage_id} is not available: {why}"


def start_missing(exp: Path, run: RunSpec, ckpt: str | None) -> str:
    """Why ``run`` cannot start: its shared training's error, or (when that never ran) its stage's."""
    if run.training is not None:
        tried = stage_dir(exp, run.training.train_id, "training") / "training.json"
        if tried.exists() or run.stage is None:
            return stage_missing(exp, run.training.train_id, ckpt, "training")
    return stage_missing(exp, run.stage.stage_id, ckpt)


def _complete(
    result: RunResult,
    run: RunSpec,
    stage: StageRecord | None,
    started: str,
    training: StageRecord | None = None,
) -> RunResult:
    """The chain's RunResult with what only the executor knows: the stage and the shared training it
    built on, provenance, times. A run with a shared training records its id (``extra.training_id``),
    the training's English-dev scores and steps, and its wall time split into ``intermediate``,
    ``target_training`` (the shared training's, counted once on its node) and ``eval``."""
    wall = {"intermediate": float(stage.wall_time if stage else 0.0)} if run.stage else {}
    if run.training is not None:
        wall["target_training"] = float(training.wall_time if training else 0.0)
    nodes = [r for r in (stage, training) if r is not None]
    steps = (
        (training.steps, training.best_step)
        if training
        else (result.extra.get("steps"), result.extra.get("best_step"))
    )
    return dataclasses.replace(
        result,
        wall_time={**wall, **result.wall_time},
        dev_scores=dict(training.dev_scores) if training else dict(result.dev_scores),
        task_versions={
            run.target: run.target_version,
            **{k: v for r in nodes for k, v in r.task_versions.items()},
        },
        data_fingerprints={
            **{k: v for r in nodes for k, v in r.data_fingerprints.items()},
            **result.data_fingerprints,
        },
        data={**{k: v for r in nodes for k, v in r.data.items()}, **result.data},
        started=started,
        finished=now(),
        extra={
            "stage_id": run.stage.stage_id if run.stage else None,
            "stage_dev_scores": dict(stage.dev_scores) if stage else {},
            **({"training_id": run.training.train_id} if run.training else {}),
            "steps": steps[0],
            "best_step": steps[1],
            **({"memory": result.extra["memory"]} if "memory" in result.extra else {}),
            **({"training_memory": dict(training.memory)} if training and training.memory else {}),
        },
        **_provenance(),
    )


def console(progress: bool) -> None:
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


def remove_checkpoint(keep: bool, exp: Path, ckpt: Path, dependants: Sequence[RunSpec]) -> bool:
    """Remove a stage (or shared training) checkpoint once all its dependants (every seed of the grid)
    are done, unless
    ``keep``; True when it was removed. Also the body of the SLURM cleanup job."""
    if keep or not ckpt.exists():
        return False
    if all(run_state(run_dir(exp, r.run_id))[0] == "done" for r in dependants):
        shutil.rmtree(ckpt, ignore_errors=True)
        log.info("removed checkpoint %s (all %d dependants done)", ckpt, len(dependants))
        return True
    return False


def stage_job(
    stage: StageSpec | TrainSpec, exp_dir: str, ckpt: str, progress: bool = False, kind: str = "stage"
) -> str:
    """Train the stage (or shared training) if needed: 'trained' | 'done' | 'failed' | 'busy' (another
    live worker holds it; nothing waits for it, so no job holds a GPU while another trains)."""
    nid = node_id(stage)
    if stage_ready(Path(exp_dir), nid, Path(ckpt), kind):
        return "done"
    if is_claimed(stage_dir(exp_dir, nid, kind)):
        return "busy"
    state = do_stage(stage, exp_dir, ckpt, progress, kind)
    return "trained" if state == "done" else state


def fail_run(run: RunSpec, exp_dir: str, ckpt: str | None) -> str:
    """Record a dependant of a failed stage (or shared training) as failed with its error, without
    starting it:
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
            error = start_missing(exp, run, ckpt)
            log.error("run %s not started: %s", run.run_id, error)
            write_config(folder, run.to_dict())
            result = RunResult(run.run_id, run.to_dict(), "failed", error=f"RuntimeError: {error}")
            write_result(folder, _complete(result, run, None, now()))
        return "failed"
    finally:
        claim.release()
