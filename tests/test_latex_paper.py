"""tables/*.tex dropped into a paper unchanged: a plain article and a two-column (ACL-sized) paper.

Each table is compiled with the one documented preamble line (render.PREAMBLE), then measured in
the PDF: no overfull box, every word inside the text block, and no table text smaller than the
body size minus 1 pt (9 pt in a 10 pt paper; \\footnotesize would be 8 pt). Figures embed only
TrueType (Type 42) fonts, which venue checkers accept (Type 3 they reject).
"""

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from analysis.pipeline import analyze
from analysis.report import render
from analysis.simulate import simulate_scores

TOOLS = ("pdflatex", "pdftotext", "pdffonts")
pytestmark = pytest.mark.skipif(
    any(shutil.which(t) is None for t in TOOLS), reason=f"needs {', '.join(TOOLS)} (TeX Live, poppler-utils)"
)
# The ACL style's page: 16 cm text width in two 7.7 cm columns (acl.sty: \textwidth 16cm,
# \columnsep 0.6cm); the plain article keeps its own 345 pt text width.
CLASSES = {
    "one": "\\documentclass[10pt]{article}\n",
    "two": "\\documentclass[10pt,twocolumn]{article}\n\\usepackage[textwidth=16cm,columnsep=0.6cm]{geometry}\n",
}
BODY = "Bodytext " + "words of the paper that set the body size and the text block. " * 30


@pytest.fixture(scope="module")
def xtreme_r_sized():
    """A 10-target, 8-language, 6-intermediate grid: as wide as a real XTREME-R main table."""
    scores = simulate_scores(
        np.random.default_rng(3), families={"nli": 2, "qa": 4}, n_targets=10, n_languages=8, n_seeds=3
    )
    return analyze(scores, rng=np.random.default_rng(3), n_boot=200, experiment="xtreme-r")


def _words(pdf: Path) -> list[tuple[int, float, float, float, str]]:
    """(page, xMax, height, xMin, word) of every word, from pdftotext -bbox."""
    html = subprocess.run(
        ["pdftotext", "-bbox", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    words, page = [], 0
    for line in html.splitlines():
        if "<page" in line:
            page += 1
        m = re.search(r'xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)<', line)
        if m:
            x0, y0, x1, y1 = map(float, m.groups()[:4])
            words.append((page, x1, y1 - y0, x0, m.group(5)))
    return words


def _paper(folder: Path, layout: str, table_keys: list[str]) -> tuple[Path, str]:
    body = "\n".join(f"\\input{{tables/{key}}}\n\\clearpage" for key in table_keys)
    first_page = BODY if layout == "one" else BODY + "\n\\newpage\n" + BODY  # two columns: fill both
    tex = CLASSES[layout] + render.PREAMBLE + "\n\\begin{document}\n" + first_page + "\n\\clearpage\n" + body
    (folder / "paper.tex").write_text(tex + "\n\\end{document}\n")
    proc = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "paper.tex"],
        cwd=folder,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    return folder / "paper.pdf", (folder / "paper.log").read_text(errors="replace")


@pytest.mark.parametrize("layout", ["one", "two"])
def test_tables_drop_into_a_paper_unscaled_and_inside_the_text_block(tmp_path, xtreme_r_sized, layout):
    files = render.build_report(xtreme_r_sized, tmp_path, pdf=False, layout_name=layout)
    keys = sorted(k.split("/")[1] for k in files if k.startswith("tables/") and "." not in k.split("/")[1])
    assert {"main_table", "per_target", "contrast", "seed_plan"} <= set(keys)
    for key in keys:
        text = (tmp_path / "tables" / f"{key}.tex").read_text()
        assert "resizebox" not in text and "scalebox" not in text and "\\tiny" not in text, key
    pdf, log = _paper(tmp_path, layout, keys)
    assert "Overfull \\hbox" not in log, re.findall(r"Overfull \\hbox.*", log)[:3]
    words = _words(pdf)
    body = [w for w in words if w[0] == 1]
    body_height = float(np.median([w[2] for w in body]))
    right_edge = max(w[1] for w in body)
    left_edge = min(w[3] for w in body)
    tables = [w for w in words if w[0] > 1]
    assert len({w[0] for w in tables}) == len(keys)  # one page per table: nothing went missing
    smallest = min(w[2] for w in tables)
    assert smallest >= 0.88 * body_height, (smallest, body_height)  # \small = 9/10 of the body
    assert max(w[1] for w in tables) <= right_edge + 1.0 and min(w[3] for w in tables) >= left_edge - 1.0


def test_two_column_layout_picks_table_star_and_splits_what_is_too_wide(tmp_path, xtreme_r_sized):
    ctx = render.build_context(xtreme_r_sized, {}, {}, layout_name="two")
    by_key = {t.key: t for t in ctx.tables}
    main = by_key["main_table"]
    assert main.env == "table*" and len(main.parts) >= 2  # 11 score columns: split, never shrunk
    assert all(part[:2] == [0, 1] for part in main.parts)  # row labels repeat in every part
    assert sorted(j for part in main.parts for j in part[2:]) == list(range(2, len(main.columns)))
    assert by_key["language_wins"].env == "table"  # narrow tables stay in one column
    one = {t.key: t for t in render.build_context(xtreme_r_sized, {}, {}, layout_name="one").tables}
    assert one["main_table"].env == "table" and len(one["main_table"].parts) >= 3


def test_labels_are_prefixed_with_the_experiment(tmp_path, xtreme_r_sized):
    files = render.build_report(xtreme_r_sized, tmp_path, pdf=False)
    text = files["tables/contrast"].read_text()
    assert "\\label{tab:xtreme-r-contrast}" in text and "\\label{tab:contrast}" not in text


def test_figures_embed_truetype_fonts_only(tmp_path, xtreme_r_sized):
    files = render.build_report(xtreme_r_sized, tmp_path, pdf=False)
    pdfs = [p for k, p in files.items() if k.startswith("figures/") and k.endswith(".pdf")]
    assert len(pdfs) == 4
    for pdf in pdfs:
        out = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True).stdout
        types = [line[37:54].strip() for line in out.splitlines()[2:]]
        assert types and all("TrueType" in t for t in types), (pdf.name, out)
