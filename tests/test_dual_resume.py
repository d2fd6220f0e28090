"""Preemption of a dual-encoder run (Mewsli-X/LAReQA, ``retrieval_training: dual``): stopped by
SIGTERM mid-training, started again, it resumes at the saved step and records bit-identical scores
(one thread, fp32, CPU); periodic saves change nothing; the state is removed when the run is done."""

import json
import os
import signal

import pytest
import torch
from test_dual import _toy_data

from xitt.run.preempt import Preempted, catch_preemption

# 12 toy pairs, micro-batches of 3 (4 an epoch), grad_accum 2, 4 epochs: 8 optimiser steps, 2 an epoch
TRAIN = {"batch_size": 3, "grad_accum": 2, "lr": 1e-3, "epochs": 4}


@pytest.fixture
def dual_run(tmp_path):
    """A Mewsli-X run of the xtreme-r recipe (dual encoder, shared pool) on test_dual's toy data and a
    tiny BERT with dropout (so that the resumed run also needs torch's RNG back)."""
    from xitt.grid.spec import expand_grid, parse_grid
    from xitt.synth.tiny import build_encoder, build_tokenizer

    torch.set_num_threads(1)
    tokenizer = build_tokenizer(_toy_data(tmp_path / "data"))
    encoder = build_encoder(
        tokenizer, tmp_path / "enc", hidden=32, layers=1, heads=2, intermediate=64, max_position=32, seed=0
    )

    def run(data=tmp_path / "data", **train):
        doc = {
            "encoders": [{"name": "toy", "path": str(encoder)}],
            "intermediates": ["none"],
            "targets": ["mewslix"],
            "languages": {"mewslix": ["en"]},
            "seeds": [1],
            "recipe": "xtreme-r",
            "task_train": {"mewslix": {**TRAIN, **train}},
            "train": {"num_threads": 1, "precision": "fp32"},
            "data_dir": str(data),
        }
        out = expand_grid(parse_grid(doc))[1][0]
        assert out.target_train.retrieval_training == "dual"
        return out

    return run


@pytest.fixture
def forwards(monkeypatch):
    """``forwards(n)``: the n-th forward pass of the dual encoder sends SIGTERM to this process;
    returns the call counter."""
    from xitt.train.dual import DualEncoder

    forward = DualEncoder.forward

    def arm(n: int) -> dict:
        calls = {"n": 0}

        def counted(self, *args, **kwargs):
            calls["n"] += 1
            if calls["n"] == n:
                os.kill(os.getpid(), signal.SIGTERM)
            return forward(self, *args, **kwargs)

        monkeypatch.setattr(DualEncoder, "forward", counted)
        return calls

    return arm


def test_a_preempted_dual_run_resumes_bit_identical_and_its_state_is_removed(
    dual_run, forwards, tmp_path, caplog
):
    from xitt.run.jobs import do_run
    from xitt.run.store import read_result, run_dir

    run = dual_run()
    calls = forwards(10**9)
    assert do_run(run, str(tmp_path / "clean"), None) == "done"
    assert calls["n"] == 16  # 8 steps of 2 micro-batches
    # forward 5 is the first half of step 3 (epoch 2): the step is finished, then the state saved
    forwards(5)
    with pytest.raises(Preempted):
        do_run(run, str(tmp_path / "exp"), None, resume_root=str(tmp_path / "root"))
    folder = tmp_path / "root" / "resume" / run.run_id
    manifest = json.loads((folder / "resume.json").read_text())
    assert (manifest["step"], manifest["phase"]) == (3, "target") and (folder / "state.pt").exists()
    assert not (run_dir(tmp_path / "exp", run.run_id) / "result.json").exists()
    calls = forwards(10**9)
    with caplog.at_level("INFO", logger="xitt"):
        assert do_run(run, str(tmp_path / "exp"), None, resume_root=str(tmp_path / "root")) == "done"
    assert "resumed at step 3 of 8" in caplog.text and calls["n"] == 10  # only steps 4-8 ran again
    assert not (tmp_path / "root" / "resume").exists()  # removed with the finished run
    resumed, clean = (read_result(run_dir(tmp_path / e, run.run_id)) for e in ("exp", "clean"))
    assert resumed.scores == clean.scores and resumed.extra == clean.extra
    assert resumed.extra["steps"] == 8


def test_dual_saves_every_step_change_nothing_and_data_changes_void_the_state(dual_run, tmp_path, caplog):
    """``resume_every_min`` (not part of the run's id) saves during training without changing the
    scores; a state saved with other training pairs (the same run id) is not loaded."""
    import shutil

    from xitt.train.chain import run_target

    run, often = dual_run(), dual_run(resume_every_min=1e-9)
    assert often.run_id == run.run_id
    clean = run_target(run, run.encoder_path, progress=False)
    resume = tmp_path / "resume"
    with catch_preemption():
        saving = run_target(often, often.encoder_path, progress=False, resume=resume)
    assert saving.scores == clean.scores
    assert json.loads((resume / "resume.json").read_text())["step"] == 7  # the last save before step 8
    shutil.copytree(tmp_path / "data", tmp_path / "other")
    train = tmp_path / "other" / "mewslix" / "train-en.tsv"
    train.write_text(train.read_text().replace("e0 thing", "e0 thing here"))
    changed = dual_run(tmp_path / "other")
    assert changed.run_id == run.run_id
    with caplog.at_level("WARNING", logger="xitt"):
        other = run_target(changed, changed.encoder_path, progress=False, resume=resume)
    assert "belongs to other settings or data" in caplog.text
    assert other.extra["steps"] == 8 and other.scores != clean.scores
