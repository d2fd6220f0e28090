"""analysis.oracle: the best intermediate per target, honest (held-out seeds, English dev) and naive."""

import numpy as np
import pandas as pd
import pytest

from analysis import effects
from analysis.oracle import DEV, HELD_OUT, NAIVE, oracle_frame
from analysis.simulate import simulate_scores

NULL = dict(
    families={"nli": 2, "qa": 2},
    family_effects={"nli": 1.0, "qa": 1.0},
    sd_intermediate=0.0,
    sd_target=0.0,
    sd_language=0.0,
    n_targets=3,
    n_languages=4,
    n_seeds=4,
)


def test_under_the_null_the_naive_oracle_is_biased_and_the_held_out_one_is_not():
    # Every intermediate has the same true gain, +1: any selection is worth exactly +1.
    rng = np.random.default_rng(0)
    est = {NAIVE: [], HELD_OUT: []}
    for _ in range(100):
        summary, _ = oracle_frame(effects.deltas(simulate_scores(rng, **NULL)))
        for method in est:
            est[method].append(summary.set_index("method").loc[method, "estimate"])
    naive, honest = np.array(est[NAIVE]) - 1, np.array(est[HELD_OUT]) - 1
    assert naive.mean() > 5 * naive.std() / np.sqrt(naive.size)  # winner's curse, clearly
    assert abs(honest.mean()) < 3 * honest.std() / np.sqrt(honest.size)


def test_a_clear_winner_is_found_by_every_method():
    scores = simulate_scores(
        np.random.default_rng(1),
        **{**NULL, "family_effects": {"nli": 6.0, "qa": 0.0}, "families": {"nli": 1, "qa": 2}},
    )
    summary, choices = oracle_frame(effects.deltas(scores))
    assert set(choices["intermediate"]) == {"nli_1"}
    means = summary.set_index("method")["estimate"]
    delta = effects.deltas(scores)
    truth = delta[delta["intermediate"] == "nli_1"].groupby("target")["delta"].mean().mean()
    assert means[NAIVE] == pytest.approx(truth)
    assert means[HELD_OUT] == pytest.approx(truth)  # both folds together report every seed once
    row = summary.set_index("method").loc[HELD_OUT]
    assert row["n"] == 4 and row["df"] == 3 and row["ci_low"] < row["estimate"] < row["ci_high"]


def test_dev_selection_uses_dev_scores_and_says_where_it_fell_back():
    d = pd.DataFrame(
        dict(
            encoder="e",
            intermediate=["a", "b"] * 8,
            target=["t"] * 8 + ["u"] * 8,
            language="de",
            seed=[1, 1, 2, 2, 3, 3, 4, 4] * 2,
            delta=[2.0, 1.0] * 8,
        )
    )
    # English dev says b on target t; target u has no dev scores (a retrieval target).
    dev = pd.DataFrame(
        dict(
            encoder="e",
            intermediate=["none", "a", "b"] * 4,
            target="t",
            seed=np.repeat([1, 2, 3, 4], 3),
            score=[50.0, 60.0, 70.0] * 4,
        )
    )
    summary, choices = oracle_frame(d, dev)
    picked = choices[choices["method"] == DEV].groupby("target")["intermediate"].unique()
    assert list(picked["t"]) == ["b"] and list(picked["u"]) == ["a"]
    row = summary.set_index("method").loc[DEV]
    assert row["estimate"] == pytest.approx((1.0 + 2.0) / 2)
    assert "no dev scores exist: u" in row["note"]


def test_one_seed_gives_no_held_out_row():
    d = pd.DataFrame(
        dict(encoder="e", intermediate=["a", "b"], target="t", language="de", seed=1, delta=[1.0, 2.0])
    )
    summary, _ = oracle_frame(d)
    row = summary.set_index("method").loc[HELD_OUT]
    assert np.isnan(row["estimate"]) and "at least 2 seeds" in row["note"]
