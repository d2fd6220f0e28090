"""Issue 16.7: names that broke or silently changed the report, through a real matplotlib render
and a real pdflatex compile (pdftotext reads the PDF back).

`xitt import` brings arbitrary names into scores.csv (grid names are checked at parse time by
xitt.schema.name_problem); the report must show them as typed (HTML) or as distinct Latin
readings (PDF), never lose or merge them.
"""

import re
import shutil
import subprocess

import numpy as np
import pytest

from analysis.pipeline import analyze
from analysis.report.formatting import shorten
from analysis.report.render import build_report
from analysis.simulate import simulate_scores

HINDI, TAMIL = "\u0939\u093f\u0928\u094d\u0926\u0940", "\u0ba4\u0bae\u0bbf\u0bb4\u0bcd"
LONG = "long_" + "".join(f"{i:04d}abcdef" for i in range(500))  # 5005 characters, every chunk unique
RENAME = {
    "intermediate": {"nli_1": "[/bold]", "nli_2": "[5pt]hidden", "qa_1": "$x^2$ qa", "qa_2": LONG},
    "target": {"target_1": HINDI, "target_2": TAMIL},
    "language": {"l01": "de\x1b[2J", "l02": "sw\x00", "l03": "*zh"},
}

needs_tex = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("pdflatex", "pdftotext")), reason="needs pdflatex and pdftotext"
)


def _hostile_scores():
    frame = simulate_scores(
        np.random.default_rng(7), families={"nli": 2, "qa": 2}, n_targets=2, n_languages=3, n_seeds=2
    )
    for column, mapping in RENAME.items():
        frame[column] = frame[column].replace(mapping)
    return frame


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("hostile") / "report"
    analysis = analyze(_hostile_scores(), rng=np.random.default_rng(0), n_boot=200, experiment="hostile")
    analysis.caveats.append("caveat on \x1b[2Jtask\x00 x")  # as a warning quoting a name would
    analysis.caveats.append(f"cells are missing: enc/{LONG}/de")  # a 5000-character word in a paragraph
    paths = build_report(analysis, out, pdf=True)
    return out, paths


@pytest.mark.slow
@needs_tex
def test_the_pdf_shows_every_name_distinctly(report):
    out, paths = report
    assert "pdf" in paths, "pdflatex did not produce report.pdf"
    text = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(paths["pdf"]), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "[/bold]" in text and "[5pt]hidden" in text  # not an optional argument of \\
    assert "$x" in text and "2$ qa" in text  # dollars literal, not math
    hindi, tamil = "hindii(aa80)", "tamilll(b9f7)"  # formatting._latin_run
    assert hindi in text and tamil in text and "??????" not in text
    head, tail = shorten(LONG).split("\u2026")
    assert head in text and tail in text  # tables: the short form (pdflatex's ellipsis reads '. . .')...
    flat = re.sub(r"\s+", "", text)
    chunks = [LONG[i : i + 72] for i in range(0, len(LONG), 72)]
    assert all(c in flat for c in chunks)  # ...provenance: every piece of the full name
    assert "*zh" in text and "de[2J" in text and "caveat on [2Jtask x" in text
    assert "mixed model of the replication units" in text  # method names are not names to cut
    tex = paths["tex"].read_text()
    assert "enc/long\\_0000abcdef0\\allowbreak{}001" in tex  # the long word may break across lines
    assert "\x1b" not in tex and "\x00" not in tex


@pytest.mark.slow
def test_the_figures_render_and_the_html_keeps_unicode(report):
    out, paths = report
    figures = sorted(p.name for p in (out / "figures").iterdir())
    assert {"forest.pdf", "forest.png", "heatmap.pdf", "heatmap.png"} <= set(figures)
    assert all((out / "figures" / f).stat().st_size > 1000 for f in figures)
    html = paths["html"].read_text()
    assert HINDI in html and TAMIL in html  # the real names, not their Latin reading
    assert "\x1b" not in html and "\x00" not in html
    assert "caveat on [2Jtask x" in html  # control characters dropped, the text kept


def test_a_render_failure_writes_nothing(tmp_path, monkeypatch):
    # issue 16: a figure error left empty figures/ and tables/ folders (and the old report gone)
    from analysis.report import render

    analysis = analyze(_hostile_scores(), rng=np.random.default_rng(0), n_boot=50, experiment="hostile")
    out = tmp_path / "report"
    out.mkdir()
    (out / "report.html").write_text("the previous report")

    def fail(*args, **kwargs):
        raise ValueError("a figure failed")

    monkeypatch.setattr(render, "make_figures", fail)
    with pytest.raises(ValueError, match="a figure failed"):
        build_report(analysis, out, pdf=False)
    assert sorted(p.name for p in out.iterdir()) == ["report.html"]
    assert (out / "report.html").read_text() == "the previous report"
