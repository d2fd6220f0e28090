"""Preemption: a stage or run stopped by SIGTERM/SIGUSR2 mid-training saves a resume state and, started
again, ends with bit-identical weights, dev scores and scores (one thread, fp32, CPU)."""

import json
import os
import shutil
import signal

import pytest
import yaml

from xitt.grid.spec import SpecError, expand_grid, parse_grid
from xitt.run.preempt import Preempted, catch_preemption, requested, training


def _grid(encoder, data, reg=None, **train):
    doc = {
        "encoders": [{"name": "tiny", "path": str(encoder)}],
        "intermediates": ["none", "tiny_nli"],
        "targets": ["tiny_cls"],
        "seeds": [1],
        "data_dir": str(data),
        "train": {"epochs": 3, "grad_accum": 2, "eval_every": 3, **train},
    }
    return parse_grid(doc, **({"reg": reg} if reg else {}))


@pytest.fixture
def interrupt(monkeypatch):
    """``interrupt(n, signum)``: the n-th forward pass of any head sends ``signum`` to this process."""
    from xitt.train.heads import Head

    forward = Head.forward

    def arm(n: int, signum: int):
        calls = {"n": 0}

        def counted(self, *args, **kwargs):
            calls["n"] += 1
            if calls["n"] == n:
                os.kill(os.getpid(), signum)
            return forward(self, *args, **kwargs)

        monkeypatch.setattr(Head, "forward", counted)
        return calls

    yield arm
    monkeypatch.setattr(Head, "forward", forward)


def _manifest(folder):
    return json.loads((folder / "resume.json").read_text())


@pytest.mark.parametrize("select_on", ["last", "dev"])  # last: the weights after resuming are the answer
def test_stage_stopped_by_sigterm_resumes_bit_identical(
    tiny_encoder, tiny_data, tmp_path, interrupt, caplog, select_on
):
    from xitt.train.chain import train_stage

    stage = expand_grid(_grid(tiny_encoder, tiny_data, select_on=select_on))[0][0]
    clean = train_stage(stage, tmp_path / "clean", progress=False)
    resume = tmp_path / "resume"
    # 15 steps of 2 micro-batches, 5 steps an epoch; with select_on: dev, dev is evaluated (one forward)
    # after steps 3, 6, ...: forward 17 is micro-batch 15 (dev) or 17 (last), the first half of step
    # 8 or 9, in the middle of epoch 2.
    interrupt(17, signal.SIGTERM)
    with catch_preemption(), pytest.raises(Preempted) as stopped:
        train_stage(stage, tmp_path / "ckpt", progress=False, resume=resume)
    assert stopped.value.signum == signal.SIGTERM and requested() is None  # the flag ends with its context
    at = 8 if select_on == "dev" else 9
    assert _manifest(resume)["step"] == at and _manifest(resume)["phase"] == "stage"  # after that step
    assert not (tmp_path / "ckpt").exists()
    interrupt(10**9, signal.SIGTERM)  # disarmed
    with caplog.at_level("INFO", logger="xitt"):
        again = train_stage(stage, tmp_path / "ckpt", progress=False, resume=resume)
    assert f"resumed at step {at} of 15" in caplog.text
    assert (again.dev_scores, again.steps, again.best_step) == (
        clean.dev_scores,
        clean.steps,
        clean.best_step,
    )
    weights = "model.safetensors"
    assert (tmp_path / "ckpt" / weights).read_bytes() == (tmp_path / "clean" / weights).read_bytes()


def test_periodic_saves_change_nothing_and_a_foreign_state_is_ignored(
    tiny_encoder, tiny_data, tmp_path, caplog
):
    from xitt.train.chain import train_stage

    stage, other = (
        expand_grid(_grid(tiny_encoder, tiny_data, **extra))[0][0] for extra in ({}, {"lr": 1e-4})
    )
    clean = train_stage(stage, tmp_path / "clean", progress=False)
    often = expand_grid(_grid(tiny_encoder, tiny_data, resume_every_min=1e-9))[0][0]
    assert often.stage_id == stage.stage_id  # how often a stage saves is not part of what it is
    resume = tmp_path / "resume"
    saving = train_stage(often, tmp_path / "often", progress=False, resume=resume)  # a save at every step
    assert saving.dev_scores == clean.dev_scores and _manifest(resume)["step"] == 14  # the last before 15
    with caplog.at_level("WARNING", logger="xitt"):  # another stage's state in its folder: not loaded
        foreign = train_stage(other, tmp_path / "other", progress=False, resume=resume)
    assert "belongs to other settings or data" in caplog.text
    reference = train_stage(other, tmp_path / "reference", progress=False)
    assert foreign.dev_scores == reference.dev_scores and foreign.steps == reference.steps


