"""Simulated grids: schema, pairing with the none arm, knobs, reproducibility."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.simulate import DELTA_COLUMNS, simulate_deltas, simulate_scores
from xitt.schema import validate_scores


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
        sd_seed=0.0,
        sd_residual=0.1,
    )
    means = d.groupby("intermediate_family")["delta"].mean()
    assert means["nli"] - means["qa"] == pytest.approx(5.0, abs=0.1)
    flat = simulate_deltas(
        np.random.default_rng(1), sd_intermediate=0, sd_target=0, sd_language=0, sd_seed=0, sd_residual=0
    )
    assert set(flat.groupby("intermediate_family")["delta"].unique().map(tuple)) == {(2.0,), (0.0,)}


def test_bad_knobs_raise_with_the_fix():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="family_effects has no entry for 'paraphrase'"):
        simulate_deltas(rng, families={"nli": 2, "paraphrase": 1})
    with pytest.raises(ValueError, match="n_seeds must be a positive integer"):
        simulate_deltas(rng, n_seeds=0)
    with pytest.raises(ValueError, match="sd_seed must be >= 0"):
        simulate_deltas(rng, sd_seed=-1)
    with pytest.raises(ValueError, match="missing"):
        simulate_deltas(rng, missing=1.0)
    with pytest.raises(ValueError, match="reserved"):
        simulate_deltas(rng, families={"none": 2}, family_effects={"none": 0.0})
    with pytest.raises(ValueError, match="0-100"):
        simulate_scores(rng, baseline=99.0, sd_residual=5.0)
