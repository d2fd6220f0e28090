"""Simulated grids: schema, pairing with the none arm, knobs, reproducibility."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.simulate import DELTA_COLUMNS, simulate_deltas, simulate_scores
from xitt.schema import validate_scores

QUIET = dict(
    sd_intermediate=0,
    sd_target=0,
    sd_language=0,
    sd_stage=0,
    sd_run=0,
    sd_baseline_run=0,
    sd_residual=0,
)


def test_scores_pass_the_schema_and_pair_back_to_the_deltas():
    scores = simulate_scores(np.random.default_rng(4), missing=0.1)
    validate_scores(scores)
    deltas = simulate_deltas(np.random.default_rng(4), missing=0.1)
    none = scores[scores["intermediate"] == "none"].set_index(["encoder", "target", "language", "seed"])[
        "score"
    ]
    arms = scores[scores["intermediate"] != "none"]
    keys = ["encoder", "target", "language", "seed"]
    paired = arms.join(none.rename("none_score"), on=keys)
    paired["delta"] = paired["score"] - paired["none_score"]
    merged = deltas.merge(
        paired[keys + ["intermediate", "delta"]], on=keys + ["intermediate"], suffixes=("", "_s")
    )
    assert len(merged) == len(deltas) == len(arms)
    np.testing.assert_allclose(merged["delta"], merged["delta_s"], atol=1e-9)
    assert set(scores["intermediate_family"]) == {"none", "nli", "qa"}
    assert (scores["metric"] == "accuracy").all() and scores["primary"].all()
    assert scores["run_id"].iloc[-1].startswith("sim-encoder__qa_4__target_3__s3__")


def test_delta_frame_shape_and_names():
    d = simulate_deltas(
        np.random.default_rng(0), families={"nli": 2, "qa": 4}, n_targets=2, n_languages=12, n_seeds=2
    )
    assert list(d.columns) == list(DELTA_COLUMNS)
    assert len(d) == 6 * 2 * 12 * 2
    assert sorted(d["intermediate"].unique())[:2] == ["nli_1", "nli_2"]
    assert sorted(d["language"].unique())[:2] == ["l01", "l02"]
    assert set(d["seed"]) == {1, 2}


def test_same_generator_same_grid_and_missing_share():
    a = simulate_deltas(np.random.default_rng(9), missing=0.3)
    b = simulate_deltas(np.random.default_rng(9), missing=0.3)
    pd.testing.assert_frame_equal(a, b)
    assert 0.2 < 1 - len(a) / 270 < 0.4


def test_family_effect_and_variance_knobs():
    d = simulate_deltas(
        np.random.default_rng(1),
        families={"nli": 50, "qa": 50},
        n_targets=2,
        n_languages=2,
        n_seeds=2,
        family_effects={"nli": 5.0, "qa": 0.0},
        sd_intermediate=0.1,
        sd_target=0.0,
        sd_language=0.0,
        sd_stage=0.0,
        sd_run=0.0,
        sd_baseline_run=0.0,
        sd_residual=0.1,
    )
    means = d.groupby("intermediate_family")["delta"].mean()
    assert means["nli"] - means["qa"] == pytest.approx(5.0, abs=0.1)
    flat = simulate_deltas(np.random.default_rng(1), **QUIET)
    assert set(flat.groupby("intermediate_family")["delta"].unique().map(tuple)) == {(2.0,), (0.0,)}


def test_bad_knobs_raise_with_the_fix():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="family_effects has no entry for 'paraphrase'"):
        simulate_deltas(rng, families={"nli": 2, "paraphrase": 1})
    with pytest.raises(ValueError, match="n_seeds must be a positive integer"):
        simulate_deltas(rng, n_seeds=0)
    with pytest.raises(ValueError, match="sd_stage must be >= 0"):
        simulate_deltas(rng, sd_stage=-1)
    with pytest.raises(ValueError, match="missing_runs"):
        simulate_deltas(rng, missing_runs=1.5)
    with pytest.raises(ValueError, match="missing"):
        simulate_deltas(rng, missing=1.0)
    with pytest.raises(ValueError, match="reserved"):
        simulate_deltas(rng, families={"none": 2}, family_effects={"none": 0.0})
    with pytest.raises(ValueError, match="0-100"):
        simulate_scores(rng, baseline=99.0, sd_residual=5.0)


@pytest.mark.parametrize(
    "knob,shared_by",
    [
        # the stage (encoder, intermediate, seed) is reused by every target and language
        ("sd_stage", ["intermediate", "seed"]),
        # a target run (intermediate, target, seed) is shared by all its languages
        ("sd_run", ["intermediate", "target", "seed"]),
        # the baseline run (target, seed) enters every intermediate's delta of that target and seed
        ("sd_baseline_run", ["target", "seed"]),
    ],
)
def test_seed_noise_is_shared_by_its_replication_unit(knob, shared_by):
    d = simulate_deltas(np.random.default_rng(3), **{**QUIET, knob: 1.0}, family_effects={"nli": 0, "qa": 0})
    d["delta"] = d["delta"].round(9)
    within = d.groupby(shared_by)["delta"].nunique()
    assert (within == 1).all()  # one draw per unit ...
    assert d.groupby(shared_by)["delta"].first().nunique() == len(within)  # ... and a new one per unit


def test_missing_runs_drop_whole_runs_and_keep_the_baseline():
    s = simulate_scores(np.random.default_rng(2), missing_runs=0.3)
    per_run = s.groupby("run_id").size()
    assert set(per_run) == {5}  # whole runs only
    assert len(s[s["intermediate"] == "none"]) == 3 * 5 * 3
    assert 0.15 < 1 - (s["intermediate"] != "none").sum() / (6 * 3 * 5 * 3) < 0.45
