"""Load and check a scores table before any statistics: schema, coverage, degenerate runs.

Input is a scores frame in the ``xitt.schema`` contract (one row per run x language x metric).
:func:`validate` keeps the primary-metric rows, reports which cells of the
encoder x intermediate x target x language x seed grid are missing (an error unless
``allow_incomplete``), and lists degenerate runs (score 0 or at/below chance), which it
excludes with a warning that names them -- never silently. A metric whose scores all lie within
[0, 1] gets a warning too (:func:`scale_warnings`): the contract's scale is 0-100.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from xitt.schema import SchemaError, validate_scores

KEYS = ["encoder", "intermediate", "target", "language", "seed"]
RUN_KEYS = ["run_id", "encoder", "intermediate", "intermediate_family", "target", "target_family", "seed"]


@dataclass
class Validated:
    """What :func:`validate` returns.

    scores: primary-metric rows (contract columns) of the runs that are kept.
    coverage: per (encoder, target): n_expected, n_present, n_missing cells (a cell is
        encoder x intermediate x target x language x seed).
    missing: the missing cells (encoder, intermediate, target, language, seed); empty if complete.
    degenerate: runs found degenerate (run_id, encoder, intermediate, target, seed,
        mean_score, chance, reason, kept); empty if none.
    warnings: plain sentences to show the user.
    """

    scores: pd.DataFrame
    coverage: pd.DataFrame
    missing: pd.DataFrame
    degenerate: pd.DataFrame
    warnings: list[str] = field(default_factory=list)


def primary_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows with ``primary`` True; ValueError naming (run, language) pairs with none or several."""
    prim = frame[frame["primary"]]
    counts = prim.groupby(KEYS, sort=False).size()
    several = counts[counts > 1]
    if len(several):
        raise ValueError(
            f"{len(several)} (encoder, intermediate, target, language, seed) cells have more than one primary "
            f"metric, e.g. {[dict(zip(KEYS, k)) for k in several.index[:5]]}. Mark exactly one metric per run "
            "and language as primary (QA targets: em_f1)."
        )
    all_cells = frame[KEYS].drop_duplicates()
    none = all_cells.merge(prim[KEYS].drop_duplicates(), how="left", on=KEYS, indicator=True)
    none = none[none["_merge"] == "left_only"]
    if len(none):
        raise ValueError(
            f"{len(none)} cells have no primary metric, e.g. {none[KEYS].head(5).to_dict('records')}. "
            "Set primary=True on the metric that enters averages."
        )
    return prim.reset_index(drop=True)


