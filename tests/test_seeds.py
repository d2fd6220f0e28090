"""Seed planner: analytic formulas, the task-level floor, and validation by simulation."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.mixed import fit_crossed
from analysis.seeds import PLAN_COLUMNS, plan_seeds, variance_components
from analysis.simulate import simulate_deltas

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def fit():
    return fit_crossed(pd.read_csv(DATA / "mixed_balanced.csv"))


def test_variance_components(fit):
    vc = variance_components(fit)
    assert list(vc.columns) == ["component", "variance", "sd", "share", "n_levels"]
    assert vc["share"].sum() == pytest.approx(1.0)
    np.testing.assert_allclose(vc["sd"] ** 2, vc["variance"])


def test_more_seeds_cannot_beat_the_task_floor(fit):
    plan = plan_seeds(fit, seeds=(1, 2, 5, 10, 1000))
    assert list(plan.columns) == list(PLAN_COLUMNS)
    assert plan["half_width"].is_monotonic_decreasing
    assert (plan["half_width"] >= plan["task_floor_half_width"]).all()
    assert plan["half_width"].iloc[-1] == pytest.approx(plan["task_floor_half_width"].iloc[-1], rel=1e-3)
    assert plan["task_floor_half_width"].nunique() == 1
    assert (plan["df"] == 4).all()  # 6 tasks - 2 families
    assert plan["design"].iloc[0] == "observed nli=2, qa=4"
    assert plan["meets_goal"].isna().all()


def test_goal_unreachable_says_so(fit):
    floor = plan_seeds(fit)["task_floor_half_width"].iloc[0]
    plan = plan_seeds(fit, half_width=floor / 2, intermediates_per_family=(2, 32))
    two = plan[plan["n_intermediate_per_family"] == 2]
    assert not two["meets_goal"].any()
    assert two["note"].str.contains("add intermediate tasks, not seeds").all()
    assert plan[plan["n_intermediate_per_family"] == 32]["meets_goal"].all()


def test_matches_the_formula(fit):
    vc = fit.variance.set_index("component")["variance"]
    plan = plan_seeds(fit, seeds=(4,), languages=(7,), intermediates_per_family=(5,), effect=1.0)
    row = plan.iloc[0]
    var = (2 / 5) * (vc["intermediate"] + vc["Residual"] / (3 * 7 * 4))
    assert row["se"] == pytest.approx(np.sqrt(var))
    assert row["df"] == 8
    assert 0 < row["power"] < 1


def test_bad_arguments(fit):
    with pytest.raises(ValueError, match="half_width must be > 0"):
        plan_seeds(fit, half_width=0)
    with pytest.raises(ValueError, match="positive integers"):
        plan_seeds(fit, seeds=(0, 2))
    with pytest.raises(ValueError, match="not a level"):
        plan_seeds(fit, level_a="nli", level_b="qq")
    with pytest.raises(ValueError, match="fixed factor"):
        plan_seeds(fit_crossed(pd.read_csv(DATA / "mixed_balanced.csv"), fixed=None))


def _truth_fit(template, sd_task: float, sd_resid: float):
    var = template.variance.copy()
    truth = {"intermediate": sd_task**2, "Residual": sd_resid**2}
    var["variance"] = [truth.get(c, v) for c, v in zip(var["component"], var["variance"])]
    var["sd"] = np.sqrt(var["variance"])
    return dataclasses.replace(template, variance=var)


def test_plan_agrees_with_simulation():
    """Predicted se, half-width and power vs 200 simulated grids fitted by fit_crossed."""
    design = dict(
        families={"nli": 3, "qa": 3},
        n_targets=2,
        n_languages=3,
        n_seeds=2,
        sd_intermediate=0.5,
        sd_residual=2.0,
        sd_target=1.0,
        sd_language=0.5,
        sd_stage=0.0,
        sd_run=0.0,
        sd_baseline_run=0.3,
    )
    effect = 1.5
    rng = np.random.default_rng(11)
    est, hw, reject = [], [], []
    template = None
    for _ in range(200):
        frame = simulate_deltas(rng, family_effects={"nli": effect, "qa": 0.0}, **design)
        fit = fit_crossed(frame)
        template = template or fit
        out = fit.compare("nli", "qa")
        est.append(out["estimate"])
        hw.append((out["ci_high"] - out["ci_low"]) / 2)
        reject.append(out["p_value"] < 0.05)
    plan = plan_seeds(_truth_fit(template, 0.5, 2.0), seeds=(2,), effect=effect).iloc[0]
    assert plan["df"] == 4 and plan["n_languages"] == 3 and plan["n_targets"] == 2
    assert np.std(est) == pytest.approx(plan["se"], rel=0.15)
    assert np.mean(est) == pytest.approx(effect, abs=3 * plan["se"] / np.sqrt(200))
    assert np.median(hw) == pytest.approx(plan["half_width"], rel=0.25)
    assert np.mean(reject) == pytest.approx(plan["power"], abs=0.12)
