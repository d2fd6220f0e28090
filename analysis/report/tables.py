"""Display models for the report: analysis frames -> tables of formatted strings (pure, no I/O).

A :class:`Table` is what ``templates/table.html.j2``, ``table.tex.j2``, the Markdown and the CSV
exports render, so every output shows the same strings. Only presentation happens here: picking
and ordering rows and columns, pivoting, display names (:mod:`analysis.report.names`), choosing
the best cells to bold, and formatting through :mod:`analysis.report.formatting` (its rules:
one precision per column, signed differences, df, p). Statistics come from the analysis frames
(:class:`analysis.result.Frames`) as they are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pandas as pd

from analysis import effects
from analysis.report import formatting as fmt
from analysis.report.names import Names
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
    """A booktabs table: ``rules`` holds the row indices that get a \\midrule above them; the
    first ``stub`` columns label the rows (repeated when a wide table is split into parts).
    ``label``, ``env``, ``parts`` and ``html_parts`` are set by the report (:mod:`analysis.report.layout`)."""

    key: str
    caption: str
    columns: list[str]
    rows: list[list[Cell]]
    align: str = ""
    rules: list[int] = field(default_factory=list)
    notes: str = ""
    stub: int = 1
    number: int = 0  # set by report.build_context, shown by the HTML (LaTeX numbers floats itself)
    label: str = ""
    env: str = "table"
    parts: list[list[int]] = field(default_factory=list)
    html_parts: list[list[int]] = field(default_factory=list)

    def __post_init__(self):
        self.align = self.align or "l" * self.stub + "r" * (len(self.columns) - self.stub)
        self.label = self.label or self.key
        self.parts = self.parts or [list(range(len(self.columns)))]
        self.html_parts = self.html_parts or [list(range(len(self.columns)))]

    def align_of(self, part: list[int]) -> str:
        """The tabular column spec of one part (column indices)."""
        return "".join(self.align[j] for j in part)


@dataclass
class Text:
    """A paragraph (``pre=False``) or a verbatim block such as the grid spec (``pre=True``)."""

    title: str
    text: str
    pre: bool = False


@dataclass(frozen=True)
class Options:
    """How tables are labelled: the SYNTHETIC DATA mark and the display names."""

    synthetic: bool = False
    names: Names = field(default_factory=Names)


def opt(table):
    return [] if table is None else [table]


def caption(text: str, opts: Options) -> str:
    return ("[SYNTHETIC DATA] " if opts.synthetic else "") + text


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", str(text)).strip("_").lower() or "x"


def _labels(analysis, opts: Options) -> tuple[str, str]:
    return opts.names.family(analysis.a), opts.names.family(analysis.b)


def _level(analysis) -> str:
    return f"{round(analysis.level * 100):d}%"


# --- the answer ------------------------------------------------------------------------------
SCOPE_HEADERS = {"family": "family question", "these tasks": "these tasks only"}
SCOPE_NOTE = (
    " Rows under 'family question' treat the intermediate tasks as random units; rows under 'these "
    "tasks only' hold the tasks fixed (languages or seeds as units) and do not generalise to other "
    "tasks of the families."
)


def contrast_table(analysis, opts: Options) -> Table | None:
    """Input: ``contrast`` (method, estimate, ci_low, ci_high, df, p_value, scope); rows grouped by
    scope under a header row each (SCOPE_HEADERS); methods not calibrated for this design (scope
    "not calibrated") are left out and named in the caption."""
    f = analysis.frames.contrast
    if f.empty:
        return None
    a, b = _labels(analysis, opts)
    scope = f["scope"] if "scope" in f else pd.Series("family", index=f.index)
    estimates = pd.Series(
        fmt.estimate_ci_column(f["estimate"], f["ci_low"], f["ci_high"], sign=True), index=f.index
    )
    rows = []
    for key, header in SCOPE_HEADERS.items():
        part = f[scope == key]
        if part.empty:
            continue
        rows.append([Cell(header, bold=True), Cell(""), Cell(""), Cell("")])
        rows += [
            [
                Cell(opts.names(r["method"])),
                Cell(estimates[i]),
                Cell(fmt.fmt_df(r["df"])),
                Cell(fmt.fmt_p(r["p_value"])),
            ]
            for i, r in part.iterrows()
        ]
    left_out = [opts.names(m) for m in f.loc[~scope.isin(list(SCOPE_HEADERS)), "method"]]
    dropped = f" Not shown (not calibrated for this design): {', '.join(left_out)}." if left_out else ""
    return Table(
        "contrast",
        caption(
            f"{a} \u2212 {b} contrast of \u0394 vs none (points) by method: estimate "
            f"[{_level(analysis)} CI], degrees of freedom and two-sided p. Rows without a CI or p "
            f"come from methods that give only the other.{SCOPE_NOTE}{dropped}",
            opts,
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
    order = effects.family_order(pairs.intermediate_family, first=(analysis.a, analysis.b))
    rank = {fam: i for i, fam in enumerate(order)}
    pairs = pairs.assign(_r=pairs.intermediate_family.map(rank)).sort_values(["_r", "intermediate"])
    return list(pairs.intermediate)


def _main_rows(sub: pd.DataFrame, order: list[str], targets: list[str], opts: Options):
    """(rows, rules) of one encoder's main table; the best displayed mean of each column in bold."""
    fam_of = dict(zip(sub["intermediate"].astype(str), sub["intermediate_family"].astype(str)))
    cells = {(str(r["intermediate"]), str(r["target"])): r for _, r in sub.iterrows()}
    d = fmt.decimals_for_sd(sub["sd"].median())
    rows, rules = [], []
    for i, name in enumerate(order):
        if i and fam_of[name] != fam_of[order[i - 1]]:
            rules.append(i)
        row = [Cell(opts.names(name)), Cell(opts.names.family(fam_of[name]))]
        for t in targets:
            r = cells.get((name, t))
            if r is None:
                row.append(Cell(fmt.DASH))
                continue
            delta = "\u0394 " + fmt.fmt_num(r["delta"], d, sign=True) if fmt.finite(r["delta"]) else ""
            partial = "" if bool(r.get("complete", True)) else f" \u2020n={int(r['n'])}"
            row.append(
                Cell(fmt.fmt_mean_sd(r["mean"], r["sd"], d), delta + fmt.sig_marks(r["p_adj"]) + partial)
            )
        rows.append(row)
    for j in range(2, 2 + len(targets)):  # rule 7: every cell that reads as the best
        for i in fmt.best_cells([row[j].text.split(" ")[0] for row in rows]):
            rows[i][j].bold = True
    return rows, rules


