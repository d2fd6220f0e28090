"""The paper-ready report: Analysis -> ReportContext -> jinja2 -> report.html / report.tex (+ PDF).

With :mod:`analysis.report.export` the only analysis modules that write files. ``build_context`` is pure: it turns the
analysis result frames into display models (tables of already formatted strings, figure
captions), so the templates in ``analysis/report/templates/`` only lay things out and never compute. Numbers are
formatted by :mod:`analysis.report.formatting`; user strings are escaped by the templates (HTML
autoescape; the ``latex`` filter for LaTeX).

Output layout of ``build_report(analysis, outdir)``::

    outdir/report.html        one self-contained file: PNGs inlined as base64, CSS inline, no JavaScript
    outdir/report.tex         \\input{tables/<name>}, \\includegraphics{figures/<name>.pdf}
    outdir/tables/<name>.tex  booktabs table environments, each usable alone (needs booktabs, graphicx)
    outdir/figures/<name>.pdf|png
    outdir/report.pdf         when pdflatex is on PATH (two passes for the table of contents)
"""

from __future__ import annotations

import base64
import io
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from analysis import effects
from analysis.report import figures as F
from analysis.report import tables as T
from analysis.report.answer import answer_block
from analysis.report.formatting import latex_escape, latex_lines

TEMPLATES = Path(__file__).resolve().parent / "templates"
AUX_SUFFIXES = (".aux", ".log", ".out", ".toc")
PDFLATEX_TIMEOUT_S = 120


@dataclass
class Figure:
    """One figure: file stem, caption, width class ("one" or "two" columns) and the rendered bytes."""

    name: str
    caption: str
    width: str = "one"
    png: bytes = b""
    pdf: bytes = b""
    number: int = 0

    @property
    def png_base64(self) -> str:
        return base64.b64encode(self.png).decode("ascii")


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
    def figures(self) -> list[Figure]:
        return [b for s in self.sections for b in s.blocks if isinstance(b, Figure)]


# --- figures ---------------------------------------------------------------------------------
def _render(fig, synthetic: bool) -> tuple[bytes, bytes]:
    import matplotlib.pyplot as plt

    if synthetic:
        fig.suptitle("SYNTHETIC DATA", x=0.99, ha="right", fontsize=6, color="#D55E00")
    out = []
    for fmt, kw in (("png", {"dpi": 150}), ("pdf", {"metadata": {"CreationDate": None}})):
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, bbox_inches="tight", **kw)
        out.append(buf.getvalue())
    plt.close(fig)
    return out[0], out[1]


RC = {"font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "xtick.labelsize": 7, "ytick.labelsize": 7}


def _new_figure(width: float, height: float):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height), layout="constrained")
    return fig, ax


def _forest_figure(analysis, a_label: str, b_label: str, synthetic: bool) -> Figure | None:
    forest = T.forest_frame(analysis)
    if forest is None or forest.empty:
        return None
    fig, ax = _new_figure(F.ONE_COLUMN, 0.9 + 0.3 * len(forest))
    F.plot_forest(forest, ax=ax, a=a_label, b=b_label)
    return Figure(
        "forest",
        f"{a_label} \u2212 {b_label} contrast of \u0394 vs none per target task and overall, "
        "with confidence intervals (filled: CI excludes 0).",
        "one",
        *_render(fig, synthetic),
    )


