"""Crossed mixed model vs R's lme4 1.1-31 + lmerTest 3.1-3 (golden values from tests/data/mixed_golden.R).

The R numbers were produced with tight optimizer tolerances (see the R script); with lme4's
default tolerances they differ from these by up to 1e-4 relative on flat likelihoods, because
BOBYQA stops a little short of the optimum (our deviance is lower there by ~5e-9).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import mixed
from analysis.mixed import fit_crossed
from analysis.simulate import simulate_deltas

DATA = Path(__file__).parent / "data"
QA, PARA = "intermediate_family[T.qa]", "intermediate_family[T.paraphrase]"

# name, reml -> {term: (estimate, se, df, p)}, {component: variance}, logLik
GOLDEN = {
    ("balanced", True): (
        {
            "(Intercept)": (2.67086268889, 1.37621748041, 5.91084280705, 0.101068682716),
            QA: (-2.20280284444, 1.29067096651, 4.00000047081, 0.163067635485),
        },
        {
            "target:language": 0.5840500749696,
            "intermediate": 2.1981055430637,
            "seed": 0.0442992204147,
            "target": 2.1891513371622,
            "Residual": 1.0351431894121,
        },
        -420.247401131685,
    ),
    ("unbalanced", True): (
        {
            "(Intercept)": (1.04564012568, 0.664671389004, 4.57349260843, 0.18186922057148),
            PARA: (-1.50429523575, 0.396985705197, 3.95833171988, 0.01965268483204),
            QA: (-2.31630373341, 0.362026830658, 3.94206801079, 0.00322031139522),
        },
        {
            "target:language": 1.0832056066444,
            "intermediate": 0.1360895858363,
            "target": 1.1178599553587,
            "seed": 0.0489693349017,
            "Residual": 0.8442605528821,
        },
        -402.730365019837,
    ),
    ("singular", True): (
        {
            "(Intercept)": (2.22597977778, 0.749131889973, 5.41783611669, 0.0281879460691),
            QA: (-2.41804988333, 0.654200409293, 3.99999877278, 0.0209050280876),
        },
        {
            "target:language": 0.886338713442,
            "intermediate": 0.628217712465,
            "target": 0.0,
            "seed": 0.908677695428,
            "Residual": 0.824973048825,
        },
        -519.930366177964,
    ),
    ("balanced", False): (
        {
            "(Intercept)": (2.67086268889, 1.19370303697, 7.93403318395, 0.0559152943791),
            QA: (-2.20280284445, 1.11909929761, 5.52244881837, 0.1007143809482),
        },
        {
            "target:language": 0.5840480403109,
            "intermediate": 1.6468403160114,
            "seed": 0.0437136219261,
            "target": 1.6094911156182,
            "Residual": 1.0351800546632,
        },
        -422.262670317554,
    ),
    ("unbalanced", False): (
        {
            "(Intercept)": (1.04534763833, 0.576685581924, 5.87018016505, 0.12091725671491),
            PARA: (-1.50625734051, 0.321918658309, 6.00057709914, 0.00339860757238),
            QA: (-2.31531803676, 0.293411522270, 5.96274645995, 0.00022643872514),
        },
        {
            "target:language": 1.0840929450334,
            "intermediate": 0.0821223016022,
            "target": 0.7913322490310,
            "seed": 0.0469796506237,
            "Residual": 0.8444110527866,
        },
        -402.601870877007,
    ),
}
# lmerTest::contest(m, L = c(0, 0, -1)) on the unbalanced grid: nli - qa
CONTEST = {
    True: (2.31630373341, 0.362026830658, 3.94206801079, 1.30530364455, 3.32730382227, 0.00322031139522),
    False: (2.31531803676, 0.293411522270, 5.96274645995, 1.59627719107, 3.03435888244, 0.00022643872514),
}


# summary(m, ddf = "Kenward-Roger") (pbkrtest 0.5.2): {term: (se, df, p)}; estimates as above
KENWARD_ROGER = {
    "balanced": {
        "(Intercept)": (1.37621748041, 5.91084201949, 0.101068689242),
        QA: (1.29067096651, 4.00000000000, 0.163067643906),
    },
    "unbalanced": {
        "(Intercept)": (0.664674506157, 4.57677704467, 0.1818258606721),
        PARA: (0.397004121040, 3.98779109454, 0.0193914793800),
        QA: (0.362042770968, 3.97140804724, 0.0031406261409),
    },
    "singular": {
        "(Intercept)": (0.749131889973, 5.36159533865, 0.0285495490478),
        QA: (0.654200409293, 4.00000000000, 0.0209050167835),
    },
}


def load(name: str) -> pd.DataFrame:
    return pd.read_csv(DATA / f"mixed_{name}.csv")


@pytest.mark.parametrize("name,reml", list(GOLDEN))
def test_matches_lmertest(name, reml):
    coefs, variances, loglik = GOLDEN[(name, reml)]
    fit = fit_crossed(load(name), reml=reml)
    table = fit.coefficients.set_index("term")
    assert list(table.index) == list(coefs)
    for term, (est, se, df, p) in coefs.items():
        row = table.loc[term]
        assert row["estimate"] == pytest.approx(est, rel=1e-4)
        assert row["se"] == pytest.approx(se, abs=1e-4)
        assert row["df"] == pytest.approx(df, abs=1e-3)
        assert row["p_value"] == pytest.approx(p, rel=1e-3)
    comps = fit.variance.set_index("component")["variance"]
    for comp, var in variances.items():
        assert comps[comp] == pytest.approx(var, rel=1e-4, abs=1e-8)
    assert fit.loglik == pytest.approx(loglik, abs=1e-6)
    assert fit.deviance == pytest.approx(-2 * loglik, abs=2e-6)
    assert fit.converged and fit.reml is reml and fit.nobs == len(load(name))


@pytest.mark.parametrize("reml", [True, False])
def test_contrast_matches_contest(reml):
    est, se, df, low, high, p = CONTEST[reml]
    out = fit_crossed(load("unbalanced"), reml=reml).compare("nli", "qa")
    assert out["estimate"] == pytest.approx(est, rel=1e-4)
    assert out["se"] == pytest.approx(se, abs=1e-4)
    assert out["df"] == pytest.approx(df, abs=1e-3)
    assert out["ci_low"] == pytest.approx(low, abs=1e-3)
    assert out["ci_high"] == pytest.approx(high, abs=1e-3)
    assert out["p_value"] == pytest.approx(p, rel=1e-3)
    frame = load("unbalanced")
    assert out["n"] == frame["intermediate_family"].isin(["nli", "qa"]).sum()


def test_contrast_by_terms_equals_compare():
    fit = fit_crossed(load("unbalanced"))
    by_terms = fit.contrast({QA: -1.0})
    by_levels = fit.compare("nli", "qa")
    for key in ("estimate", "se", "df", "p_value", "ci_low", "ci_high"):
        assert by_terms[key] == pytest.approx(by_levels[key], rel=1e-12)
    para_qa = fit.compare("paraphrase", "qa")
    assert para_qa["estimate"] == pytest.approx(fit.contrast({PARA: 1.0, QA: -1.0})["estimate"])


def test_two_tasks_per_family_gives_few_df():
    """2 NLI vs 4 QA tasks: the family contrast has about n_tasks - n_families = 4 df, not infinity."""
    out = fit_crossed(load("balanced")).compare("nli", "qa")
    assert 2.0 <= out["df"] <= 4.5
    z_p = 2 * (1 - __import__("scipy").stats.norm.cdf(abs(out["statistic"])))
    assert out["p_value"] > z_p  # the t test is the honest (larger) one


def test_ci_consistent_with_p_value():
    fit = fit_crossed(load("unbalanced"))
    for level in (0.9, 0.95, 0.99):
        for a, b in [("nli", "qa"), ("paraphrase", "qa"), ("nli", "paraphrase")]:
            out = fit.compare(a, b, level=level)
            excludes_zero = out["ci_low"] > 0 or out["ci_high"] < 0
            assert excludes_zero == (out["p_value"] < 1 - level)
            assert out["estimate"] == pytest.approx((out["ci_low"] + out["ci_high"]) / 2)


def test_singular_fit_is_reported_not_raised():
    fit = fit_crossed(load("singular"))
    assert any("target explains no variance" in d for d in fit.diagnostics)
    assert np.isfinite(fit.coefficients["df"]).all()


def test_few_levels_diagnostics():
    fit = fit_crossed(load("balanced"))
    text = " ".join(fit.diagnostics)
    assert "only 2 levels of intermediate in intermediate_family nli" in text
    assert "seed has only 3 levels" in text


def test_scale_invariance():
    frame = load("unbalanced")
    base = fit_crossed(frame).compare("nli", "qa")
    scaled = fit_crossed(frame.assign(delta=frame["delta"] * 100 + 30)).compare("nli", "qa")
    assert scaled["estimate"] == pytest.approx(100 * base["estimate"], rel=1e-6)
    assert scaled["df"] == pytest.approx(base["df"], rel=1e-5)


def test_gradient_matches_finite_differences():
    frame = load("unbalanced")
    X, _, _, _ = mixed._fixed_design(frame, "intermediate_family", None)
    codes = [mixed._codes(frame, n) for n in ("intermediate", "target", "target:language", "seed")]
    cp = mixed._cross_products(X, frame["delta"].to_numpy() - frame["delta"].mean(), codes)
    for reml in (True, False):
        phi = np.array([0.3, 1.2, 0.8, 0.1])
        _, grad = mixed._profiled_grad_phi(cp, phi, reml)
        h = 1e-6
        num = [
            (
                mixed._profiled(cp, np.sqrt(phi + h * e), reml)
                - mixed._profiled(cp, np.sqrt(phi - h * e), reml)
            )
            / (2 * h)
            for e in np.eye(4)
        ]
        np.testing.assert_allclose(grad, num, rtol=1e-5, atol=1e-6)


def test_matches_statsmodels_one_factor():
    """statsmodels as an oracle for a single random intercept (where it is exact and fast)."""
    import statsmodels.formula.api as smf

    frame = load("balanced")
    ours = fit_crossed(frame, random=("intermediate",))
    ref = smf.mixedlm("delta ~ intermediate_family", frame, groups=frame["intermediate"]).fit(reml=True)
    assert ours.variance.set_index("component").loc["intermediate", "variance"] == pytest.approx(
        float(ref.cov_re.iloc[0, 0]), rel=1e-4
    )
    assert ours.variance.set_index("component").loc["Residual", "variance"] == pytest.approx(
        ref.scale, rel=1e-4
    )
    np.testing.assert_allclose(ours.coefficients["estimate"], ref.fe_params.to_numpy(), rtol=1e-5)
    np.testing.assert_allclose(ours.coefficients["se"], ref.bse_fe.to_numpy(), rtol=1e-4)


def test_intercept_only_and_reference():
    frame = load("balanced")
    only = fit_crossed(frame, fixed=None)
    assert list(only.coefficients["term"]) == ["(Intercept)"]
    assert only.coefficients["estimate"].iloc[0] == pytest.approx(
        only.contrast({"(Intercept)": 1})["estimate"]
    )
    with pytest.raises(ValueError, match="no fixed factor"):
        only.compare("nli", "qa")
    ref_qa = fit_crossed(frame, reference="qa")
    assert list(ref_qa.coefficients["term"]) == ["(Intercept)", "intermediate_family[T.nli]"]
    assert ref_qa.compare("nli", "qa")["estimate"] == pytest.approx(
        fit_crossed(frame).compare("nli", "qa")["estimate"]
    )


def test_single_level_factor_and_missing_response_are_dropped_with_a_note():
    frame = load("balanced")
    frame = frame[frame["seed"] == 1].copy()
    frame.loc[frame.index[0], "delta"] = np.nan
    fit = fit_crossed(frame)
    text = " ".join(fit.diagnostics)
    assert "seed has a single level" in text and "1 rows with a missing delta" in text
    assert list(fit.variance["component"]) == ["intermediate", "target", "target:language", "Residual"]
    assert fit.nobs == len(frame) - 1


def test_bad_arguments_raise_helpful_errors():
    frame = load("balanced")
    with pytest.raises(KeyError, match="Did you mean 'target'"):
        fit_crossed(frame, random=("intermediate", "targt"))
    with pytest.raises(KeyError, match="no response column"):
        fit_crossed(frame, response="score")
    with pytest.raises(ValueError, match="REML"):
        fit_crossed(frame, ddf="kenward-roger", reml=False)
    with pytest.raises(ValueError, match="ddf must be"):
        fit_crossed(frame, ddf="z")
    with pytest.raises(ValueError, match="one level"):
        fit_crossed(frame[frame["intermediate_family"] == "nli"])
    fit = fit_crossed(frame)
    with pytest.raises(KeyError, match="Did you mean 'qa'"):
        fit.compare("nli", "qaa")
    with pytest.raises(KeyError, match="no fixed-effect term"):
        fit.contrast({"qa": 1.0})


def test_simulated_grid_recovers_the_truth_roughly():
    frame = simulate_deltas(
        np.random.default_rng(3),
        families={"nli": 6, "qa": 6},
        n_targets=4,
        n_languages=6,
        n_seeds=3,
        family_effects={"nli": 2.0, "qa": 0.0},
    )
    fit = fit_crossed(frame)
    out = fit.compare("nli", "qa")
    assert out["ci_low"] < 2.0 < out["ci_high"]
    assert 5 <= out["df"] <= 15


def test_badly_scaled_grid_deviance_matches_r_and_optimum_is_lower():
    """Residual sd 0.01, task sd 3 (theta ~ 200): lme4, even with tight tolerances, stops short.

    R (mixed_golden.R, 'scaled'): theta (target:language, intermediate, seed, target) =
    (94.741634540612267, 195.91133912831131, 0, 122.68539638367594), REML criterion
    -2115.727637249022; R's own devfun at our theta gives -2115.72767549150 (lower, i.e. better).
    """
    frame = load("scaled")
    X, _, _, _ = mixed._fixed_design(frame, "intermediate_family", None)
    names = ("intermediate", "target", "target:language", "seed")
    cp = mixed._cross_products(X, frame["delta"].to_numpy(), [mixed._codes(frame, n) for n in names])
    r_theta = np.array([195.91133912831131, 122.68539638367594, 94.741634540612267, 0.0])
    assert mixed._profiled(cp, r_theta, True) == pytest.approx(-2115.727637249022, abs=1e-6)
    fit = fit_crossed(frame)
    assert fit.converged
    assert fit.deviance == pytest.approx(-2115.72767549150, abs=2e-6)
    assert fit.deviance < -2115.727637249022
    assert any("seed explains no variance" in d for d in fit.diagnostics)


def test_one_task_per_family_is_flagged_as_confounded():
    frame = simulate_deltas(np.random.default_rng(0), families={"nli": 1, "qa": 1})
    fit = fit_crossed(frame)
    text = " ".join(fit.diagnostics)
    assert "intermediate_family nli has a single intermediate" in text and "not identified" in text


def test_non_convergence_is_reported_in_words(monkeypatch):
    real = mixed._optimize

    def stuck(cp, reml, K):
        theta, _, _ = real(cp, reml, K)
        return theta, False, "the deviance gradient is not zero at the optimum (max 0.1)"

    monkeypatch.setattr(mixed, "_optimize", stuck)
    fit = fit_crossed(load("balanced"))
    assert not fit.converged
    assert any(d.startswith("optimizer did not converge") for d in fit.diagnostics)


@pytest.mark.parametrize("name", list(KENWARD_ROGER))
def test_kenward_roger_matches_pbkrtest(name):
    fit = fit_crossed(load(name), ddf="kenward-roger")
    table = fit.coefficients.set_index("term")
    for term, (se, df, p) in KENWARD_ROGER[name].items():
        assert table.loc[term, "se"] == pytest.approx(se, abs=1e-4)
        assert table.loc[term, "df"] == pytest.approx(df, abs=1e-3)
        assert table.loc[term, "p_value"] == pytest.approx(p, rel=1e-3)
    if name == "unbalanced":  # contest(m, L = c(0, 0, -1), ddf = "Kenward-Roger", confint = TRUE)
        out = fit.compare("nli", "qa")
        assert out["df"] == pytest.approx(3.97140804724, abs=1e-3)
        assert out["ci_low"] == pytest.approx(1.30825135037, abs=1e-3)
        assert out["ci_high"] == pytest.approx(3.32435611645, abs=1e-3)


def test_singular_task_variance_says_the_df_count_rows():
    """No task variance: Satterthwaite's df grow with the rows; the diagnostic must not promise small df."""
    from analysis.simulate import simulate_deltas

    frame = simulate_deltas(
        np.random.default_rng(4),
        families={"nli": 2, "qa": 2},
        n_targets=3,
        n_languages=5,
        n_seeds=3,
        sd_intermediate=0.0,
        sd_stage=0.0,
        sd_run=0.0,
    )
    fit = fit_crossed(frame)
    text = " ".join(fit.diagnostics)
    assert fit.variance.set_index("component").loc["intermediate", "variance"] == pytest.approx(0, abs=1e-8)
    assert "tested as if these 4 intermediate levels were fixed" in text and "family permutation" in text
    assert "df are small" not in text
    assert fit.coefficients["df"].iloc[1] > 20
