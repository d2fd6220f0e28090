"""``xitt run`` with ``workers > 1``: a small process pool that trains the DAG as it unfolds.

Every stage to train is submitted at once; when a stage is done, its shared target trainings and its
other runs are submitted; when a shared training is done, its runs (evaluation only). A failed stage
or training records its runs failed without starting them; a busy one (another live worker trains it)
leaves them for the next `xitt run`. A checkpoint is removed as soon as every run of the grid that
needs it is done. Workers are spawned (no bars) and die with their parent. SIGTERM/SIGUSR2 to
``xitt run`` reach every worker: each saves its resume state and stops; the waiting work is
cancelled and ``Preempted`` raised once the workers are back.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

from xitt.run.jobs import do_run, fail_run, node_id, remove_checkpoint, stage_job
from xitt.run.preempt import Preempted, catch_preemption, requested
from xitt.run.store import run_seconds, stage_seconds

log = logging.getLogger("xitt")


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


class Pool:
    """The futures of one pool run and what each stands for: ("stage", group), ("training", (training,
    its runs)) or ("run", run)."""

    def __init__(self, work, executor):
        self.work, self.executor, self.pending = work, executor, {}
        self.counts = {"ran": 0, "stages_trained": 0, "trainings_trained": 0, "busy": 0}
        self.stopped = False

    def node(self, kind: str, node, what) -> None:
        ckpt = str(self.work.ckpt[node_id(node)])
        fut = self.executor.submit(_in_worker, stage_job, node, str(self.work.exp), ckpt, False, kind)
        self.pending[fut] = (kind, what)

    def runs(self, runs, upstream: str) -> None:
        """Submit ``runs`` after their stage or training ended in ``upstream``."""
        if upstream == "busy":  # another worker trains it: its runs wait for the next `xitt run`
            self.counts["busy"] += len(runs)
            return
        exp = str(self.work.exp)
        for run in runs:
            if upstream == "failed":
                fut = self.executor.submit(_in_worker, fail_run, run, exp, self.work.start(run))
            else:
                fut = self.executor.submit(
                    _in_worker, do_run, run, exp, self.work.start(run), False, self.work.root
                )
            self.pending[fut] = ("run", run)

    def stop(self) -> None:
        """Cancel the submitted work no worker has started yet."""
        self.stopped = True
        for fut in list(self.pending):
            if fut.cancel():
                self.pending.pop(fut)

    def after_stage(self, group, state: str) -> None:
        """The stage of ``group`` ended in ``state``: its trainings and its other runs follow."""
        _, trainings, runs = group
        trained = {t.train_id for t in trainings}
        for training in trainings:
            mine = [r for r in runs if r.training and r.training.train_id == training.train_id]
            if state in ("busy", "failed"):
                self.runs(mine, state)
            else:
                self.node("training", training, (training, mine))
        self.runs([r for r in runs if not (r.training and r.training.train_id in trained)], state)


def _finished(pool: Pool, what: str, item, state: str, left: dict, all_runs: dict) -> None:
    work, counts = pool.work, pool.counts
    if what in ("stage", "training"):
        node = item[0]
        counts[f"{what}s_trained"] += state == "trained"
        work.bar.stage_finished(node_id(node), stage_seconds(work.exp, node_id(node), what))
        if pool.stopped or state == "preempted":
            return
        if what == "stage":
            pool.after_stage(item, state)
        else:
            pool.runs(item[1], state)
        return
    counts["ran"] += state in ("done", "failed")
    counts["busy"] += state == "busy"
    if state in ("done", "failed"):
        work.bar.update(state, item.run_id, run_seconds(work.exp, item.run_id))
    for nid in (
        item.training.train_id if item.training else None,
        item.stage.stage_id if item.stage else None,
    ):
        if nid in left:
            left[nid] -= 1
            if left[nid] == 0:
                remove_checkpoint(work.grid.keep_checkpoints, work.exp, work.ckpt[nid], all_runs.get(nid, []))
    if state == "failed" and work.fail_fast and not pool.stopped:
        log.error("stopping after the first failure (--fail-fast): %s", item.run_id)
        pool.stop()


def run_pool(work, workers: int) -> dict:
    """Run ``work`` (xitt.run.executors.Work) on ``workers`` spawned processes; counts {ran,
    stages_trained, trainings_trained, busy} (and stopped with --fail-fast)."""
    from xitt.run.executors import _dependants

    all_runs, left = _dependants(work.grid), {}
    for run in work.todo:
        for nid in (
            run.training.train_id if run.training else None,
            run.stage.stage_id if run.stage else None,
        ):
            if nid is not None:
                left[nid] = left.get(nid, 0) + 1
    preempted = None
    with (
        catch_preemption(forward=_to_children),
        ProcessPoolExecutor(
            workers, mp_context=mp.get_context("spawn"), initializer=_die_with_parent, initargs=(os.getpid(),)
        ) as executor,
    ):
        pool = Pool(work, executor)
        for group in work.groups():
            if group[0] is not None:
                pool.node("stage", group[0], group)
            else:
                pool.after_stage(group, "done")
        while pool.pending:
            finished, _ = wait(list(pool.pending), return_when=FIRST_COMPLETED)
            for fut in finished:
                what, item = pool.pending.pop(fut)
                try:
                    state = fut.result()
                except Preempted as err:
                    state, preempted = "preempted", err.signum
                except Exception as err:
                    name = item.run_id if what == "run" else node_id(item[0])
                    log.error("worker for %s died: %s", name, err)
                    state = "failed"
                _finished(pool, what, item, state, left, all_runs)
            preempted = preempted or requested()
            if preempted and not pool.stopped:
                log.warning("preempted: the workers save their resume states; waiting work is not started")
                pool.stop()
    if preempted:
        raise Preempted(preempted)
    return {**pool.counts, **({"stopped": 1} if pool.stopped else {})}


def _to_children(signum: int) -> None:
    """Pass a preemption signal on to the pool's workers (`kill <pid of xitt run>` reaches it alone)."""
    for child in mp.active_children():
        try:
            os.kill(child.pid, signum)
        except OSError:  # already gone
            pass