def main_tables(analysis, opts: Options) -> list[Table]:
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
        rows, rules = _main_rows(sub, order, targets, opts)
        has_delta = bool(sub["delta"].notna().any())
        marks = (
            "Marks: * p < 0.05, ** p < 0.01, *** p < 0.001 for \u0394 vs none (two-sided t-test over "
            "seeds of the run-level \u0394: the run is the unit), Holm-corrected across the table's cells."
            if has_delta
            else "No 'none' baseline in these scores: no \u0394 and no tests."
        )
        if "complete" in sub and not sub["complete"].all():
            marks += (
                " \u2020 avg over the n seeds that have every target (a seed with a missing run is left out)."
            )
        below = ", \u0394 vs the no-intermediate baseline below" if has_delta else ""
        enc_txt = f" Encoder: {opts.names(enc)}." if len(encoders) > 1 else ""
        tables.append(
            Table(
                "main_table" if len(encoders) == 1 else f"main_table_{slug(enc)}",
                caption(
                    "Target-task scores (0\u2013100) by intermediate task: mean \u00b1 sd over "
                    f"seeds{below}; best per column in bold (all cells that read the same).{enc_txt}",
                    opts,
                ),
                ["intermediate", "family", *[opts.names(t) for t in targets]],
                rows,
                "ll" + "c" * len(targets),
                rules,
                marks,
                stub=2,
            )
        )
    return tables


