"""Descriptive effects: per-cell seed statistics, XTREME averages, the main table, paired deltas.

Every function takes primary-metric score rows (the scores.csv contract columns, e.g.
``load.validate(...).scores``) or the delta frame from :func:`deltas`, and returns a new frame.

The family contrast used throughout xitt (here, in the bootstrap and the tests) weighs the
design the XTREME way: seed mean per (task, target, language), language mean per target,
target mean per intermediate task, then the mean over the tasks of a family; several encoders
are averaged with equal weight.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from xitt.schema import NONE

AVG = "avg"
PAIR = ["encoder", "target", "language", "seed"]


def cell_stats(scores: pd.DataFrame) -> pd.DataFrame:
    """Mean, sd and n over seeds per encoder x intermediate x target x language.

    Input: score rows (encoder, intermediate, intermediate_family, target, target_family,
    language, seed, score). Returns those keys + mean, sd (ddof=1, NaN for one seed), n.

    >>> import pandas as pd
    >>> f = pd.DataFrame(dict(encoder="e", intermediate="none", intermediate_family="none", target="t",
    ...                       target_family="x", language="de", seed=[1, 2], score=[1.0, 3.0]))
    >>> cell_stats(f)[["mean", "sd", "n"]].values.tolist()
    [[2.0, 1.4142135623730951, 2.0]]
    """
    keys = ["encoder", "intermediate", "intermediate_family", "target", "target_family", "language"]
    out = scores.groupby(keys, sort=True)["score"].agg(mean="mean", sd="std", n="size").reset_index()
    out["n"] = out["n"].astype(float)
    return out


def target_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """Per run (encoder x intermediate x target x seed): the mean of the primary score over languages.

    QA targets already carry their primary metric ``em_f1`` = (EM + F1) / 2, so no special case.
    Returns encoder, intermediate, intermediate_family, target, target_family, seed, score, n_languages.
    """
    keys = ["encoder", "intermediate", "intermediate_family", "target", "target_family", "seed"]
    out = scores.groupby(keys, sort=True)["score"].agg(score="mean", n_languages="size").reset_index()
    return out


def xtreme_average(scores: pd.DataFrame) -> pd.DataFrame:
    """XTREME average: language mean per target, then the mean over targets.

    Returns encoder, intermediate, intermediate_family, seed, score, n_targets (one row per
    encoder x intermediate x seed).
    """
    per = target_scores(scores)
    keys = ["encoder", "intermediate", "intermediate_family", "seed"]
    return per.groupby(keys, sort=True)["score"].agg(score="mean", n_targets="size").reset_index()


def family_order(families, first=()) -> list[str]:
    """``none`` first, then the families of ``first`` in that order (e.g. the compared a, b), then the
    rest alphabetically; only families present in ``families`` are returned."""
    fams = sorted(set(map(str, families)))
    lead = [f for f in (NONE, *first) if f in fams]
    return list(dict.fromkeys(lead)) + [f for f in fams if f not in lead]


def main_table(scores: pd.DataFrame) -> pd.DataFrame:
    """The paper-style table in long form: one row per encoder x intermediate x target (+ "avg").

    Per run the language mean (XTREME style); then mean, sd over seeds and n (seeds). ``delta`` is
    the mean minus the ``none`` row's mean for the same encoder and target (NaN for ``none``).
    ``avg`` is the XTREME average over the encoder's complete target set only: a seed enters it
    only when it has a run for every target of that encoder (else a missing run would average a
    seed over other targets than the ``none`` row: issue 12 saw -4.26 where both targets showed
    +0.7); its n counts those seeds and ``complete`` is False when a seed was left out (or, with
    no complete seed, when the avg falls back to the mean of the per-target means).
    Rows are ordered encoder, family (none first), intermediate, target with "avg" last.
    Returns encoder, intermediate, intermediate_family, target, mean, sd, n, delta, complete.
    """
    per = target_scores(scores)
    keys = ["encoder", "intermediate", "intermediate_family", "target"]
    out = per.groupby(keys, sort=False)["score"].agg(mean="mean", sd="std", n="size").reset_index()
    out = pd.concat([out.assign(complete=True), _avg_rows(per, out)], ignore_index=True)
    base = out[out["intermediate"] == NONE].set_index(["encoder", "target"])["mean"]
    ref = pd.Series(list(zip(out["encoder"], out["target"]))).map(base.to_dict())
    out["delta"] = np.where(out["intermediate"] == NONE, np.nan, out["mean"].to_numpy() - ref.to_numpy(float))
    fam_rank = {f: i for i, f in enumerate(family_order(out["intermediate_family"]))}
    targets = sorted(t for t in out["target"].unique() if t != AVG) + [AVG]
    out = out.assign(
        _f=out["intermediate_family"].map(fam_rank),
        _t=out["target"].map({t: i for i, t in enumerate(targets)}),
    )
    out = out.sort_values(["encoder", "_f", "intermediate", "_t"]).drop(columns=["_f", "_t"])
    out["n"] = out["n"].astype(float)
    out["complete"] = out["complete"].astype(bool)
    cols = [
        "encoder",
        "intermediate",
        "intermediate_family",
        "target",
        "mean",
        "sd",
        "n",
        "delta",
        "complete",
    ]
    return out[cols].reset_index(drop=True)


def _avg_rows(per: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """The "avg" rows of :func:`main_table` from per-run language means ``per`` and the per-target
    cells (mean over seeds): XTREME average over the complete seeds, see main_table."""
    targets = per.groupby("encoder")["target"].nunique()
    keys = ["encoder", "intermediate", "intermediate_family"]
    seed = per.groupby([*keys, "seed"], sort=False)["score"].agg(score="mean", n_targets="size").reset_index()
    seed["full"] = seed["n_targets"].to_numpy() == seed["encoder"].map(targets).to_numpy()
    rows = []
    for key, grp in seed.groupby(keys, sort=False):
        full = grp.loc[grp["full"], "score"]
        if len(full):
            mean, sd, n = float(full.mean()), float(full.std()) if len(full) > 1 else np.nan, len(full)
        else:  # no seed has every target: the mean of the available per-target means, flagged
            sub = cells[(cells[keys] == pd.Series(key, index=keys)).all(axis=1)]
            mean, sd, n = float(sub["mean"].mean()), np.nan, 0
        rows.append(
            {
                **dict(zip(keys, key)),
                "target": AVG,
                "mean": mean,
                "sd": sd,
                "n": n,
                "complete": bool(grp["full"].all()),
            }
        )
    return pd.DataFrame(rows)


def deltas(scores: pd.DataFrame) -> pd.DataFrame:
    """delta = score(intermediate) - score(none), paired on (encoder, target, language, seed).

    Cells without a matching ``none`` run are dropped. Returns encoder, intermediate,
    intermediate_family, target, target_family, language, seed, delta.

    >>> import pandas as pd
    >>> f = pd.DataFrame(dict(encoder="e", intermediate=["none", "mnli"], intermediate_family=["none", "nli"],
    ...                       target="t", target_family="x", language="de", seed=1, score=[60.0, 65.0]))
    >>> deltas(f)["delta"].tolist()
    [5.0]
    """
    base = scores.loc[scores["intermediate"] == NONE, PAIR + ["score"]].rename(columns={"score": "_base"})
    inter = scores[scores["intermediate"] != NONE]
    out = inter.merge(base, on=PAIR, how="inner")
    out["delta"] = out["score"] - out["_base"]
    cols = [
        "encoder",
        "intermediate",
        "intermediate_family",
        "target",
        "target_family",
        "language",
        "seed",
        "delta",
    ]
    return out[cols].sort_values(cols[:7]).reset_index(drop=True)


def _task_target_means(delta: pd.DataFrame) -> pd.DataFrame:
    """Seed mean per cell, language mean per (encoder, intermediate, target)."""
    cell = delta.groupby(["encoder", "intermediate", "intermediate_family", "target", "language"], sort=True)[
        "delta"
    ].mean()
    return cell.groupby(["encoder", "intermediate", "intermediate_family", "target"]).mean().reset_index()


def family_means(delta: pd.DataFrame) -> pd.DataFrame:
    """Mean delta per family, per target and overall (target "all"), XTREME-weighted.

    Input: the :func:`deltas` frame. Per target: language mean of seed means per task, then the
    mean (and sd) over the family's tasks; "all": the task's target mean first. Several encoders
    are averaged. Returns intermediate_family, target, estimate, sd (between tasks), n (tasks).
    """
    tt = _task_target_means(delta)
    per_task_t = tt.groupby(["intermediate", "intermediate_family", "target"])["delta"].mean().reset_index()
    per_task = per_task_t.groupby(["intermediate", "intermediate_family"])["delta"].mean().reset_index()
    per_task["target"] = "all"
    both = pd.concat([per_task_t, per_task], ignore_index=True)
    out = (
        both.groupby(["intermediate_family", "target"], sort=True)["delta"]
        .agg(estimate="mean", sd="std", n="size")
        .reset_index()
    )
    out["n"] = out["n"].astype(float)
    return out


def family_contrast(delta: pd.DataFrame, a: str = "nli", b: str = "qa") -> pd.DataFrame:
    """Descriptive contrast mean(family a) - mean(family b) of the delta, overall and per target.

    Returns target ("all" first), estimate, n_a, n_b (tasks). ValueError if a family is absent.

    >>> import pandas as pd
    >>> d = pd.DataFrame(dict(encoder="e", intermediate=["m", "s"], intermediate_family=["nli", "qa"],
    ...                       target="t", target_family="x", language="de", seed=1, delta=[3.0, 1.0]))
    >>> family_contrast(d).query("target == 'all'")["estimate"].item()
    2.0
    """
    fams = set(delta["intermediate_family"])
    for fam in (a, b):
        if fam not in fams:
            raise ValueError(
                f"family '{fam}' has no intermediate tasks in the data; families present: "
                f"{sorted(fams)}. Pick a and b among them."
            )
    fm = family_means(delta).set_index(["intermediate_family", "target"])
    targets = ["all"] + sorted(t for t in delta["target"].unique())
    rows = []
    for t in targets:
        ea = fm["estimate"].get((a, t), np.nan)
        eb = fm["estimate"].get((b, t), np.nan)
        rows.append(
            {
                "target": t,
                "estimate": ea - eb,
                "n_a": fm["n"].get((a, t), 0.0),
                "n_b": fm["n"].get((b, t), 0.0),
            }
        )
    return pd.DataFrame(rows)


def contrast_by(delta: pd.DataFrame, by: list[str], a: str = "nli", b: str = "qa") -> pd.DataFrame:
    """Family contrast a - b of the delta within groups ``by`` (a subset of target, language, seed).

    Within each group: mean per (task, encoder), then over encoders, then over the family's tasks;
    a minus b. Returns ``by`` columns + estimate (NaN where a group lacks one family).

    >>> import pandas as pd
    >>> d = pd.DataFrame(dict(encoder="e", intermediate=["m", "s"], intermediate_family=["nli", "qa"],
    ...                       target="t", target_family="x", language="de", seed=1, delta=[3.0, 1.0]))
    >>> contrast_by(d, ["language"])["estimate"].tolist()
    [2.0]
    """
    d = delta[delta["intermediate_family"].isin([a, b])]
    task_keys = ["intermediate", "intermediate_family", *by]
    per = d.groupby(task_keys + ["encoder"], sort=True)["delta"].mean().groupby(task_keys).mean()
    fam = per.groupby(["intermediate_family", *by]).mean().unstack("intermediate_family")
    for f in (a, b):
        if f not in fam.columns:
            fam[f] = np.nan
    return (fam[a] - fam[b]).rename("estimate").reset_index()


def language_weights(delta: pd.DataFrame, a: str = "nli", b: str = "qa") -> pd.DataFrame:
    """Each language's share of the overall contrast: g_l = sum over targets of d_tl / (T n_t).

    d_tl is the (target, language) contrast of seed means; the overall contrast is sum_l g_l,
    so flipping the sign of a language flips it in every target at once (languages are the
    units of the sign-flip test). Returns language, estimate (g_l), n_targets.
    """
    tl = contrast_by(delta, ["target", "language"], a, b).dropna(subset=["estimate"])
    n_t = tl.groupby("target")["language"].transform("size")
    tl = tl.assign(w=tl["estimate"] / (n_t * tl["target"].nunique()))
    out = (
        tl.groupby("language", sort=True)
        .agg(estimate=("w", "sum"), n_targets=("target", "size"))
        .reset_index()
    )
    return out


def task_effects(delta: pd.DataFrame) -> pd.DataFrame:
    """Per intermediate task: XTREME mean of delta (seed, language, target, encoder means).

    Returns intermediate, intermediate_family, estimate.
    """
    cell = delta.groupby(["intermediate", "intermediate_family", "encoder", "target", "language"])[
        "delta"
    ].mean()
    per_t = cell.groupby(["intermediate", "intermediate_family", "encoder", "target"]).mean()
    per_e = per_t.groupby(["intermediate", "intermediate_family", "encoder"]).mean()
    return per_e.groupby(["intermediate", "intermediate_family"]).mean().rename("estimate").reset_index()
