"""SLURM mode of ``xitt run``: one job per stage and per run, submitted through submitit.

Decisions (issue 11, "jobs that survive"):

* **Failed stages.** A stage job raises when its stage fails, after recording each dependent run
  failed with the stage's error (``fail_run``). Its runs wait with ``afterok`` and
  ``--kill-on-invalid-dep=yes``, so SLURM cancels them without ever starting them.
* **One limit for the whole grid.** ``executor.slurm.max_jobs`` = K slots. Every stage and run job
  is named ``xitt-<experiment>-<slot>`` and carries ``--dependency=singleton``: SLURM starts a job
  only when no earlier job of the same name and user is still pending or running, so at most K
  jobs of the grid run at once. Slots are dealt round robin in submission order (stages, then
  ``none`` runs, then each stage's runs), and a job only ever waits on jobs submitted before it,
  so no slot can deadlock. (Arrays are not used: ``%k`` throttles each array on its own.)
* **Re-running.** Every submitted job id is kept in ``<exp>/slurm/jobs.json`` (``stage:<id>``,
  ``run:<id>``, ``cleanup:<id>``). A new ``xitt run`` asks ``squeue`` which of them are still
  pending or running, does not submit those again, and hangs new runs on a live stage job. A stage
  job never waits on another worker's claim: it fails at once instead of holding a GPU.
* **Checkpoints.** Per stage, a cleanup job (1 CPU, no GPU, no slot) with ``afterany`` on the
  stage job and its run jobs removes the stage checkpoint when every run of the stage (all seeds
  of the grid) is done; the driver does not need to be alive for it.
* **Shared target trainings** (XQuAD and MLQA on SQuAD: ``TrainSpec``) are jobs of their own,
  ``afterok`` on their stage's job; their runs (evaluation only) wait ``afterok`` on the training's
  job, and a cleanup job per training removes its checkpoint (encoder + head) once they are done.
  A failed training records its runs failed and fails, like a stage.

* **Preemption.** submitit puts ``--signal=USR2@90`` in every sbatch header (USR2 90 s before the
  time limit); SLURM sends SIGTERM when it preempts a job. Either one, during training, makes the
  job save a resume state at its next optimizer step (``xitt/train/resume.py``) and stop; on USR2
  the job then requeues itself through submitit (at most ``max_requeue`` times), after SIGTERM
  SLURM requeues it (``PreemptMode=REQUEUE``). The requeued job resumes from the saved step.
  Outside training USR2 requeues at once (submitit's handler) and SIGTERM is only logged.

``xitt run`` still waits for its jobs and reports them; killing it leaves the jobs running.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from submitit.helpers import Checkpointable

from xitt.grid.spec import GridSpec, RunSpec
from xitt.run.preempt import Preempted
from xitt.run.store import run_seconds, stage_seconds

log = logging.getLogger("xitt")
JOBS_FILE = "jobs.json"
ENDED = ("COMPLETED", "COMPLETING", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY")


class StageFailed(RuntimeError):
    """A stage job's stage did not train: SLURM then cancels its runs (afterok)."""


class SlurmJob(Checkpointable):
    """A stage, run or cleanup as a SLURM job. On preemption or timeout submitit calls ``checkpoint``,
    whose default requeues the job with the same arguments; the requeued job takes over its own claim
    (same SLURM job id) and goes on from the node's or run's resume state (``<resume_root>/resume``)."""

    def __call__(
        self,
        what: str,
        spec,
        exp_dir: str,
        ckpt: str | None,
        runs: Sequence[RunSpec] = (),
        resume_root: str | None = None,
    ) -> str:
        from xitt.run import jobs as ex

        ex.console(True)
        requeue = signal.getsignal(signal.SIGUSR2)  # submitit's: checkpoint, requeue, exit
        try:
            if what in ("stage", "training"):
                return _stage(spec, exp_dir, ckpt, runs, what)
            if what == "cleanup":
                return "removed" if ex.remove_checkpoint(False, Path(exp_dir), Path(ckpt), runs) else "kept"
            return ex.do_run(spec, exp_dir, ckpt, resume_root=resume_root)
        except Preempted as err:  # the resume state is saved
            if err.signum == signal.SIGUSR2 and callable(requeue):
                requeue(err.signum, None)  # requeues this job and exits
            raise  # SIGTERM: SLURM requeues a preempted job itself; no result is written


