"""Progress: a tqdm bar per stage (steps, loss, ETA) and a grid-level line (done/failed/pending, ETA).

When stderr is not a terminal (CI, SLURM logs) there are no bars: a stage logs a line every ~10 %
of its steps and the grid a line per finished run.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Mapping
from statistics import fmean

log = logging.getLogger("xitt")


def not_detail(record: logging.LogRecord) -> bool:
    """Console filter: step and dev lines (``extra={"detail": True}``) go to train.log only."""
    return not getattr(record, "detail", False)


def interactive() -> bool:
    return sys.stderr.isatty()


class StageBar:
    """``with StageBar(total, "mnli") as bar: bar.step(loss)`` — a bar on a TTY, sparse log lines otherwise."""

    def __init__(self, total: int, desc: str, enabled: bool = True, initial: int = 0):
        """``initial``: steps already done (a resumed stage or run)."""
        self.total, self.desc, self.n, self.start = max(1, total), desc, initial, time.time()
        self.initial = initial
        self.bar = None
        self.quiet = not enabled
        if enabled and interactive():
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=self.total, initial=initial, desc=desc, leave=False, dynamic_ncols=True, unit="step"
            )
        self._next_log, self._last = initial + max(1, self.total // 10), self.start

    def step(self, loss: float) -> None:
        self.n += 1
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        elif (self.n >= self._next_log and time.time() - self._last >= 30) or self.n == self.total:
            # Non-interactive logs: a line every ~10 % of the steps, at most one per 30 s, and the last.
            self._next_log = self.n + max(1, self.total // 10)
            self._last = time.time()
            eta = (time.time() - self.start) / (self.n - self.initial) * (self.total - self.n)
            log.info(
                "%s: step %d/%d loss %.4f eta %.0fs",
                self.desc,
                self.n,
                self.total,
                loss,
                eta,
                extra={"detail": True},
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def __enter__(self) -> StageBar:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class GridProgress:
    """Counts of the grid's runs and an ETA for the work left.

    ``runs`` maps each pending run id to its target, ``stages`` each stage still to train to its
    intermediate. The ETA expects a pending run to take as long as the finished runs of its
    target, and a stage as long as the trained stages of its intermediate (the mean over all
    finished work of that kind while none of its own has finished), divided by ``workers``:
    targets and intermediate tasks differ 10-100x in cost, so one mean over all runs misleads (a
    grid that starts with its cheap baseline runs looks nearly done).
    """

    def __init__(
        self,
        total: int,
        done: int = 0,
        enabled: bool = True,
        stream=None,
        *,
        runs: Mapping[str, str] | None = None,
        stages: Mapping[str, str] | None = None,
        workers: int = 1,
    ):
        self.total, self.done, self.failed, self.enabled = total, done, 0, enabled
        self.stream = stream or sys.stderr
        self.workers = max(1, workers)
        self.left = {"run": dict(runs or {}), "stage": dict(stages or {})}
        self.seconds: dict[str, dict[str, list[float]]] = {"run": {}, "stage": {}}

    @property
    def pending(self) -> int:
        return self.total - self.done - self.failed

    def eta_seconds(self) -> float | None:
        """Seconds of work left (None until something was measured)."""
        measured = {
            kind: [t for times in by_key.values() for t in times] for kind, by_key in self.seconds.items()
        }
        anything = measured["run"] + measured["stage"]
        if not anything:
            return None
        work = 0.0
        for kind, left in self.left.items():
            fallback = fmean(measured[kind] or anything)
            work += sum(
                fmean(self.seconds[kind][key]) if key in self.seconds[kind] else fallback
                for key in left.values()
            )
        return work / self.workers

    def line(self) -> str:
        seconds = self.eta_seconds() if self.pending else None
        eta = ""
        if seconds is not None:
            eta = f", ETA {seconds / 60:.1f} min" if seconds >= 60 else f", ETA {seconds:.0f} s"
        return f"[xitt] runs: {self.done} done, {self.failed} failed, {self.pending} pending of {self.total}{eta}"

    def update(self, state: str, run_id: str | None = None, seconds: float | None = None) -> None:
        """Run ``run_id`` finished in ``state`` after ``seconds`` of work (None: not measured)."""
        if state == "done":
            self.done += 1
        elif state == "failed":
            self.failed += 1
        self._finish("run", run_id, seconds)
        self.show()

    def stage_finished(self, stage_id: str, seconds: float | None = None) -> None:
        """Stage ``stage_id`` is no longer pending (trained here after ``seconds``, failed, or trained elsewhere)."""
        self._finish("stage", stage_id, seconds)

    def _finish(self, kind: str, item: str | None, seconds: float | None) -> None:
        key = self.left[kind].pop(item, None)
        if key is not None and seconds is not None and seconds > 0:
            self.seconds[kind].setdefault(key, []).append(float(seconds))

    def show(self) -> None:
        if self.enabled:
            print(self.line(), file=self.stream, flush=True)
