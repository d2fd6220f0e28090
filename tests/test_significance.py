"""Tests for analysis.significance: golden values from scipy/statsmodels and hand-worked examples."""

from itertools import combinations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis import significance as S
from analysis import simulate


def test_sign_flip_exact_matches_scipy_permutation_test():
    x = np.array([1.2, -0.4, 2.5, 0.9, 1.7, -0.3, 0.8, 1.1])
    for alt in ("two-sided", "greater", "less"):
        ours = S.sign_flip_test(x, rng=np.random.default_rng(0), alternative=alt)
        ref = stats.permutation_test(
            (x,), np.mean, permutation_type="samples", n_resamples=np.inf, alternative=alt
        )
        assert ours["method"] == "exact"
        assert ours["p_value"] == pytest.approx(ref.pvalue, abs=1e-12), alt


def test_sign_flip_monte_carlo_uses_plus_one():
    x = np.full(20, 1.0)  # 2^20 > 100,000 -> Monte-Carlo; nothing is as extreme except all-plus/all-minus
    res = S.sign_flip_test(x, rng=np.random.default_rng(0), n_resamples=999)
    assert res["method"] == "monte-carlo"
    assert res["p_value"] == pytest.approx(1 / 1000)
    again = S.sign_flip_test(np.random.default_rng(1).normal(size=20), rng=np.random.default_rng(2))
    same = S.sign_flip_test(np.random.default_rng(1).normal(size=20), rng=np.random.default_rng(2))
    assert again == same


def test_wilcoxon_matches_scipy_and_rank_biserial():
    x = np.array([1.5, -0.5, 2.0, 3.0, -1.0, 0.7])
    res = S.wilcoxon_test(x)
    ref = stats.wilcoxon(x)
    assert res["p_value"] == pytest.approx(ref.pvalue) and res["statistic"] == pytest.approx(ref.statistic)
    # ranks of |x|: 0.5->1, 0.7->2, 1.0->3, 1.5->4, 2.0->5, 3.0->6; W+ = 2+4+5+6 = 17, W- = 1+3 = 4
    assert res["rank_biserial"] == pytest.approx((17 - 4) / 21)


def test_family_permutation_exact_and_smallest_p():
    eff = pd.Series([3.0, 4.0, 0.0, 1.0, 0.5, 1.5])
    fam = pd.Series(["nli", "nli", "qa", "qa", "qa", "qa"])
    res = S.family_permutation_test(eff, fam)
    assert res["n_permutations"] == 15 and res["min_p"] == pytest.approx(1 / 15)
    assert res["p_value"] == pytest.approx(1 / 15) and res["estimate"] == pytest.approx(2.75)
    # brute force over label sets
    x = eff.to_numpy()
    null = [x[list(c)].mean() - np.delete(x, list(c)).mean() for c in combinations(range(6), 2)]
    assert res["p_value"] == pytest.approx(np.mean(np.abs(null) >= 2.75 - 1e-12))
    with pytest.raises(ValueError, match="both families"):
        S.family_permutation_test(eff, pd.Series(["nli"] * 6))


def test_holm_and_bh_match_statsmodels_on_unsorted_input():
    from statsmodels.stats import multitest

    p = np.array([0.04, 0.001, 0.3, 0.012, 0.049, 0.0005, 0.8, 0.02])
    for ours, method in ((S.holm, "holm"), (S.benjamini_hochberg, "fdr_bh")):
        ref = multitest.multipletests(p, method=method)[1]
        np.testing.assert_allclose(ours(p), ref, rtol=1e-12)
    with_nan = np.array([0.04, np.nan, 0.01])
    np.testing.assert_allclose(S.holm(with_nan), [0.04, np.nan, 0.02])
    np.testing.assert_allclose(S.benjamini_hochberg([0.04, np.nan, 0.01]), [0.04, np.nan, 0.02])
    assert np.isnan(S.holm([np.nan, np.nan])).all() and S.holm([]).shape == (0,)