@pytest.fixture
def first_task(tmp_path, tiny_data):
    """A registry with 'tiny_first' (multiple choice, tiny_mc's English data) and a data dir (as in
    tests/test_train_first.py)."""
    from xitt.tasks import scan, task_dirs

    tasks = tmp_path / "tasks"
    tasks.mkdir()
    entry = {"roles": ["intermediate"], "kind": "multiple_choice", "metric": "accuracy", "languages": ["en"]}
    doc = {
        "family": "tinyfirst",
        "defaults": {"train_language": "en", "source": {"local_only": True}, "version": "t1"},
        "tasks": {"tiny_first": entry},
    }
    (tasks / "first.yaml").write_text(yaml.safe_dump(doc))
    reg, problems = scan([*task_dirs(), tasks])
    assert not problems
    data = tmp_path / "data"
    shutil.copytree(tiny_data / "tiny_mc", data / "tiny_mc")
    (data / "tiny_first").mkdir()
    for split in ("train", "dev"):
        shutil.copy(tiny_data / "tiny_mc" / f"{split}-en.jsonl", data / "tiny_first" / f"{split}-en.jsonl")
    return reg, data


@pytest.mark.parametrize("at, phase", [(5, "first"), (65, "target")])  # 50 forwards in "first"
def test_train_first_run_resumes_in_either_phase(tiny_encoder, first_task, tmp_path, interrupt, at, phase):
    """SIGUSR2 during the first task's training or the target's: the same scores and dev scores
    (the target phase's state carries the first task's dev scores; the first task is not retrained)."""
    from xitt.train.chain import run_target

    reg, data = first_task
    doc = {
        "encoders": [{"name": "tiny", "path": str(tiny_encoder)}],
        "intermediates": ["none"],
        "targets": ["tiny_mc"],
        "languages": {"tiny_mc": ["de"]},
        "seeds": [1],
        "data_dir": str(data),
        "train": {"epochs": 2, "batch_size": 4, "train_first": "tiny_first", "eval_every": 4},
    }
    run = expand_grid(parse_grid(doc, reg=reg), reg=reg)[1][0]
    clean = run_target(run, str(tiny_encoder), progress=False, reg=reg)
    resume = tmp_path / "resume"
    calls = interrupt(at, signal.SIGUSR2)
    with catch_preemption(), pytest.raises(Preempted):
        run_target(run, str(tiny_encoder), progress=False, reg=reg, resume=resume)
    assert _manifest(resume)["phase"] == phase
    calls = interrupt(10**9, signal.SIGUSR2)
    again = run_target(run, str(tiny_encoder), progress=False, reg=reg, resume=resume)
    assert again.scores == clean.scores and again.dev_scores == clean.dev_scores
    assert any(k.startswith("tiny_first:") for k in again.dev_scores)
    assert again.extra == clean.extra
    if phase == "target":  # only the target's remaining steps ran again
        assert calls["n"] < at


def test_signals_outside_training_go_to_the_previous_handler():
    seen = []

    def before(signum, frame):
        seen.append(signum)

    old = signal.signal(signal.SIGUSR2, before)
    try:
        with catch_preemption():
            os.kill(os.getpid(), signal.SIGUSR2)  # nothing trains: the previous handler runs too
            assert requested() == signal.SIGUSR2 and seen == [signal.SIGUSR2]
            with training():
                os.kill(os.getpid(), signal.SIGUSR2)  # a training loop listens: the flag only
            assert seen == [signal.SIGUSR2]
        assert signal.getsignal(signal.SIGUSR2) is before
        os.kill(os.getpid(), signal.SIGUSR2)  # restored on exit
        assert seen == [signal.SIGUSR2, signal.SIGUSR2]
    finally:
        signal.signal(signal.SIGUSR2, old)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # Ctrl-C left alone


def test_preempted_pickles_and_resume_every_min_is_checked():
    import pickle

    err = pickle.loads(pickle.dumps(Preempted(signal.SIGUSR2)))  # back from a pool worker
    assert err.signum == signal.SIGUSR2 and str(err) == "preempted by SIGUSR2"
    assert not isinstance(err, Exception)  # no `except Exception` records a preempted run failed
    with pytest.raises(SpecError, match="resume_every_min"):
        _grid("enc", "data", resume_every_min=-1)


