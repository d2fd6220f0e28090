"""Calibration of the rows beyond the family contrast (analysis.calibration_rows) and the
two-encoder simulation it uses. The slow tests are the measured numbers of the README table."""

from __future__ import annotations

import numpy as np
import pytest

from analysis import calibration_rows as C
from analysis.simulate import simulate_encoders


def test_simulate_encoders_shares_the_task_effect_across_encoders():
    effects = {"enc_a": {"nli": 0.0, "qa": 0.0}, "enc_b": {"nli": 0.0, "qa": 0.0}}
    knobs = dict(encoder_effects=effects, families={"nli": 3, "qa": 3}, n_languages=4, sd_intermediate=0.0)
    knobs.update(sd_target=0.0, sd_language=0.0, sd_stage=0.0, sd_run=0.0, sd_baseline_run=0.0)
    s = simulate_encoders(np.random.default_rng(0), sd_shared_task=5.0, sd_residual=0.01, **knobs)
    assert set(s["encoder"]) == {"enc_a", "enc_b"}
    base = s[s.intermediate == "none"].set_index(["encoder", "target", "language", "seed"])["score"]
    arm = s[s.intermediate != "none"].set_index(["encoder", "target", "language", "seed"])
    gain = (
        (arm["score"] - base.reindex(arm.index).to_numpy())
        .groupby([arm.index.get_level_values(0), arm["intermediate"].to_numpy()])
        .mean()
    )
    # no encoder x task deviation and no seed noise: both encoders see the same task effects (sd 5)
    assert np.allclose(gain["enc_a"].to_numpy(), gain["enc_b"].to_numpy(), atol=0.05)
    assert gain["enc_a"].std() > 1.0
    with pytest.raises(ValueError, match="encoder_effects is empty"):
        simulate_encoders(np.random.default_rng(0), encoder_effects={})


def test_marks_calibration_small_and_reproducible():
    one = C.marks_calibration(np.random.default_rng(2), n_grids=5)
    assert one == C.marks_calibration(np.random.default_rng(2), n_grids=5)
    assert one["m"] == 18 and one["n_cells"] == 90 and 0 <= one["holm_fwer"] <= 1


@pytest.mark.slow
def test_marks_p_values_are_uniform_and_holm_holds_alpha():
    """1000 grids (issue 12 asked whether 0.058 +- 0.010 from 500 grids was real): the per-cell
    p is uniform (also at alpha / m, the threshold Holm uses under the global null) and the FWER
    is within Monte-Carlo error of <= alpha (2000 grids with seed 1 gave 0.0485; README table).
    1000, not 2000, to keep CI short; the README's numbers come from `xitt calibrate`."""
    n = 1000
    res = C.marks_calibration(np.random.default_rng(21), n_grids=n)
    mc = lambda r, n: 2 * np.sqrt(r * (1 - r) / n)  # noqa: E731
    assert abs(res["cell_rejection"] - 0.05) <= mc(0.05, res["n_cells"] / 3)  # cells are dependent
    assert abs(res["cell_rejection_bonferroni"] - 0.05 / 18) <= mc(0.05 / 18, res["n_cells"] / 3)
    assert res["uniformity_p"] > 0.001
    assert res["holm_fwer"] <= 0.05 + mc(0.05, n)


def test_language_wins_small():
    res = C.language_wins_calibration(np.random.default_rng(4), n_grids=6, effect=3.0, sd_intermediate=0.0)
    assert res["n_languages"] == 8 and res["claims_per_language"] > 0.3  # a large effect is found


@pytest.mark.slow
def test_language_wins_hold_alpha_when_every_delta_is_zero():
    res = C.language_wins_calibration(np.random.default_rng(5), n_grids=500)
    assert res["any_claim"] <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / 500)
    assert abs(res["language_rejection"] - 0.05) < 0.02


@pytest.mark.slow
def test_interaction_covers_under_the_null_and_finds_an_effect():
    from analysis.calibration import _summarise

    for effect, power in ((0.0, None), (2.0, 0.3)):
        # 80 grids per effect keep CI short (a grid fits three models); the README's rows: 500 grids
        res = C.interaction_calibration(np.random.default_rng(6), n_grids=80, effect=effect)
        row = _summarise("interaction", "all", res["values"], effect, 0.05)
        assert 0.93 <= row["coverage"] and row["n_failed"] == 0
        if power:
            assert row["rejection_rate"] > power