# --- per target, per language ----------------------------------------------------------------
def per_target_table(analysis, opts: Options) -> Table | None:
    """Input: ``per_target`` (target, estimate, ci_low, ci_high, df, p_value, p_adj, p_adj_bh, n,
    wins, method): CI and p from the one method the frame names."""
    f = analysis.frames.per_target
    if f.empty:
        return None
    a, b = _labels(analysis, opts)
    estimates = fmt.estimate_ci_column(f["estimate"], f["ci_low"], f["ci_high"], sign=True)
    rows = [
        [
            Cell(opts.names(r["target"])),
            Cell(est),
            Cell(fmt.fmt_df(r["df"])),
            Cell(fmt.fmt_p(r["p_value"])),
            Cell(fmt.fmt_p(r["p_adj"]), bold=fmt.finite(r["p_adj"]) and r["p_adj"] < 0.05),
            Cell(fmt.fmt_p(r["p_adj_bh"])),
            Cell(str(r["wins"])),
        ]
        for est, (_, r) in zip(estimates, f.iterrows())
    ]
    method = ", ".join(sorted({opts.names(m) for m in f["method"]}))
    return Table(
        "per_target",
        caption(
            f"{a} \u2212 {b} contrast per target task (points). The estimate, its {_level(analysis)} CI, "
            f"df and the two-sided p all come from one method, a {method} (one-sample t-test of each "
            "seed's contrast averaged over the target's languages: the seed is the unit, since a seed's "
            "runs are shared by all its languages; the intermediate tasks fixed). p Holm and "
            f"p BH are adjusted across the targets; Holm p < 0.05 in bold. Wins: languages where {a} "
            f"beats {b}.",
            opts,
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
    if ans is not None and fmt.finite(ans.estimate):
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
    if f["encoder"].nunique() > 1:
        f = f[f["encoder"] == f["encoder"].iloc[0]]
    f = f[f["intermediate"].astype(str) != NONE]
    out = f.groupby(["target", "intermediate", "language"], sort=False, observed=True)["delta"].mean()
    return out.rename("estimate").reset_index()


def language_wins_table(analysis, opts: Options) -> Table | None:
    """Input: ``language_wins`` (method, k_hat, n, alpha)."""
    f = analysis.frames.language_wins
    if f.empty:
        return None
    a, b = _labels(analysis, opts)
    rows = [
        [Cell(opts.names(r["method"])), Cell(f"{fmt.fmt_int(r['k_hat'])} of {fmt.fmt_int(r['n'])}")]
        + [Cell(fmt.fmt_alpha(r["alpha"]))]
        for _, r in f.iterrows()
    ]
    return Table(
        "language_wins",
        caption(
            f"Partial conjunction (Dror et al. 2017): the number of languages in which {a} beats {b} "
            "(one-sided t-test over seeds per language), with its familywise error rate \u03b1, per "
            "combination method.",
            opts,
        ),
        ["combination", "languages", "\u03b1"],
        rows,
    )


# --- seeds -----------------------------------------------------------------------------------
def variance_table(analysis, opts: Options) -> Table | None:
    """Input: ``variance_components`` (component, variance, sd, share)."""
    f = analysis.frames.variance_components
    if f.empty:
        return None
    variance, sd = fmt.fmt_plain_column(f["variance"]), fmt.fmt_plain_column(f["sd"])
    share = [f"{100 * s:.0f}%" if fmt.finite(s) else fmt.DASH for s in f["share"]]
    rows = [
        [Cell(str(c)), Cell(v), Cell(s), Cell(p)] for c, v, s, p in zip(f["component"], variance, sd, share)
    ]
    return Table(
        "variance_components",
        caption("Variance components of \u0394 vs none (crossed random intercepts, REML).", opts),
        ["component", "variance (points\u00b2)", "sd (points)", "share"],
        rows,
    )


def seed_sd_frame(analysis) -> pd.DataFrame | None:
    f = analysis.frames.cell_stats
    return None if f.empty else f


SEED_PLAN_COLUMNS = {
    "design": "design",
    "n_seeds": "seeds",
    "n_intermediate_per_family": "tasks per family",
    "n_languages": "languages",
    "half_width": "CI half-width",
    "task_floor_half_width": "floor",
    "power": "power",
}


def seed_plan_table(analysis, opts: Options) -> Table | None:
    """Input: ``seed_plan``; the columns a reader decides on (the CSV under analysis/ has all)."""
    f = analysis.frames.seed_plan
    if f.empty:
        return None
    columns = {c: fmt.fmt_plain_column(f[c]) for c in SEED_PLAN_COLUMNS if c != "design"}
    widths = fmt.column_decimals(f["half_width"])
    for c in ("half_width", "task_floor_half_width"):
        columns[c] = [fmt.fmt_num(x, widths) for x in f[c]]
    columns["power"] = [fmt.fmt_num(x, 2) for x in f["power"]]
    rows = [
        [Cell(str(design))] + [Cell(columns[c][i]) for c in SEED_PLAN_COLUMNS if c != "design"]
        for i, design in enumerate(f["design"])
    ]
    return Table(
        "seed_plan",
        caption(
            f"Seed plan: expected {_level(analysis)} CI half-width (points) of the family contrast for other "
            "designs, from the fitted variance components; floor = the half-width with infinitely many "
            "seeds and languages; power to detect the observed contrast.",
            opts,
        ),
        list(SEED_PLAN_COLUMNS.values()),
        rows,
    )