def test_a_slurm_job_saves_then_requeues_through_submitit_and_the_requeued_job_resumes(
    tiny_encoder, tiny_data, tmp_path, interrupt
):
    """SlurmJob as submitit runs it: submitit's USR2 handler (checkpoint, `scontrol requeue`, exit) is
    installed; USR2 mid-training saves the state first, then that handler runs; the requeued job
    (the same call again) resumes and records the uninterrupted scores."""
    from xitt.run.jobs import do_run
    from xitt.run.slurm import SlurmJob
    from xitt.run.store import read_result, run_dir

    run = next(r for r in expand_grid(_grid(tiny_encoder, tiny_data, select_on="last"))[1] if r.stage is None)
    do_run(run, str(tmp_path / "clean"), None)
    requeued = []

    def submitit_handler(signum, frame):  # what submitit's checkpoint_and_try_requeue ends with
        requeued.append(signum)
        raise SystemExit(-1)

    old = signal.signal(signal.SIGUSR2, submitit_handler)
    try:
        calls = interrupt(9, signal.SIGUSR2)
        with pytest.raises(SystemExit):
            SlurmJob()("run", run, str(tmp_path / "exp"), None, (), str(tmp_path / "root"))
        assert requeued == [signal.SIGUSR2] and calls["n"] == 10  # the step was finished, then saved
        assert (tmp_path / "root" / "resume" / run.run_id / "state.pt").exists()
        assert not (run_dir(tmp_path / "exp", run.run_id) / "result.json").exists()
        interrupt(10**9, signal.SIGUSR2)
        assert SlurmJob()("run", run, str(tmp_path / "exp"), None, (), str(tmp_path / "root")) == "done"
        assert signal.getsignal(signal.SIGUSR2) is submitit_handler
    finally:
        signal.signal(signal.SIGUSR2, old)
    resumed, clean = (read_result(run_dir(tmp_path / e, run.run_id)) for e in ("exp", "clean"))
    assert resumed.scores == clean.scores and resumed.dev_scores == clean.dev_scores
    assert not (tmp_path / "root" / "resume").exists()


def test_save_load_round_trip_restores_weights_optimizer_schedule_rngs_and_loop(tmp_path, caplog):
    import random

    import numpy as np
    import torch

    from xitt.grid.spec import TrainConfig
    from xitt.train.fit import make_optimizer
    from xitt.train.resume import LoopState, Resume, capture, restore

    def build():
        torch.manual_seed(0)
        module = torch.nn.Linear(4, 3)
        optimizer, schedule = make_optimizer([module], TrainConfig(lr=0.1, warmup_steps=2), total=10)
        return module, optimizer, schedule

    def train_step(module, optimizer, schedule):
        module(torch.randn(5, 4)).pow(2).sum().backward()
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()

    module, optimizer, schedule = build()
    train_step(module, optimizer, schedule)
    gen = np.random.default_rng(3)
    loop = LoopState(
        step=1,
        micro=2,
        epoch=1,
        position=5,
        epoch_rng=gen.bit_generator.state,
        best={"a": 1.5},
        loss_last=0.25,
    )

    def at(data="abc", phase="stage"):
        return Resume(tmp_path / "r", {"id": "x", "data": {"t": data}}, phase)

    saving = at()
    saving.carry = {"first_dev": {"k": 2.0}}
    saving.save(*capture(loop, [module], optimizer, schedule, None, None))
    expected = (torch.rand(3), np.random.rand(3), random.random())  # the draws right after the save
    train_step(module, optimizer, schedule)
    after_one_more = [p.detach().clone() for p in module.parameters()]

    fresh, fresh_opt, fresh_schedule = build()
    loading = at()
    back, best_state = restore(*loading.load(), [fresh], fresh_opt, fresh_schedule, None)
    assert back == loop and best_state is None and fresh_schedule.last_epoch == 1
    assert loading.carry == {"first_dev": {"k": 2.0}}
    draws = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(draws[0], expected[0]) and np.array_equal(draws[1], expected[1])
    assert draws[2] == expected[2]
    train_step(fresh, fresh_opt, fresh_schedule)  # the same draws, then the same step: the same weights
    assert all(torch.equal(a, b) for a, b in zip(after_one_more, fresh.parameters()))
    with caplog.at_level("WARNING", logger="xitt"):
        assert at(data="changed").load() is None and at(phase="first").load() is None
    assert "belongs to other settings or data" in caplog.text
    state = tmp_path / "r" / "state.pt"
    state.write_bytes(state.read_bytes()[:100])  # a damaged file
    with caplog.at_level("WARNING", logger="xitt"):
        assert at().load() is None
    assert "unreadable" in caplog.text


def test_bench_prints_the_cost_of_a_resume_save_and_the_projection(tiny_encoder, capsys):
    from xitt.bench.resume import report

    out = report({"tiny": tiny_encoder})
    text = capsys.readouterr().out
    assert "XLM-R large (550M params)" in text and "not measured" in text
    without, with_best = out[("tiny", False)], out[("tiny", True)]
    assert without["params"] == with_best["params"] > 0
    # fp32 weights + AdamW's two moments; the kept best weights add 4 bytes per parameter
    assert 12 <= without["bytes"] / without["params"] < with_best["bytes"] / with_best["params"]
