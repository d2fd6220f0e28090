"""The best intermediate task per target ("oracle" selection), done honestly, beside the naive one.

Phang et al. (2020) report the XTREME average when each target takes its best intermediate task.
Picking the best of k noisy means and reporting that same mean is biased upwards (the winner's
curse): even when every intermediate task has the same true gain, the naive oracle shows a gain.
Three rows per encoder, each the gain over ``none`` of an average (:func:`average_scope`, named in
the ``average`` column): the official XTREME (else XTREME-R) score when the grid holds every task
of the suite on every official language (the run's gains on the official languages only),
otherwise the equal-target average of the language means over the grid's targets, labelled as
NOT the official score:

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

from xitt.schema import NONE, XTREME_VERSIONS

NAIVE, HELD_OUT, DEV = "naive", "held-out seeds", "English dev, held-out seeds"
ORACLE_COLUMNS = ["encoder", "method", "estimate", "ci_low", "ci_high", "se", "df", "n", "average", "note"]
SUITE_LABELS = {"xtreme": "XTREME score", "xtreme-r": "XTREME-R score"}


def _suite_gaps(delta: pd.DataFrame, version: str) -> list[str]:
    """What ``delta`` lacks of a version's official suite: "task" or "task:lang lang"."""
    languages, _ = XTREME_VERSIONS[version]
    held = delta.groupby("target")["language"].agg(set).to_dict()
    gaps = []
    for task, official in languages.items():
        lacking = [lg for lg in official if lg not in held.get(task, set())]
        if task not in held or lacking:
            gaps.append(task if task not in held else f"{task}:{' '.join(lacking)}")
    return gaps


def average_scope(delta: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """(the delta rows the "average" uses, its label).

    When ``delta`` (columns target, language, ...) holds every task of XTREME (else XTREME-R) on
    every official language (xitt.schema.XTREME_LANGUAGES; LAReQA: its collected languages), the
    rows are restricted to that suite and its official languages: the target mean of the language
    means of a run's gains is then the gain of the official score (evaluate.py's ``all_task``, a
    plain mean of the tasks' language means of the primary metric, so gains average linearly).
    Label "XTREME score" / "XTREME-R score". Otherwise every row is kept and the label says that
    the equal-target average over which targets and languages is NOT the official score, and why.
    """
    for version, label in SUITE_LABELS.items():
        if not _suite_gaps(delta, version):
            languages, _ = XTREME_VERSIONS[version]
            keep = pd.Series(False, index=delta.index)
            for task, official in languages.items():
                on = delta["target"] == task
                keep |= on & (delta["language"].isin(official) if official else True)
            return delta[keep], label
    per_target = delta.groupby("target", sort=True)["language"].agg(lambda s: " ".join(sorted(set(s))))
    listed = "; ".join(f"{t} ({langs})" for t, langs in per_target.items())
    gaps = _suite_gaps(delta, "xtreme")
    return delta, (
        f"equal-target average over {listed}: NOT the official XTREME score "
        f"(missing from the XTREME suite: {', '.join(gaps[:6])}{' ...' if len(gaps) > 6 else ''})"
    )


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


def seed_t_row(
    encoder: str, method: str, values: np.ndarray, level: float, note: str, average: str = ""
) -> dict:
    """An ORACLE_COLUMNS row: mean of the per-seed ``values`` with its t interval over seeds;
    ``average`` is the label of :func:`average_scope`."""
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
        "average": average,
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
    naive, held-out seeds, English dev held-out seeds; ``average``: the label of
    :func:`average_scope`, "XTREME score" when the grid holds the official suite) and
    CHOICE_COLUMNS (the chosen intermediate per target, fold 0 = all seeds for the naive row, 1 and
    2 the cross-fitting folds).

    >>> import pandas as pd
    >>> d = pd.DataFrame(dict(encoder="e", intermediate=["a", "b"] * 4, target="t", language="de",
    ...                       seed=[1, 1, 2, 2, 3, 3, 4, 4], delta=[3.0, 0.0, 0.0, 1.0, 3.0, 0.0, 0.0, 1.0]))
    >>> summary, _ = oracle_frame(d)
    >>> summary[["method", "estimate"]].values.tolist()
    [['naive', 1.5], ['held-out seeds', 0.0]]
    """
    rows, choices = [], []
    for encoder, scoped in delta[delta["intermediate"] != NONE].groupby("encoder", sort=True):
        scoped, average = average_scope(scoped)
        g = run_gains(scoped)
        d = None if dev is None else dev[(dev["encoder"] == encoder) & dev["target"].isin(g["target"])]
        chosen = _choose(g.rename(columns={"gain": "value"}))
        naive = _seed_values(g, chosen, g["seed"].unique()).to_numpy(float)
        note = "chosen and reported on the same test runs: biased up"
        rows.append(seed_t_row(encoder, NAIVE, naive, level, note, average))
        choices.append(chosen.assign(method=NAIVE, fold=0))
        for method, criterion in ((HELD_OUT, None), (DEV, d)):
            if method == DEV and (criterion is None or criterion.empty):
                continue
            row, ch = _cross_fit(g, criterion, encoder, method, level)
            rows.append({**row, "average": average})
            choices += ch
    summary = pd.DataFrame(rows, columns=ORACLE_COLUMNS)
    picked = pd.concat(choices, ignore_index=True) if choices else pd.DataFrame(columns=CHOICE_COLUMNS)
    return summary, picked[CHOICE_COLUMNS].reset_index(drop=True)
