"""Issue 16.12: a scores.csv on the 0-1 scale is analysed with a warning, on the terminal and in the report."""

import re

import numpy as np
import pytest

from analysis.load import scale_warnings, validate
from analysis.simulate import simulate_scores
from xitt.cli import main


def _scores(scale: float = 1.0):
    frame = simulate_scores(np.random.default_rng(0), n_targets=2, n_languages=3, n_seeds=2)
    frame["target"] = frame["target"].replace({"target_1": "xnli"})  # a target with a chance level (33.3)
    return frame.assign(score=frame["score"] * scale)


def test_fractions_warn_and_points_do_not():
    assert scale_warnings(_scores()) == []
    v = validate(_scores(0.01), chance={"xnli": 100 / 3})
    assert len(v.warnings) == 1 and "within [0, 1]" in v.warnings[0] and "'accuracy'" in v.warnings[0]
    assert v.degenerate.empty  # chance levels on 0-100 would have dropped every run
    zeros = _scores().assign(score=0.0)
    assert scale_warnings(zeros) == []  # all-zero runs are the degenerate check's business


@pytest.mark.slow
def test_the_warning_reaches_the_terminal_and_the_report(tmp_path, capsys):
    exp = tmp_path / "runs" / "frac"
    exp.mkdir(parents=True)
    _scores(0.01).to_csv(exp / "scores.csv", index=False)
    assert main(["analyze", str(exp), "--n-boot", "200"]) == 0
    terminal = re.sub(r"\s+", " ", capsys.readouterr().out)
    assert "lie within [0, 1]" in terminal and "--scale 100" in terminal
    assert main(["report", str(exp), "--n-boot", "200", "--no-pdf"]) == 0
    html = re.sub(r"\s+", " ", (exp / "report" / "report.html").read_text())
    assert "lie within [0, 1]" in html
