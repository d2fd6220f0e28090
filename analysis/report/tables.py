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


def frame(analysis, name: str) -> pd.DataFrame | None:
    f = analysis.frames.get(name)
    return f if isinstance(f, pd.DataFrame) and len(f.columns) else None


def _caption(text: str, synthetic: bool) -> str:
    return ("[SYNTHETIC DATA] " if synthetic else "") + text


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", str(text)).strip("_").lower() or "x"


def _label(analysis, side: str) -> str:
    return str(analysis.answer.get(side, analysis.settings.get(side, side))).upper()


# --- the answer ------------------------------------------------------------------------------
def answer_block(analysis) -> dict:
    """The headline: formatted estimate/CI/df/p, k-hat of N languages, the quotable sentence."""
    ans = analysis.answer
    k, n = ans.get("k_hat"), ans.get("n_languages")
    return {
        "a_label": _label(analysis, "a"),
        "b_label": _label(analysis, "b"),
        "estimate_ci": fmt.fmt_estimate_ci(
            ans.get("estimate"), ans.get("ci_low"), ans.get("ci_high"), sign=True
        ),
        "df": fmt.fmt_df(ans.get("df")),
        "p": fmt.fmt_p(ans.get("p_value")),
        "languages": f"{fmt.fmt_int(k)} of {fmt.fmt_int(n)}" if fmt._finite(n) else fmt.DASH,
        "method": str(ans.get("method", "")),
        "sentence": str(ans.get("sentence", "")),
    }


def contrast_table(analysis, synthetic: bool) -> Table | None:
    """Input: ``contrast`` frame, one row per method (method, estimate, ci_low, ci_high, df, p_value)."""
    f = frame(analysis, "contrast")
    if f is None or "method" not in f:
        return None
    a, b = _label(analysis, "a"), _label(analysis, "b")
    rows = [
        [
            Cell(str(r["method"])),
            Cell(fmt.fmt_estimate_ci(r.get("estimate"), r.get("ci_low"), r.get("ci_high"), sign=True)),
            Cell(fmt.fmt_df(r.get("df"))),
            Cell(fmt.fmt_p(r.get("p_value"))),
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
def family_order(analysis) -> list[str]:
    fams = []
    for name in ("main_table", "cell_stats", "deltas"):
        f = frame(analysis, name)
        if f is not None and "intermediate_family" in f:
            fams = list(dict.fromkeys(f["intermediate_family"].astype(str)))
            break
    a, b = str(analysis.answer.get("a", "")), str(analysis.answer.get("b", ""))
    return sorted(fams, key=lambda x: (x != NONE, x != a, x != b, x))


def intermediate_order(analysis) -> list[str]:
    """Intermediate tasks grouped by family (none, a, b, others), alphabetical within a family."""
    for name in ("main_table", "cell_stats", "deltas"):
        f = frame(analysis, name)
        if f is not None and {"intermediate", "intermediate_family"} <= set(f.columns):
            pairs = f[["intermediate", "intermediate_family"]].drop_duplicates().astype(str)
            rank = {fam: i for i, fam in enumerate(family_order(analysis))}
            pairs = pairs.assign(_r=pairs.intermediate_family.map(rank)).sort_values(["_r", "intermediate"])
            return list(pairs.intermediate)
    return []


def main_tables(analysis, synthetic: bool) -> list[Table]:
    """One table per encoder from ``main_table`` (long: encoder, intermediate, intermediate_family,
    target, mean, sd, delta, p_adj). Best mean per column in bold; marks after Holm correction."""
    f = frame(analysis, "main_table")
    if f is None:
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
    f = frame(analysis, "per_target")
    if f is None or "target" not in f:
        return None
    a, b = _label(analysis, "a"), _label(analysis, "b")
    rows = []
    for _, r in f.iterrows():
        rows.append(
            [
                Cell(str(r["target"])),
                Cell(fmt.fmt_estimate_ci(r.get("estimate"), r.get("ci_low"), r.get("ci_high"), sign=True)),
                Cell(fmt.fmt_df(r.get("df"))),
                Cell(fmt.fmt_p(r.get("p_value"))),
                Cell(fmt.fmt_p(r.get("p_adj")), bold=fmt._finite(r.get("p_adj")) and r.get("p_adj") < 0.05),
                Cell(fmt.fmt_p(r.get("p_adj_bh"))),
                Cell(fmt.fmt_plain(r.get("wins", fmt.DASH))),
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
    f = frame(analysis, "per_target")
    rows = []
    if f is not None and {"target", "estimate", "ci_low", "ci_high"} <= set(f.columns):
        rows += [
            {
                "label": str(r.target),
                "estimate": r.estimate,
                "ci_low": r.ci_low,
                "ci_high": r.ci_high,
                "bold": False,
            }
            for r in f.itertuples()
        ]
    ans = analysis.answer
    if fmt._finite(ans.get("estimate")):
        rows.append(
            {
                "label": "overall",
                "estimate": ans["estimate"],
                "ci_low": ans.get("ci_low"),
                "ci_high": ans.get("ci_high"),
                "bold": True,
            }
        )
    return pd.DataFrame(rows) if rows else None


def heatmap_frame(analysis) -> pd.DataFrame | None:
    """Seed mean of the paired delta per (target, intermediate, language), from ``deltas``.

    This averaging is the one aggregation done for display (the heatmap shows cells, not tests).
    Returns columns target, intermediate, language, estimate.
    """
    f = frame(analysis, "deltas")
    if f is None or not {"target", "intermediate", "language", "delta"} <= set(f.columns):
        return None
    if "encoder" in f and f["encoder"].nunique() > 1:
        f = f[f["encoder"] == f["encoder"].iloc[0]]
    f = f[f["intermediate"].astype(str) != NONE]
    out = f.groupby(["target", "intermediate", "language"], sort=False, observed=True)["delta"].mean()
    return out.rename("estimate").reset_index()


def language_wins_table(analysis, synthetic: bool) -> Table | None:
    f = frame(analysis, "language_wins")
    if f is None:
        return None
    a, b = _label(analysis, "a"), _label(analysis, "b")
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
    f = frame(analysis, "variance_components")
    if f is None or "component" not in f:
        return None
    cols = [c for c in ("variance", "sd", "share", "n_levels") if c in f]
    rows = [
        [Cell(str(r["component"]))]
        + [
            Cell(f"{100 * r[c]:.0f}%" if c == "share" and fmt._finite(r[c]) else fmt.fmt_plain(r[c]))
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
    f = frame(analysis, "cell_stats")
    if f is None or not {"intermediate", "intermediate_family", "sd"} <= set(f.columns):
        return None
    return f


def seed_plan_table(analysis, synthetic: bool) -> Table | None:
    f = frame(analysis, "seed_plan")
    if f is None:
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
    f = frame(analysis, name)
    return None if f is None or f.empty else generic_table(f, name, _caption(caption, synthetic))


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