def _heatmap_figure(analysis, synthetic: bool) -> Figure | None:
    import matplotlib.pyplot as plt

    heat = T.heatmap_frame(analysis)
    if heat is None or heat.empty:
        return None
    targets = list(dict.fromkeys(heat["target"]))
    ncols = 1 if heat["language"].nunique() > 12 else min(len(targets), 3)  # many languages: full width
    nrows = -(-len(targets) // ncols)
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(F.TWO_COLUMN, nrows * (0.9 + 0.28 * heat["intermediate"].nunique())),
        layout="constrained",
        squeeze=False,
        sharey=True,
    )
    vmax = float(heat["estimate"].abs().max()) or 1.0  # one colour scale for all panels
    for i, ax in enumerate(axes.flat):
        if i >= len(targets):
            ax.set_visible(False)
            continue
        F.plot_delta_heatmap(
            heat[heat.target == targets[i]],
            ax=ax,
            title=str(targets[i]),
            vmax=vmax,
            colorbar=False,
            row_order=T.intermediate_order(analysis),
        )
        if i % ncols:
            ax.set_ylabel("")
            ax.tick_params(labelleft=False)
    fig.colorbar(
        axes.flat[0].images[0], ax=list(axes.flat), label=f"\u0394 vs none ({F.DELTA_UNIT})", shrink=0.8
    )
    return Figure(
        "heatmap",
        "Per-language \u0394 vs none (mean over seeds) for every intermediate task; one panel per "
        "target task; purple = gain, orange = loss.",
        "two",
        *_render(fig, synthetic),
    )


def _variance_figure(analysis, synthetic: bool) -> Figure | None:
    vc = analysis.frames.variance_components
    if vc.empty:
        return None
    fig, ax = _new_figure(F.ONE_COLUMN, 0.8 + 0.3 * len(vc))
    F.plot_variance_components(vc, ax=ax)
    return Figure(
        "variance",
        "Variance components of \u0394 vs none from the crossed mixed model.",
        "one",
        *_render(fig, synthetic),
    )


def _seed_sd_figure(analysis, synthetic: bool) -> Figure | None:
    cells = T.seed_sd_frame(analysis)
    if cells is None or cells.empty:
        return None
    fig, ax = _new_figure(F.ONE_COLUMN, 0.9 + 0.28 * cells["intermediate"].nunique())
    F.plot_seed_sd(
        cells,
        ax=ax,
        family_order=effects.family_order(
            cells["intermediate_family"], first=(analysis.answer.a, analysis.answer.b)
        ),
    )
    return Figure(
        "seed_sd",
        "Standard deviation over seeds of each (intermediate, target, language) cell; bar: "
        "median per intermediate task.",
        "one",
        *_render(fig, synthetic),
    )


def make_figures(analysis) -> dict[str, Figure]:
    """Forest plot, per-target heatmaps, variance components and seed sd; each only when its frame
    has rows. Synthetic data get the SYNTHETIC DATA tag in every figure."""
    import matplotlib.pyplot as plt

    synthetic = analysis.synthetic
    a_label, b_label = analysis.answer.a.upper(), analysis.answer.b.upper()
    with plt.rc_context(RC):
        figs = [
            _forest_figure(analysis, a_label, b_label, synthetic),
            _heatmap_figure(analysis, synthetic),
            _variance_figure(analysis, synthetic),
            _seed_sd_figure(analysis, synthetic),
        ]
    return {f.name: f for f in figs if f is not None}


# --- context ---------------------------------------------------------------------------------
def build_context(
    analysis, figures: dict[str, Figure] | None = None, provenance: dict | None = None
) -> ReportContext:
    """Pure: the display model of the report (sections in the order of issue 5)."""
    figures = figures or {}
    answer = answer_block(analysis)
    synth = analysis.synthetic

    def fig(name):
        return [figures[name]] if name in figures else []

    sections = [
        Section("answer", "The answer", "", [*T.opt(T.contrast_table(analysis, synth))]),
        Section(
            "main",
            "Main results",
            "Rows: intermediate tasks grouped by family, the no-intermediate baseline first. Cells: mean \u00b1 sd "
            "over seeds of the target score (0\u2013100; XTREME-style language average), below it \u0394 vs none.",
            T.main_tables(analysis, synth),
        ),
        Section(
            "targets",
            "Per-target contrasts",
            "",
            [
                *fig("forest"),
                *T.opt(T.per_target_table(analysis, synth)),
                *T.opt(T.language_wins_table(analysis, synth)),
            ],
        ),
        Section("languages", "Per-language effects", "", fig("heatmap")),
        Section(
            "seeds",
            "Seed variance",
            "How much of the variation in \u0394 comes from seeds, languages and tasks, and what a design "
            "needs for a given precision.",
            [
                *T.opt(T.variance_table(analysis, synth)),
                *fig("variance"),
                *fig("seed_sd"),
                *T.opt(T.seed_plan_table(analysis, synth)),
            ],
        ),
        Section("provenance", "Provenance", "", T.provenance_blocks(analysis, provenance or {}, synth)),
    ]
    title = f"{answer['a_label']} vs {answer['b_label']} intermediate-task training: {analysis.experiment or 'report'}"
    ctx = ReportContext(
        title=title,
        experiment=analysis.experiment,
        synthetic=synth,
        answer=answer,
        caveats=list(analysis.caveats),
        sections=[s for s in sections if s.blocks or s.id == "answer"],
    )
    for kind in (ctx.tables, ctx.figures):
        for number, item in enumerate(kind, start=1):
            item.number = number
    return ctx


