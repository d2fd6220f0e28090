"""Every bad input of the reliability review (issue 16) through the real command line: one clear
message, exit status 2, no traceback, nothing written where it should not be."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from xitt.cli import main

GRID = {
    "encoders": ["bert-base-multilingual-cased"],
    "intermediates": ["none", "mnli"],
    "targets": ["xnli"],
    "languages": {"xnli": ["en", "de"]},
    "seeds": [1],
}


def experiment(tmp_path, **over):
    folder = tmp_path / "runs" / "exp"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "grid.yaml").write_text(yaml.safe_dump({**GRID, **over}))
    return folder


def fails_cleanly(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and message in err, err
    return err


@pytest.mark.parametrize(
    ("over", "extra", "message"),
    [
        ({"train": [1, 2]}, [], "train must be a mapping"),
        ({"task_train": {"xnli": 5}}, [], "task_train.xnli must be a mapping"),
        ({}, ["--set", "train=5"], "train must be a mapping"),
        ({"languages": {"xnli": "de"}}, [], "languages.xnli must be a list"),
        ({"experiment": ["a", "b"]}, [], "cannot name folders"),
        ({"seeds": [-1]}, [], "from 0 to 2**32 - 1"),
        ({"train": {"lr": float("inf")}}, [], "train.lr = inf is outside its valid range"),
        ({"train": {"epochs": 1e12}}, [], "train.epochs"),
        (
            {"encoders": [{"name": "../../../../escaped_enc", "path": "bert-base-multilingual-cased"}]},
            [],
            "cannot",
        ),
        (
            {"intermediates": ["none", {"name": "../x", "tasks": ["mnli", "squad_v1"]}]},
            [],
            "cannot name folders",
        ),
    ],
)
def test_bad_grids_fail_before_anything_is_written(tmp_path, capsys, over, extra, message):
    exp = experiment(tmp_path, **over)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    for command in ("plan", "run"):
        fails_cleanly(capsys, [command, str(exp), *extra], message)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_slurm_off_a_cluster(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("xitt.cli.shutil.which", lambda name: None)
    fails_cleanly(capsys, ["run", str(experiment(tmp_path)), "--executor", "slurm"], "sbatch is not on PATH")


def test_a_contrast_of_one_family_with_itself(capsys):
    fails_cleanly(capsys, ["analyze", "runs/demo", "--a", "nli", "--b", "nli"], "--a and --b are both 'nli'")


def test_out_folders_and_unwritable_targets(tmp_path, capsys):
    scores = tmp_path / "s.csv"
    scores.write_text("encoder,intermediate,target,language,seed,score\nmbert,none,xnli,de,1,61\n")
    fails_cleanly(capsys, ["import", str(scores), "--out", str(tmp_path)], "is a folder; give a file path")
    fails_cleanly(capsys, ["collect", "runs/demo", "--out", str(tmp_path)], "is a folder; give a file path")
    blocker = tmp_path / "file"
    blocker.write_text("")
    fails_cleanly(capsys, ["import", str(scores), "--out", str(blocker / "x.csv")], f"cannot use {blocker}")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ([1, 2], "holds a list, not jiant's mapping"),
        ({"xnli_de": {"metrics": [0.5]}}, "jiant writes a mapping with 'major'"),
        ({"xnli_de": {"metrics": {"major": [0.5]}}}, "major is [0.5], not a number"),
        ({"xnli_de": {"metrics": {"major": 71.5}}}, "percentages already"),
    ],
)
def test_jiant_files_that_are_not_what_jiant_writes(tmp_path, capsys, content, message):
    run = tmp_path / "jiant" / "mbert" / "none" / "xnli" / "seed1"
    run.mkdir(parents=True)
    (run / "val_metrics.json").write_text(json.dumps(content))
    argv = ["import", str(tmp_path / "jiant"), "--format", "jiant", "--out", str(tmp_path / "o.csv")]
    fails_cleanly(capsys, argv, message)
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"", "is empty: a scores CSV starts with a header line"), (b"enc\xff,x\n1,2\n", "is not UTF-8 text")],
)
def test_unreadable_csv_files_name_the_file_and_the_fix(tmp_path, capsys, data, message):
    path = tmp_path / "in.csv"
    path.write_bytes(data)
    err = fails_cleanly(capsys, ["import", str(path), "--out", str(tmp_path / "o.csv")], message)
    assert str(path) in err


def test_a_pdflatex_failure_is_one_message(tmp_path, capsys, monkeypatch):
    import shutil as sh

    from analysis.report import render

    def broken(outdir, tex_name="report.tex"):
        raise render.PdfError("pdflatex failed on report.tex: ! Undefined control sequence.")

    monkeypatch.setattr(render, "compile_pdf", broken)
    monkeypatch.setattr(render.shutil, "which", lambda name: "/usr/bin/pdflatex")
    exp = tmp_path / "demo"
    sh.copytree("runs/demo", exp, ignore=sh.ignore_patterns("report", "analysis"))
    fails_cleanly(capsys, ["report", str(exp)], "Undefined control sequence")
    assert (exp / "report" / "report.html").is_file()  # what was written before stays


@pytest.mark.slow
def test_ctrl_c_exits_130_quietly_and_releases_claims(tiny_encoder, tiny_data, tmp_path):
    exp = tmp_path / "exp"
    exp.mkdir()
    doc = {
        "experiment": "exp",
        "encoders": [{"name": "tiny", "path": str(tiny_encoder)}],
        "intermediates": ["none", "tiny_nli"],
        "targets": ["tiny_cls", "tiny_ner"],
        "seeds": [1, 2],
        "data_dir": str(tiny_data),
        "train": {"epochs": 3},
    }
    (exp / "grid.yaml").write_text(yaml.safe_dump(doc))
    cmd = [sys.executable, "-m", "xitt.cli", "run", str(exp), "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not list(exp.rglob("claim")) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err and "interrupted" in err, err
    assert not list(exp.rglob("claim")), "a claim outlived Ctrl-C"
    assert os.path.isdir(exp)
