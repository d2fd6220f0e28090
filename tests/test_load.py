"""Tests for analysis.load: coverage, missing cells, degenerate runs, duplicates."""

from pathlib import Path

import pandas as pd
import pytest

from analysis.load import validate
from xitt.schema import SchemaError, read_scores

DATA = Path(__file__).parent / "data"


def test_complete_grid_keeps_primary_rows_only():
    v = validate(read_scores(DATA / "scores_small.csv"))
    assert len(v.scores) == 24 and v.scores["primary"].all()
    assert set(v.scores.loc[v.scores.target == "xquad", "metric"]) == {"em_f1"}
    assert v.missing.empty and v.degenerate.empty and v.warnings == []
    assert v.coverage[["n_expected", "n_present", "n_missing"]].values.tolist() == [[12, 12, 0], [12, 12, 0]]


def test_missing_cells_raise_listing_them():
    frame = read_scores(DATA / "scores_missing.csv")
    with pytest.raises(ValueError, match=r"enc/squad/xnli/fr/seed 2.*allow_incomplete"):
        validate(frame)


def test_missing_cells_allowed_with_warning():
    v = validate(read_scores(DATA / "scores_missing.csv"), allow_incomplete=True)
    assert v.missing.to_dict("records") == [
        dict(encoder="enc", intermediate="squad", target="xnli", language="fr", seed=2)
    ]
    cov = v.coverage.set_index("target")
    assert cov.loc["xnli", "n_missing"] == 1 and cov.loc["xquad", "n_missing"] == 0
    assert any("missing" in w for w in v.warnings)


def test_degenerate_run_excluded_and_listed():
    v = validate(read_scores(DATA / "scores_degenerate.csv"))
    assert v.degenerate["run_id"].tolist() == ["enc__squad__xquad__s2"]
    assert "enc__squad__xquad__s2" not in set(v.scores["run_id"])
    assert any("enc__squad__xquad__s2" in w and "degenerate" in w for w in v.warnings)
    assert any("--keep-degenerate keeps them" in w for w in v.warnings)
    assert v.degenerate["kept"].tolist() == [False]


def test_keep_degenerate_keeps_and_still_lists_them():
    frame = read_scores(DATA / "scores_degenerate.csv")
    kept = validate(frame, keep_degenerate=True)
    assert kept.degenerate["run_id"].tolist() == ["enc__squad__xquad__s2"]
    assert kept.degenerate["kept"].tolist() == [True]
    assert "enc__squad__xquad__s2" in set(kept.scores["run_id"])
    assert len(kept.scores) == len(validate(frame).scores) + 2  # its two primary rows
    assert any("kept in (--keep-degenerate)" in w for w in kept.warnings)


def test_chance_level_flags_runs_at_or_below_chance():
    v = validate(read_scores(DATA / "scores_small.csv"), chance={"xnli": 71.0})
    # none: seed 1 mean (71 + 69) / 2 = 70, seed 2 mean 71; squad seed 1 mean 71 -- all <= 71
    assert sorted(v.degenerate["run_id"]) == [
        "enc__none__xnli__s1",
        "enc__none__xnli__s2",
        "enc__squad__xnli__s1",
    ]
    assert set(v.degenerate["reason"]) == {"mean score <= chance"}


def test_duplicates_error_lists_the_cells():
    frame = pd.read_csv(DATA / "scores_duplicate.csv", dtype=str, keep_default_na=False)
    with pytest.raises(SchemaError, match=r"repeat.*'intermediate': 'none'.*'language': 'de'"):
        validate(frame)


def test_two_primary_metrics_rejected():
    frame = read_scores(DATA / "scores_small.csv")
    frame.loc[frame.metric == "em", "primary"] = True
    with pytest.raises(ValueError, match="more than one primary"):
        validate(frame)
