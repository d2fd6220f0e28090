"""Console summary of an :class:`analysis.pipeline.Analysis` with rich (``xitt analyze``)."""

from __future__ import annotations

import math

import pandas as pd
from rich.markup import escape


def _num(x, digits: int = 2, sign: bool = False) -> str:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return "-"
    if not math.isfinite(x):
        return "-"
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def _p(x) -> str:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return "-"
    if not math.isfinite(x):
        return "-"
    return "<0.001" if x < 0.001 else f"{x:.3f}"


def _ci(r) -> str:
    return f"[{_num(r.get('ci_low'), sign=True)}, {_num(r.get('ci_high'), sign=True)}]"


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
        Panel(Text(str(ans.get("sentence", ""))), title=f"answer: {analysis.experiment or 'experiment'}")
    )
    frames = analysis.frames
    a, b = str(ans.get("a", "a")).upper(), str(ans.get("b", "b")).upper()
    contrast = frames.get("contrast", pd.DataFrame())
    if len(contrast):
        t = _table(f"{a} - {b} contrast by method (points)", ["method", "estimate", "CI", "df", "p"])
        for _, r in contrast.iterrows():
            t.add_row(
                str(r["method"]), _num(r["estimate"], sign=True), _ci(r), _num(r["df"], 1), _p(r["p_value"])
            )
        console.print(t)
    per = frames.get("per_target", pd.DataFrame())
    if len(per):
        t = _table(
            "per target (p adjusted across targets)",
            ["target", "estimate", "CI", "p", "p Holm", "p BH", "wins"],
        )
        for _, r in per.iterrows():
            t.add_row(
                escape(str(r["target"])),
                _num(r["estimate"], sign=True),
                _ci(r),
                _p(r["p_value"]),
                _p(r["p_adj"]),
                _p(r["p_adj_bh"]),
                str(r.get("wins", "")),
            )
        console.print(t)
    wins = frames.get("language_wins", pd.DataFrame())
    for _, r in wins.iterrows():
        console.print(
            f"{escape(a)} beats {escape(b)} in {r['k_hat']} of {r['n']} languages "
            f"({r['method']}, alpha = {r['alpha']})."
        )
    aso = frames.get("aso", pd.DataFrame())
    for _, r in aso.iterrows():
        verdict = (
            "almost stochastically better (eps_min < 0.5)"
            if float(r["eps_min"]) < 0.5
            else "not shown better (eps_min >= 0.5)"
        )
        console.print(
            f"ASO {escape(str(r['comparison']))} across seeds: eps_min = {_num(r['eps_min'], 3)}, {verdict}"
        )
    plan = frames.get("seed_plan", pd.DataFrame())
    if len(plan):
        # The columns a reader decides on; the CSV under analysis/ has all of them.
        t = _table(
            "seed plan: expected 95% CI half-width (points); tasks per family; floor = the half-width "
            "with infinitely many seeds and languages",
            ["design", "seeds", "tasks", "langs", "half-width", "floor", "power"],
        )
        t.columns[0].no_wrap = True
        for _, r in plan.head(12).iterrows():
            t.add_row(
                escape(str(r["design"])),
                str(int(r["n_seeds"])),
                str(int(r["n_intermediate_per_family"])),
                str(int(r["n_languages"])),
                _num(r["half_width"]),
                _num(r["task_floor_half_width"]),
                _num(r["power"]),
            )
        console.print(t)
    if analysis.caveats:
        console.print("[bold]Caveats[/bold]")
        for c in analysis.caveats:
            console.print(f"  - {c}", markup=False, highlight=False)
