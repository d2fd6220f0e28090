"""analysis.contrast: the per-target contrast against scipy, the headline rule, the plug-ins."""

import numpy as np
import pytest
from scipy import stats

from analysis import contrast, effects
from analysis.simulate import simulate_deltas


def test_per_target_ci_and_p_are_one_t_test_over_seeds_as_scipy_computes_it():
    delta = simulate_deltas(np.random.default_rng(4), n_targets=3, n_languages=7, n_seeds=4)
    frame = contrast.per_target_frame(delta, "nli", "qa", level=0.9).set_index("target")
    per_seed = effects.contrast_by(delta, ["target", "seed"], "nli", "qa")
    for target, sub in per_seed.groupby("target"):
        ref = stats.ttest_1samp(sub["estimate"], 0.0)
        ci = ref.confidence_interval(0.9)
        row = frame.loc[target]
        assert row["p_value"] == pytest.approx(ref.pvalue, rel=1e-10) and row["n"] == 4
        assert (row["ci_low"], row["ci_high"]) == pytest.approx((ci.low, ci.high), rel=1e-10)
        assert row["df"] == ref.df and row["statistic"] == pytest.approx(ref.statistic)
        # one method: the CI excludes 0 exactly when p < 1 - level
        assert (row["ci_low"] > 0 or row["ci_high"] < 0) == (row["p_value"] < 0.1)
        assert row["wins"].endswith("/7")  # wins count languages
    assert set(frame["method"]) == {contrast.PER_TARGET_METHOD}
    assert (frame["p_adj"] >= frame["p_value"]).all()


@pytest.mark.slow
def test_per_target_rejects_at_most_alpha_under_run_level_seed_noise():
    """No family or task effect, seed noise at the stage, run and baseline run: the seed is the unit.
    (A t over languages rejected in about half of such cells.)"""
    rng = np.random.default_rng(12)
    hits, cells = 0, 0
    for _ in range(300):
        delta = simulate_deltas(
            rng,
            n_targets=3,
            n_languages=6,
            n_seeds=4,
            family_effects={"nli": 0.0, "qa": 0.0},
            sd_intermediate=0.0,
        )
        p = contrast.per_target_frame(delta, "nli", "qa")["p_value"].to_numpy()
        hits, cells = hits + int((p < 0.05).sum()), cells + p.size
    rate = hits / cells
    assert rate <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / cells), rate


def test_headline_falls_back_in_order_and_reads_bonferroni():
    import pandas as pd

    by_method = pd.DataFrame(
        [
            {
                "method": "mixed",
                "estimate": np.nan,
                "ci_low": np.nan,
                "ci_high": np.nan,
                "df": np.nan,
                "p_value": np.nan,
            },
            {
                "method": "bootstrap_bca",
                "estimate": 1.0,
                "ci_low": 0.2,
                "ci_high": 1.9,
                "df": np.nan,
                "p_value": np.nan,
            },
        ]
    )
    wins = pd.DataFrame({"method": ["bonferroni", "fisher"], "k_hat": [3, 4], "n": [6, 6], "alpha": 0.05})
    answer = contrast.headline(by_method, wins, a="nli", b="qa", level=0.95, n_tasks=(2, 4), n_targets=3)
    assert answer.method == "bootstrap_bca" and answer.k_hat == 3 and answer.n_languages == 6
    none = contrast.headline(
        by_method, wins.iloc[:0], a="nli", b="qa", level=0.95, n_tasks=(2, 4), n_targets=3
    )
    assert none.k_hat is None and none.to_dict()["df"] is None