# --- rendering -------------------------------------------------------------------------------
def _html_env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
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


def compile_pdf(outdir: Path, tex_name: str = "report.tex") -> Path:
    """Run pdflatex two times (three when the TOC shifted page numbers); remove aux files on success.

    Raises RuntimeError with the first LaTeX error and the log path when compilation fails.
    """
    cmd = ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", tex_name]
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
            raise RuntimeError(
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


def build_report(
    analysis, outdir: Path, *, provenance: dict | None = None, pdf: bool = True
) -> dict[str, Path]:
    """Write the report for ``analysis`` (an analysis.result.Analysis) under ``outdir``.

    Returns a mapping name -> path: html, tex, tables/<name>, figures/<name>.pdf|png, and pdf
    when ``pdf`` is True and pdflatex is on PATH. ``provenance`` (grid text, run counts, failures,
    package versions, git sha, analysis seed, ...) is shown as given.
    """
    outdir = Path(outdir)
    (outdir / "tables").mkdir(parents=True, exist_ok=True)
    (outdir / "figures").mkdir(parents=True, exist_ok=True)
    figs = make_figures(analysis)
    ctx = build_context(analysis, figs, provenance)
    written: dict[str, Path] = {}
    for fig in figs.values():
        for ext, data in (("png", fig.png), ("pdf", fig.pdf)):
            path = outdir / "figures" / f"{fig.name}.{ext}"
            path.write_bytes(data)
            written[f"figures/{fig.name}.{ext}"] = path
    main_tex, tables = render_tex(ctx)
    for key, text in tables.items():
        path = outdir / "tables" / f"{key}.tex"
        path.write_text(text, encoding="utf-8")
        written[f"tables/{key}"] = path
    (outdir / "report.tex").write_text(main_tex, encoding="utf-8")
    (outdir / "report.html").write_text(render_html(ctx), encoding="utf-8")
    written["tex"], written["html"] = outdir / "report.tex", outdir / "report.html"
    if pdf and shutil.which("pdflatex"):
        written["pdf"] = compile_pdf(outdir)
    return written


CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
)


def screenshot_html(
    html: Path, png: Path, *, chromium: str = "chromium", size: str = "1280,2400", timeout_s: int = 90
) -> list[str]:
    """Open ``html`` in headless Chromium, save a PNG screenshot to ``png`` and return the console
    errors it logged (uncaught exceptions, console.error, failed loads); an empty list means clean.

    Raises FileNotFoundError when ``chromium`` is not on PATH (Debian: apt-get install chromium).
    """
    import tempfile

    exe = shutil.which(chromium)
    if exe is None:
        raise FileNotFoundError(
            f"{chromium!r} not found on PATH; install it (Debian: apt-get install chromium)"
        )
    png = Path(png).resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [
                exe,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                f"--screenshot={png}",
                f"--window-size={size}",
                Path(html).resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout_s,
        )
    if not png.exists():
        raise RuntimeError(f"chromium wrote no screenshot (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return [
        line
        for line in proc.stderr.splitlines()
        if ("CONSOLE" in line and ("Uncaught" in line or "ERROR:CONSOLE" in line or ":ERROR:" in line))
        or "net::ERR_" in line
    ]


__all__ = [
    "screenshot_html",
    "ReportContext",
    "Section",
    "Figure",
    "build_context",
    "build_report",
    "make_figures",
    "render_html",
    "render_tex",
    "compile_pdf",
]
