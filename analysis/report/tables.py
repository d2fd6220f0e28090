"""Display models for the report: analysis frames -> tables of formatted strings (pure, no I/O).

A :class:`Table` is what both ``analysis/report/templates/table.html.j2`` and ``table.tex.j2`` render,
so the HTML and the LaTeX show the same numbers. Only presentation happens here: picking and
ordering rows and columns, pivoting, choosing the best cell per column to bold, and formatting
through :mod:`analysis.report.formatting`. Statistics come from the analysis frames as they are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pandas as pd

from analysis import effects
from analysis.report import formatting as fmt
from xitt.schema import NONE

AVG_NAMES = ("avg", "average", "mean")


@dataclass
class Cell:
    """One table cell: main text, an optional second line (e.g. delta vs none), bold flag."""

    text: str
    sub: str = ""
    bold: bool = False


@dataclass
class Table:
    """A booktabs table: ``rules`` holds the row indices that get a \\midrule above them."""

    key: str
    caption: str
    columns: list[str]
    rows: list[list[Cell]]
    align: str = ""
    rules: list[int] = field(default_factory=list)
    notes: str = ""
    wide: bool = False
    number: int = 0  # set by report.build_context, shown by the HTML (LaTeX numbers floats itself)

    def __post_init__(self):
        self.align = self.align or "l" + "r" * (len(self.columns) - 1)
        self.wide = self.wide or len(self.columns) > 6


@dataclass
class Text:
    """A paragraph (``pre=False``) or a verbatim block such as the grid spec (``pre=True``)."""

    title: str
    text: str
    pre: bool = False


def opt(table):
    return [] if table is None else [table]


def _caption(text: str, synthetic: bool) -> str:
    return ("[SYNTHETIC DATA] " if synthetic else "") + text


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", str(text)).strip("_").lower() or "x"


def _labels(analysis) -> tuple[str, str]:
    return analysis.answer.a.upper(), analysis.answer.b.upper()


# --- the answer ------------------------------------------------------------------------------
def contrast_table(analysis, synthetic: bool) -> Table | None:
    """Input: ``contrast`` frame, one row per method (method, estimate, ci_low, ci_high, df, p_value)."""
    f = analysis.frames.contrast
    if f.empty:
        return None
    a, b = _labels(analysis)
    rows = [
        [
            Cell(str(r["method"])),
            Cell(fmt.fmt_estimate_ci(r["estimate"], r["ci_low"], r["ci_high"], sign=True)),
            Cell(fmt.fmt_df(r["df"])),
            Cell(fmt.fmt_p(r["p_value"])),
        ]
        for _, r in f.iterrows()
    ]
    return Table(
        "contrast",
        _caption(
            f"{a} \u2212 {b} contrast of \u0394 vs none (points) by method: estimate "
            "[95% CI], degrees of freedom and p-value.",
            synthetic,
        ),
        ["method", f"{a} \u2212 {b} [CI]", "df", "p"],
        rows,
    )


# --- main table (Phang et al. style) ---------------------------------------------------------
def intermediate_order(analysis) -> list[str]:
    """Intermediate tasks grouped by family (none, a, b, others; :func:`analysis.effects.family_order`),
    alphabetical within a family, from the ``main_table`` frame."""
    f = analysis.frames.main_table
    pairs = f[["intermediate", "intermediate_family"]].drop_duplicates().astype(str)
    order = effects.family_order(pairs.intermediate_family, first=(analysis.answer.a, analysis.answer.b))
    rank = {fam: i for i, fam in enumerate(order)}
    pairs = pairs.assign(_r=pairs.intermediate_family.map(rank)).sort_values(["_r", "intermediate"])
    return list(pairs.intermediate)


def main_tables(analysis, synthetic: bool) -> list[Table]:
    """One table per encoder from ``main_table`` (long: encoder, intermediate, intermediate_family,
    target, mean, sd, delta, p_adj). Best mean per column in bold; marks after Holm correction."""
    f = analysis.frames.main_table
    if f.empty:
        return []
    encoders = list(dict.fromkeys(f["encoder"]))
    tables = []
    for enc in encoders:
        sub = f[f["encoder"] == enc]
        targets = list(dict.fromkeys(sub["target"].astype(str)))
        targets = [t for t in targets if t.lower() not in AVG_NAMES] + [
            t for t in targets if t.lower() in AVG_NAMES
        ]
        order = [i for i in intermediate_order(analysis) if i in set(sub["intermediate"].astype(str))]
        fam_of = dict(zip(sub["intermediate"].astype(str), sub["intermediate_family"].astype(str)))
        cells = {(str(r["intermediate"]), str(r["target"])): r for _, r in sub.iterrows()}
        best = {
            t: sub[sub["target"].astype(str) == t]["mean"].astype(float).idxmax()
            for t in targets
            if sub[sub["target"].astype(str) == t]["mean"].notna().any()
        }
        d = fmt.decimals_for_sd(sub["sd"].median())
        rows, rules = [], []
        for i, name in enumerate(order):
            if i and fam_of[name] != fam_of[order[i - 1]]:
                rules.append(i)
            row = [Cell(name), Cell(fam_of[name])]
            for t in targets:
                r = cells.get((name, t))
                if r is None:
                    row.append(Cell(fmt.DASH))
                    continue
                sub_text = (
                    ""
                    if name == NONE
                    else "\u0394 " + fmt.fmt_num(r["delta"], d, sign=True) + fmt.sig_marks(r["p_adj"])
                )
                row.append(Cell(fmt.fmt_mean_sd(r["mean"], r["sd"], d), sub_text, bold=best.get(t) == r.name))
            rows.append(row)
        marks = (
            "Marks: * p < 0.05, ** p < 0.01, *** p < 0.001 for \u0394 vs none (t-test over languages of the "
            "seed-mean \u0394), Holm-corrected across the table's cells."
        )
        enc_txt = f" Encoder: {enc}." if len(encoders) > 1 else ""
        key = "main_table" if len(encoders) == 1 else f"main_table_{_slug(enc)}"
        tables.append(
            Table(
                key,
                _caption(
                    "Target-task scores (0\u2013100) by intermediate task: mean \u00b1 sd over "
                    "seeds, \u0394 vs the no-intermediate baseline below; best per column in "
                    f"bold.{enc_txt}",
                    synthetic,
                ),
                ["intermediate", "family", *targets],
                rows,
                "ll" + "c" * len(targets),
                rules,
                marks,
                wide=len(targets) > 4,
            )
        )
    return tables


# --- per target, per language ----------------------------------------------------------------
def per_target_table(analysis, synthetic: bool) -> Table | None:
    """Input: ``per_target`` (target, estimate, ci_low, ci_high, df, p_value, p_adj, p_adj_bh, n, wins?)."""
    f = analysis.frames.per_target
    if f.empty:
        return None
    a, b = _labels(analysis)
    rows = []
    for _, r in f.iterrows():
        rows.append(
            [
                Cell(str(r["target"])),
                Cell(fmt.fmt_estimate_ci(r["estimate"], r["ci_low"], r["ci_high"], sign=True)),
                Cell(fmt.fmt_df(r["df"])),
                Cell(fmt.fmt_p(r["p_value"])),
                Cell(fmt.fmt_p(r["p_adj"]), bold=fmt.finite(r["p_adj"]) and r["p_adj"] < 0.05),
                Cell(fmt.fmt_p(r["p_adj_bh"])),
                Cell(fmt.fmt_plain(r["wins"])),
            ]
        )
    return Table(
        "per_target",
        _caption(
            f"{a} \u2212 {b} contrast per target task (points): estimate [95% CI], df, "
            "raw p, Holm- and Benjamini-Hochberg-adjusted p across targets (Holm p < 0.05 "
            f"in bold), and the languages where {a} beats {b}.",
            synthetic,
        ),
        ["target", "estimate [CI]", "df", "p", "p Holm", "p BH", "wins"],
        rows,
    )


def forest_frame(analysis) -> pd.DataFrame | None:
    """Rows for the forest plot: per-target contrasts, then the overall answer (bold)."""
    rows = [
        {
            "label": str(r.target),
            "estimate": r.estimate,
            "ci_low": r.ci_low,
            "ci_high": r.ci_high,
            "bold": False,
        }
        for r in analysis.frames.per_target.itertuples()
    ]
    ans = analysis.answer
    if fmt.finite(ans.estimate):
        rows.append(
            {
                "label": "overall",
                "estimate": ans.estimate,
                "ci_low": ans.ci_low,
                "ci_high": ans.ci_high,
                "bold": True,
            }
        )
    return pd.DataFrame(rows) if rows else None


def heatmap_frame(analysis) -> pd.DataFrame | None:
    """Seed mean of the paired delta per (target, intermediate, language), from ``deltas``.

    This averaging is the one aggregation done for display (the heatmap shows cells, not tests).
    Returns columns target, intermediate, language, estimate.
    """
    f = analysis.frames.deltas
    if f.empty:
        return None
    if "encoder" in f and f["encoder"].nunique() > 1:
        f = f[f["encoder"] == f["encoder"].iloc[0]]
    f = f[f["intermediate"].astype(str) != NONE]
    out = f.groupby(["target", "intermediate", "language"], sort=False, observed=True)["delta"].mean()
    return out.rename("estimate").reset_index()


def language_wins_table(analysis, synthetic: bool) -> Table | None:
    f = analysis.frames.language_wins
    if f.empty:
        return None
    a, b = _labels(analysis)
    return generic_table(
        f,
        "language_wins",
        _caption(
            f"Partial conjunction: in how many languages {a} beats {b} (k-hat of N) per combination method.",
            synthetic,
        ),
    )


# --- seeds -----------------------------------------------------------------------------------
def variance_table(analysis, synthetic: bool) -> Table | None:
    """Input: ``variance_components`` (component, variance, sd, share?)."""
    f = analysis.frames.variance_components
    if f.empty:
        return None
    cols = [c for c in ("variance", "sd", "share", "n_levels") if c in f]
    rows = [
        [Cell(str(r["component"]))]
        + [
            Cell(f"{100 * r[c]:.0f}%" if c == "share" and fmt.finite(r[c]) else fmt.fmt_plain(r[c]))
            for c in cols
        ]
        for _, r in f.iterrows()
    ]
    names = {
        "variance": "variance (points\u00b2)",
        "sd": "sd (points)",
        "share": "share",
        "n_levels": "levels",
    }
    return Table(
        "variance_components",
        _caption("Variance components of \u0394 vs none (crossed random intercepts, REML).", synthetic),
        ["component"] + [names[c] for c in cols],
        rows,
    )


def seed_sd_frame(analysis) -> pd.DataFrame | None:
    f = analysis.frames.cell_stats
    return None if f.empty else f


def seed_plan_table(analysis, synthetic: bool) -> Table | None:
    f = analysis.frames.seed_plan
    if f.empty:
        return None
    return generic_table(
        f,
        "seed_plan",
        _caption(
            "Seed plan: expected precision of the family contrast for other "
            "designs, from the fitted variance components.",
            synthetic,
        ),
    )


def frame_table(analysis, name: str, caption: str, synthetic: bool) -> Table | None:
    """A result frame shown as is (e.g. ``coverage``, ``degenerate``); None when absent or empty."""
    f = getattr(analysis.frames, name)
    return None if f.empty else generic_table(f, name, _caption(caption, synthetic))


def generic_table(f: pd.DataFrame, key: str, caption: str, max_rows: int = 60) -> Table:
    """Any frame as a table: numbers through fmt_plain, p-value columns through fmt_p, underscores kept."""
    cols = list(f.columns)
    rows = []
    for _, r in f.head(max_rows).iterrows():
        rows.append([Cell(fmt.fmt_p(r[c]) if c.startswith("p_") else fmt.fmt_plain(r[c])) for c in cols])
    notes = f"First {max_rows} of {len(f)} rows." if len(f) > max_rows else ""
    return Table(key, caption, [str(c).replace("_", " ") for c in cols], rows, notes=notes)


# --- provenance ------------------------------------------------------------------------------
def _kv_rows(items) -> list[list[Cell]]:
    return [
        [Cell(str(k)), Cell(", ".join(map(str, v)) if isinstance(v, (list, tuple)) else fmt.fmt_plain(v))]
        for k, v in items
    ]


def provenance_blocks(analysis, provenance: dict, synthetic: bool) -> list:
    """Scalars -> one key/value table; dicts -> their own tables; lists of dicts (failures) -> tables;
    multi-line strings (the grid spec) -> verbatim blocks. Analysis settings are appended."""
    settings = {f"analysis {k}": v for k, v in analysis.settings.items() if not isinstance(v, dict)}
    nested = {f"analysis {k}": v for k, v in analysis.settings.items() if isinstance(v, dict)}
    merged = {**provenance, **settings, **nested}
    scalars, blocks = [], []
    for key, value in merged.items():
        if isinstance(value, str) and "\n" in value:
            blocks.append(Text(str(key).replace("_", " "), value.rstrip("\n"), pre=True))
        elif isinstance(value, dict):
            if value:
                blocks.append(
                    Table(
                        f"prov_{_slug(key)}",
                        _caption(f"Provenance: {key}.", synthetic),
                        [str(key).replace("_", " "), "value"],
                        _kv_rows(value.items()),
                    )
                )
        elif isinstance(value, (list, tuple)) and value and all(isinstance(v, dict) for v in value):
            blocks.append(
                generic_table(
                    pd.DataFrame(list(value)),
                    f"prov_{_slug(key)}",
                    _caption(f"Provenance: {key}.", synthetic),
                )
            )
        elif isinstance(value, (list, tuple)) and not value and key == "failures":
            scalars.append((key, "none"))
        else:
            scalars.append((key, value))
    head = Table(
        "provenance",
        _caption("Provenance of this report.", synthetic),
        ["item", "value"],
        _kv_rows(scalars),
        align="ll",
    )
    data = [
        *opt(frame_table(analysis, "coverage", "Coverage: expected and present cells.", synthetic)),
        *opt(
            frame_table(
                analysis,
                "degenerate",
                "Degenerate runs (score 0 or at chance), excluded from the analysis.",
                synthetic,
            )
        ),
    ]
    return [head, *blocks, *data]
