"""The report: escaping of user strings in HTML and LaTeX, self-contained HTML, the PDF, Chromium."""

import dataclasses
import functools
import re
import shutil
import subprocess

import numpy as np
import pytest

from analysis.pipeline import analyze
from analysis.report import browser
from analysis.report import formatting as fmt
from analysis.report import render as report
from analysis.report import tables as T
from analysis.simulate import simulate_scores

HOSTILE_TASKS = ["<script>alert(1)</script>", "mnli", "squad_v2", "a&b"]  # 2 NLI, then 2 QA
HOSTILE_TARGETS = ["xnli", "x%q#d"]
HOSTILE_LANGUAGES = ["de", "sw_{x}", "zh"]


def hostile_scores(encoder="enc~1"):
    """A small simulated grid (analysis.simulate) whose names are hostile to HTML and LaTeX."""
    scores = simulate_scores(
        np.random.default_rng(11),
        families={"nli": 2, "qa": 2},
        n_targets=2,
        n_languages=3,
        n_seeds=3,
        encoder=encoder,
    )
    renames = {
        "intermediate": dict(zip(sorted(set(scores.intermediate) - {"none"}), HOSTILE_TASKS)),
        "target": dict(zip(sorted(set(scores.target)), HOSTILE_TARGETS)),
        "language": dict(zip(sorted(set(scores.language)), HOSTILE_LANGUAGES)),
    }
    for column, mapping in renames.items():
        scores[column] = scores[column].replace(mapping)
    return scores


@functools.cache
def real_analysis(synthetic=True):
    """The report's input as the pipeline makes it: analyze() on the hostile simulated grid."""
    return analyze(
        hostile_scores(),
        rng=np.random.default_rng(11),
        n_boot=200,
        experiment="demo_<b>&co",
        seed=11,
        synthetic=synthetic,
    )


PROVENANCE = {
    "experiment": "demo",
    "analysis_seed": 7,
    "report_git_sha": "deadbeef",
    "grid_text": (
        "intermediates: [squad_v2, a&b]\ntargets:\n  - x%q#d\n# made by: xitt synth --out data/s 'q' `x` \"y\"\n"
    ),
    "run_counts": {"done": 12},
    "failures": [{"run_id": "enc__a&b__s1", "state": "failed", "detail": "{oops} 100% ~"}],
    "packages": {"torch": "2.13.0"},
}


def test_html_is_escaped_and_self_contained():
    ctx = report.build_context(real_analysis(), {}, PROVENANCE)
    html = report.render_html(ctx)
    assert "<script" not in html.lower()  # neither the hostile name nor any JavaScript of ours
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "a&amp;b" in html and "squad_v2" in html and "x%q#d" in html and "demo_&lt;b&gt;&amp;co" in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # nothing fetched from the network
    assert (
        html.index('id="answer"')
        < html.index('id="main"')
        < html.index('id="targets"')
        < html.index('id="seeds"')
        < html.index('id="provenance"')
    )
    assert "SYNTHETIC DATA" in html and 'href="#main"' in html  # label and table of contents


def test_latex_tables_escape_every_user_string():
    ctx = report.build_context(real_analysis(), {}, PROVENANCE)
    main, tables = report.render_tex(ctx)
    text = main + "".join(tables.values())
    for raw in ("squad_v2", "a&b", "x%q#d", "sw_{x}", "enc~1", "{oops} 100% ~"):
        assert raw not in text.replace(r"\_", "").replace(r"\&", "")
    assert r"squad\_v2" in text and r"a\&b" in text and r"x\%q\#d" in text
    assert r"\textless{}script\textgreater{}" in text
    assert "\\input{tables/main_table}" in main and "\\toprule" in tables["main_table"]
    assert tables["main_table"].lstrip().startswith("% xitt table")


