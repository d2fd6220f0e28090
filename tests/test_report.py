"""The report: escaping of user strings in HTML and LaTeX, self-contained HTML, the PDF, Chromium."""

import re
import shutil
import subprocess
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from analysis.report import render as report

EVIL = {"nli": ["<script>alert(1)</script>", "mnli"], "qa": ["squad_v2", "a&b"]}
TARGETS = ["xnli", "x%q#d"]
LANGS = ["de", "sw_{x}", "zh"]


def handmade_analysis(synthetic=True):
    """A small Analysis-shaped object with hostile names, independent of analysis.pipeline."""
    rng = np.random.default_rng(0)
    fams = {"none": "none", **{n: f for f, names in EVIL.items() for n in names}}
    cells = pd.DataFrame(
        [
            {
                "encoder": "enc~1",
                "intermediate": i,
                "intermediate_family": f,
                "target": t,
                "language": lang,
                "mean": 60 + rng.normal(),
                "sd": abs(rng.normal()),
                "n": 3,
            }
            for i, f in fams.items()
            for t in TARGETS
            for lang in LANGS
        ]
    )
    main = pd.DataFrame(
        [
            {
                "encoder": "enc~1",
                "intermediate": i,
                "intermediate_family": f,
                "target": t,
                "mean": 60 + rng.normal(),
                "sd": 1.0,
                "n": 3,
                "delta": np.nan if f == "none" else rng.normal(),
                "p_adj": np.nan if f == "none" else 0.004,
            }
            for i, f in fams.items()
            for t in [*TARGETS, "avg"]
        ]
    )
    deltas = pd.DataFrame(
        [
            {
                "encoder": "enc~1",
                "intermediate": i,
                "intermediate_family": f,
                "target": t,
                "language": lang,
                "seed": s,
                "delta": rng.normal(),
            }
            for i, f in fams.items()
            if f != "none"
            for t in TARGETS
            for lang in LANGS
            for s in range(2)
        ]
    )
    per_target = pd.DataFrame(
        {
            "target": TARGETS,
            "estimate": [1.2, -0.4],
            "ci_low": [0.1, -2.0],
            "ci_high": [2.3, 1.2],
            "se": 0.5,
            "df": [2.2, 3.1],
            "p_value": [0.04, 0.5],
            "p_adj": [0.08, 0.5],
            "p_adj_bh": [0.08, 0.5],
            "n": 3,
            "wins": [2, 1],
        }
    )
    contrast = pd.DataFrame(
        {
            "method": ["mixed", "sign_flip"],
            "estimate": [0.8, 0.8],
            "ci_low": [-0.1, np.nan],
            "ci_high": [1.7, np.nan],
            "df": [2.4, np.nan],
            "p_value": [0.07, 0.03],
        }
    )
    variance = pd.DataFrame(
        {
            "component": ["intermediate", "seed", "Residual"],
            "variance": [1.0, 0.1, 2.0],
            "sd": [1.0, 0.32, 1.41],
            "share": [0.32, 0.03, 0.65],
        }
    )
    plan = pd.DataFrame({"n_seeds": [1, 5], "half_width": [3.1, 2.9], "meets_goal": [False, False]})
    answer = {
        "estimate": 0.8,
        "ci_low": -0.1,
        "ci_high": 1.7,
        "df": 2.4,
        "p_value": 0.07,
        "k_hat": 2,
        "n_languages": 6,
        "method": "mixed model",
        "a": "nli",
        "b": "qa",
        "sentence": "NLI beats QA (incl. <script>alert(1)</script> & squad_v2) by 0.8 points.",
    }
    frames = {
        "cell_stats": cells,
        "main_table": main,
        "deltas": deltas,
        "per_target": per_target,
        "contrast": contrast,
        "variance_components": variance,
        "seed_plan": plan,
    }
    return SimpleNamespace(
        experiment="demo_<b>&co",
        synthetic=synthetic,
        answer=answer,
        caveats=["Only 2 tasks per family: a&b, squad_v2 (few df)."],
        frames=frames,
        settings={"seed": 7, "n_boot": 200, "versions": {"numpy": np.__version__}},
    )


PROVENANCE = {
    "experiment": "demo",
    "analysis_seed": 7,
    "report_git_sha": "deadbeef",
    "grid_text": "intermediates: [squad_v2, a&b]\ntargets:\n  - x%q#d\n",
    "run_counts": {"done": 12},
    "failures": [{"run_id": "enc__a&b__s1", "state": "failed", "detail": "{oops} 100% ~"}],
    "packages": {"torch": "2.13.0"},
}


