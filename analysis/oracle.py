"""The best intermediate task per target ("oracle" selection), done honestly, beside the naive one.

Phang et al. (2020) report the XTREME average when each target takes its best intermediate task.
Picking the best of k noisy means and reporting that same mean is biased upwards (the winner's
curse): even when every intermediate task has the same true gain, the naive oracle shows a gain.
Three rows per encoder, each the XTREME-style average over the grid's targets (language mean
per target, then the target mean; the official XTREME / XTREME-R score when the grid holds the
suite's targets) of the gain over ``none``:

* ``naive`` -- select on the test gains of every seed, report those same gains. Biased; its
  interval (a t over seeds) ignores the selection. Shown because it is what the paper's number is.
* ``held-out seeds`` -- the seeds are split into two halves (alternating in sorted order); the
  intermediate is chosen per target on one half's mean test gain and reported on the other half's
  runs, and the other way round (cross-fitting, so every seed is reported once, always by a choice
  it took no part in).
* ``English dev, held-out seeds`` -- the same, choosing on the selection half's English-dev scores
  of the target runs (``dev_scores.csv``: the score the runner kept its checkpoint by); a target
  without dev scores (retrieval: no target training) chooses on the half's test gains, and the
  note says so. Choosing on the dev scores of the *same* runs would not be honest: a run's seed
  noise moves its dev and test scores together.

The unit is the seed, as in the main table's marks: a seed's value is the XTREME average of its
run-level gains (language mean of a run minus that of its ``none`` run) over the chosen
intermediates; estimate = mean over seeds, CI = t over seeds (df = seeds - 1). Only seeds with a
run for every target enter. The calibration (:func:`analysis.calibration_paper.oracle_calibration`)
measures bias and coverage under a null where every intermediate has the same gain.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from xitt.schema import NONE

NAIVE, HELD_OUT, DEV = "naive", "held-out seeds", "English dev, held-out seeds"
ORACLE_COLUMNS = ["encoder", "method", "estimate", "ci_low", "ci_high", "se", "df", "n", "note"]
CHOICE_COLUMNS = ["encoder", "method", "target", "fold", "intermediate", "selection_score"]


def run_gains(delta: pd.DataFrame) -> pd.DataFrame:
    """Language mean of the paired delta per run: encoder, intermediate, target, seed, gain."""
    keys = ["encoder", "intermediate", "target", "seed"]
    return delta.groupby(keys, sort=True)["delta"].mean().rename("gain").reset_index()


def _choose(criterion: pd.DataFrame) -> pd.DataFrame:
    """Per (encoder, target) the intermediate with the highest mean ``value`` (ties: first by name)."""
    mean = criterion.groupby(["encoder", "target", "intermediate"], sort=True)["value"].mean().reset_index()
    best = mean.sort_values(
        ["encoder", "target", "value", "intermediate"], ascending=[True, True, False, True]
    )
    best = best.drop_duplicates(["encoder", "target"])
    return best.rename(columns={"value": "selection_score"})


def _seed_values(gains: pd.DataFrame, chosen: pd.DataFrame, seeds) -> pd.Series:
    """Per seed of ``seeds``: the mean over targets of the chosen intermediates' run gains
    (seeds without a run for every target are left out)."""
    sub = gains[gains["seed"].isin(seeds)].merge(chosen[["encoder", "target", "intermediate"]])
    n_targets = chosen["target"].nunique()
    per = sub.groupby("seed")["gain"].agg(["mean", "size"])
    return per.loc[per["size"] == n_targets, "mean"]


def seed_t_row(encoder: str, method: str, values: np.ndarray, level: float, note: str) -> dict:
    """An ORACLE_COLUMNS row: mean of the per-seed ``values`` with its t interval over seeds."""
    n = values.size
    mean = float(values.mean()) if n else np.nan
    se = float(values.std(ddof=1) / np.sqrt(n)) if n > 1 else np.nan
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * se) if n > 1 else np.nan
    return {
        "encoder": encoder,
        "method": method,
        "estimate": mean,
        "ci_low": mean - half,
        "ci_high": mean + half,
        "se": se,
        "df": float(n - 1) if n > 1 else np.nan,
        "n": float(n),
        "note": note,
    }


def _halves(seeds) -> tuple[list, list]:
    seeds = sorted(seeds)
    return seeds[::2], seeds[1::2]


def _criterion(gains: pd.DataFrame, dev: pd.DataFrame | None, seeds) -> tuple[pd.DataFrame, list[str]]:
    """(encoder, target, intermediate, value) on ``seeds``: mean dev score where the target has
    dev scores (``dev`` given), else the test gain; and the targets that fell back to test."""
    test = gains[gains["seed"].isin(seeds)].rename(columns={"gain": "value"})
    if dev is None:
        return test, []
    d = dev[(dev["intermediate"] != NONE) & dev["seed"].isin(seeds)]
    d = d.groupby(["encoder", "target", "intermediate", "seed"], sort=True)["score"].mean()
    d = d.rename("value").reset_index()
    fallback = sorted(set(test["target"]) - set(d["target"]))
    return pd.concat([d, test[test["target"].isin(fallback)]], ignore_index=True), fallback


def _cross_fit(gains, dev, encoder, method, level) -> tuple[dict, list[pd.DataFrame]]:
    seeds = sorted(gains["seed"].unique())
    if len(seeds) < 2:
        return seed_t_row(encoder, method, np.array([]), level, "needs at least 2 seeds"), []
    values, choices, fallback = [], [], []
    for fold, (select, report) in enumerate([_halves(seeds), _halves(seeds)[::-1]]):
        crit, fb = _criterion(gains, dev, select)
        chosen = _choose(crit)
        fallback += fb
        values.append(_seed_values(gains, chosen, report))
        choices.append(chosen.assign(method=method, fold=fold + 1))
    note = "chosen on one half of the seeds, reported on the other (cross-fitted)"
    if fallback:
        note += f"; chosen on test gains where no dev scores exist: {', '.join(sorted(set(fallback)))}"
    return seed_t_row(encoder, method, pd.concat(values).to_numpy(float), level, note), choices


def oracle_frame(
    delta: pd.DataFrame, dev: pd.DataFrame | None = None, *, level: float = 0.95
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(summary, choices) of the best-intermediate-per-target selection, per encoder.

    ``delta``: :func:`analysis.effects.deltas` (encoder, intermediate, target, language, seed,
    delta); ``dev``: English-dev score rows (dev_scores.csv: encoder, intermediate, target, seed,
    score), or None (no dev row then). Returns ORACLE_COLUMNS (one row per encoder and method:
    naive, held-out seeds, English dev held-out seeds) and CHOICE_COLUMNS (the chosen intermediate
    per target, fold 0 = all seeds for the naive row, 1 and 2 the cross-fitting folds).

    >>> import pandas as pd
    >>> d = pd.DataFrame(dict(encoder="e", intermediate=["a", "b"] * 4, target="t", language="de",
    ...                       seed=[1, 1, 2, 2, 3, 3, 4, 4], delta=[3.0, 0.0, 0.0, 1.0, 3.0, 0.0, 0.0, 1.0]))
    >>> summary, _ = oracle_frame(d)
    >>> summary[["method", "estimate"]].values.tolist()
    [['naive', 1.5], ['held-out seeds', 0.0]]
    """
    gains = run_gains(delta[delta["intermediate"] != NONE])
    rows, choices = [], []
    for encoder, g in gains.groupby("encoder", sort=True):
        chosen = _choose(g.rename(columns={"gain": "value"}))
        naive = _seed_values(g, chosen, g["seed"].unique()).to_numpy(float)
        rows.append(
            seed_t_row(encoder, NAIVE, naive, level, "chosen and reported on the same test runs: biased up")
        )
        choices.append(chosen.assign(method=NAIVE, fold=0))
        for method, d in ((HELD_OUT, None), (DEV, dev)):
            if method == DEV and (d is None or d[d["encoder"] == encoder].empty):
                continue
            row, ch = _cross_fit(g, None if d is None else d[d["encoder"] == encoder], encoder, method, level)
            rows.append(row)
            choices += ch
    summary = pd.DataFrame(rows, columns=ORACLE_COLUMNS)
    picked = pd.concat(choices, ignore_index=True) if choices else pd.DataFrame(columns=CHOICE_COLUMNS)
    return summary, picked[CHOICE_COLUMNS].reset_index(drop=True)