def test_main_table_layout():
    analysis = real_analysis()
    (table,) = T.main_tables(analysis, T.Options())
    names = [row[0].text for row in table.rows]
    assert (
        names[0] == "none"
        and set(names[1:3]) == set(HOSTILE_TASKS[:2])
        and set(names[3:]) == set(HOSTILE_TASKS[2:])
    )
    assert table.columns[-1] == "avg" and table.rules == [1, 3]
    mt = analysis.frames.main_table.set_index(["intermediate", "target"])
    for j, target in enumerate(table.columns[2:], start=2):  # exactly one bold (best) cell per column
        assert sum(row[j].bold for row in table.rows) == 1
        for row in table.rows[1:]:  # each delta carries the marks of its Holm-adjusted p
            marks = fmt.sig_marks(mt.loc[(row[0].text, target), "p_adj"])
            assert row[j].sub.startswith("\u0394 ") and len(row[j].sub) - len(row[j].sub.rstrip("*")) == len(
                marks
            )
    assert table.rows[0][2].sub == ""  # no delta for the baseline itself


def test_build_report_writes_files_without_pdf(tmp_path):
    files = report.build_report(real_analysis(), tmp_path, provenance=PROVENANCE, pdf=False)
    for key in (
        "html",
        "tex",
        "tables/main_table",
        "tables/per_target",
        "figures/forest.pdf",
        "figures/heatmap.png",
    ):
        assert files[key].exists(), key
    html = files["html"].read_text()
    assert html.count("data:image/png;base64,") == len([k for k in files if k.endswith(".png")])
    assert "pdf" not in files and not (tmp_path / "report.pdf").exists()


@pytest.mark.skipif(
    shutil.which("pdflatex") is None or shutil.which("pdftotext") is None,
    reason="needs pdflatex and pdftotext",
)
def test_pdf_compiles_and_contains_the_names(tmp_path):
    files = report.build_report(real_analysis(), tmp_path, provenance=PROVENANCE)
    assert files["pdf"].stat().st_size > 10_000
    assert not list(tmp_path.glob("*.aux")) and not list(tmp_path.glob("*.log"))
    text = subprocess.run(
        ["pdftotext", str(files["pdf"]), "-"], capture_output=True, text=True, check=True
    ).stdout
    for name in ("squad_v2", "a&b", "<script>alert(1)</script>", "x%q#d", "SYNTHETIC DATA", "Contents"):
        assert name in text, name
    # commands copied from the PDF run: no en dash for --, no curly quotes
    assert "xitt synth --out data/s 'q' `x` \"y\"" in text


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="needs pdflatex (TeX Live)")
def test_pdf_failure_names_the_error(tmp_path):
    (tmp_path / "report.tex").write_text(
        "\\documentclass{article}\\begin{document}\\undefinedmacro\\end{document}"
    )
    with pytest.raises(report.PdfError, match="Undefined control sequence"):
        report.compile_pdf(tmp_path)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian chromium")
