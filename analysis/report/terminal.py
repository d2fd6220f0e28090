"""Console summary of an :class:`analysis.result.Analysis` with rich (``xitt analyze``); numbers
formatted by :mod:`analysis.report.formatting`, as in the report."""

from __future__ import annotations

from rich.markup import escape

from analysis.report import formatting as fmt
from analysis.report.answer import answer_sentence


def _ci(r) -> str:
    return fmt.fmt_estimate_ci(r["estimate"], r["ci_low"], r["ci_high"], sign=True)


def _table(title: str, columns: list[str]):
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for c in columns:
        table.add_column(c, justify="left" if c in ("method", "target", "design") else "right")
    return table


def render_summary(analysis, console=None) -> None:
    """Print the answer, the per-method contrast, per-target p-values, k-hat of N, the seed plan, caveats.

    ``console``: a rich Console (a new one writing to stdout by default).
    """
    from rich.console import Console
    from rich.panel import Panel
    from rich.text import Text

    console = console or Console()
    ans = analysis.answer
    if analysis.synthetic:
        console.print(Panel("SYNTHETIC DATA - simulated benchmark, not real models", style="bold red"))
    console.print(
        Panel(Text(answer_sentence(analysis)), title=f"answer: {analysis.experiment or 'experiment'}")
    )
    frames = analysis.frames
    a, b = ans.a.upper(), ans.b.upper()
    if len(frames.contrast):
        t = _table(f"{a} - {b} contrast by method (points)", ["method", "estimate [CI]", "df", "p"])
        for _, r in frames.contrast.iterrows():
            t.add_row(str(r["method"]), _ci(r), fmt.fmt_df(r["df"]), fmt.fmt_p(r["p_value"]))
        console.print(t)
    if len(frames.per_target):
        t = _table(
            "per target (p adjusted across targets)",
            ["target", "estimate [CI]", "p", "p Holm", "p BH", "wins"],
        )
        for _, r in frames.per_target.iterrows():
            t.add_row(
                escape(str(r["target"])),
                _ci(r),
                fmt.fmt_p(r["p_value"]),
                fmt.fmt_p(r["p_adj"]),
                fmt.fmt_p(r["p_adj_bh"]),
                str(r["wins"]),
            )
        console.print(t)
    for _, r in frames.language_wins.iterrows():
        console.print(
            f"{escape(a)} beats {escape(b)} in {r['k_hat']} of {r['n']} languages "
            f"({r['method']}, alpha = {fmt.fmt_alpha(r['alpha'])})."
        )
    for _, r in frames.aso.iterrows():
        verdict = (
            "almost stochastically better (eps_min < 0.5)"
            if float(r["eps_min"]) < 0.5
            else "not shown better (eps_min >= 0.5)"
        )
        console.print(
            f"ASO {escape(str(r['comparison']))} across seeds: eps_min = {fmt.fmt_num(r['eps_min'], 2)}, {verdict}"
        )
    plan = frames.seed_plan
    if len(plan):
        # The columns a reader decides on; the CSV under analysis/ has all of them.
        t = _table(
            "seed plan: expected 95% CI half-width (points); tasks per family; floor = the half-width "
            "with infinitely many seeds and languages",
            ["design", "seeds", "tasks", "langs", "half-width", "floor", "power"],
        )
        t.columns[0].no_wrap = True
        decimals = fmt.column_decimals(plan["half_width"])
        for _, r in plan.head(12).iterrows():
            t.add_row(
                escape(str(r["design"])),
                str(int(r["n_seeds"])),
                str(int(r["n_intermediate_per_family"])),
                str(int(r["n_languages"])),
                fmt.fmt_num(r["half_width"], decimals),
                fmt.fmt_num(r["task_floor_half_width"], decimals),
                fmt.fmt_num(r["power"], 2),
            )
        console.print(t)
    if analysis.caveats:
        console.print("[bold]Caveats[/bold]")
        for c in analysis.caveats:
            console.print(f"  - {c}", markup=False, highlight=False)
