"""The paper-ready report: Analysis -> ReportContext -> jinja2 -> report.html / report.tex (+ PDF).

``build_context`` is pure: it turns the analysis result (:class:`analysis.result.Analysis`) into
display models (tables of already formatted strings, figures with captions), so the templates in
``analysis/report/templates/`` only lay things out and never compute. Numbers are formatted by
:mod:`analysis.report.formatting`; user strings are escaped by the templates (HTML autoescape;
the ``latex`` filter for LaTeX).

Output layout of ``build_report(analysis, outdir)``::

    outdir/report.html           one self-contained file: PNGs inlined as base64, CSS inline, no JavaScript
    outdir/report.tex            \\input{tables/<name>}, \\includegraphics{figures/<name>.pdf}
    outdir/tables/<name>.tex     one float each, usable alone in a paper with \\usepackage{booktabs}
    outdir/tables/<name>.md|csv  the same formatted tables (``formats``), for a README or a spreadsheet
    outdir/figures/<name>.pdf|png
    outdir/report.pdf            when pdflatex is on PATH (two passes for the table of contents)

Every file of an earlier report in those places is removed first, so nothing stale survives
(a PDF that cannot be built this time is gone, not left from last time).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from analysis.report import layout
from analysis.report import paper_tables as P
from analysis.report import tables as T
from analysis.report.answer import answer_block
from analysis.report.formatting import MAX_NAME, drop_invisible, latex_escape, latex_lines, shorten
from analysis.report.names import Names
from analysis.report.provenance import provenance_blocks
from analysis.report.report_figures import Figure, make_figures
from xitt.schema import atomic_write_bytes, atomic_write_text

TEMPLATES = Path(__file__).resolve().parent / "templates"
AUX_SUFFIXES = (".aux", ".log", ".out", ".toc")
PDFLATEX_TIMEOUT_S = 120
PREAMBLE = "\\usepackage{booktabs}"  # everything tables/*.tex need beyond a plain article
PDF_HINT = (
    "the PDF was skipped: pdflatex is not on PATH. Install TeX Live (Debian/Ubuntu: apt-get install "
    "texlive-latex-recommended texlive-fonts-recommended lmodern) and rerun, or pass --no-pdf to say you "
    "do not want it. report.html and the LaTeX sources were written."
)
GENERATED = (
    "report.html",
    "report.tex",
    "report.pdf",
    "tables/*.tex",
    "tables/*.md",
    "tables/*.csv",
    "figures/*",
)
TABLE_FORMATS = ("md", "csv")


@dataclass
class Section:
    """A numbered section: ``blocks`` are rendered in order; each is a Table, a Figure or a Text."""

    id: str
    title: str
    intro: str = ""
    blocks: list = field(default_factory=list)


@dataclass
class ReportContext:
    """Everything the templates show, already formatted."""

    title: str
    experiment: str
    synthetic: bool
    answer: dict
    caveats: list[str]
    sections: list[Section]

    @property
    def tables(self) -> list[T.Table]:
        return [b for s in self.sections for b in s.blocks if isinstance(b, T.Table)]

    @property
    def label_prefix(self) -> str:
        """What every \\label starts with: the experiment, so that two reports can share a paper."""
        return T.slug(self.experiment or "xitt").replace("_", "-")

    @property
    def figures(self) -> list[Figure]:
        return [b for s in self.sections for b in s.blocks if isinstance(b, Figure)]


# --- context ---------------------------------------------------------------------------------
def _sections(analysis, figures: dict[str, Figure], provenance: dict, opts: T.Options) -> list[Section]:
    def fig(name):
        return [figures[name]] if name in figures else []

    return [
        Section("answer", "The answer", "", [*T.opt(T.contrast_table(analysis, opts))]),
        Section(
            "main",
            "Main results",
            "Rows: intermediate tasks grouped by family, the no-intermediate baseline first. Cells: mean \u00b1 sd "
            "over seeds of the target score (0\u2013100; XTREME-style language average), below it \u0394 vs none.",
            T.main_tables(analysis, opts),
        ),
        Section(
            "targets",
            "Per-target contrasts",
            "",
            [
                *fig("forest"),
                *T.opt(T.per_target_table(analysis, opts)),
                *T.opt(T.language_wins_table(analysis, opts)),
            ],
        ),
        Section("languages", "Per-language effects", "", fig("heatmap")),
        Section(
            "seeds",
            "Seed variance",
            "How much of the variation in \u0394 comes from seeds, languages and tasks, and what a design "
            "needs for a given precision.",
            [
                *T.opt(T.variance_table(analysis, opts)),
                *fig("variance"),
                *fig("seed_sd"),
                *T.opt(T.seed_plan_table(analysis, opts)),
            ],
        ),
        # The comparisons with Phang et al. (2020); each is left out when its frame is empty.
        Section("oracle", "Best intermediate per target (oracle)", "", P.oracle_blocks(analysis, opts)),
        Section("replication", "Replication of Phang et al. 2020", "", P.replication_blocks(analysis, opts)),
        Section("examples", "Example-level uncertainty", "", P.example_blocks(analysis, opts)),
        Section("provenance", "Provenance", "", provenance_blocks(analysis, provenance, opts)),
    ]


def _shorten_names(sections: list[Section]) -> list[str]:
    """Cut every table cell and header longer than MAX_NAME characters (only names are: numbers
    and CIs are shorter) with formatting.shorten, except in the provenance key/value tables (paths,
    versions); returns the full texts that were cut, in order."""
    cut: dict[str, None] = {}

    def short(text: str) -> str:
        if len(text) > MAX_NAME:
            cut[text] = None
        return shorten(text)

    for table in (b for s in sections for b in s.blocks if isinstance(b, T.Table)):
        if table.key.startswith("prov"):
            continue
        table.columns = [short(str(c)) for c in table.columns]
        for cell in (c for row in table.rows for c in row):
            cell.text, cell.sub = short(cell.text), short(cell.sub)
    return list(cut)


def _full_names(cut: list[str], width: int = 72) -> T.Text:
    """The provenance block that keeps each shortened name whole: its short form, then the name
    in lines of ``width`` characters."""
    lines = []
    for full in cut:
        lines += [shorten(full) + ":", *("  " + full[i : i + width] for i in range(0, len(full), width))]
    return T.Text("names shortened in tables and figures", "\n".join(lines), pre=True)


def build_context(
    analysis,
    figures: dict[str, Figure] | None = None,
    provenance: dict | None = None,
    *,
    names: Names | None = None,
    layout_name: str = "one",
) -> ReportContext:
    """Pure: the display model of the report. ``names``: display names (ids shown as they are
    without); ``layout_name``: "one" or "two" paper columns (:mod:`analysis.report.layout`).
    Table labels are ``tab:<experiment>-<table>`` so that two experiments' tables can share a paper."""
    opts = T.Options(synthetic=analysis.synthetic, names=names or Names())
    answer = answer_block(analysis, opts.names)
    sections = _sections(analysis, figures or {}, provenance or {}, opts)
    cut = _shorten_names(sections)
    if cut:
        sections[-1].blocks.append(_full_names(cut))
    ctx = ReportContext(
        title=f"{answer['a_label']} vs {answer['b_label']} intermediate-task training: "
        f"{analysis.experiment or 'report'}",
        experiment=analysis.experiment,
        synthetic=analysis.synthetic,
        answer=answer,
        caveats=list(analysis.caveats),
        sections=[s for s in sections if s.blocks or s.id == "answer"],
    )
    for table in ctx.tables:
        table.label = f"{ctx.label_prefix}-{table.key.replace('_', '-')}"
        layout.place(table, layout_name)
        layout.place_html(table)
    for kind in (ctx.tables, ctx.figures):
        for number, item in enumerate(kind, start=1):
            item.number = number
    return ctx


