"""Tests for analysis.pipeline (analyze), the export of its frames, the terminal summary and analysis.bench."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import contrast
from analysis.pipeline import analyze
from analysis.report import formatting as fmt
from analysis.report.answer import answer_sentence
from analysis.report.export import write_frames
from analysis.result import Answer, Frames
from analysis.simulate import simulate_deltas, simulate_scores
from xitt.schema import RESULT_COLUMNS, read_scores

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def grid():
    return simulate_scores(
        np.random.default_rng(0),
        n_targets=3,
        n_languages=6,
        n_seeds=3,
        encoder="synth-sim",
        family_effects={"nli": 1.5, "qa": 0.0},
    )


@pytest.fixture(scope="module")
def result(grid):
    return analyze(grid, rng=np.random.default_rng(1), n_boot=400, experiment="unit", seed=1)


def test_analysis_is_the_typed_contract(result):
    assert isinstance(result.frames, Frames) and isinstance(result.answer, Answer)
    for name, frame in result.frames.items():  # a complete grid: only the problem lists are empty
        # aso needs >= 6 seeds, encoders several encoders, example_level saved predictions
        empty = ("missing", "degenerate", "aso", "encoders", "example_level")
        assert (len(frame) == 0) == (name in empty), name
        assert set(Frames.columns(name)) <= set(frame.columns), name
    assert result.synthetic and result.experiment == "unit"
    assert result.caveats[0].startswith("SYNTHETIC DATA")
    assert list(result.frames.contrast["method"]) == [
        "mixed",
        "task_t_test",
        "bootstrap_percentile",
        "bootstrap_bca",
        "sign_flip",
        "wilcoxon",
        "family_permutation",
    ]
    assert result.settings["n_boot"] == 400 and "numpy" in result.settings["versions"]


def test_contrast_rows_agree_on_the_estimate(result):
    c = result.frames.contrast
    assert set(RESULT_COLUMNS) - {"p_adj"} <= set(c.columns)
    assert np.allclose(c["estimate"].dropna(), c["estimate"].dropna().iloc[0])
    assert result.answer.estimate == pytest.approx(c["estimate"].iloc[1])
    assert np.isfinite(c.loc[0, "estimate"])  # the mixed model fits this grid: it gives the answer, with df
    assert result.answer.method == "mixed" and np.isfinite(result.answer.df)


def test_per_target_and_languages(result):
    pt = result.frames.per_target
    assert list(pt["target"]) == ["target_1", "target_2", "target_3"]
    assert (pt["p_adj"] >= pt["p_value"]).all() and (pt["p_adj_bh"] <= pt["p_adj"] + 1e-12).all()
    assert {"wins", "n", "ci_low", "ci_high", "df"} <= set(pt.columns)
    pl = result.frames.per_language
    assert set(pl.loc[pl.target == "all", "language"]) == {f"l{k:02d}" for k in range(1, 7)}
    assert result.answer.n_languages == 6 and 0 <= result.answer.k_hat <= 6


def test_same_seed_same_answer(grid, result):
    again = analyze(grid, rng=np.random.default_rng(1), n_boot=400, experiment="unit", seed=1)
    assert again.answer == result.answer
    pd.testing.assert_frame_equal(again.frames.contrast, result.frames.contrast)


def test_hand_made_fixture_and_missing_family():
    scores = read_scores(DATA / "scores_small.csv")
    res = analyze(scores, rng=np.random.default_rng(0), n_boot=200)
    assert not res.synthetic
    boot = res.frames.contrast.set_index("method").loc["bootstrap_percentile"]
    assert boot["estimate"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="families with deltas"):
        analyze(scores, rng=np.random.default_rng(0), b="paraphrase")
    with pytest.raises(ValueError, match="allow_incomplete"):
        analyze(read_scores(DATA / "scores_missing.csv"), rng=np.random.default_rng(0))
    res = analyze(read_scores(DATA / "scores_degenerate.csv"), rng=np.random.default_rng(0), n_boot=200)
    assert any("enc__squad__xquad__s2" in c for c in res.caveats)
    assert res.frames.degenerate["run_id"].tolist() == ["enc__squad__xquad__s2"]


def test_write_frames(result, tmp_path):
    paths = write_frames(result, tmp_path / "analysis")
    names = {p.name for p in paths}
    assert {"answer.json", "caveats.txt", "settings.json", "contrast.csv", "per_target.csv"} <= names
    answer = json.loads((tmp_path / "analysis" / "answer.json").read_text())
    assert answer["synthetic"] is True and answer["sentence"] == answer_sentence(result)
    back = pd.read_csv(tmp_path / "analysis" / "contrast.csv")
    assert list(back["method"]) == list(result.frames.contrast["method"])


def test_render_summary_prints_banner_and_answer(result):
    from rich.console import Console

    from analysis.report.terminal import render_summary

    console = Console(record=True, width=120)
    render_summary(result, console=console)
    text = console.export_text()
    assert "SYNTHETIC DATA" in text and "[Synthetic data]" in text and "family permutation (tasks)" in text
    from analysis.report import tables as T

    for table in (T.contrast_table(result, T.Options()), T.per_target_table(result, T.Options())):
        for row in table.rows:  # the terminal shows the report's strings, digit for digit
            assert all(cell.text in text for cell in row), [c.text for c in row]
    assert "Caveats" in text
    narrow = Console(record=True, width=80)  # a plain terminal: the seed plan stays one row per design
    render_summary(result, console=narrow)
    lines = narrow.export_text().splitlines()
    for design in result.frames.seed_plan["design"].unique():
        assert any(design in line and "half-width" not in line for line in lines), design


@pytest.mark.slow
def test_run_bench_reports_every_step():
    from analysis.bench import run_bench

    res = run_bench(np.random.default_rng(0))
    assert {"hierarchical bootstrap", "ASO", "analyze()"} <= set(res)
    assert all(r["seconds"] > 0 for r in res.values())


def test_incomplete_grid_when_allowed():
    res = analyze(
        read_scores(DATA / "scores_missing.csv"),
        rng=np.random.default_rng(0),
        n_boot=200,
        allow_incomplete=True,
    )
    assert any("missing" in c for c in res.caveats)
    assert res.frames.missing.shape[0] == 1
    assert np.isfinite(res.frames.contrast.set_index("method").loc["bootstrap_percentile", "ci_low"])


def test_two_encoders_are_averaged_with_a_caveat():
    rng = np.random.default_rng(5)
    both = pd.concat(
        [
            simulate_scores(rng, n_targets=2, n_languages=4, n_seeds=2, encoder=enc)
            for enc in ("synth-a", "synth-b")
        ],
        ignore_index=True,
    )
    res = analyze(both, rng=np.random.default_rng(0), n_boot=200)
    assert any("2 encoders" in c for c in res.caveats)
    per_enc = [
        analyze(both[both.encoder == e], rng=np.random.default_rng(0), n_boot=200)
        .frames.contrast.set_index("method")
        .loc["bootstrap_percentile", "estimate"]
        for e in ("synth-a", "synth-b")
    ]
    est = res.frames.contrast.set_index("method").loc["bootstrap_percentile", "estimate"]
    assert est == pytest.approx(np.mean(per_enc))


def test_calibration_methods_plug_in():
    d = simulate_deltas(np.random.default_rng(0))
    for name, fn in contrast.calibration_methods(n_boot=200).items():
        lo, hi, p = fn(d, np.random.default_rng(1))
        assert (np.isfinite(lo) and lo <= hi) or 0 < p <= 1, name


def test_main_table_carries_holm_corrected_cell_tests(result):
    mt = result.frames.main_table
    tested = mt[(mt.intermediate != "none") & (mt.target != "avg")]
    assert tested["p_adj"].notna().all() and (tested["p_adj"] >= tested["p_value"]).all()
    assert mt.loc[(mt.intermediate == "none") | (mt.target == "avg"), "p_adj"].isna().all()


def test_answer_sentence_uses_the_report_digits(result):
    r = result.frames.contrast.set_index("method").loc["mixed"]
    d = fmt.decimals_for_width(r.ci_high - r.ci_low)
    sentence = answer_sentence(result)
    assert (
        f"is {fmt.fmt_num(r.estimate, d, sign=True)} points (95% CI {fmt.fmt_num(r.ci_low, d, sign=True)} to "
        in sentence
    )
    assert f"df = {fmt.fmt_df(r.df)}" in sentence and fmt.fmt_p(r.p_value) in sentence


def test_a_failed_mixed_fit_falls_back_to_the_bootstrap_with_a_caveat(grid, monkeypatch):
    from analysis import mixed

    def broken(frame, **kw):
        raise np.linalg.LinAlgError("not positive definite")

    monkeypatch.setattr(mixed, "fit_crossed", broken)
    res = analyze(grid, rng=np.random.default_rng(1), n_boot=200)
    assert res.answer.method == "bootstrap_bca" and np.isnan(res.answer.df)
    assert any("could not be fitted (not positive definite)" in c for c in res.caveats)
    assert res.frames.seed_plan.empty


def test_the_terminal_prints_hostile_names_inert(result):
    """An ESC sequence once cleared the screen; an experiment named '[link=...]' became a hyperlink."""
    import dataclasses

    from rich.console import Console

    from analysis.report.terminal import render_summary

    hostile = dataclasses.replace(result, experiment="[link=http://x]exp[/link]\x1b[2J")
    console = Console(record=True, width=120)
    render_summary(hostile, console=console)
    text = console.export_text()
    assert "[link=http://x]exp[/link][2J" in text and "\x1b" not in text
