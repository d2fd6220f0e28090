"""The design model and the headline rule (analysis.headline).

Golden values: tests/data/design_golden.json, written by tests/data/design_golden.R (lme4 +
lmerTest + pbkrtest on the three design_*.csv grids simulated with run-level seed noise).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis import headline as H
from analysis.simulate import simulate_scores

DATA = Path(__file__).parent / "data"
GOLDEN = json.loads((DATA / "design_golden.json").read_text())
GRIDS = ("balanced", "unbalanced", "singular")


def load(name: str) -> pd.DataFrame:
    return pd.read_csv(DATA / f"design_{name}.csv")


@pytest.mark.parametrize("name", GRIDS)
def test_design_model_matches_lmertest_satterthwaite(name):
    gold = GOLDEN[name]
    fit = H.fit_design(load(name))
    out = fit.compare_levels(H.contrast_weights(fit))
    sat = gold["satterthwaite"]
    assert out["estimate"] == pytest.approx(sat["estimate"], rel=1e-6)
    assert out["se"] == pytest.approx(sat["se"], rel=1e-5)
    assert out["df"] == pytest.approx(sat["df"], abs=1e-3)
    assert out["p_value"] == pytest.approx(sat["p"], rel=1e-3)
    assert fit.loglik == pytest.approx(gold["loglik"], abs=1e-6)
    assert fit.nobs == gold["nobs"]
    comps = fit.variance.set_index("component")["variance"]
    for comp, var in gold["variance"].items():
        assert comps[comp] == pytest.approx(var, rel=1e-4, abs=1e-7), comp


@pytest.mark.parametrize("name", GRIDS)
def test_design_model_matches_pbkrtest_kenward_roger(name):
    kr = GOLDEN[name]["kenward_roger"]
    fit = H.fit_design(load(name), ddf="kenward-roger")
    out = fit.compare_levels(H.contrast_weights(fit))
    assert out["se"] == pytest.approx(kr["se"], rel=1e-5)
    assert out["df"] == pytest.approx(kr["df"], abs=1e-3)
    assert out["p_value"] == pytest.approx(kr["p"], rel=1e-3)


def test_singular_golden_grid_is_singular_and_headline_is_task_bounded():
    assert GOLDEN["singular"]["variance"]["intermediate"] == 0
    # lmerTest's Satterthwaite counts stage seeds here (16 df from 6 tasks); the headline may not
    row, fit = H.headline(load("singular"))
    assert GOLDEN["singular"]["satterthwaite"]["df"] > 10
    assert row["method"] == "task_bounded" and row["df"] == np.inf  # normal quantile, see below
    assert "singular" in row["note"] and "upper bound of the task variance" in row["note"]
    tasks = H.task_means(load("singular"))
    nli = tasks.loc[tasks.intermediate_family == "nli", "estimate"]
    qa = tasks.loc[tasks.intermediate_family == "qa", "estimate"]
    ttest = stats.ttest_ind(nli, qa)  # scipy's pooled two-sample t: the same estimate and df
    assert row["estimate"] == pytest.approx(nli.mean() - qa.mean())
    se_floor = fit.compare_levels(H.contrast_weights(fit))["se"]
    # the variance of a task mean at its 95 % upper bound: SS / chi2_4(0.05), SS = 4 s_pooled^2,
    # s_pooled^2 (1/m_a + 1/m_b) being the square of scipy's pooled se
    pooled_se = row["estimate"] / ttest.statistic
    bound_se = np.sqrt(4 * pooled_se**2 / stats.chi2.ppf(0.05, 4))
    assert row["se"] == pytest.approx(max(bound_se, se_floor))
    assert row["ci_high"] - row["estimate"] == pytest.approx(stats.norm.ppf(0.975) * row["se"])


def test_headline_mixed_row_caps_df_at_tasks():
    row, fit = H.headline(load("balanced"))
    assert GOLDEN["balanced"]["variance"]["intermediate"] > 0
    assert row["method"] == "mixed"
    assert row["df"] <= 4 and row["estimate"] == pytest.approx(
        GOLDEN["balanced"]["satterthwaite"]["estimate"]
    )
    crit = stats.t.ppf(0.975, row["df"])
    assert row["ci_high"] - row["estimate"] == pytest.approx(crit * row["se"])


def test_one_task_each_is_no_inference_and_one_task_in_a_family_is_task_bounded():
    one_one = simulate_scores(np.random.default_rng(0), families={"nli": 1, "qa": 1})
    row, fit = H.headline(one_one)
    assert row["method"] == "no_inference" and fit is None
    assert np.isnan(row["ci_low"]) and np.isnan(row["p_value"]) and np.isfinite(row["estimate"])
    one_four = simulate_scores(np.random.default_rng(0), families={"nli": 1, "qa": 4})
    row, _ = H.headline(one_four)
    assert row["method"] == "task_bounded" and row["df"] == 3 and "single task" in row["note"]


def test_equal_target_estimand_ignores_language_counts():
    """XTREME weighting: a target with many languages must not dominate the contrast."""
    s = simulate_scores(np.random.default_rng(5), n_targets=2, n_languages=12)
    few = s[(s["target"] == "target_1") | s["language"].isin(["l01", "l02"])]  # target_2: 2 languages
    row, fit = H.headline(few)
    tasks = H.task_means(few)
    xtreme = tasks.groupby("intermediate_family")["estimate"].mean()
    w = H.contrast_weights(fit)
    assert set(w.values()) == {0.5, -0.5}
    assert row["estimate"] == pytest.approx(xtreme["nli"] - xtreme["qa"], abs=0.3)


def test_variance_components_name_the_units():
    vc = H.variance_components(H.fit_design(load("unbalanced")))
    assert list(vc["component"]) == [*H.RANDOM, "Residual"]
    assert vc["unit"].str.contains("stage seed").any() and vc["share"].sum() == pytest.approx(1.0)


def test_missing_family_is_one_clear_error():
    s = simulate_scores(np.random.default_rng(0))
    with pytest.raises(ValueError, match="'paraphrase'"):
        H.headline(s, a="paraphrase")


def test_encoder_answers_and_interaction():
    rng = np.random.default_rng(3)
    s = pd.concat(
        [
            simulate_scores(rng, encoder="mbert", family_effects={"nli": 2.0, "qa": 0.0}),
            simulate_scores(rng, encoder="xlmr", family_effects={"nli": 0.0, "qa": 0.0}),
        ],
        ignore_index=True,
    )
    out = H.encoder_answers(s).set_index("encoder")
    assert list(out.index) == ["mbert", "xlmr", "all", "xlmr - mbert"]
    alone = H.headline(s[s["encoder"] == "xlmr"])[0]
    assert out.loc["xlmr", "estimate"] == pytest.approx(alone["estimate"])
    # balanced grid: the joint fit's contrasts are the XTREME means, so the interaction is the
    # difference of the per-encoder answers and "all" their mean
    inter = out.loc["xlmr - mbert"]
    assert inter["estimate"] == pytest.approx(out.loc["xlmr", "estimate"] - out.loc["mbert", "estimate"])
    assert out.loc["all", "estimate"] == pytest.approx(out.loc[["mbert", "xlmr"], "estimate"].mean())
    assert inter["method"] == "interaction" and inter["df"] <= 4
    assert "encoder_intermediate" in set(H.fit_design(s).variance["component"])


def test_analyze_prints_no_inference_for_one_task_per_family():
    from analysis.pipeline import analyze
    from analysis.report.answer import answer_sentence

    s = simulate_scores(np.random.default_rng(0), families={"nli": 1, "qa": 1}, encoder="synth-x")
    res = analyze(s, rng=np.random.default_rng(1), n_boot=200)
    assert res.answer.method == "no_inference" and np.isnan(res.answer.ci_low)
    text = answer_sentence(res)
    assert (
        "no CI or p-value is possible" in text
        and "CI" not in text.split("possible")[0].split("points")[1][:6]
    )
    assert "equal weights" in text


def test_analyze_singular_demo_like_grid_is_task_bounded():
    from analysis.pipeline import analyze

    res = analyze(
        load("singular").assign(
            run_id=lambda f: f["intermediate"] + f["target"] + f["seed"].astype(str),
            target_family="sim",
            metric="accuracy",
            primary=True,
            task_version="1",
        ),
        rng=np.random.default_rng(1),
        n_boot=200,
    )
    assert res.answer.method == "task_bounded" and res.answer.df == np.inf
    assert set(res.frames.variance_components["component"]) >= {"stage", "run", "baseline_run"}
    plan = res.frames.seed_plan
    assert (plan.loc[plan["design"].str.startswith("observed"), "df"] == 4).all()


def test_robustness_rows_are_split_by_scope():
    from analysis.pipeline import analyze
    from analysis.report.tables import Options, contrast_table

    s = simulate_scores(np.random.default_rng(2), families={"nli": 3, "qa": 3}, encoder="synth-x")
    res = analyze(s, rng=np.random.default_rng(1), n_boot=200)
    scope = res.frames.contrast.set_index("method")["scope"]
    assert scope[["mixed", "task_t_test", "family_permutation"]].eq("family").all()
    assert scope[["sign_flip", "wilcoxon"]].eq("these tasks").all()
    # 3 tasks per family: the task bootstrap does not hold its level, so it is not offered as a test
    assert scope[["bootstrap_percentile", "bootstrap_bca"]].eq("not calibrated").all()
    table = contrast_table(res, Options(synthetic=True))
    first = [row[0].text for row in table.rows]
    assert first[0] == "family question" and "BCa bootstrap" not in first
    assert "these tasks only" in first and "do not generalise" in table.caption
    assert "not calibrated for this design" in table.caption
    assert res.frames.aso.empty and any("ASO" in c and ">= 6 seeds" in c for c in res.caveats)


def test_aso_only_with_enough_seeds():
    from analysis import significance as S
    from analysis.simulate import simulate_deltas

    few = simulate_deltas(np.random.default_rng(0), n_seeds=3)
    many = simulate_deltas(np.random.default_rng(0), n_seeds=6)
    assert S.aso_frame(few, "nli", "qa", rng=np.random.default_rng(1)).empty
    assert len(S.aso_frame(many, "nli", "qa", rng=np.random.default_rng(1))) == 2


def test_analyze_several_encoders_gives_per_encoder_answers_and_encoder_flag():
    from analysis.pipeline import analyze

    rng = np.random.default_rng(4)
    s = pd.concat(
        [simulate_scores(rng, encoder=f"synth-{e}", families={"nli": 3, "qa": 3}) for e in ("a", "b")],
        ignore_index=True,
    )
    res = analyze(s, rng=np.random.default_rng(1), n_boot=200)
    enc = res.frames.encoders.set_index("encoder")
    assert list(enc.index) == ["synth-a", "synth-b", "all", "synth-b - synth-a"]
    assert enc.loc["all", "estimate"] == pytest.approx(res.answer.estimate)
    one = analyze(s, rng=np.random.default_rng(1), n_boot=200, encoder="synth-b")
    assert one.answer.estimate == pytest.approx(enc.loc["synth-b", "estimate"])
    assert one.frames.encoders.empty and one.settings["encoder"] == "synth-b"
    with pytest.raises(ValueError, match="encoders: \\['synth-a', 'synth-b'\\]"):
        analyze(s, rng=np.random.default_rng(1), encoder="synth-c")


def test_cli_encoder_and_keep_degenerate_flags(tmp_path, capsys):
    import shutil

    from xitt.cli import main

    exp = tmp_path / "demo"
    shutil.copytree(
        Path(__file__).parents[1] / "runs" / "demo", exp, ignore=shutil.ignore_patterns("report", "analysis")
    )
    assert main(["analyze", str(exp), "--encoder", "nope", "--n-boot", "50"]) == 2
    assert "is not in the scores" in capsys.readouterr().err
    assert main(["analyze", str(exp), "--keep-degenerate", "--n-boot", "50"]) == 0
    settings = json.loads(next((exp / "analysis").rglob("settings.json")).read_text())
    assert settings["keep_degenerate"] is True