# --- rendering -------------------------------------------------------------------------------
def _html_env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        finalize=drop_invisible,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _latex_env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        block_start_string=r"\BLOCK{",
        block_end_string="}",
        variable_start_string=r"\VAR{",
        variable_end_string="}",
        comment_start_string=r"\#{",
        comment_end_string="}",
        line_comment_prefix="%#",
    )
    env.filters["latex"] = latex_escape
    env.filters["latex_lines"] = latex_lines
    return env


def render_html(ctx: ReportContext) -> str:
    return _html_env().get_template("report.html.j2").render(ctx=ctx)


def render_tex(ctx: ReportContext) -> tuple[str, dict[str, str]]:
    """The main .tex and one standalone table environment per table (name -> text)."""
    env = _latex_env()
    tables = {t.key: env.get_template("table.tex.j2").render(table=t) for t in ctx.tables}
    return env.get_template("report.tex.j2").render(ctx=ctx), tables


class PdfError(ValueError):
    """pdflatex could not compile the report: one message with the first LaTeX error and the log's path
    (the HTML and the tables are written already)."""


def compile_pdf(outdir: Path, tex_name: str = "report.tex") -> Path:
    """Run pdflatex two times (three when the TOC shifted page numbers); remove aux files on success.

    Raises PdfError with the first LaTeX error and the log path when compilation fails.
    """
    # -no-shell-escape: escaping user strings is not the only defence against \write18
    cmd = ["pdflatex", "-no-shell-escape", "-interaction=nonstopmode", "-halt-on-error", tex_name]
    stem = Path(tex_name).stem
    toc = outdir / f"{stem}.toc"
    toc.unlink(missing_ok=True)
    previous = None
    for _ in range(3):  # the 2nd pass prints the TOC; a 3rd only if that moved the page numbers
        if toc.exists():
            previous = toc.read_bytes()
        proc = subprocess.run(
            cmd, cwd=outdir, capture_output=True, text=True, errors="replace", timeout=PDFLATEX_TIMEOUT_S
        )
        if proc.returncode != 0:
            lines = proc.stdout.splitlines()
            first = next((i for i, line in enumerate(lines) if line.startswith("!")), max(len(lines) - 15, 0))
            raise PdfError(
                f"pdflatex failed on {outdir / tex_name}:\n"
                + "\n".join(lines[first : first + 12])
                + f"\nFull log: {outdir / (stem + '.log')}. The HTML report was written; "
                "rerun with pdf=False (xitt report --no-pdf) to skip the PDF."
            )
        if previous is not None and toc.exists() and toc.read_bytes() == previous:
            break
    for suffix in AUX_SUFFIXES:
        (outdir / f"{stem}{suffix}").unlink(missing_ok=True)
    return outdir / f"{stem}.pdf"


