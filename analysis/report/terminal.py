"""Console summary of an :class:`analysis.result.Analysis` with rich (``xitt analyze``).

It prints the same display tables as the report (:mod:`analysis.report.tables`), so the terminal,
the HTML, the LaTeX and the exports show the same strings.
"""

from __future__ import annotations

from rich.markup import escape

from analysis.report import formatting as fmt
from analysis.report import tables as T
from analysis.report.answer import answer_sentence
from analysis.report.names import Names

TITLES = {
    "contrast": "{a} \u2212 {b} contrast by method (points)",
    "per_target": "per target: one t over seeds for CI and p; p adjusted across targets",
    "language_wins": "languages where {a} beats {b} (partial conjunction)",
    "seed_plan": "seed plan: expected 95% CI half-width (points); floor = with infinitely many seeds and languages",
}

SHORT = {"tasks per family": "tasks", "languages": "langs", "CI half-width": "half-width"}


def _rich(table: T.Table, title: str):
    from rich.table import Table

    out = Table(title=title, title_justify="left")
    for j, column in enumerate(table.columns):
        out.add_column(escape(column), justify="left" if j < table.stub else "right", no_wrap=j == 0)
    for row in table.rows:
        out.add_row(*(escape(c.text + (f" ({c.sub})" if c.sub else "")) for c in row))
    return out


def render_summary(analysis, console=None, names: Names | None = None) -> None:
    """Print the answer, the per-method contrast, per-target contrasts, k-hat of N, ASO, the seed
    plan and the caveats. ``console``: a rich Console (a new one writing to stdout by default)."""
    from rich.console import Console
    from rich.panel import Panel
    from rich.text import Text

    console = console or Console()
    names = names or Names()
    opts = T.Options(synthetic=False, names=names)
    if analysis.synthetic:
        console.print(Panel("SYNTHETIC DATA - simulated benchmark, not real models", style="bold red"))
    console.print(
        Panel(Text(answer_sentence(analysis, names)), title=f"answer: {analysis.experiment or 'experiment'}")
    )
    a, b = names.family(analysis.a), names.family(analysis.b)
    builders = (T.contrast_table, T.per_target_table, T.language_wins_table)
    for table in filter(None, (build(analysis, opts) for build in builders)):
        console.print(_rich(table, TITLES[table.key].format(a=a, b=b)))
    for _, r in analysis.frames.aso.iterrows():
        verdict = (
            "almost stochastically better (eps_min < 0.5)"
            if float(r["eps_min"]) < 0.5
            else "not shown better (eps_min >= 0.5)"
        )
        console.print(
            f"ASO (these tasks, seeds as units) {escape(str(r['comparison']))}: "
            f"eps_min = {fmt.fmt_num(r['eps_min'], 2)}, {verdict}"
        )
    plan = T.seed_plan_table(analysis, opts)
    if plan is not None:
        plan.rows = plan.rows[:12]  # the CSV under analysis/ has all of them
        plan.columns = [SHORT.get(c, c) for c in plan.columns]  # one line per design in 80 columns
        console.print(_rich(plan, TITLES["seed_plan"]))
    if analysis.caveats:
        console.print("[bold]Caveats[/bold]")
        for c in analysis.caveats:
            console.print(f"  - {c}", markup=False, highlight=False)
