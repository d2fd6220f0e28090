"""Report figures: ``plot_<what>(frame, *, ax=None, ...) -> ax``; pure (no files written, no globals).

Colours are colour-blind safe: Okabe-Ito for categories (families), the diverging ColorBrewer
``PuOr`` map centred at 0 for signed deltas. Scores are on the 0-100 scale, so every delta is in
points. ``report.py`` chooses the figure size (ONE_COLUMN / TWO_COLUMN inches) and saves files.

>>> import pandas as pd
>>> ax = plot_forest(pd.DataFrame({"label": ["xnli"], "estimate": [1.0], "ci_low": [0.2], "ci_high": [1.8]}))
>>> ax.get_xlabel().startswith("NLI")
True
"""

from __future__ import annotations

import functools

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import TwoSlopeNorm

from analysis.report.formatting import fmt_num, shorten, strip_controls, transliterate

ONE_COLUMN = 3.3  # inches, ACL/NeurIPS one-column width
TWO_COLUMN = 6.8  # inches, full text width
OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")
NONE_GREY = "#7F7F7F"
DIVERGING = "PuOr"
DELTA_UNIT = "points, 0\u2013100 scale"
MAX_LABEL = 32  # characters of a name on an axis or a legend; the hash suffix is that of the table form


@functools.lru_cache(maxsize=1)
def _glyphs() -> frozenset[int]:
    """Code points of the sans-serif font matplotlib uses (DejaVu Sans: Latin, Greek, Cyrillic...)."""
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    return frozenset(FT2Font(font_manager.findfont(font_manager.FontProperties())).get_charmap())


def label(value, limit: int = MAX_LABEL) -> str:
    """A name as matplotlib text: control characters removed, cut to ``limit`` characters
    (formatting.shorten), letters the font lacks read in Latin with a hash suffix (Hindi and Tamil
    names drew as identical boxes), and '$' literal (mathtext failed on a name with '$...$')."""
    text = shorten(strip_controls(str(value)), limit)
    return transliterate(text, lambda ch: ord(ch) in _glyphs()).replace("$", r"\$")


def family_colours(families) -> dict[str, str]:
    """Stable Okabe-Ito colour per family in the given order; ``none`` is grey."""
    colours, i = {}, 0
    for fam in families:
        if fam in colours:
            continue
        if fam == "none":
            colours[fam] = NONE_GREY
        else:
            colours[fam] = OKABE_ITO[i % len(OKABE_ITO)]
            i += 1
    return colours


def _axes(ax, width: float = ONE_COLUMN, height: float = 2.4):
    if ax is not None:
        return ax
    _, ax = plt.subplots(figsize=(width, height), layout="constrained")
    return ax


def _need(frame: pd.DataFrame, columns, what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} needs columns {missing}; got {list(frame.columns)}")


def plot_forest(frame: pd.DataFrame, *, ax=None, a: str = "NLI", b: str = "QA"):
    """Forest plot of a contrast with its CI, one row per ``label`` (top to bottom in frame order).

    Input columns: label, estimate, ci_low, ci_high; optional ``bold`` (bool) marks summary rows
    (drawn as diamonds). Rows whose CI excludes 0 are drawn filled, the others hollow.
    """
    _need(frame, ["label", "estimate", "ci_low", "ci_high"], "plot_forest")
    ax = _axes(ax, ONE_COLUMN, 0.6 + 0.32 * max(len(frame), 1))
    y = np.arange(len(frame))[::-1]
    est, lo, hi = (frame[c].to_numpy(float) for c in ("estimate", "ci_low", "ci_high"))
    summary = frame["bold"].to_numpy(bool) if "bold" in frame else np.zeros(len(frame), bool)
    excludes0 = (lo > 0) | (hi < 0)
    ax.axvline(0, color="0.4", lw=0.8, ls="--", zorder=1)
    ax.hlines(y, lo, hi, color=OKABE_ITO[0], lw=1.6, zorder=2)
    for yi, e, s, ex in zip(y, est, summary, excludes0):
        ax.plot(
            e,
            yi,
            marker="D" if s else "o",
            ms=7 if s else 5,
            zorder=3,
            color=OKABE_ITO[1] if s else OKABE_ITO[0],
            markerfacecolor=(OKABE_ITO[1] if s else OKABE_ITO[0]) if ex else "white",
        )
    ax.set_yticks(y, [label(v) for v in frame["label"]])
    ax.set_ylim(-0.7, len(frame) - 0.3)
    ax.set_xlabel(f"{label(a)} \u2212 {label(b)} \u0394 score ({DELTA_UNIT})")
    ax.set_ylabel("target task")
    ax.grid(axis="x", color="0.9", lw=0.6)
    ax.set_axisbelow(True)
    return ax


