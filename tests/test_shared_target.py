"""Targets that share one target training (``trains_on``), as XQuAD and MLQA share SQuAD v1.1
(google-research/xtreme scripts/train.sh + train_qa.sh + predict_qa.sh): two tiny QA targets on
tiny_qa's English data (tests/data/shared_target/shared.yaml). One training per (encoder,
intermediate, seed) in local, pool and fake-SLURM runs, and the same scores as runs that train their
own head with the same seed and settings (tiny_qa itself, and tiny_mlqa_alone with MLQA's metric).
"""

import os
import re
import shutil
from pathlib import Path

import pytest
from test_slurm import fake_slurm, slurm_cluster  # noqa: F401 (a fixture)

from xitt.grid.spec import expand_grid, parse_grid, trainings_of
from xitt.run.executors import checkpoint_path, execute
from xitt.run.store import read_result, run_dir

SHARED = Path(__file__).parent / "data" / "shared_target"
TARGETS = ["tiny_xquad", "tiny_mlqa", "tiny_qa", "tiny_mlqa_alone"]
CONTROL = {"tiny_xquad": "tiny_qa", "tiny_mlqa": "tiny_mlqa_alone"}  # same data, metric and seed


@pytest.fixture
def shared_data(tiny_data, tmp_path, monkeypatch):
    """The shared-target task files on XITT_TASKS_PATH and a data dir: tiny_qa's test sets for the two
    sharing targets (they have no training data of their own), all of tiny_qa's for the control."""
    monkeypatch.setenv("XITT_TASKS_PATH", os.environ["XITT_TASKS_PATH"] + os.pathsep + str(SHARED))
    data = tmp_path / "data"
    for name in ("tiny_nli", "tiny_qa"):
        shutil.copytree(tiny_data / name, data / name)
    shutil.copytree(tiny_data / "tiny_qa", data / "tiny_mlqa_alone")
    for name in CONTROL:
        (data / name).mkdir()
        for test in (tiny_data / "tiny_qa").glob("test-*"):
            shutil.copy(test, data / name / test.name)
    return data


def make_grid(encoder, data, **extra):
    doc = {
        "experiment": "shared",
        "encoders": [{"name": "tiny", "path": str(encoder)}],
        "intermediates": ["none", "tiny_nli"],
        "targets": TARGETS,
        "seeds": [1, 2],
        "data_dir": str(data),
        "train": {"epochs": 1},
    }
    return parse_grid({**doc, **extra})


def scores(exp, runs) -> dict:
    """(intermediate, target, seed) -> the run's scores."""
    return {(r.intermediate, r.target, r.seed): read_result(run_dir(exp, r.run_id)).scores for r in runs}


def losses(folder: Path) -> list[str]:
    """The training losses a folder's train.log shows, step by step."""
    return re.findall(r"step (\d+/\d+) loss (\S+)", (folder / "train.log").read_text())


def assert_same_as_separate_training(found: dict) -> None:
    for (inter, target, seed), value in found.items():
        if target in CONTROL:
            assert value == found[inter, CONTROL[target], seed], (inter, target, seed)


def test_the_grid_expands_to_one_training_per_encoder_intermediate_and_seed(tiny_encoder, shared_data):
    stages, runs = expand_grid(make_grid(tiny_encoder, shared_data))
    trainings = trainings_of(runs)
    assert len(stages) == 2 and len(runs) == 16 and len(trainings) == 4
    assert {(t.intermediate, t.seed, t.task) for t in trainings} == {
        (i, s, "tiny_qa") for i in ("none", "tiny_nli") for s in (1, 2)
    }
    for run in runs:  # the two sharing targets point at one training; the others train their own head
        assert (run.training is not None) == (run.target in CONTROL)
    by_chain = {}
    for run in (r for r in runs if r.training):
        by_chain.setdefault((run.intermediate, run.seed), set()).add(run.training.train_id)
    assert all(len(ids) == 1 for ids in by_chain.values())
    # settings that differ split the training: each target then trains its own
    split = make_grid(tiny_encoder, shared_data, task_train={"tiny_mlqa": {"lr": 1e-3}})
    assert len(trainings_of(expand_grid(split)[1])) == 8