def coverage(prim: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Expected vs present cells.

    Expected per encoder: every intermediate seen for that encoder x every target x the languages
    seen for that target x every seed seen for that encoder. Returns (coverage, missing) as
    described in :class:`Validated`.
    """
    parts = []
    for enc, sub in prim.groupby("encoder", sort=True):
        langs = sub[["target", "language"]].drop_duplicates()
        grid = (
            pd.DataFrame({"intermediate": sorted(sub["intermediate"].unique())})
            .merge(langs, how="cross")
            .merge(pd.DataFrame({"seed": sorted(sub["seed"].unique())}), how="cross")
        )
        grid.insert(0, "encoder", enc)
        parts.append(grid)
    expected = pd.concat(parts, ignore_index=True)[KEYS]
    merged = expected.merge(prim[KEYS], how="left", on=KEYS, indicator=True)
    present = merged["_merge"] == "both"
    cov = (
        merged.assign(present=present)
        .groupby(["encoder", "target"], sort=True)["present"]
        .agg(n_expected="size", n_present="sum")
        .reset_index()
    )
    cov["n_present"] = cov["n_present"].astype(int)
    cov["n_missing"] = cov["n_expected"] - cov["n_present"]
    missing = merged.loc[~present, KEYS].reset_index(drop=True)
    return cov, missing


def degenerate_runs(prim: pd.DataFrame, chance: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Runs whose primary scores are all 0, or whose language-mean score is <= chance[target].

    Returns run_id, encoder, intermediate, target, seed, mean_score, chance, reason.
    """
    chance = dict(chance or {})
    runs = prim.groupby(RUN_KEYS, sort=True)["score"].agg(mean_score="mean", max_score="max").reset_index()
    runs["chance"] = runs["target"].map(chance).astype(float)
    zero = runs["max_score"] <= 0
    at_chance = runs["chance"].notna() & (runs["mean_score"] <= runs["chance"])
    runs["reason"] = np.where(zero, "all scores 0", np.where(at_chance, "mean score <= chance", ""))
    cols = ["run_id", "encoder", "intermediate", "target", "seed", "mean_score", "chance", "reason"]
    return runs.loc[zero | at_chance, cols].reset_index(drop=True)


def scale_warnings(frame: pd.DataFrame) -> list[str]:
    """One sentence per metric whose finite scores all lie within [0, 1] (and are not all 0):
    scores.csv is on the 0-100 scale, so such a metric was most likely written as fractions and
    every difference would be read as a hundredth of a point (a 0-1 table was reported as
    "-0.03 points" without a word). Input columns: metric, score."""
    out = []
    for metric, scores in frame.groupby("metric", sort=True)["score"]:
        values = scores[np.isfinite(scores.to_numpy(float))]
        if len(values) and values.between(0, 1).all() and values.max() > 0:
            out.append(
                f"all {len(values)} scores of metric '{metric}' lie within [0, 1], but xitt expects the "
                "0-100 scale: if they are fractions, every difference in points is 100 times too small. "
                "Chance levels are not applied. Multiply the scores by 100 (`xitt import --scale 100`, "
                "or rewrite scores.csv) and rerun."
            )
    return out


def _describe_cells(missing: pd.DataFrame, limit: int = 20) -> str:
    rows = [
        f"{r.encoder}/{r.intermediate}/{r.target}/{r.language}/seed {r.seed}"
        for r in missing.head(limit).itertuples()
    ]
    more = f" and {len(missing) - limit} more" if len(missing) > limit else ""
    return "; ".join(rows) + more


def validate(
    frame: pd.DataFrame,
    *,
    allow_incomplete: bool = False,
    chance: Mapping[str, float] | None = None,
    keep_degenerate: bool = False,
) -> Validated:
    """Check a scores frame and return the rows fit for analysis.

    Input columns: the scores.csv contract (xitt.schema.SCORE_COLUMNS). Duplicated cells raise
    SchemaError listing them; missing grid cells raise ValueError listing them unless
    ``allow_incomplete``; degenerate runs (all scores 0, or language mean <= ``chance[target]``,
    chance on the 0-100 scale) are dropped with a warning naming them -- the default, because a
    run that never learned says nothing about the intermediate task, and dropping it is the
    more common protocol -- or, with ``keep_degenerate`` (``--keep-degenerate``), kept and still
    listed. Either way ``degenerate`` lists every such run with a ``kept`` column. Coverage is
    computed on the runs as delivered, before degenerate runs are dropped.

    >>> import pandas as pd
    >>> rows = [dict(run_id=f"r{i}{s}", encoder="e", intermediate=i, intermediate_family=f,
    ...              target="xnli", target_family="nli", language="de", seed=s, metric="accuracy",
    ...              score=70.0 + s, primary=True, task_version="1")
    ...         for i, f in [("none", "none"), ("mnli", "nli")] for s in (1, 2)]
    >>> v = validate(pd.DataFrame(rows))
    >>> int(v.coverage.n_missing.sum()), len(v.scores)
    (0, 4)
    """
    frame = validate_scores(frame)
    prim = primary_rows(frame)
    if prim.empty:
        raise SchemaError("the scores table has no rows; run `xitt collect` or check the path.")
    cov, missing = coverage(prim)
    fractions = scale_warnings(frame)
    warnings = list(fractions)
    if len(missing):
        text = (
            f"{len(missing)} of {int(cov.n_expected.sum())} encoder x intermediate x target x language x seed "
            f"cells are missing: {_describe_cells(missing)}."
        )
        if not allow_incomplete:
            raise ValueError(
                text + " Re-run the missing runs (`xitt run`), or pass allow_incomplete=True "
                "(`--allow-incomplete`) to analyse the cells that are there."
            )
        warnings.append(text + " They are left out of every paired comparison.")
    # Chance levels are on the 0-100 scale: against fractions every run would count as degenerate.
    degen = degenerate_runs(prim, {} if fractions else chance)
    if len(degen):
        listed = "; ".join(
            f"{r.run_id} ({r.reason}, mean {r.mean_score:.1f})" for r in degen.head(20).itertuples()
        )
        what = "kept in (--keep-degenerate)" if keep_degenerate else "excluded from"
        warnings.append(
            f"{len(degen)} degenerate run(s) {what} the analysis: {listed}"
            + (" and more" if len(degen) > 20 else "")
            + ("." if keep_degenerate else "; --keep-degenerate keeps them.")
        )
        if not keep_degenerate:
            prim = prim[~prim["run_id"].isin(set(degen["run_id"]))].reset_index(drop=True)
    degen["kept"] = keep_degenerate
    return Validated(scores=prim, coverage=cov, missing=missing, degenerate=degen, warnings=warnings)
