"""Repeated runs of one cell, resolved only by an explicit choice (``--on-duplicate``).

Real result histories hold repeated runs of one (encoder, intermediate, target, language, seed,
metric) cell whose scores disagree: a run restarted after a crash, a results file appended to
twice, a sweep collected from two folders. Nothing here guesses which one is right:

* ``error`` (the default): refuse, listing each conflicting cell with every value and where it
  came from (file and line, or file);
* ``last``: keep the row read last. Files are read in sorted path order and each file from top to
  bottom, so "last" is the later file, or the later line of one file (jiant 1.x appends a line to
  ``results.tsv`` per run, so its last line is the newest run);
* ``mean``: average the repeated scores (the kept row's other columns come from the last one).

Input: a frame with the cell columns, ``score`` and ``origin`` (where each row was read); returned:
the same frame with one row per cell, ``origin`` kept for the caller to drop.
"""

from __future__ import annotations

import pandas as pd

from xitt.schema import CELL_KEYS, SchemaError

CHOICES = ("error", "last", "mean")


def _describe(group: pd.DataFrame) -> str:
    cell = "/".join(f"{group[k].iloc[0]}" for k in CELL_KEYS)
    values = ", ".join(f"{s:g} ({o})" for s, o in zip(group["score"], group["origin"]))
    return f"  {cell}: {values}"


def resolve_duplicates(frame: pd.DataFrame, on_duplicate: str, *, source: str) -> pd.DataFrame:
    """One row per cell of ``frame`` (columns: CELL_KEYS, score, origin), by ``on_duplicate``."""
    if on_duplicate not in CHOICES:
        raise ValueError(f"--on-duplicate {on_duplicate!r} is not one of {', '.join(CHOICES)}.")
    keys = list(CELL_KEYS)
    dup = frame.duplicated(keys, keep=False)
    if not dup.any():
        return frame
    numeric = pd.to_numeric(frame["score"], errors="coerce")
    if numeric[dup].isna().any():
        return frame  # a non-number among them: validation names that value and its line first
    if on_duplicate == "error":
        groups = [_describe(g) for _, g in frame[dup].assign(score=numeric).groupby(keys, sort=False)]
        shown = "\n".join(groups[:10]) + (f"\n  ... and {len(groups) - 10} more" if len(groups) > 10 else "")
        raise SchemaError(
            f"{source}: {int(dup.sum())} rows repeat {len(groups)} (encoder/intermediate/target/"
            f"language/seed/metric) cell(s) with these scores:\n{shown}\n"
            "Choose how to resolve them: --on-duplicate last (keep the row read last) or "
            "--on-duplicate mean (average them), or remove the extra runs."
        )
    frame = frame.assign(score=numeric)
    kept = frame[~frame.duplicated(keys, keep="last")].copy()
    if on_duplicate == "mean":
        means = frame.groupby(keys, sort=False)["score"].mean()
        kept["score"] = means.reindex(pd.MultiIndex.from_frame(kept[keys])).to_numpy()
    return kept