def plot_delta_heatmap(
    frame: pd.DataFrame,
    *,
    ax=None,
    title: str | None = None,
    vmax: float | None = None,
    colorbar: bool = True,
    row_order=None,
    col_order=None,
):
    """Heatmap of delta vs ``none`` (points) with intermediate tasks as rows and languages as columns.

    Input columns: intermediate, language, estimate (one value per intermediate x language; the
    report passes the seed mean of delta). Colour: diverging PuOr centred at 0, symmetric range
    ``vmax`` (default: the largest |estimate|). Cells are annotated (formatting.fmt_num, 1 decimal) when there
    is room: at most 80 cells and 6 languages.
    """
    _need(frame, ["intermediate", "language", "estimate"], "plot_delta_heatmap")
    grid = frame.pivot(index="intermediate", columns="language", values="estimate")
    if row_order is not None:
        grid = grid.reindex([r for r in row_order if r in grid.index])
    if col_order is not None:
        grid = grid.reindex(columns=[c for c in col_order if c in grid.columns])
    ax = _axes(ax, TWO_COLUMN / 2, 0.8 + 0.3 * len(grid))
    values = grid.to_numpy(float)
    limit = vmax if vmax is not None else (np.nanmax(np.abs(values)) if np.isfinite(values).any() else 1.0)
    limit = float(limit) or 1.0
    image = ax.imshow(
        values, cmap=DIVERGING, norm=TwoSlopeNorm(0.0, -limit, limit), aspect="auto", interpolation="nearest"
    )
    ax.set_xticks(
        range(grid.shape[1]), [label(c) for c in grid.columns], rotation=90 if grid.shape[1] > 12 else 0
    )
    ax.set_yticks(range(grid.shape[0]), [label(r) for r in grid.index])
    ax.set_xlabel("target language")
    ax.set_ylabel("intermediate task")
    if title:
        ax.set_title(label(title, 2 * MAX_LABEL), fontsize="medium")
    if values.size <= 80 and grid.shape[1] <= 6:  # room for a 7 pt number in each cell
        for (i, j), v in np.ndenumerate(values):
            if np.isfinite(v):
                ax.text(
                    j,
                    i,
                    fmt_num(v, 1),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if abs(v) > 0.6 * limit else "black",
                )
    if colorbar:
        ax.figure.colorbar(
            image, ax=ax, label=f"\u0394 vs none ({DELTA_UNIT})", location="bottom", shrink=0.8
        )
    return ax


def plot_variance_components(frame: pd.DataFrame, *, ax=None):
    """Horizontal bars of variance components of delta (points squared), largest on top.

    Input columns: component, variance; optional ``share`` (fraction of the total) annotated.
    """
    _need(frame, ["component", "variance"], "plot_variance_components")
    ax = _axes(ax, ONE_COLUMN, 0.6 + 0.3 * max(len(frame), 1))
    data = frame.sort_values("variance")
    y = np.arange(len(data))
    ax.barh(y, data["variance"].to_numpy(float), color=OKABE_ITO[0], height=0.6)
    ax.set_yticks(y, [label(c) for c in data["component"]])
    if "share" in data:
        for yi, v, s in zip(y, data["variance"], data["share"]):
            if np.isfinite(s):
                ax.text(v, yi, f" {100 * s:.0f}%", va="center", fontsize=7)
    ax.set_xlabel("variance of \u0394 (points\u00b2)")
    ax.set_ylabel("source of variation")
    ax.margins(x=0.18)
    return ax


def plot_seed_sd(frame: pd.DataFrame, *, ax=None, family_order=None):
    """Spread over seeds: one dot per cell (target x language) at its seed sd, one row per intermediate.

    Input columns: intermediate, intermediate_family, sd (points). Rows are grouped by family
    (``none`` first) and coloured by family; a black tick marks each intermediate's median sd.
    """
    _need(frame, ["intermediate", "intermediate_family", "sd"], "plot_seed_sd")
    pairs = frame[["intermediate", "intermediate_family"]].drop_duplicates()
    fams = (
        list(family_order)
        if family_order is not None
        else sorted(pairs.intermediate_family.unique(), key=lambda f: (f != "none", f))
    )
    pairs = pairs.assign(_f=pairs.intermediate_family.map({f: i for i, f in enumerate(fams)})).sort_values(
        ["_f", "intermediate"]
    )
    order = list(pairs.intermediate)
    colours = family_colours(fams)
    ax = _axes(ax, ONE_COLUMN, 0.7 + 0.28 * max(len(order), 1))
    jitter = np.random.default_rng(0)  # fixed: the plot must be reproducible
    for i, (name, fam) in enumerate(zip(pairs.intermediate, pairs.intermediate_family)):
        sd = frame.loc[frame.intermediate == name, "sd"].to_numpy(float)
        sd = sd[np.isfinite(sd)]
        y = len(order) - 1 - i
        ax.scatter(sd, y + jitter.uniform(-0.18, 0.18, len(sd)), s=8, alpha=0.6, color=colours[fam], lw=0)
        if len(sd):
            ax.plot([np.median(sd)] * 2, [y - 0.3, y + 0.3], color="black", lw=1.2)
    ax.set_yticks(range(len(order))[::-1], [label(o) for o in order])
    ax.set_xlabel(f"sd over seeds ({DELTA_UNIT.split(',')[0]})")
    ax.set_ylabel("intermediate task")
    ax.set_xlim(left=0)
    handles = [plt.Line2D([], [], marker="o", ls="", color=colours[f], label=label(f)) for f in fams]
    ax.legend(
        handles=handles,
        fontsize=7,
        loc="lower center",
        bbox_to_anchor=(0.5, 1.0),
        ncol=min(len(fams), 4),  # more families wrap: one row of 7 is wider than a paper column
        frameon=False,
        handletextpad=0.1,
        columnspacing=0.8,
    )
    return ax