def test_html_renders_in_headless_chromium(tmp_path):
    files = report.build_report(real_analysis(), tmp_path / "report", provenance=PROVENANCE, pdf=False)
    shot = tmp_path / "report" / "screenshot.png"
    errors = browser.screenshot_html(files["html"], shot)
    assert errors == []
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian chromium")
def test_shipped_demo_report_renders_in_headless_chromium():
    """`xitt report runs/demo` as `make report` runs it; the screenshot stays in runs/demo/report/
    (git-ignored) as the CI artifact a person looks at."""
    from pathlib import Path

    from xitt.cli import main

    demo = Path(__file__).resolve().parents[1] / "runs" / "demo"
    assert main(["report", str(demo), "--no-pdf"]) == 0
    shot = demo / "report" / "screenshot.png"
    assert browser.screenshot_html(demo / "report" / "report.html", shot, size="1280,6000") == []
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 100_000
    html = (demo / "report" / "report.html").read_text(encoding="utf-8")
    assert "SYNTHETIC DATA" in html and html.count("data:image/png;base64,") >= 4


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian chromium")
def test_html_fits_a_laptop_and_stays_readable_on_a_phone(tmp_path):
    """XTREME-R-sized (10 targets, 8 languages): no horizontal page scroll at 1280 or 390 px, no
    table scrolling in its box at 1280 px, figure text never below 8 CSS px (a 7 pt label shown
    at its natural size is 9.3 px; the old full-width heatmap was shrunk to about 3 px)."""
    scores = simulate_scores(
        np.random.default_rng(3), families={"nli": 2, "qa": 4}, n_targets=10, n_languages=8, encoder="synth-x"
    )
    analysis = analyze(scores, rng=np.random.default_rng(3), n_boot=200, experiment="wide")
    files = report.build_report(analysis, tmp_path, provenance=PROVENANCE, pdf=False)
    laptop = browser.measure_layout(files["html"], width=1280)
    phone = browser.measure_layout(files["html"], width=390)
    for m in (laptop, phone):
        assert m["scroll_width"] <= m["viewport"], m
        assert len(m["figures"]) == 4 and min(f["min_text_px"] for f in m["figures"]) >= 8.0, m["figures"]
    assert laptop["tables_scrolling"] == [], laptop
    assert phone["viewport"] == 390
    shot = tmp_path / "phone.png"
    assert browser.screenshot_html(files["html"], shot, size="1280,3000") == []


def test_real_data_has_no_synthetic_label_unless_the_grid_says_so():
    plain = analyze(
        hostile_scores(encoder="xlmr"), rng=np.random.default_rng(0), n_boot=100, experiment="real"
    )
    assert not plain.synthetic
    assert "SYNTHETIC" not in report.render_html(report.build_context(plain, {}, {}))
    flagged = analyze(
        hostile_scores(encoder="xlmr"), rng=np.random.default_rng(0), n_boot=100, synthetic=True
    )
    assert "SYNTHETIC DATA" in report.render_html(report.build_context(flagged, {}, {}))


def test_every_frame_is_read_under_its_contract_name():
    """A frame renamed or a documented column dropped in the pipeline fails here, not in silence."""
    analysis = real_analysis()
    with pytest.raises(ValueError, match="per_target lacks its documented columns"):
        dataclasses.replace(analysis.frames, per_target=analysis.frames.per_target.drop(columns="p_adj"))
    ctx = report.build_context(analysis, {}, PROVENANCE)
    keys = {t.key for t in ctx.tables}
    assert {
        "contrast",
        "main_table",
        "per_target",
        "language_wins",
        "variance_components",
        "seed_plan",
    } <= keys


def test_a_small_heatmap_keeps_the_colour_bar_label_clear_of_the_synthetic_tag(monkeypatch):
    """One target, 2 x 3 cells: the colour-bar label used to run past the figure into the tag."""
    from analysis.report import report_figures

    scores = simulate_scores(
        np.random.default_rng(1), families={"nli": 1, "qa": 1}, n_targets=1, n_languages=3, encoder="synth-x"
    )
    analysis = analyze(scores, rng=np.random.default_rng(1), n_boot=100)
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    boxes = []
    render = report_figures._render

    def spy(fig, synthetic):
        out = render(fig, synthetic)  # adds the tag, saves, closes
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        renderer = canvas.get_renderer()
        bar = fig.axes[-1]
        label = bar.xaxis.label if bar.xaxis.label.get_text() else bar.yaxis.label
        boxes.append(
            (
                label.get_text(),
                label.get_window_extent(renderer),
                fig._suptitle.get_window_extent(renderer),
                fig.bbox,
            )
        )
        return out

    monkeypatch.setattr(report_figures, "_render", spy)
    figures = report_figures.make_figures(analysis)
    text, label, tag, page = boxes[list(figures).index("heatmap")]
    assert "points" in text  # the colour bar's label
    assert not label.overlaps(tag)
    assert page.x0 - 1 <= label.x0 and label.x1 <= page.x1 + 1  # inside the figure's width
