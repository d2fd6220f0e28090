"""GPU-hours of a grid for ``xitt plan``: measured where stages and runs finished, else estimated.

Estimate for a pending stage or run, first that applies:
1. measured: the mean wall time of the finished ones with the same encoder and the same
   intermediate (stages) or target (runs) in this experiment;
2. the grid's ``cost`` for that encoder (``cost.<encoder>``), then for every encoder;
3. nothing (counted as unknown).
A finished stage or run counts with its own measured time. One job holds one GPU, so its wall
time in hours is its GPU-hours. Reads files only (no torch).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean

from xitt.grid.spec import GridSpec, RunSpec, StageSpec
from xitt.run.store import run_seconds, stage_seconds


@dataclass
class Hours:
    total: float = 0.0  # done (measured) + pending (estimated)
    remaining: float = 0.0  # pending only
    measured: int = 0  # finished items counted with their own time
    from_measured: int = 0  # pending items estimated from finished ones
    from_cost: int = 0  # pending items estimated from the grid's cost
    unknown: int = 0  # pending items with neither

    def add(self, hours: float | None, *, done: bool, source: str) -> None:
        if hours is None:
            self.unknown += 1
            return
        self.total += hours
        if done:
            self.measured += 1
        else:
            self.remaining += hours
            setattr(self, source, getattr(self, source) + 1)


def _measured(pairs: Sequence[tuple[tuple, float | None]]) -> dict[tuple, float]:
    times = defaultdict(list)
    for key, seconds in pairs:
        if seconds is not None:
            times[key].append(seconds / 3600)
    return {key: fmean(v) for key, v in times.items()}


def grid_hours(
    grid: GridSpec,
    stages: Sequence[StageSpec],
    runs: Sequence[RunSpec],
    exp_dir: Path,
    stage_states: Mapping[str, str],
    run_states: Mapping[str, str],
) -> tuple[Hours, Hours]:
    """(stage hours, run hours) of the grid; see the module docstring for the estimate's order."""
    stage_s = {
        s.stage_id: stage_seconds(exp_dir, s.stage_id)
        for s in stages
        if stage_states.get(s.stage_id) == "done"
    }
    run_s = {r.run_id: run_seconds(exp_dir, r.run_id) for r in runs if run_states.get(r.run_id) == "done"}
    stage_mean = _measured([((s.encoder, s.intermediate), stage_s.get(s.stage_id)) for s in stages])
    run_mean = _measured([((r.encoder, r.target), run_s.get(r.run_id)) for r in runs])
    out_stage, out_run = Hours(), Hours()
    for s in stages:
        if s.stage_id in stage_s and stage_s[s.stage_id] is not None:
            out_stage.add(stage_s[s.stage_id] / 3600, done=True, source="")
        elif (s.encoder, s.intermediate) in stage_mean:
            out_stage.add(stage_mean[s.encoder, s.intermediate], done=False, source="from_measured")
        else:
            costs = [grid.gpu_hours("intermediate", t, s.encoder) for t in s.intermediate_tasks]
            hours = None if any(c is None for c in costs) else sum(costs)
            out_stage.add(hours, done=False, source="from_cost")
    for r in runs:
        if r.run_id in run_s and run_s[r.run_id] is not None:
            out_run.add(run_s[r.run_id] / 3600, done=True, source="")
        elif (r.encoder, r.target) in run_mean:
            out_run.add(run_mean[r.encoder, r.target], done=False, source="from_measured")
        else:
            out_run.add(grid.gpu_hours("target", r.target, r.encoder), done=False, source="from_cost")
    return out_stage, out_run


def describe_hours(stage: Hours, run: Hours) -> str:
    """One line for ``xitt plan``."""
    if not (stage.total or run.total):
        return "GPU-hours: add a 'cost:' block (hours per intermediate/target task) to the grid to see them."
    pending = {
        "measured means": stage.from_measured + run.from_measured,
        "grid cost": stage.from_cost + run.from_cost,
        "unknown (no cost)": stage.unknown + run.unknown,
    }
    how = ", ".join(f"{n} from {k}" for k, n in pending.items() if n)
    return (
        f"GPU-hours: stages {stage.total:.1f} + runs {run.total:.1f} = {stage.total + run.total:.1f}; "
        f"remaining {stage.remaining + run.remaining:.1f} ({stage.measured + run.measured} finished measured"
        + (f"; pending estimated: {how}" if how else "")
        + ")"
    )
