"""Experiment-level views for the CLI: the plan (`xitt plan`) and the provenance block of a report.

Neither imports torch: they read the grid and the run folders only.
"""

from __future__ import annotations

import platform
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from xitt.grid.spec import GridSpec, RunSpec, StageSpec, TrainSpec, trainings_of
from xitt.run.cost import describe_hours, grid_hours
from xitt.run.disk import describe_disk
from xitt.run.provenance import git_sha
from xitt.run.store import read_result, run_dir, stage_state, status_frame


def describe_plan(
    grid: GridSpec,
    stages: Sequence[StageSpec],
    runs: Sequence[RunSpec],
    exp_dir: Path,
    *,
    full: bool = False,
    data_dir: Path | None = None,
) -> str:
    """Text of `xitt plan`: DAG levels, counts by state, data prepared in ``data_dir``, GPU-hour
    estimates, and (full) every id."""
    run_state = (
        dict(zip(*status_frame(exp_dir, [r.run_id for r in runs])[["run_id", "state"]].T.values))
        if runs
        else {}
    )
    stage_states = {s.stage_id: stage_state(exp_dir, s.stage_id) for s in stages}
    trainings = trainings_of(runs)
    training_states = {t.train_id: stage_state(exp_dir, t.train_id, "training") for t in trainings}
    run_counts = Counter(run_state.values())
    stage_counts = Counter(stage_states.values())
    lines = [
        f"experiment {grid.experiment}" + ("  [SYNTHETIC data]" if grid.synthetic else ""),
        f"  {len(grid.encoders)} encoder(s) x {len(grid.intermediates)} intermediate(s) x "
        f"{len(grid.targets)} target(s) x {len(set(r.seed for r in runs))} seed(s); "
        f"{sum(len(langs) for langs in grid.languages.values())} (target, language) evaluations per chain",
        f"level 1  intermediate stages: {len(stages)} (one per encoder x intermediate x seed, each reused by "
        f"{len(grid.targets)} target runs): " + _counts(stage_counts),
    ]
    if trainings:
        lines.append(_trainings_line(trainings, runs, training_states))
    lines += [f"level {2 + bool(trainings)}  target runs: {len(runs)}: " + _counts(run_counts)]
    if data_dir is not None:
        lines.append(_data_line(stages, runs, data_dir))
    states = {**stage_states, **training_states}
    stage_h, training_h, run_h = grid_hours(grid, stages, runs, exp_dir, states, run_state)
    lines.append(describe_hours(stage_h, run_h, training_h))
    if stages or trainings:
        lines.append(describe_disk(grid, stages, exp_dir, states, trainings))
    lines.append("")
    lines.append(
        f"{'encoder':<14} {'intermediate':<22} {'family':<11} {'targets':>7} {'seeds':>5}  done/total"
    )
    groups: dict[tuple[str, str, str], list[RunSpec]] = {}
    for run in runs:
        groups.setdefault((run.encoder, run.intermediate, run.intermediate_family), []).append(run)
    for (enc, inter, fam), members in groups.items():
        done = sum(run_state.get(r.run_id) == "done" for r in members)
        lines.append(
            f"{enc:<14} {inter:<22} {fam:<11} {len({r.target for r in members}):>7} "
            f"{len({r.seed for r in members}):>5}  {done}/{len(members)}"
        )
    if full:
        lines.append("")
        lines += [f"stage {s.stage_id:<55} {stage_states[s.stage_id]}" for s in stages]
        lines += [
            f"train {t.train_id:<55} {training_states[t.train_id]}"
            + (f"  <- {t.stage.stage_id}" if t.stage else "")
            for t in trainings
        ]
        lines += [
            f"run   {r.run_id:<55} {run_state.get(r.run_id)}"
            + (f"  <- {r.training.train_id}" if r.training else f"  <- {r.stage.stage_id}" if r.stage else "")
            for r in runs
        ]
    return "\n".join(lines)


def _trainings_line(trainings: Sequence[TrainSpec], runs: Sequence[RunSpec], states: dict) -> str:
    """Level 2 when targets share a target training: how many, which targets, how many it saves."""
    served: dict[str, set[str]] = {}
    for run in runs:
        if run.training is not None:
            served.setdefault(run.training.task, set()).add(run.target)
    using = sum(r.training is not None for r in runs)
    share = "; ".join(f"{', '.join(sorted(targets))} on {task}" for task, targets in sorted(served.items()))
    return (
        f"level 2  shared target trainings: {len(trainings)} (one per encoder x intermediate x seed x "
        f"training task: {share}; evaluated by {using} target runs, {using - len(trainings)} trainings "
        "saved): " + _counts(Counter(states.values()))
    )


def _data_line(stages: Sequence[StageSpec], runs: Sequence[RunSpec], data_dir: Path) -> str:
    from xitt.data.prepare import needs_of, status
    from xitt.tasks import registry

    needs = needs_of(stages, runs, registry())
    counts = status(needs, data_dir)
    ready = counts.pop("ok", 0)
    rest = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    hint = "" if not rest else "; run `xitt prepare` (xitt run does it first)"
    return f"data     {ready} of {len(needs)} splits prepared in {data_dir}" + (
        f" ({rest}){hint}" if rest else ""
    )


def _counts(counter: Counter) -> str:
    order = ("done", "running", "failed", "corrupt", "pending")
    return ", ".join(f"{counter.get(k, 0)} {k}" for k in order if counter.get(k) or k in ("done", "pending"))


def experiment_provenance(exp_dir: Path, analysis_seed: int | None) -> dict:
    """Grid text, run counts, failures and the training environment recorded by the runs."""
    from xitt.grid.spec import expand_grid, load_grid

    grid_file = exp_dir / "grid.yaml"
    info: dict = {
        "experiment": exp_dir.name,
        "analysis_seed": analysis_seed,
        "report_git_sha": git_sha(exp_dir),
        "python": platform.python_version(),
        "grid_text": grid_file.read_text() if grid_file.exists() else "",
    }
    if not grid_file.exists():
        return info
    grid = load_grid(exp_dir)
    _, runs = expand_grid(grid)
    status = status_frame(exp_dir, [r.run_id for r in runs])
    info["synthetic"] = grid.synthetic
    info["run_counts"] = dict(Counter(status.state))
    info["failures"] = [
        {"run_id": r.run_id, "state": r.state, "detail": r.detail}
        for r in status[status.state.isin(["failed", "corrupt"])].itertuples()
    ]
    results = [read_result(run_dir(exp_dir, rid)) for rid in status.loc[status.state == "done", "run_id"]]
    if results:
        info["packages"] = dict(results[0].packages)
        info["device"] = results[0].device
    info["git_shas"] = sorted({r.git_sha for r in results if r.git_sha})
    info["wall_time_hours"] = round(sum(sum(r.wall_time.values()) for r in results) / 3600, 3)
    return info