def _stage(stage, exp_dir: str, ckpt: str, runs: Sequence[RunSpec], kind: str = "stage") -> str:
    """Train the stage (or shared training); on failure record its runs failed (each with the checkpoint
    it starts from) and raise, so that afterok never holds."""
    from xitt.run import jobs as ex

    nid = ex.node_id(stage)
    state = ex.stage_job(stage, exp_dir, ckpt, kind=kind)
    if state == "busy":
        raise StageFailed(
            f"{kind} {nid} is claimed by another live worker; this job does not wait for it "
            "(its runs are not started). Run `xitt run` again once that worker is done."
        )
    if state == "failed":
        for run in runs:
            start = Path(ckpt).parent / run.training.train_id if run.training else Path(ckpt)
            ex.fail_run(run, exp_dir, str(start))
        raise StageFailed(ex.stage_missing(Path(exp_dir), nid, ckpt, kind))
    return state


# ---------------------------------------------------------------------------------- submission


def _executor(grid: GridSpec, exp: Path, cleanup: bool = False):
    """A submitit executor for the grid's stage and run jobs, or for its cleanup jobs (1 CPU, 1 GB,
    no GPU, 10 minutes)."""
    import submitit

    opts = grid.executor.slurm
    ex = submitit.AutoExecutor(
        folder=exp / "slurm" / "%j", cluster="slurm", slurm_max_num_timeout=opts.max_requeue
    )
    params: dict[str, Any] = {"timeout_min": opts.timeout_min, "cpus_per_task": opts.cpus_per_task}
    if opts.gpus_per_node:
        params["gpus_per_node"] = opts.gpus_per_node
    if opts.mem_gb:
        params["mem_gb"] = opts.mem_gb
    if cleanup:
        params = {"timeout_min": 10, "cpus_per_task": 1, "mem_gb": 1}
    for key in ("partition", "account", "qos", "constraint"):
        if getattr(opts, key):
            params[f"slurm_{key}"] = getattr(opts, key)
    if opts.setup:
        params["slurm_setup"] = list(opts.setup)
    ex.update_parameters(**params)
    return ex


class Submitter:
    """Submits single jobs with a slot (singleton name) and dependencies; records every job id."""

    def __init__(self, grid: GridSpec, exp: Path, live: dict[str, str]):
        self.grid, self.exp, self.job = grid, exp, SlurmJob()
        self.ex, self.cleanup_ex = _executor(grid, exp), _executor(grid, exp, cleanup=True)
        self.jobs: dict[str, Any] = {}  # key -> submitit job (new ones)
        self.live = dict(live)  # key -> job id of a pending/running job of an earlier `xitt run`
        self.slot = 0

    def job_id(self, key: str) -> str | None:
        return self.jobs[key].job_id if key in self.jobs else self.live.get(key)

    def submit(self, key: str, args: tuple, after: Sequence[str] = (), kind: str = "afterok") -> None:
        if key in self.live:
            return
        opts = self.grid.executor.slurm
        deps = [f"{kind}:{':'.join(after)}"] if after else []
        extra = dict(opts.additional_parameters)
        ex = self.ex
        if key.startswith("cleanup:"):  # tiny: no GPU, no slot
            name, ex = f"xitt-{self.grid.experiment}-cleanup", self.cleanup_ex
        else:
            name = f"xitt-{self.grid.experiment}-{self.slot % opts.max_jobs}"
            self.slot += 1
            deps.append("singleton")
        if deps:
            extra.update(dependency=",".join(deps), kill_on_invalid_dep="yes")
        ex.update_parameters(name=name, slurm_additional_parameters=extra)
        self.jobs[key] = ex.submit(self.job, *args)

    def save(self) -> None:
        ids = {**self.live, **{k: j.job_id for k, j in self.jobs.items()}}
        path = self.exp / "slurm" / JOBS_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(ids, indent=1, sort_keys=True))
        os.replace(tmp, path)