def test_partial_conjunction_bonferroni_monotone():
    res = S.partial_conjunction([0.001, 0.5, 0.002, 0.04], alpha=0.05).set_index("method")
    # sorted p: .001 .002 .04 .5 ; Bonferroni p^u = (N-u+1) p_(u): .004 .006 .08 .5 -> k_hat 2
    assert res.loc["bonferroni", "k_hat"] == 2 and res.loc["bonferroni", "n"] == 4
    assert list(res.index) == ["bonferroni"]  # no Fisher: it assumes independent languages
    assert S.partial_conjunction([0.9, 0.8])["k_hat"].tolist() == [0]
    # monotone: sorted .03 .01 .9 -> .01 .03 .9; 3 * .01 = .03, 2 * .03 = .06 -> k_hat 1
    assert S.partial_conjunction([0.03, 0.01, 0.9])["k_hat"].item() == 1
    # running max: 3 * .02 = .06 > .05 keeps u = 2 out although 2 * .021 = .042
    assert S.partial_conjunction([0.02, 0.021, 0.9])["k_hat"].item() == 0


def test_aso_hand_worked():
    rng = np.random.default_rng(0)
    # a = {0, 3}, b = {1, 2}: Q_b - Q_a = +1 on t in [0, 0.5] (101 of 200 grid points), -1 after
    res = S.aso([0.0, 3.0], [1.0, 2.0], rng=rng)
    assert res["epsilon"] == pytest.approx(101 / 200)
    assert res["warning"]
    assert S.aso([5, 6, 7, 8, 9, 10], [1, 2, 3, 4, 4.5, 4.8], rng=rng)["eps_min"] == 0.0
    assert S.aso([1, 2, 3], [5, 6, 7], rng=rng)["epsilon"] == 1.0
    r1 = S.aso([1.0, 2.2, 3.1, 2.0, 2.5], [1.5, 2.0, 2.8, 1.2, 1.9], rng=np.random.default_rng(3))
    r2 = S.aso([1.0, 2.2, 3.1, 2.0, 2.5], [1.5, 2.0, 2.8, 1.2, 1.9], rng=np.random.default_rng(3))
    assert r1 == r2 and r1["epsilon"] <= r1["eps_min"] <= 1


def test_effect_sizes():
    assert S.cliffs_delta([1, 2, 3], [2, 2, 2]) == pytest.approx((2 - 2) / 9 + 0.0)
    assert S.cliffs_delta([3, 4], [1, 2]) == 1.0
    assert S.cohens_dz([1.0, 2.0, 3.0]) == pytest.approx(2.0)
    assert np.isnan(S.cohens_dz([1.0, 1.0]))


@pytest.mark.slow
def test_null_rejection_rates():
    """Sign-flip (languages) and family permutation (tasks) reject <= alpha + 0.01 under the null.

    The sign-flip null holds the tasks fixed (sd_intermediate = 0, equal family effects) and has
    no seed noise shared by a run's languages (sd_stage = sd_run = 0): only then are the languages
    independent units (with run-level noise the languages share it and the sign flip tests these
    runs, see the calibration table). The family-permutation null makes tasks exchangeable (equal
    family effects, task sd 1; 4 vs 4 tasks so that p <= 0.05 is attainable: min p = 2/70).
    """
    independent = dict(sd_intermediate=0.0, sd_stage=0.0, sd_run=0.0)
    from analysis import effects
    from analysis.effects import task_effects

    rng = np.random.default_rng(11)
    n, flips_exact, flips_mc, perms = 500, 0, 0, 0
    for _ in range(n):
        d = simulate.simulate_deltas(
            rng,
            families={"nli": 4, "qa": 4},
            n_targets=2,
            n_languages=10,
            n_seeds=2,
            family_effects={"nli": 0.0, "qa": 0.0},
            **independent,
        )
        g = effects.language_weights(d)["estimate"]
        flips_exact += S.sign_flip_test(g, rng=rng)["p_value"] <= 0.05
        d1 = simulate.simulate_deltas(
            rng,
            families={"nli": 2, "qa": 4},
            n_targets=2,
            n_languages=20,
            n_seeds=2,
            family_effects={"nli": 0.0, "qa": 0.0},
            **independent,
        )
        flips_mc += (
            S.sign_flip_test(effects.language_weights(d1)["estimate"], rng=rng, n_resamples=2000)["p_value"]
            <= 0.05
        )
        d2 = simulate.simulate_deltas(
            rng,
            families={"nli": 4, "qa": 4},
            n_targets=2,
            n_languages=3,
            n_seeds=2,
            sd_intermediate=1.0,
            family_effects={"nli": 0.0, "qa": 0.0},
        )
        te = task_effects(d2)
        perms += S.family_permutation_test(te["estimate"], te["intermediate_family"])["p_value"] <= 0.05
    rates = (flips_exact / n, flips_mc / n, perms / n)
    print("null rejection rates (sign-flip exact, sign-flip MC, family permutation):", rates)
    assert max(rates) <= 0.06, rates


