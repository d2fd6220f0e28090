"""Preemption: SIGTERM and SIGUSR2 ask the training loop to save a resume state and stop.

SLURM sends SIGTERM when it preempts a job (then SIGKILL after the partition's GraceTime) and
submitit asks for SIGUSR2 90 s before the time limit (``--signal=USR2@90`` in every sbatch header).
Inside ``catch_preemption`` such a signal only sets a flag (``requested``); ``xitt.train.fit`` reads
it at every optimizer step, saves its resume state (``xitt/train/resume.py``) and raises
``Preempted``. A signal that arrives while no training loop runs (loading, evaluating) goes on to
the handler that was there before when that is a function: submitit's, which requeues the job on
SIGUSR2; without one (a local ``xitt run``) the flag alone stops the grid at the end of the current
stage or run. SIGINT (Ctrl-C) is left alone: it still raises KeyboardInterrupt at once.

Torch-free: the CLI and the executors import it without loading the training stack.
"""

from __future__ import annotations

import shutil
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGUSR2") if hasattr(signal, name))
RESUME_FOLDER = "resume"  # <checkpoint root>/resume/<stage or run id>/
_state: dict = {"signum": None, "depth": 0, "training": 0}


class Preempted(BaseException):
    """Training stopped on SIGTERM/SIGUSR2 after saving its resume state. A BaseException, like
    KeyboardInterrupt: no ``except Exception`` records the stage or run as failed; it stays pending
    and the next attempt (a requeued job, ``xitt run`` again) resumes it."""

    def __init__(self, signum: int):
        super().__init__(int(signum))  # args = (signum,): it pickles back from a pool worker
        self.signum = int(signum)

    def __str__(self) -> str:
        return f"preempted by {signal.Signals(self.signum).name}"


def requested() -> int | None:
    """The preemption signal received inside ``catch_preemption``, or None."""
    return _state["signum"]


@contextmanager
def catch_preemption(forward: Callable[[int], None] | None = None) -> Iterator[None]:
    """SIGTERM/SIGUSR2 set ``requested()`` while inside (cleared when the outermost one is left);
    ``forward(signum)`` passes it on (a pool's workers). The previous handlers come back on
    exit. Only the main thread can install handlers: elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _state["depth"] == 0:
        _state["signum"] = None
    previous = {s: signal.getsignal(s) for s in SIGNALS}

    def handler(signum, frame):
        _state["signum"] = signum
        if forward is not None:
            forward(signum)
        if not _state["training"] and callable(previous[signum]):
            previous[signum](signum, frame)  # e.g. submitit's checkpoint-and-requeue

    for sig in SIGNALS:
        signal.signal(sig, handler)
    _state["depth"] += 1
    try:
        yield
    finally:
        _state["depth"] -= 1
        if _state["depth"] == 0:
            _state["signum"] = None
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextmanager
def training() -> Iterator[None]:
    """Marks a training loop that reads ``requested()`` at every step: signals only set the flag."""
    _state["training"] += 1
    try:
        yield
    finally:
        _state["training"] -= 1


def stop_if_requested() -> None:
    """Raise ``Preempted`` when a preemption signal came in (between stages and runs)."""
    if _state["signum"] is not None:
        raise Preempted(_state["signum"])


def resume_folder(root: str | Path, job_id: str) -> Path:
    """Where a stage or run keeps its resume state: ``<checkpoint root>/resume/<id>``, next to the stage
    checkpoints (large; on scratch, outside the experiment's run and stage folders)."""
    return Path(root) / RESUME_FOLDER / job_id


def clear_resume(folder: str | Path | None) -> None:
    """Delete a finished (done or failed) stage's or run's resume state."""
    if folder is None:
        return
    shutil.rmtree(folder, ignore_errors=True)
    try:
        Path(folder).parent.rmdir()  # resume/ itself once empty
    except OSError:
        pass
