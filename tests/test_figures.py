"""Each plot returns an Axes with labelled axes, draws into a given Axes, and names missing columns."""

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from analysis.report import figures as F


def _forest():
    return pd.DataFrame(
        {
            "label": ["xnli", "a&b", "overall"],
            "estimate": [1.0, -0.5, 0.4],
            "ci_low": [0.2, -1.5, -0.1],
            "ci_high": [1.8, 0.5, 0.9],
            "bold": [False, False, True],
        }
    )


def _heat():
    return pd.DataFrame(
        [
            {"intermediate": name, "language": lang, "estimate": v}
            for i, name in enumerate(["mnli", "squad_v2"])
            for lang, v in zip(["de", "sw", "zh"], np.linspace(-2, 3, 3) * (i + 1))
        ]
    )


def _variance():
    return pd.DataFrame(
        {
            "component": ["intermediate", "seed", "Residual"],
            "variance": [1.0, 0.1, 2.0],
            "share": [1 / 3.1, 0.1 / 3.1, 2 / 3.1],
        }
    )


def _cells():
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "intermediate": ["none", "mnli", "squad_v2"] * 4,
            "intermediate_family": ["none", "nli", "qa"] * 4,
            "sd": rng.uniform(0, 2, 12),
        }
    )


CASES = [
    (F.plot_forest, _forest),
    (F.plot_delta_heatmap, _heat),
    (F.plot_variance_components, _variance),
    (F.plot_seed_sd, _cells),
]


@pytest.mark.parametrize("plot, data", CASES)
def test_plot_returns_labelled_axes(plot, data):
    ax = plot(data())
    assert isinstance(ax, matplotlib.axes.Axes)
    assert ax.get_xlabel() and ax.get_ylabel()
    plt.close(ax.figure)


@pytest.mark.parametrize("plot, data", CASES)
def test_plot_draws_into_the_given_axes(plot, data):
    fig, ax = plt.subplots(figsize=(F.ONE_COLUMN, 2.5))
    assert plot(data(), ax=ax) is ax
    assert ax.figure is fig
    plt.close(fig)


@pytest.mark.parametrize("plot", [p for p, _ in CASES])
def test_plot_names_missing_columns(plot):
    with pytest.raises(ValueError, match="needs columns"):
        plot(pd.DataFrame({"x": [1]}))


def test_delta_units_and_heatmap_centred_at_zero():
    ax = F.plot_delta_heatmap(_heat(), vmax=5.0)
    norm = ax.images[0].norm
    assert (norm.vcenter, norm.vmin, norm.vmax) == (0.0, -5.0, 5.0)
    assert "points" in ax.figure.axes[-1].get_xlabel()  # the colorbar (below the map) carries the unit
    assert "points" in F.plot_forest(_forest()).get_xlabel()
    plt.close("all")


def test_family_colours_are_stable_and_none_is_grey():
    colours = F.family_colours(["none", "nli", "qa", "nli"])
    assert colours == {"none": F.NONE_GREY, "nli": F.OKABE_ITO[0], "qa": F.OKABE_ITO[1]}


HINDI, TAMIL = "\u0939\u093f\u0928\u094d\u0926\u0940", "\u0ba4\u0bae\u0bbf\u0bb4\u0bcd"
HOSTILE = ["$x^$", "$\\frac{a}{$", "t" * 5000, HINDI, TAMIL, "a\x1b[2Jb", "[/bold]"]


def test_hostile_names_render_literally_and_distinctly():
    # issue 16: '$...$' broke mathtext, a 5000-character name overflowed the heatmap, Hindi and
    # Tamil names drew as the same boxes
    labels = [F.label(n) for n in HOSTILE]
    assert len(set(labels)) == len(labels)
    assert all(len(x) <= F.MAX_LABEL + 1 for x in labels)  # + the backslash of an escaped '$'
    assert labels[0] == r"\$x^\$" and "\x1b" not in labels[5]
    assert all(ord(ch) in F._glyphs() for x in labels for ch in x)
    heat = pd.DataFrame(
        {
            "intermediate": HOSTILE,
            "language": ["de"] * len(HOSTILE),
            "estimate": np.arange(len(HOSTILE), dtype=float),
        }
    )
    ax = F.plot_delta_heatmap(heat, title=HOSTILE[2])
    ax.figure.savefig(io.BytesIO(), format="png")  # a real render: mathtext parses every label here
    width_in = ax.figure.get_tightbbox().width
    assert width_in < F.TWO_COLUMN  # the 5000-character name no longer widens the figure
    shown = [t.get_text() for t in ax.get_yticklabels()]
    assert sorted(shown) == sorted(labels)
    plt.close(ax.figure)