def test_delta_vs_none_matches_scipy_ttest_and_statsmodels_holm():
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(3)
    rows = []
    for enc in ("e1", "e2"):
        for inter, shift in (("mnli", 2.0), ("squad", 0.0), ("qqp", -1.0)):
            for target in ("xnli", "panx"):
                for lang in ("de", "fr", "sw", "ur", "zh"):
                    for seed in (1, 2, 3):
                        rows.append((enc, inter, target, lang, seed, shift + rng.normal()))
    delta = pd.DataFrame(rows, columns=["encoder", "intermediate", "target", "language", "seed", "delta"])
    delta = delta.sample(frac=1.0, random_state=0)  # unsorted input
    out = S.delta_vs_none(delta)
    assert len(out) == 12 and set(out.n) == {3.0} and set(out.df) == {2.0}
    for _, r in out.iterrows():
        sub = delta[
            (delta.encoder == r.encoder) & (delta.intermediate == r.intermediate) & (delta.target == r.target)
        ]
        ref = stats.ttest_1samp(sub.groupby("seed")["delta"].mean(), 0.0)
        assert r.p_value == pytest.approx(ref.pvalue, rel=1e-10) and r.statistic == pytest.approx(
            ref.statistic
        )
    for _, sub in out.groupby("encoder"):  # Holm within an encoder's cells
        assert sub.p_adj.to_numpy() == pytest.approx(multipletests(sub.p_value, method="holm")[1])
    flat = delta.assign(delta=1.0)  # no spread across seeds: no p
    assert S.delta_vs_none(flat)["p_value"].isna().all()
    one_seed = delta[delta.seed == 1]
    assert S.delta_vs_none(one_seed)["p_value"].isna().all()  # one run per cell: no test


@pytest.mark.parametrize("n_grids", [pytest.param(500, marks=pytest.mark.slow), 60])
def test_main_table_marks_hold_alpha_under_run_level_seed_noise(n_grids):
    """Every true cell delta 0, seed noise shared by a run's languages (stage, run, baseline run):
    per-cell rejection and Holm's family-wise error stay <= alpha; a t-test over languages (the
    old marks) does not, which shows the simulation has teeth."""
    rng = np.random.default_rng(12)
    null = dict(sd_intermediate=0.0, sd_target=0.0, sd_language=0.0, family_effects={"nli": 0.0, "qa": 0.0})
    cells = fwer = over_languages = total = 0
    for _ in range(n_grids):
        d = simulate.simulate_deltas(
            rng, n_targets=3, n_languages=8, n_seeds=3, sd_stage=1.0, sd_run=1.0, sd_baseline_run=1.0, **null
        )
        out = S.delta_vs_none(d)
        cells += int((out["p_value"] < 0.05).sum())
        total += len(out)
        fwer += bool((out["p_adj"] < 0.05).any())
        lang = d.groupby(["intermediate", "target", "language"])["delta"].mean()
        g = lang.groupby(["intermediate", "target"]).agg(["mean", "std", "size"])
        t = g["mean"] / (g["std"] / np.sqrt(g["size"]))
        over_languages += int((2 * stats.t.sf(np.abs(t), g["size"] - 1) < 0.05).sum())
    mc = lambda r, n: 2 * np.sqrt(0.05 * 0.95 / n)  # noqa: E731
    assert cells / total <= 0.05 + mc(0.05, total), cells / total
    assert fwer / n_grids <= 0.05 + mc(0.05, n_grids), fwer / n_grids
    print("per cell", cells / total, "Holm FWER", fwer / n_grids, "over languages", over_languages / total)
    assert over_languages / total > 0.25
