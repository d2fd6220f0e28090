"""Progress: a tqdm bar per stage (steps, loss, ETA) and a grid-level line (done/failed/pending, ETA).

When stderr is not a terminal (CI, SLURM logs) there are no bars: a stage logs a line every ~10 %
of its steps and the grid a line per finished run.
"""

from __future__ import annotations

import logging
import sys
import time

log = logging.getLogger("xitt")


def not_detail(record: logging.LogRecord) -> bool:
    """Console filter: step and dev lines (``extra={"detail": True}``) go to train.log only."""
    return not getattr(record, "detail", False)


def interactive() -> bool:
    return sys.stderr.isatty()


class StageBar:
    """``with StageBar(total, "mnli") as bar: bar.step(loss)`` — a bar on a TTY, sparse log lines otherwise."""

    def __init__(self, total: int, desc: str, enabled: bool = True):
        self.total, self.desc, self.n, self.start = max(1, total), desc, 0, time.time()
        self.bar = None
        self.quiet = not enabled
        if enabled and interactive():
            from tqdm.auto import tqdm
            self.bar = tqdm(total=self.total, desc=desc, leave=False, dynamic_ncols=True, unit="step")
        self._next_log, self._last = max(1, self.total // 10), self.start

    def step(self, loss: float) -> None:
        self.n += 1
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        elif (self.n >= self._next_log and time.time() - self._last >= 30) or self.n == self.total:
            # Non-interactive logs: a line every ~10 % of the steps, at most one per 30 s, and the last.
            self._next_log = self.n + max(1, self.total // 10)
            self._last = time.time()
            eta = (time.time() - self.start) / self.n * (self.total - self.n)
            log.info("%s: step %d/%d loss %.4f eta %.0fs", self.desc, self.n, self.total, loss, eta,
                     extra={"detail": True})

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def __enter__(self) -> "StageBar":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class GridProgress:
    """Counts of the grid's runs and an ETA from the mean wall time of the runs finished so far."""

    def __init__(self, total: int, done: int = 0, enabled: bool = True, stream=None):
        self.total, self.done, self.failed, self.enabled = total, done, 0, enabled
        self.finished_here, self.start = 0, time.time()
        self.stream = stream or sys.stderr

    @property
    def pending(self) -> int:
        return self.total - self.done - self.failed

    def line(self) -> str:
        eta = ""
        if self.finished_here and self.pending:
            seconds = (time.time() - self.start) / self.finished_here * self.pending
            eta = f", ETA {seconds / 60:.1f} min" if seconds >= 60 else f", ETA {seconds:.0f} s"
        return f"[xitt] runs: {self.done} done, {self.failed} failed, {self.pending} pending of {self.total}{eta}"

    def update(self, state: str) -> None:
        if state == "done":
            self.done += 1
        elif state == "failed":
            self.failed += 1
        self.finished_here += 1
        self.show()

    def show(self) -> None:
        if self.enabled:
            print(self.line(), file=self.stream, flush=True)