def remove_stale(outdir: Path) -> None:
    """Delete every file an earlier ``build_report`` may have left in ``outdir`` (GENERATED)."""
    for pattern in GENERATED:
        for path in outdir.glob(pattern):
            if path.is_file():
                path.unlink()


def build_report(
    analysis,
    outdir: Path,
    *,
    provenance: dict | None = None,
    pdf: bool = True,
    names: Names | None = None,
    layout_name: str = "one",
    formats: tuple[str, ...] = (),
) -> dict[str, Path]:
    """Write the report for ``analysis`` (an analysis.result.Analysis) under ``outdir``.

    Returns a mapping name -> path: html, tex, tables/<name>, tables/<name>.<fmt> for each of
    ``formats`` ("md", "csv"), figures/<name>.pdf|png, and pdf when ``pdf`` is True and pdflatex
    is on PATH (:data:`PDF_HINT` is what to tell the user when it is not). ``provenance`` (grid
    text, run counts, failures, package versions, git sha, analysis seed, ...) is shown as given.
    """
    from analysis.report.export import write_tables

    unknown = sorted(set(formats) - set(TABLE_FORMATS))
    if unknown:
        raise ValueError(f"unknown table format(s) {unknown}; choose among {list(TABLE_FORMATS)}")
    outdir = Path(outdir)
    # Everything is rendered before anything is removed or written: a failure leaves the previous
    # report as it was (a figure error once left empty figures/ and tables/ folders behind).
    figs = make_figures(analysis, names or Names())
    ctx = build_context(analysis, figs, provenance, names=names, layout_name=layout_name)
    main_tex, tables = render_tex(ctx)
    html = render_html(ctx)
    remove_stale(outdir)
    (outdir / "tables").mkdir(parents=True, exist_ok=True)
    (outdir / "figures").mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for fig in figs.values():
        for ext, data in (("png", fig.png), ("pdf", fig.pdf)):
            path = outdir / "figures" / f"{fig.name}.{ext}"
            atomic_write_bytes(path, data)
            written[f"figures/{fig.name}.{ext}"] = path
    for key, text in tables.items():
        path = outdir / "tables" / f"{key}.tex"
        atomic_write_text(path, text)
        written[f"tables/{key}"] = path
    written.update(write_tables(ctx.tables, outdir / "tables", formats))
    atomic_write_text(outdir / "report.tex", main_tex)
    atomic_write_text(outdir / "report.html", html)
    written["tex"], written["html"] = outdir / "report.tex", outdir / "report.html"
    if pdf and shutil.which("pdflatex"):
        written["pdf"] = compile_pdf(outdir)
    return written


__all__ = [
    "ReportContext",
    "Section",
    "build_context",
    "build_report",
    "render_html",
    "render_tex",
    "compile_pdf",
]