def test_local_trains_each_shared_training_once_with_the_scores_of_separate_trainings(
    tiny_encoder, shared_data, tmp_path
):
    grid = make_grid(tiny_encoder, shared_data)
    exp = tmp_path / "exp"
    summary = execute(grid, exp_dir=exp, progress=False)
    assert summary["done"] == 16 and summary["stages_trained"] == 2 and summary["trainings_trained"] == 4
    stages, runs = expand_grid(grid)
    trainings = trainings_of(runs)
    assert sorted(p.parent.name for p in exp.glob("trainings/*/training.json")) == sorted(
        t.train_id for t in trainings
    )
    for training in trainings:
        log = (exp / "trainings" / training.train_id / "train.log").read_text()
        assert log.count("training tiny on tiny_qa") == 1
        assert not checkpoint_path(grid, exp, training.train_id).exists()  # removed: its runs are done
    shared = read_result(run_dir(exp, next(r.run_id for r in runs if r.stage and r.target == "tiny_mlqa")))
    assert set(shared.wall_time) == {"intermediate", "target_training", "eval"}
    assert shared.extra["training_id"] in {t.train_id for t in trainings} and shared.extra["steps"] > 0
    assert "tiny_qa/train-en" in shared.data_fingerprints and "tiny_mlqa/test-de" in shared.data_fingerprints
    assert "tiny_qa.em_f1" in shared.dev_scores  # selected on the training task's English dev
    assert_same_as_separate_training(scores(exp, runs))
    for training in trainings:  # the same optimisation, step by step, as tiny_qa's own training
        control = next(
            r
            for r in runs
            if r.target == "tiny_qa"
            and r.training is None
            and r.seed == training.seed
            and r.intermediate == training.intermediate
        )
        assert losses(exp / "trainings" / training.train_id) == losses(run_dir(exp, control.run_id)) != []
    again = execute(grid, exp_dir=exp, progress=False)
    assert again["ran"] == 0 and again["trainings_trained"] == 0 and again["stages_trained"] == 0


def test_a_run_redone_alone_evaluates_the_kept_training_and_retrains_only_without_it(
    tiny_encoder, shared_data, tmp_path
):
    grid = make_grid(tiny_encoder, shared_data, seeds=[1], keep_checkpoints=True)
    exp = tmp_path / "exp"
    execute(grid, exp_dir=exp, progress=False)
    runs = expand_grid(grid)[1]
    before = scores(exp, runs)
    redo = next(r for r in runs if r.stage and r.target == "tiny_mlqa")
    (run_dir(exp, redo.run_id) / "result.json").unlink()
    summary = execute(grid, exp_dir=exp, progress=False)
    assert summary["ran"] == 1 and summary["trainings_trained"] == 0 and summary["stages_trained"] == 0
    assert scores(exp, runs) == before
    # without its checkpoint, the training (and the stage it starts from) is trained again, identically
    shutil.rmtree(checkpoint_path(grid, exp, redo.training.train_id))
    shutil.rmtree(checkpoint_path(grid, exp, redo.stage.stage_id))
    (run_dir(exp, redo.run_id) / "result.json").unlink()
    summary = execute(grid, exp_dir=exp, progress=False)
    assert summary["ran"] == 1 and summary["trainings_trained"] == 1 and summary["stages_trained"] == 1
    assert scores(exp, runs) == before


def test_the_pool_trains_each_shared_training_once(tiny_encoder, shared_data, tmp_path):
    grid = make_grid(tiny_encoder, shared_data, seeds=[1])
    local, pool = tmp_path / "local", tmp_path / "pool"
    execute(grid, exp_dir=local, progress=False)
    summary = execute(grid, exp_dir=pool, workers=2, progress=False)
    assert summary["done"] == 8 and summary["trainings_trained"] == 2 and summary["stages_trained"] == 1
    runs = expand_grid(grid)[1]
    assert scores(pool, runs) == scores(local, runs)
    assert len(list(pool.glob("trainings/*/training.json"))) == 2


def test_a_failed_training_records_its_runs_failed_without_starting_them(
    tiny_encoder, shared_data, tmp_path, monkeypatch
):
    import xitt.train.shared

    def broken(*args, **kwargs):
        raise RuntimeError("the training's data is broken")

    monkeypatch.setattr(xitt.train.shared, "train_target", broken)
    grid = make_grid(tiny_encoder, shared_data, seeds=[1], targets=["tiny_xquad", "tiny_mlqa", "tiny_qa"])
    summary = execute(grid, exp_dir=tmp_path, progress=False)
    assert summary["done"] == 2 and summary["failed"] == 4 and summary["trainings_trained"] == 0
    for run in expand_grid(grid)[1]:
        result = read_result(run_dir(tmp_path, run.run_id))
        if run.training is None:
            assert result.status == "done"
            continue
        assert result.status == "failed"
        assert result.error.endswith(
            f"shared target training {run.training.train_id} is not available: "
            "RuntimeError: the training's data is broken"
        )


