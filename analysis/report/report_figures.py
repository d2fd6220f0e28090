"""The report's figures: analysis frames -> :class:`Figure` (caption, width class, PNG and PDF bytes).

Plots come from :mod:`analysis.report.figures` (pure ``plot_*`` functions); here they are sized
(one or two paper columns), tagged SYNTHETIC DATA when the data are synthetic, labelled with
display names, and rendered. PDFs embed TrueType (Type 42) fonts only: venue checkers reject
Type 3 fonts, which matplotlib writes by default.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

from analysis import effects
from analysis.report import figures as F
from analysis.report import tables as T
from analysis.report.names import Names


@dataclass
class Figure:
    """One figure: file stem, caption, width class ("one" or "two" columns) and the rendered bytes."""

    name: str
    caption: str
    width: str = "one"
    png: bytes = b""
    pdf: bytes = b""
    number: int = 0
    width_px: int = 0  # the figure's natural width in CSS pixels (96 per inch): text at its printed size
    min_font_pt: float = 0.0  # the smallest text in the figure, in points at the natural size

    @property
    def png_base64(self) -> str:
        return base64.b64encode(self.png).decode("ascii")


PNG_DPI = 192  # twice the CSS pixel density: sharp on high-density screens at the natural width


def _render(fig, synthetic: bool) -> tuple[bytes, bytes, int]:
    """(PNG, PDF, natural width in CSS px) of ``fig``; closes it."""
    import matplotlib.pyplot as plt

    if synthetic:
        fig.suptitle("SYNTHETIC DATA", x=0.99, ha="right", fontsize=7, color="#D55E00")
    out = []
    for fmt, kw in (("png", {"dpi": PNG_DPI}), ("pdf", {"metadata": {"CreationDate": None}})):
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, bbox_inches="tight", **kw)
        out.append(buf.getvalue())
    plt.close(fig)
    width_px = int.from_bytes(out[0][16:20], "big") * 96 // PNG_DPI  # PNG IHDR width
    return out[0], out[1], width_px


# pdf.fonttype 42: TrueType (Type 42) fonts in the PDFs instead of matplotlib's default Type 3.
def _figure(name: str, caption: str, width: str, fig, synthetic: bool) -> Figure:
    from matplotlib.text import Text

    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    png, pdf, width_px = _render(fig, synthetic)
    return Figure(name, caption, width, png, pdf, width_px=width_px, min_font_pt=float(min(sizes, default=0)))


RC = {
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
}


def _new_figure(width: float, height: float):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height), layout="constrained")
    return fig, ax


def _forest_figure(analysis, a_label: str, b_label: str, synthetic: bool, names: Names) -> Figure | None:
    forest = T.forest_frame(analysis)
    if forest is None or forest.empty:
        return None
    forest["label"] = forest["label"].map(names)
    fig, ax = _new_figure(F.ONE_COLUMN, 0.9 + 0.3 * len(forest))
    F.plot_forest(forest, ax=ax, a=a_label, b=b_label)
    return _figure(
        "forest",
        f"{a_label} \u2212 {b_label} contrast of \u0394 vs none per target task and overall, "
        "with confidence intervals (filled: CI excludes 0).",
        "one",
        fig,
        synthetic,
    )


def _heatmap_figure(analysis, synthetic: bool, names: Names) -> Figure | None:
    import matplotlib.pyplot as plt

    heat = T.heatmap_frame(analysis)
    if heat is None or heat.empty:
        return None
    heat["intermediate"] = heat["intermediate"].map(names)
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
            title=names(targets[i]),
            vmax=vmax,
            colorbar=False,
            row_order=[names(i) for i in T.intermediate_order(analysis)],
        )
        if i % ncols:
            ax.set_ylabel("")
            ax.tick_params(labelleft=False)
    # Below the panels: a vertical bar's label ran past short figures into the SYNTHETIC DATA tag.
    fig.colorbar(
        axes.flat[0].images[0],
        ax=list(axes.flat),
        label=f"\u0394 vs none ({F.DELTA_UNIT})",
        location="bottom",
        shrink=0.5,
        aspect=40,
    )
    return _figure(
        "heatmap",
        "Per-language \u0394 vs none (mean over seeds) for every intermediate task; one panel per "
        "target task; purple = gain, orange = loss.",
        "two",
        fig,
        synthetic,
    )


def _variance_figure(analysis, synthetic: bool) -> Figure | None:
    vc = analysis.frames.variance_components
    if vc.empty:
        return None
    fig, ax = _new_figure(F.ONE_COLUMN, 0.8 + 0.3 * len(vc))
    F.plot_variance_components(vc, ax=ax)
    return _figure(
        "variance",
        "Variance components of \u0394 vs none from the crossed mixed model.",
        "one",
        fig,
        synthetic,
    )


def _seed_sd_figure(analysis, synthetic: bool) -> Figure | None:
    cells = T.seed_sd_frame(analysis)
    if cells is None or cells.empty:
        return None
    fig, ax = _new_figure(F.ONE_COLUMN, 0.9 + 0.28 * cells["intermediate"].nunique())
    F.plot_seed_sd(
        cells,
        ax=ax,
        family_order=effects.family_order(cells["intermediate_family"], first=(analysis.a, analysis.b)),
    )
    return _figure(
        "seed_sd",
        "Standard deviation over seeds of each (intermediate, target, language) cell; bar: "
        "median per intermediate task.",
        "one",
        fig,
        synthetic,
    )


def make_figures(analysis, names: Names | None = None) -> dict[str, Figure]:
    """Forest plot, per-target heatmaps, variance components and seed sd; each only when its frame
    has rows. Synthetic data get the SYNTHETIC DATA tag in every figure; tasks and methods are
    labelled with their display ``names``."""
    import matplotlib.pyplot as plt

    names = names or Names()
    synthetic = analysis.synthetic
    a_label, b_label = names.family(analysis.a), names.family(analysis.b)
    with plt.rc_context(RC):
        figs = [
            _forest_figure(analysis, a_label, b_label, synthetic, names),
            _heatmap_figure(analysis, synthetic, names),
            _variance_figure(analysis, synthetic),
            _seed_sd_figure(analysis, synthetic),
        ]
    return {f.name: f for f in figs if f is not None}
