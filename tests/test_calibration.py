"""Calibration of the mixed-model t interval by simulation (slow; CI runs it) and the bench hook.

Measured (this file's seeds, 1000 / 500 grids): see the asserts' comments and the report.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.calibration import CALIBRATION_COLUMNS, bench_mixed, calibrate, on_deltas


def test_calibrate_small_and_reproducible():
    one = calibrate(np.random.default_rng(5), n_grids=8, families={"nli": 3, "qa": 3}, n_languages=3)
    two = calibrate(np.random.default_rng(5), n_grids=8, families={"nli": 3, "qa": 3}, n_languages=3)
    assert list(one.columns) == list(CALIBRATION_COLUMNS)
    assert list(dict.fromkeys(one["method"])) == [
        "headline",
        "headline_larger_se_t",
        "mixed_design",
        "mixed_z",
    ]
    pd.testing.assert_frame_equal(one, two)
    overall = one[one["stratum"] == "all"].set_index("method")
    assert (overall["n_grids"] == 8).all() and (overall["n_failed"] == 0).all()
    strata = one[one["stratum"] != "all"].groupby("method")["n_grids"].sum()
    assert (strata == 8).all()  # every grid is singular or regular
    # the z interval uses the same se with a smaller quantile: always narrower
    assert overall.loc["mixed_z", "mean_width"] < overall.loc["mixed_design", "mean_width"]


def test_plug_in_methods_and_failures_are_counted():
    def oracle(scores, rng):  # knows the truth: always covers, never rejects
        return -1e9, 1e9, 1.0

    def broken(scores, rng):
        raise ValueError("no luck")

    def delta_mean(delta, rng):  # a method of the delta frame, adapted
        assert {"delta", "intermediate_family"} <= set(delta.columns)
        return -1e9, 1e9, 1.0, "x"

    methods = {"oracle": oracle, "broken": broken, "delta": on_deltas(delta_mean)}
    table = calibrate(np.random.default_rng(1), n_grids=4, families={"nli": 3, "qa": 3}, methods=methods)
    row = table[table["stratum"] == "all"].set_index("method")
    assert row.loc["oracle", "coverage"] == 1.0 and row.loc["oracle", "rejection_rate"] == 0.0
    assert row.loc["broken", "n_failed"] == 4 and row.loc["broken", "n_grids"] == 0
    assert table.query("method == 'delta' and stratum == 'x'")["n_grids"].item() == 4


def test_interval_only_and_p_only_methods_are_summarised():
    """A bootstrap gives only an interval, a permutation test only a p-value: neither is a failure."""

    def interval(scores, rng):
        return -1e9, 1e9, np.nan

    def p_only(scores, rng):
        return np.nan, np.nan, 0.01

    row = calibrate(
        np.random.default_rng(2),
        n_grids=4,
        families={"nli": 3, "qa": 3},
        methods={"interval": interval, "p_only": p_only},
    ).set_index("method")
    assert row.loc["interval", "coverage"] == 1.0 and np.isnan(row.loc["interval", "rejection_rate"])
    assert row.loc["p_only", "rejection_rate"] == 1.0 and np.isnan(row.loc["p_only", "coverage"])
    assert (row["n_grids"] == 4).all() and (row["n_failed"] == 0).all()


def test_calibrate_bad_arguments():
    with pytest.raises(ValueError, match="n_grids"):
        calibrate(np.random.default_rng(0), n_grids=0)
    with pytest.raises(ValueError, match="must include"):
        calibrate(np.random.default_rng(0), families={"nli": 2, "mc": 2})


def test_bench_mixed_without_r():
    res = bench_mixed(np.random.default_rng(0), repeat=1, with_r=False, threads=(1,))
    # 6 tasks + 270 languages + 270 language gains + 30 stages + 270 runs + 45 baseline runs
    assert res["rows"] == 8100 and res["levels"] == 6 + 270 + 270 + 30 + 270 + 45
    assert res["seconds"] > 0 and list(res["seconds_by_threads"]) == [1]
    assert np.isnan(res["lme4_seconds"]) and np.isnan(res["ratio"])


def _rows(table, method="headline"):
    return table[table["method"] == method].set_index("stratum")


@pytest.mark.slow
def test_headline_under_the_null_with_run_level_seed_noise():
    """3 vs 3 tasks, 500 null grids, stage/run/baseline-run seed noise, task sd 0.5: the headline
    holds alpha overall; the z interval on the same fit does not."""
    table = calibrate(
        np.random.default_rng(11), n_grids=500, families={"nli": 3, "qa": 3}, sd_intermediate=0.5
    )
    t = _rows(table).loc["all"]
    assert 0.93 <= t["coverage"] <= 0.99
    assert t["rejection_rate"] <= 0.05 + 2 * t["rejection_mc_se"]
    assert _rows(table, "mixed_z").loc["all", "rejection_rate"] > t["rejection_rate"]


@pytest.mark.slow
def test_headline_on_a_singular_design():
    """No task variance at all (sd_intermediate = 0), 2 vs 4 tasks: about half the fits are singular;
    the task-bounded row covers in those grids too (conditional coverage)."""
    table = calibrate(
        np.random.default_rng(3), n_grids=500, families={"nli": 2, "qa": 4}, sd_intermediate=0.0
    )
    rows = _rows(table)
    assert rows.loc["singular", "n_grids"] > 100
    assert rows.loc["singular", "coverage"] >= 0.93
    assert rows.loc["all", "rejection_rate"] <= 0.05 + 2 * rows.loc["all", "rejection_mc_se"]


@pytest.mark.slow
def test_headline_covers_a_real_effect():
    table = calibrate(
        np.random.default_rng(11), n_grids=500, effect=2.0, families={"nli": 4, "qa": 4}, missing=0.1
    )
    t = _rows(table).loc["all"]
    assert 0.93 <= t["coverage"] <= 0.99
    assert t["rejection_rate"] > 0.5  # power


def test_calibration_table_covers_every_report_row_and_the_marks():
    from analysis.calibration import SCENARIOS, calibration_table

    table = calibration_table(np.random.default_rng(0), n_grids=2)
    assert set(table["scenario"]) >= set(SCENARIOS)
    methods = set(table["method"])
    assert {
        "headline",
        "task_t_test",
        "family_permutation",
        "sign_flip",
        "wilcoxon",
        "main-table marks",
    } <= methods
    marks = table[table["method"] == "main-table marks"].set_index("stratum")
    assert set(marks.index) == {"per cell", "per cell at alpha / 18 (Holm's first step)", "Holm family-wise"}
    assert marks.loc["Holm family-wise", "n_grids"] == 8  # the marks run on 4 x n_grids grids
    wins = table[table["method"] == "k of N languages"]
    assert wins["scenario"].nunique() == 3 and set(wins["stratum"]) == {
        "k >= 1 claimed",
        "k / N",
        "one language, uncorrected",
    }
    inter = table[table["method"] == "encoder x family interaction"]
    assert inter["effect"].tolist() == [0.0, 2.0] and inter["coverage"].notna().all()


def test_cli_calibrate(tmp_path, capsys):
    from xitt.cli import main

    assert main(["calibrate", "--grids", "0"]) == 2
    out = tmp_path / "cal.csv"
    assert main(["calibrate", "--grids", "1", "--out", str(out)]) == 0
    assert "headline" in capsys.readouterr().out
    assert len(pd.read_csv(out)) > 10
