"""GPU-hours of a grid for ``xitt plan``: measured where stages and runs finished, else estimated.

Estimate for a pending stage or run, first that applies:
1. measured: the mean wall time of the finished ones with the same encoder and the same
   intermediate (stages) or target (runs) in this experiment;
2. the grid's ``cost`` for that encoder (``cost.<encoder>``), then for every encoder;
3. nothing (counted as unknown).
A finished stage or run counts with its own measured time. A shared target training (XQuAD and MLQA
on SQuAD) is a node of its own (``training_hours``); the runs built on it only evaluate. One job
holds one GPU, so its wall time in hours is its GPU-hours. Reads files only (no torch).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean

from xitt.grid.spec import GridSpec, RunSpec, StageSpec, trainings_of
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
) -> tuple[Hours, Hours, Hours]:
    """(stage hours, shared training hours, run hours) of the grid; see the module docstring.
    ``stage_states`` maps stage and shared training ids to their state."""
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
        elif r.training is not None:  # the target's cost is its shared training's (counted there)
            out_run.add(0.0, done=False, source="from_cost")
        else:
            out_run.add(grid.gpu_hours("target", r.target, r.encoder), done=False, source="from_cost")
    return out_stage, training_hours(grid, runs, exp_dir, stage_states), out_run


def training_hours(
    grid: GridSpec, runs: Sequence[RunSpec], exp_dir: Path, states: Mapping[str, str]
) -> Hours:
    """Hours of the shared target trainings: measured when done, else the mean of the finished ones of
    the same encoder and training task, else the grid's ``cost.target`` of the training task or, when
    it has none, of the first target it serves (XQuAD's cost is its SQuAD training's)."""
    trainings = trainings_of(runs)
    done = {
        t.train_id: stage_seconds(exp_dir, t.train_id, "training")
        for t in trainings
        if states.get(t.train_id) == "done"
    }
    mean = _measured([((t.encoder, t.task), done.get(t.train_id)) for t in trainings])
    serves: dict[str, list[str]] = {}
    for r in runs:
        if r.training is not None:
            serves.setdefault(r.training.train_id, []).append(r.target)
    out = Hours()
    for t in trainings:
        if done.get(t.train_id) is not None:
            out.add(done[t.train_id] / 3600, done=True, source="")
        elif (t.encoder, t.task) in mean:
            out.add(mean[t.encoder, t.task], done=False, source="from_measured")
        else:
            costs = [grid.gpu_hours("target", name, t.encoder) for name in [t.task, *serves[t.train_id]]]
            out.add(next((c for c in costs if c is not None), None), done=False, source="from_cost")
    return out


def describe_hours(stage: Hours, run: Hours, training: Hours | None = None) -> str:
    """One line for ``xitt plan``."""
    training = training or Hours()
    parts = [stage, training, run]
    total = sum(h.total for h in parts)
    if not total:
        return "GPU-hours: add a 'cost:' block (hours per intermediate/target task) to the grid to see them."
    pending = {
        "measured means": sum(h.from_measured for h in parts),
        "grid cost": sum(h.from_cost for h in parts),
        "unknown (no cost)": sum(h.unknown for h in parts),
    }
    how = ", ".join(f"{n} from {k}" for k, n in pending.items() if n)
    shared = f" + shared trainings {training.total:.1f}" if training.total or training.unknown else ""
    return (
        f"GPU-hours: stages {stage.total:.1f}{shared} + runs {run.total:.1f} = {total:.1f}; "
        f"remaining {sum(h.remaining for h in parts):.1f} ({sum(h.measured for h in parts)} finished measured"
        + (f"; pending estimated: {how}" if how else "")
        + ")"
    )