def test_html_is_escaped_and_self_contained():
    ctx = report.build_context(handmade_analysis(), {}, PROVENANCE)
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
    ctx = report.build_context(handmade_analysis(), {}, PROVENANCE)
    main, tables = report.render_tex(ctx)
    text = main + "".join(tables.values())
    for raw in ("squad_v2", "a&b", "x%q#d", "sw_{x}", "enc~1", "{oops} 100% ~"):
        assert raw not in text.replace(r"\_", "").replace(r"\&", "")
    assert r"squad\_v2" in text and r"a\&b" in text and r"x\%q\#d" in text
    assert r"\textless{}script\textgreater{}" in text
    assert "\\input{tables/main_table}" in main and "\\toprule" in tables["main_table"]
    assert tables["main_table"].lstrip().startswith("% xitt table")


def test_main_table_layout():
    (table,) = report.T.main_tables(handmade_analysis(), synthetic=False)
    names = [row[0].text for row in table.rows]
    assert names[0] == "none" and set(names[1:3]) == set(EVIL["nli"]) and set(names[3:]) == set(EVIL["qa"])
    assert table.columns[-1] == "avg" and table.rules == [1, 3]
    for j in range(2, len(table.columns)):  # exactly one bold (best) cell per target column
        assert sum(row[j].bold for row in table.rows) == 1
    assert table.rows[1][2].sub.endswith("**")  # Holm-adjusted p = 0.004
    assert table.rows[0][2].sub == ""  # no delta for the baseline itself


def test_build_report_writes_files_without_pdf(tmp_path):
    files = report.build_report(handmade_analysis(), tmp_path, provenance=PROVENANCE, pdf=False)
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


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="needs pdflatex (TeX Live)")
def test_pdf_compiles_and_contains_the_names(tmp_path):
    files = report.build_report(handmade_analysis(), tmp_path, provenance=PROVENANCE)
    assert files["pdf"].stat().st_size > 10_000
    assert not list(tmp_path.glob("*.aux")) and not list(tmp_path.glob("*.log"))
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) missing: compiled, text not checked")
    text = subprocess.run(
        ["pdftotext", str(files["pdf"]), "-"], capture_output=True, text=True, check=True
    ).stdout
    for name in ("squad_v2", "a&b", "<script>alert(1)</script>", "x%q#d", "SYNTHETIC DATA", "Contents"):
        assert name in text, name


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="needs pdflatex (TeX Live)")
def test_pdf_failure_names_the_error(tmp_path):
    (tmp_path / "report.tex").write_text(
        "\\documentclass{article}\\begin{document}\\undefinedmacro\\end{document}"
    )
    with pytest.raises(RuntimeError, match="Undefined control sequence"):
        report.compile_pdf(tmp_path)


def _simulated_analysis():
    pipeline = pytest.importorskip("analysis.pipeline")
    simulate = pytest.importorskip("analysis.simulate")
    rng = np.random.default_rng(11)
    scores = simulate.simulate_scores(
        rng, families={"nli": 2, "qa": 2}, n_targets=2, n_languages=4, n_seeds=3
    )
    rename = dict(zip(sorted(set(scores.intermediate) - {"none"}), ["<script>", "nli_b", "squad_v2", "a&b"]))
    scores["intermediate"] = scores["intermediate"].replace(rename)
    return pipeline.analyze(scores, rng=rng, n_boot=200, experiment="sim&<x>", seed=11)


def test_report_from_a_simulated_analysis(tmp_path):
    analysis = _simulated_analysis()
    files = report.build_report(analysis, tmp_path, provenance={"analysis_seed": 11}, pdf=False)
    html = files["html"].read_text()
    assert "&lt;script&gt;" in html and "a&amp;b" in html and "<script>" not in html
    tex = "".join(p.read_text() for k, p in files.items() if k.startswith("tables/"))
    assert r"squad\_v2" in tex and r"a\&b" in tex


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian chromium")
def test_html_renders_in_headless_chromium(tmp_path):
    files = report.build_report(handmade_analysis(), tmp_path / "report", provenance=PROVENANCE, pdf=False)
    shot = tmp_path / "report" / "screenshot.png"
    errors = report.screenshot_html(files["html"], shot)
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
    assert report.screenshot_html(demo / "report" / "report.html", shot, size="1280,6000") == []
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 100_000
    html = (demo / "report" / "report.html").read_text(encoding="utf-8")
    assert "SYNTHETIC DATA" in html and html.count("data:image/png;base64,") >= 4


def test_real_data_has_no_synthetic_label_unless_the_grid_says_so():
    analysis = handmade_analysis(synthetic=False)
    assert "SYNTHETIC" not in report.render_html(report.build_context(analysis, {}, {}))
    assert "SYNTHETIC DATA" in report.render_html(report.build_context(analysis, {}, {"synthetic": True}))
