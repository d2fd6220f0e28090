"""Tests for analysis.effects on the hand-made fixture (NLI task +3/+1, QA task +1/+2 on xnli/xquad)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import effects
from analysis.load import validate
from xitt.schema import read_scores

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def scores():
    return validate(read_scores(DATA / "scores_small.csv")).scores


def test_deltas_are_paired_differences(scores):
    d = effects.deltas(scores)
    assert len(d) == 16
    got = d.groupby(["intermediate", "target"])["delta"].unique().map(list).to_dict()
    assert got == {
        ("mnli", "xnli"): [3.0],
        ("mnli", "xquad"): [1.0],
        ("squad", "xnli"): [1.0],
        ("squad", "xquad"): [2.0],
    }
    assert list(d.columns) == [
        "encoder",
        "intermediate",
        "intermediate_family",
        "target",
        "target_family",
        "language",
        "seed",
        "delta",
    ]


def test_cell_stats_over_seeds(scores):
    cs = effects.cell_stats(scores)
    row = cs[(cs.intermediate == "none") & (cs.target == "xnli") & (cs.language == "de")].iloc[0]
    assert (row["mean"], row["n"]) == (71.5, 2.0)
    assert row["sd"] == pytest.approx(np.sqrt(0.5))


def test_target_scores_use_primary_em_f1(scores):
    ts = effects.target_scores(scores)
    r = ts[(ts.intermediate == "none") & (ts.target == "xquad") & (ts.seed == 1)].iloc[0]
    assert r["score"] == pytest.approx((51 + 49) / 2) and r["n_languages"] == 2


def test_xtreme_average(scores):
    xa = effects.xtreme_average(scores)
    r = xa[(xa.intermediate == "none") & (xa.seed == 1)].iloc[0]
    assert r["score"] == pytest.approx(((71 + 69) / 2 + (51 + 49) / 2) / 2) and r["n_targets"] == 2


def test_main_table_order_and_delta(scores):
    mt = effects.main_table(scores)
    assert mt["intermediate"].iloc[0] == "none"
    assert list(dict.fromkeys(mt["intermediate_family"])) == ["none", "nli", "qa"]
    assert list(mt[mt.intermediate == "mnli"]["target"]) == ["xnli", "xquad", "avg"]
    assert mt[mt.intermediate == "none"]["delta"].isna().all()
    got = mt.set_index(["intermediate", "target"])["delta"]
    assert got[("mnli", "xnli")] == pytest.approx(3.0)
    assert got[("squad", "avg")] == pytest.approx(1.5)


def test_family_means_and_contrast(scores):
    d = effects.deltas(scores)
    fm = effects.family_means(d).set_index(["intermediate_family", "target"])["estimate"]
    assert fm[("nli", "all")] == pytest.approx(2.0) and fm[("qa", "xquad")] == pytest.approx(2.0)
    fc = effects.family_contrast(d).set_index("target")["estimate"]
    assert fc.to_dict() == pytest.approx({"all": 0.5, "xnli": 2.0, "xquad": -1.0})
    with pytest.raises(ValueError, match="families present"):
        effects.family_contrast(d, a="nli", b="paraphrase")


def test_language_weights_sum_to_the_overall_contrast(scores):
    d = effects.deltas(scores)
    g = effects.language_weights(d)
    assert g["estimate"].sum() == pytest.approx(0.5)
    by = effects.contrast_by(d, ["target", "seed"])
    assert set(by.round(6)["estimate"]) == {2.0, -1.0}


def test_avg_uses_complete_target_sets_only():
    """One intermediate run missing (target xnli, seed 2): both per-target deltas are +0.7, and so
    must be the avg (issue 12: averaging each seed over whatever targets exist gave -4.26)."""
    rows = []
    for inter, fam, gain in (("none", "none", 0.0), ("mnli", "nli", 0.7)):
        for target, level in (("xnli", 80.0), ("panx", 40.0)):
            for seed in (1, 2, 3):
                if inter == "mnli" and target == "xnli" and seed == 2:
                    continue
                for lang in ("de", "sw"):
                    rows.append(
                        dict(
                            encoder="e",
                            intermediate=inter,
                            intermediate_family=fam,
                            target=target,
                            target_family="x",
                            language=lang,
                            seed=seed,
                            score=level + gain + 0.1 * seed,
                        )
                    )
    table = effects.main_table(pd.DataFrame(rows)).set_index(["intermediate", "target"])
    assert table.loc[("mnli", "xnli"), "delta"] == pytest.approx(0.7 - 0.1 * (1 + 3) / 2 + 0.1 * 2, abs=0.2)
    avg = table.loc[("mnli", "avg")]
    assert avg["delta"] == pytest.approx(0.7, abs=0.11) and avg["n"] == 2 and not avg["complete"]
    assert table.loc[("none", "avg"), "complete"] and table.loc[("none", "avg"), "n"] == 3
