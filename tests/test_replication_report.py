"""The report's comparisons with Phang et al. 2020: the oracle, replication and example-level
sections appear in HTML, LaTeX and Markdown when the data supports them, and only then."""

import shutil

import numpy as np
import pandas as pd
import pytest

from analysis.pipeline import analyze
from analysis.report import render
from analysis.simulate import simulate_scores

NAMES = {"nli_1": "mnli", "nli_2": "anli", "qa_1": "squad_v2", "qa_2": "cosmosqa"}
TARGETS = {"target_1": "xnli", "target_2": "tydiqa"}


def _scores():
    scores = simulate_scores(
        np.random.default_rng(2), families={"nli": 2, "qa": 2}, n_targets=2, n_languages=3, n_seeds=4
    )
    scores["intermediate"] = scores["intermediate"].replace(NAMES)
    scores["target"] = scores["target"].replace(TARGETS)
    return scores


def _examples(scores):
    """200 accuracy examples per run and language whose mean is the run's score rounded to 0.5."""
    rng = np.random.default_rng(3)
    rows = []
    for (rid, lang), score in scores.set_index(["run_id", "language"])["score"].items():
        n = 200
        k = int(round(score / 100 * n))
        correct = np.r_[np.ones(k), np.zeros(n - k)][rng.permutation(n)]
        rows += [(rid, lang, "accuracy", j, c, 1.0) for j, c in enumerate(correct)]
    return pd.DataFrame(rows, columns=["run_id", "language", "metric", "example", "numerator", "denominator"])


def _dev(scores):
    runs = scores.drop_duplicates("run_id").copy()
    runs["language"], runs["score"] = "en", 50 + runs["score"] / 10
    return runs


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    scores = _scores()
    res = analyze(
        scores,
        rng=np.random.default_rng(0),
        n_boot=200,
        experiment="paper",
        synthetic=False,
        dev_scores=_dev(scores),
        examples=_examples(scores),
    )
    out = tmp_path_factory.mktemp("report")
    render.build_report(res, out, pdf=False, formats=("md",))
    return res, out


def test_sections_render_in_html_latex_and_markdown(built):
    res, out = built
    html, tex = (out / "report.html").read_text(), (out / "report.tex").read_text()
    for title in (
        "Best intermediate per target (oracle)",
        "Replication of Phang et al. 2020",
        "Example-level uncertainty",
    ):
        assert title in html and title in tex
    for key in ("oracle", "oracle_choices", "replication", "example_widths", "example_level"):
        assert (out / "tables" / f"{key}.tex").is_file() and (out / "tables" / f"{key}.md").is_file()
    md = (out / "tables" / "replication.md").read_text()
    assert "8.2" in md and "not testable" in md and "Synthetic comparison" not in md
    assert set(res.frames.oracle["method"]) == {"naive", "held-out seeds", "English dev, held-out seeds"}


def test_example_estimates_are_the_main_table_deltas(built):
    res, _ = built
    f = res.frames.example_level.set_index(["target", "intermediate"])
    main = res.frames.main_table.set_index(["target", "intermediate"])
    for key, row in f.iterrows():
        assert row["estimate"] == pytest.approx(main.loc[key, "delta"], abs=0.5)  # examples round to 1/200


def test_sections_are_left_out_without_their_data_and_marked_synthetic(tmp_path):
    synth = analyze(_scores(), rng=np.random.default_rng(0), n_boot=100, experiment="demo", synthetic=True)
    assert synth.frames.example_level.empty and not synth.frames.replication.empty
    render.build_report(synth, tmp_path, pdf=False, formats=("md",))
    html = (tmp_path / "report.html").read_text()
    assert "Example-level uncertainty" not in html and "SYNTHETIC COMPARISON" in html
    assert "Synthetic comparison" in (tmp_path / "tables" / "replication.md").read_text()


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="needs pdflatex")
def test_the_sections_compile_to_pdf(built, tmp_path):
    res, _ = built
    files = render.build_report(res, tmp_path, pdf=True)
    assert files["pdf"].stat().st_size > 0


def test_the_committed_demo_supports_all_three_sections():
    # runs/demo saves predictions and has the three alternatives: `make report` shows every section.
    from pathlib import Path

    from analysis import effects
    from analysis.load import validate
    from analysis.paper import paper_frames
    from xitt.schema import read_examples, read_scores

    demo = Path(__file__).resolve().parents[1] / "runs" / "demo"
    prim = validate(read_scores(demo / "scores.csv")).scores
    caveats = []
    frames = paper_frames(
        prim,
        effects.deltas(prim),
        rng=np.random.default_rng(0),
        synthetic=True,
        caveats=caveats,
        dev_scores=read_scores(demo / "dev_scores.csv"),
        examples=read_examples(demo / "examples.csv.gz"),
        n_boot=200,
    )
    assert not caveats and all(len(frames[k]) for k in ("oracle", "replication", "example_level"))
    testable = frames["replication"].set_index("claim")["verdict"] != "not testable"
    assert testable[["2a", "2b", "6a", "6b"]].all()  # the demo's all-tasks, +MLM and translated conditions
    assert frames["replication"]["synthetic"].all()