def test_slurm_submits_one_training_job_that_its_runs_and_a_cleanup_wait_for(
    tiny_encoder, shared_data, tmp_path, monkeypatch
):
    from xitt.run import slurm
    from xitt.run.executors import _dependants, pending_work

    (tmp_path / "sbatch").mkdir()
    scripts = fake_slurm(tmp_path / "sbatch", monkeypatch)
    grid = make_grid(tiny_encoder, shared_data, executor={"kind": "slurm", "slurm": {"max_jobs": 3}})
    stages, runs = expand_grid(grid)
    exp = tmp_path / "exp"
    ckpt = {s.stage_id: tmp_path / "ckpt" / s.stage_id for s in stages}
    ckpt |= {t.train_id: tmp_path / "ckpt" / t.train_id for t in trainings_of(runs)}
    todo, todo_trainings, todo_stages = pending_work(grid, exp, runs, ckpt)
    sub = slurm.submit(grid, exp, stages, ckpt, todo, todo_stages, _dependants(grid), todo_trainings)
    kinds = [key.split(":")[0] for key in sub.jobs]
    # 2 stages, 4 trainings (not 8), 16 runs, a cleanup per stage and per training
    assert {k: kinds.count(k) for k in set(kinds)} == {"stage": 2, "training": 4, "run": 16, "cleanup": 6}
    deps = {
        key: re.search(r"#SBATCH --dependency=(\S+)", (scripts / f"job-{job.job_id}.sh").read_text())
        for key, job in sub.jobs.items()
    }
    deps = {key: m.group(1) if m else "" for key, m in deps.items()}
    for training in trainings_of(runs):
        job = sub.job_id(f"training:{training.train_id}")
        after = f"afterok:{sub.job_id(f'stage:{training.stage.stage_id}')}," if training.stage else ""
        assert deps[f"training:{training.train_id}"] == after + "singleton"
        mine = [r for r in runs if r.training and r.training.train_id == training.train_id]
        assert len(mine) == 2 and all(deps[f"run:{r.run_id}"] == f"afterok:{job},singleton" for r in mine)
        waits = deps[f"cleanup:{training.train_id}"]
        assert waits.startswith("afterany:") and set(waits[9:].split(":")) == {
            job,
            *(sub.job_id(f"run:{r.run_id}") for r in mine),
        }
    for stage in stages:  # the stage's checkpoint waits for its trainings too
        waits = set(deps[f"cleanup:{stage.stage_id}"][9:].split(":"))
        assert {sub.job_id(f"training:{t.train_id}") for t in trainings_of(runs) if t.stage == stage} <= waits
    again = slurm.submit(grid, exp, stages, ckpt, todo, todo_stages, _dependants(grid), todo_trainings)
    assert not again.jobs and len(again.live) == len(sub.jobs)  # squeue lists them all: none resubmitted


def test_plan_and_status_count_the_shared_trainings(tiny_encoder, shared_data, tmp_path, capsys):
    import yaml

    from xitt.cli import main

    exp = tmp_path / "shared"
    exp.mkdir()
    doc = {
        "encoders": [{"name": "tiny", "path": str(tiny_encoder)}],
        "intermediates": ["none", "tiny_nli"],
        "targets": TARGETS,
        "seeds": [1, 2],
        "data_dir": str(shared_data),
        "cost": {"target": {"tiny_xquad": 2.0, "tiny_mlqa": 2.0, "tiny_qa": 2.0, "tiny_mlqa_alone": 2.0}},
    }
    (exp / "grid.yaml").write_text(yaml.safe_dump(doc))
    assert main(["plan", str(exp)]) == 0
    out = capsys.readouterr().out
    assert "level 2  shared target trainings: 4 (" in out and "tiny_mlqa, tiny_xquad on tiny_qa" in out
    assert "evaluated by 8 target runs, 4 trainings saved): 0 done, 4 pending" in out
    assert "level 3  target runs: 16: 0 done, 16 pending" in out
    # 4 trainings x 2 h (the targets' cost is their training's) + 8 own runs x 2 h, not 16 x 2 h
    assert "shared trainings 8.0 + runs 16.0 = 24.0" in out
    assert "of stage and shared training checkpoints (2 at once, one at a time)" in out
    main(["status", str(exp)])
    assert "4 shared target trainings: 0 done" in capsys.readouterr().out


@pytest.mark.slow
def test_one_training_on_a_real_slurm_cluster(slurm_cluster, tiny_encoder, shared_data, tmp_path):  # noqa: F811
    """Stage -> one shared training -> two evaluation runs as SLURM jobs (afterok); cleanup jobs remove
    both checkpoints; the scores equal the local executor's."""
    from test_slurm import slurm_grid

    ckpts = tmp_path / "ckpt"
    grid = slurm_grid(
        tiny_encoder,
        shared_data,
        intermediates=["tiny_nli"],
        targets=["tiny_xquad", "tiny_mlqa"],
        checkpoint_dir=str(ckpts),
    )
    exp = tmp_path / "exp"
    summary = execute(grid, exp_dir=exp, progress=False)
    assert summary["submitted"] == 6  # stage, training, 2 runs, 2 cleanups
    assert summary["done"] == 2 and summary["stages_trained"] == 1 and summary["trainings_trained"] == 1
    assert summary["checkpoints_removed"] == 2 and not any(ckpts.iterdir())
    local = tmp_path / "local"
    execute(
        make_grid(
            tiny_encoder,
            shared_data,
            intermediates=["tiny_nli"],
            targets=["tiny_xquad", "tiny_mlqa"],
            seeds=[1],
        ),
        exp_dir=local,
        progress=False,
    )
    runs = expand_grid(grid)[1]
    assert scores(exp, runs) == scores(local, runs)
