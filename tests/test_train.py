"""xitt.train: the loop, stages, determinism, encoder-only checkpoints, retrieval."""

import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from xitt.grid.spec import expand_grid, parse_grid


@pytest.fixture
def train():
    """xitt.train (imports torch), loaded when a test runs, never at collection time."""
    from xitt.train import chain as train

    return train


@pytest.fixture
def fit():
    """xitt.train.fit (imports torch), loaded when a test runs."""
    from xitt.train import fit

    return fit


def _grid(encoder, tiny_data, **extra):
    doc = {
        "encoders": [{"name": "tiny", "path": str(encoder)}],
        "intermediates": ["none", "tiny_nli"],
        "targets": ["tiny_cls"],
        "seeds": [1],
        "data_dir": str(tiny_data),
    }
    doc.update(extra)
    return parse_grid(doc)


def _scores(out):
    return json.dumps(out.scores, sort_keys=True) + json.dumps(out.dev_scores, sort_keys=True)


def test_epoch_batches_cover_everything_once_and_group_by_length(fit):
    feats = [{"input_ids": [0] * n} for n in np.random.default_rng(0).integers(1, 30, size=50)]
    a = fit.epoch_batches(feats, 8, np.random.default_rng(1), True)
    b = fit.epoch_batches(feats, 8, np.random.default_rng(1), True)
    assert a == b and sorted(i for batch in a for i in batch) == list(range(50))
    assert all(len(batch) == 8 for batch in a if batch is not a[-1]) or sum(map(len, a)) == 50
    for batch in a:  # sorted by length inside a batch
        lengths = [len(feats[i]["input_ids"]) for i in batch]
        assert lengths == sorted(lengths, reverse=True)


def test_same_seed_same_scores_other_seed_differs(train, tiny_encoder, tiny_data):
    _, runs = expand_grid(_grid(tiny_encoder, tiny_data, seeds=[1, 2]))
    r1, r2 = [r for r in runs if r.intermediate == "none"]
    first = train.run_target(r1, str(tiny_encoder), progress=False)
    again = train.run_target(r1, str(tiny_encoder), progress=False)
    other = train.run_target(r2, str(tiny_encoder), progress=False)
    assert _scores(first) == _scores(again)
    assert set(first.scores) == {"en", "de"} and first.primary_metric == "accuracy"
    assert first.wall_time["target"] > 0 and "tiny_cls/test-de" in first.data_fingerprints
    assert _scores(first) != _scores(other) or first.dev_scores != other.dev_scores


def test_stage_checkpoint_holds_the_encoder_only(train, tiny_encoder, tiny_data, tmp_path):
    from safetensors.torch import load_file

    stages, runs = expand_grid(_grid(tiny_encoder, tiny_data))
    info = train.train_stage(stages[0], tmp_path / "ckpt", progress=False)
    assert info.steps == 20 and "tiny_nli.accuracy" in info.dev_scores
    keys = load_file(str(tmp_path / "ckpt" / "model.safetensors"))
    assert keys and all(k.startswith(("embeddings.", "encoder.", "pooler.")) for k in keys)
    assert not list(tmp_path.glob("ckpt.tmp*"))
    run = next(r for r in runs if r.stage is not None)
    out = train.run_target(run, str(tmp_path / "ckpt"), progress=False)
    assert set(out.scores) == {"en", "de"}
    # Provenance names the base encoder (the stage's), not the checkpoint the target run loaded.
    assert "encoder" not in out.data_fingerprints
    base = next(r for r in runs if r.stage is None)
    own = train.run_target(base, str(tiny_encoder), progress=False).data_fingerprints
    assert info.data_fingerprints["encoder"] == own["encoder"]
    assert len(own["encoder"]) == 12 and own["encoder"] != train.encoder_fingerprint(
        None, str(tmp_path / "ckpt")
    )


def test_multi_task_stage_samples_every_task(train, tiny_encoder, tiny_data, tmp_path):
    grid = _grid(
        tiny_encoder,
        tiny_data,
        intermediates=[{"name": "both", "tasks": ["tiny_nli", "tiny_mc"]}],
        task_train={"tiny_nli": {"epochs": 1}},
    )
    stage = expand_grid(grid)[0][0]
    info = train.train_stage(stage, tmp_path / "ckpt", progress=False)
    assert info.steps == 10 + 5  # one epoch: 160/16 NLI batches + 80/16 MC batches
    assert {"tiny_nli.accuracy", "tiny_mc.accuracy", "selection"} <= set(info.dev_scores)


@pytest.mark.parametrize("qa_windows", ["overlap", "step"])
def test_max_steps_grad_accum_select_last_and_predictions(
    train, tiny_encoder, tiny_data, tmp_path, qa_windows
):
    grid = _grid(
        tiny_encoder,
        tiny_data,
        targets=["tiny_qa"],
        save_predictions=True,
        train={"max_steps": 3, "grad_accum": 2, "select_on": "last", "qa_windows": qa_windows},
    )
    run = next(r for r in expand_grid(grid)[1] if r.stage is None)
    out = train.run_target(run, str(tiny_encoder), out_dir=tmp_path, progress=False)
    assert out.primary_metric == "em_f1" and set(out.scores["de"]) == {"em", "f1", "em_f1"}
    with gzip.open(tmp_path / "predictions" / "de.jsonl.gz", "rt") as fh:
        rows = [json.loads(line) for line in fh]
    assert len(rows) == 20 and {"id", "prediction", "reference"} <= set(rows[0])