def live_jobs(exp: Path) -> dict[str, str]:
    """The jobs of ``<exp>/slurm/jobs.json`` that squeue still lists as pending or running."""
    path = exp / "slurm" / JOBS_FILE
    if not path.exists():
        return {}
    known = json.loads(path.read_text())
    try:
        out = subprocess.run(
            ["squeue", "-h", "-u", getpass.getuser(), "-o", "%i %T"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as err:
        detail = (getattr(err, "stderr", "") or str(err)).strip()
        raise RuntimeError(
            f"squeue failed ({detail}): cannot tell which jobs of {path} are still queued, so nothing "
            "was submitted. Fix SLURM access, or delete that file to submit every pending job again."
        ) from err
    states = dict(line.split() for line in out.splitlines() if line.strip())
    return {key: jid for key, jid in known.items() if states.get(jid, "COMPLETED") not in ENDED}


def submit(grid, exp: Path, stages, ckpt, todo, todo_stages, dependants, todo_trainings=()) -> Submitter:
    """Submit what is pending and not already queued: stages, shared trainings (afterok on their stage),
    runs (afterok on their training, else their stage), a cleanup per stage and per training.
    ``ckpt`` maps every stage and training id to its checkpoint; ``dependants`` maps them to every run
    of the grid that needs them."""
    from xitt.run.executors import Work, checkpoint_root

    del stages  # the pending work names its stages
    root = str(checkpoint_root(grid, exp))
    work = Work(grid, exp, list(todo_stages), ckpt, root, list(todo), list(todo_trainings), False, None)
    (exp / "slurm").mkdir(parents=True, exist_ok=True)
    sub = Submitter(grid, exp, live_jobs(exp))
    if sub.live:
        log.info(
            "%d job(s) of an earlier `xitt run` are still queued or running; not submitted again",
            len(sub.live),
        )
    groups = work.groups()
    for stage, _, runs in groups:
        if stage is not None:
            sid = stage.stage_id
            sub.submit(f"stage:{sid}", ("stage", stage, str(exp), str(ckpt[sid]), runs))
    for stage, trainings, runs in groups:
        after = [sub.job_id(f"stage:{stage.stage_id}")] if stage is not None else []
        for training in trainings:
            tid = training.train_id
            mine = [r for r in runs if r.training and r.training.train_id == tid]
            sub.submit(f"training:{tid}", ("training", training, str(exp), str(ckpt[tid]), mine), after=after)
        for run in runs:
            tid = run.training.train_id if run.training else None
            # its shared training's job (none when the training is ready), else its stage's
            upstream = [sub.job_id(f"training:{tid}")] if tid else after
            sub.submit(
                f"run:{run.run_id}",
                ("run", run, str(exp), work.start(run), (), root),
                after=[a for a in upstream if a],
            )
    for node in [t for _, ts, _ in groups for t in ts] + [
        r.stage for _, _, rs in groups for r in rs if r.stage
    ]:
        _cleanup_job(sub, node, work, dependants)
    sub.save()
    log.info("submitted %d job(s); logs under %s", len(sub.jobs), exp / "slurm")
    return sub


def _cleanup_job(sub: Submitter, node, work, dependants) -> None:
    """A cleanup job for a stage or shared training checkpoint that new jobs use: afterany on the node's
    job and every job that reads its checkpoint (its trainings' and runs')."""
    from xitt.run.jobs import node_id

    nid = node_id(node)
    if f"cleanup:{nid}" in sub.jobs or work.grid.keep_checkpoints:
        return
    users = [
        r for r in work.todo if nid in (r.stage and r.stage.stage_id, r.training and r.training.train_id)
    ]
    keys = [f"run:{r.run_id}" for r in users]
    keys += [f"training:{t.train_id}" for t in work.todo_trainings if t.stage and t.stage.stage_id == nid]
    keys += [f"stage:{nid}", f"training:{nid}"]
    if not any(k in sub.jobs for k in keys):
        return  # nothing new reads it: an earlier cleanup (or none needed)
    ended = [sub.job_id(k) for k in keys if sub.job_id(k)]
    sub.live.pop(f"cleanup:{nid}", None)  # a new cleanup waits on the new jobs too
    sub.submit(
        f"cleanup:{nid}",
        ("cleanup", node, str(work.exp), str(work.ckpt[nid]), dependants.get(nid, [])),
        after=ended,
        kind="afterany",
    )


def wait(sub: Submitter, bar) -> dict:
    """Wait for the new and the recognised jobs; counts {ran, stages_trained, busy, submitted, queued,
    checkpoints_removed}."""
    import submitit

    counts = {"ran": 0, "stages_trained": 0, "trainings_trained": 0, "busy": 0}
    counts.update(submitted=len(sub.jobs), queued=len(sub.live))
    counts["checkpoints_removed"] = 0
    folder = sub.exp / "slurm" / "%j"
    jobs = {**{k: submitit.SlurmJob(folder, jid) for k, jid in sub.live.items()}, **sub.jobs}
    order = ("stage", "training", "run", "cleanup")
    for key in sorted(jobs, key=lambda k: order.index(k.split(":")[0])):
        what, name = key.split(":", 1)
        state = _job_state(jobs[key], key)
        if what in ("stage", "training"):
            counts[f"{what}s_trained"] += state == "trained"
            bar.stage_finished(name, stage_seconds(sub.exp, name, what))
        elif what == "cleanup":
            counts["checkpoints_removed"] += state == "removed"
        elif state in ("done", "failed"):
            counts["ran"] += 1
            bar.update(state, name, run_seconds(sub.exp, name))
    return counts


def _job_state(job, name: str) -> str:
    try:
        return job.result()
    except Exception as err:
        first = str(err).strip().splitlines()
        log.error("SLURM job %s (%s) did not finish: %s", job.job_id, name, first[-1] if first else err)
        return "failed"
