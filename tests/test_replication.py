"""analysis.replication: the claims table on simulated grids whose true gains are known."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import effects
from analysis.replication import load_claims, replication_frame, resolve
from analysis.simulate import simulate_scores

NAMES = {"a_1": "squad_v2", "b_1": "mnli", "c_1": "hellaswag", "d_1": "qqp", "e_1": "multi"}
TARGETS = {"target_1": "xnli", "target_2": "tydiqa", "target_3": "tatoeba"}


def _delta(effects_by_task: dict, seed: int = 0, drop=()):
    fams = {k.split("_")[0]: 1 for k in NAMES if NAMES[k] not in drop}
    scores = simulate_scores(
        np.random.default_rng(seed),
        families=fams,
        family_effects={f: effects_by_task[NAMES[f + "_1"]] for f in fams},
        n_targets=3,
        n_languages=6,
        n_seeds=5,
        sd_intermediate=0.0,
        sd_target=0.0,
        sd_language=0.0,
        sd_stage=0.2,
        sd_run=0.2,
        sd_baseline_run=0.2,
        sd_residual=0.3,
    )
    scores["intermediate"] = scores["intermediate"].replace(NAMES)
    scores["target"] = scores["target"].replace(TARGETS)
    return effects.deltas(scores)


PAPER_LIKE = {"squad_v2": 8.2, "mnli": 7.5, "hellaswag": 7.0, "qqp": 1.0, "multi": 8.7}


def test_paper_like_gains_are_consistent_and_a_missing_condition_is_not_testable():
    table = replication_frame(_delta(PAPER_LIKE, drop=("multi",)), synthetic=False).set_index("claim")
    assert table.loc[["1a", "1b", "1c", "1d"], "verdict"].tolist() == ["consistent"] * 4
    assert table.loc["1a", "estimate"] == pytest.approx(8.2, abs=0.5)
    assert table.loc["2a", "verdict"] == "not testable" and "multi" in table.loc["2a", "conditions"]
    assert table.loc["6a", "verdict"] == "not testable"
    assert not table["synthetic"].any()


def test_smaller_gains_are_not_consistent_and_an_ordering_reverses():
    table = replication_frame(
        _delta({**PAPER_LIKE, "squad_v2": 2.0, "qqp": 9.5, "multi": 3.0}), synthetic=False
    ).set_index("claim")
    assert table.loc["1a", "verdict"] == "not consistent"
    assert table.loc["1d", "verdict"] == "not consistent"  # qqp beats squad clearly
    assert table.loc["2a", "verdict"] == "not consistent" and table.loc["2b", "verdict"] == "not consistent"
    assert table.loc["1d", "estimate"] == pytest.approx(2.0 - 9.5, abs=0.5)


def test_equal_gains_make_direction_claims_inconclusive_not_consistent():
    table = replication_frame(_delta(dict.fromkeys(PAPER_LIKE, 5.0), seed=3), synthetic=False).set_index(
        "claim"
    )
    assert table.loc["2b", "verdict"] in ("inconclusive", "not consistent")
    assert table.loc["4", "verdict"] == "inconclusive"  # every target gains alike


def test_roles_and_synthetic_stand_ins():
    roles = load_claims()["roles"]
    assert resolve(roles["squad"], ["squad_v1", "squad_v2"], False) == [
        "squad_v2",
        "squad_v1",
    ]  # gain uses the first
    assert resolve(roles["squad"], ["synth_qa"], False) == []
    assert resolve(roles["squad"], ["synth_qa"], True) == ["synth_qa"]
    assert resolve(roles["mlm"], ["mnli", "mnli_mlm", "squad_mlm"], False) == ["mnli_mlm", "squad_mlm"]
    claims = load_claims()["claims"]
    assert {c["id"] for c in claims} >= {"1a", "1b", "1c", "2a", "5"}
    assert [c["value"] for c in claims if "value" in c] == [8.2, 7.5, 7.0, 8.7, 5.4]


def test_the_claims_file_ships_in_the_wheel():
    root = Path(__file__).resolve().parents[1]
    assert '"analysis" = ["data/*.yaml"]' in (root / "pyproject.toml").read_text()
    assert (root / "analysis" / "data" / "phang2020_claims.yaml").is_file()


def test_a_target_claim_uses_the_named_targets_the_grid_has():
    # The grid has Tatoeba but no BUCC (as XTREME-R): claim 3 compares Tatoeba with the other targets.
    table = replication_frame(_delta(PAPER_LIKE), synthetic=False).set_index("claim")
    assert table.loc["3", "verdict"] != "not testable" and "tatoeba" in table.loc["3", "conditions"]


def test_the_paper_encoder_is_preferred():
    d = _delta(PAPER_LIKE)
    both = pd.concat(
        [d.assign(encoder="bert-base-multilingual-cased"), d.assign(encoder="xlm-roberta-large")]
    )
    table = replication_frame(both, synthetic=False)
    assert table["conditions"].str.startswith("xlm-roberta-large").any()
    assert not table["conditions"].str.contains("bert-base").any()


def test_a_condition_without_a_complete_seed_is_not_testable_not_an_error():
    d = _delta(PAPER_LIKE, drop=("multi",))  # the grid of the first test: 1b is consistent there
    d = d[~((d["intermediate"] == "squad_v2") & (d["target"] == "xnli"))]  # squad never has every target
    table = replication_frame(d, synthetic=False).set_index("claim")
    assert table.loc["1a", "verdict"] == "not testable" and table.loc["1d", "verdict"] == "not testable"
    assert table.loc["1b", "verdict"] == "consistent"