def test_retrieval_needs_no_training(train, tiny_encoder, tiny_data):
    run = expand_grid(_grid(tiny_encoder, tiny_data, targets=["tiny_tatoeba"], intermediates=["none"]))[1][0]
    out = train.run_target(run, str(tiny_encoder), progress=False)
    assert out.primary_metric == "accuracy" and 0 <= out.scores["de"]["accuracy"] <= 100
    assert out.wall_time["target"] == 0.0 and out.dev_scores == {}


def test_missing_local_encoder_is_a_clear_error(train, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        train.load_encoder(str(tmp_path / "nope"))


SCRIPT = """
import json, sys, torch
sys.path.insert(0, {tests!r})
import conftest
torch.set_num_threads(1)
from xitt.train import chain as train
from xitt.grid.spec import expand_grid, parse_grid
grid = parse_grid({{"encoders": [{{"name": "tiny", "path": {enc!r}}}], "intermediates": ["none"],
                   "targets": ["tiny_ner"], "seeds": [3], "data_dir": {data!r}}})
out = train.run_target(expand_grid(grid)[1][0], {enc!r}, progress=False)
print(json.dumps([out.scores, out.dev_scores], sort_keys=True))
"""


@pytest.mark.slow
def test_bit_identical_scores_in_fresh_processes(tiny_encoder, tiny_data):
    code = SCRIPT.format(tests=str(Path(__file__).parent), enc=str(tiny_encoder), data=str(tiny_data))
    outs = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        .stdout.strip()
        .splitlines()[-1]
        for _ in range(2)
    ]
    assert outs[0] == outs[1]


def test_eval_every_keeps_the_best_dev_checkpoint_and_subsampling(train, tiny_encoder, tiny_data):
    grid = _grid(
        tiny_encoder,
        tiny_data,
        intermediates=["none"],
        train={"eval_every": 3, "max_train_examples": 64, "epochs": 2},
    )
    run = expand_grid(grid)[1][0]
    out = train.run_target(run, str(tiny_encoder), progress=False)
    examples, feats, _ = train.features_for(
        train.registry().get("tiny_cls"),
        "train",
        "en",
        train.load_encoder(str(tiny_encoder))[1],
        run.target_train,
        tiny_data,
        None,
    )
    assert len(examples) == len(feats) == 64
    # 64/16 x 2 epochs; evals at 3, 6, end
    assert out.extra["steps"] == 8 and out.extra["best_step"] in (3, 6, 8)


def test_a_non_finite_loss_fails_the_run_as_diverged(train, fit, tiny_encoder, tiny_data, monkeypatch):
    """lr: .inf once produced a run recorded as done; a non-finite loss must fail it, never finish it."""
    from xitt.train.heads import Head

    forward = Head.forward

    def nan_loss(self, encoder, batch):
        loss, logits = forward(self, encoder, batch)
        return loss * float("nan"), logits

    monkeypatch.setattr(Head, "forward", nan_loss)
    run = next(r for r in expand_grid(_grid(tiny_encoder, tiny_data))[1] if r.stage is None)
    with pytest.raises(fit.Diverged, match="diverged.*lower train.lr"):
        train.run_target(run, str(tiny_encoder), progress=False)


def test_patience_stops_after_evaluations_without_improvement(train, tiny_encoder, tiny_data):
    # jiant's --no_improvements_for_n_evals: with a learning rate too small to change the dev score,
    # the first evaluation is the best and training stops after `patience` more
    grid = _grid(
        tiny_encoder,
        tiny_data,
        intermediates=["none"],
        train={"lr": 1e-9, "eval_every": 2, "patience": 3, "max_steps": 40, "select_on": "dev"},
    )
    run = expand_grid(grid)[1][0]
    out = train.run_target(run, str(tiny_encoder), progress=False)
    assert out.extra["steps"] == 2 * (1 + 3) and out.extra["best_step"] == 2
    with pytest.raises(Exception, match="patience"):
        _grid(tiny_encoder, tiny_data, train={"patience": 3, "select_on": "last"})


def test_loss_watch_reads_the_loss_only_at_checks_and_counts_non_finite_runs(fit):
    import torch

    nan = float("nan")
    watch = fit.LossWatch(2, "t", 1e-3)
    for value in (1.0, nan, 3.0):
        watch.add(torch.tensor(value))
    watch.check(3)  # one non-finite loss: allowed (fp16's scaler skips the odd step)
    assert watch.last == 2.0 and not watch.pending  # the mean of the finite losses since the last check
    watch.add(torch.tensor(nan))
    watch.add(torch.tensor(nan))
    watch.check(5)  # two in a row: still allowed
    watch.add(torch.tensor(float("inf")))  # the run continues across the check: three in a row
    watch.add(torch.tensor(1.0))
    with pytest.raises(fit.Diverged, match="loss is inf at step 6 "):
        watch.check(7)
    strict = fit.LossWatch(0, "t", 1e-3)
    strict.add(torch.tensor(0.5))
    strict.add(torch.tensor(nan))
    strict.add(torch.tensor(0.5))
    with pytest.raises(fit.Diverged, match="at step 9 .diverged.; lower train.lr .now 0.001"):
        strict.check(10)


def test_training_without_dev_evaluation_needs_select_on_last(fit):
    """fit(evaluate=False) (the dual encoder: no English dev data) keeps the final weights, so it
    refuses a dev selection it could not make, before any optimizer is built."""
    import torch

    from xitt.grid.spec import TrainConfig
    from xitt.train.predict import TaskData

    td = TaskData(None, TrainConfig(select_on="dev"), None, [], [], [])
    with pytest.raises(ValueError, match="without dev evaluation needs select_on: last"):
        fit.fit(
            torch.nn.Linear(2, 2),
            {},
            {"t": td},
            seed=1,
            pad_id=0,
            device=torch.device("cpu"),
            desc="t",
            evaluate=False,
        )
