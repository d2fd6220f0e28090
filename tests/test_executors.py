"""xitt.executors: the DAG on a tiny grid, resume, new seeds, failures, claims, offline errors."""

import json
import os
import shutil

import pytest
import yaml

from xitt.data.loaders import DataError
from xitt.grid.spec import expand_grid, parse_grid
from xitt.run.executors import checkpoint_path, execute
from xitt.run.store import collect, read_result, run_dir


def make_grid(encoder, data_dir, **extra):
    doc = {
        "experiment": "t",
        "encoders": [{"name": "tiny", "path": str(encoder)}],
        "intermediates": ["none", "tiny_nli"],
        "targets": ["tiny_cls", "tiny_ner", "tiny_qa"],
        "seeds": [1],
        "data_dir": str(data_dir),
        "train": {"epochs": 1},
    }
    doc.update(extra)
    return parse_grid(doc)


def scores_of(exp, grid):
    frame, _ = collect(exp, [r.run_id for r in expand_grid(grid)[1]])
    return frame.sort_values(["run_id", "language", "metric"]).reset_index(drop=True)


def test_tiny_grid_end_to_end(tiny_encoder, tiny_data, tmp_path):
    grid = make_grid(tiny_encoder, tiny_data)
    summary = execute(grid, exp_dir=tmp_path, progress=False)
    assert summary == {
        "runs": 6,
        "done": 6,
        "failed": 0,
        "skipped": 0,
        "ran": 6,
        "stages_trained": 1,
        "busy": 0,
    }
    stages, runs = expand_grid(grid)
    stage_id = stages[0].stage_id
    stage_log = (tmp_path / "stages" / stage_id / "train.log").read_text()
    assert stage_log.count("training tiny on tiny_nli") == 1  # trained once, reused 3x
    assert not checkpoint_path(grid, tmp_path, stage_id).exists()  # removed: all dependants done
    result = read_result(run_dir(tmp_path, next(r.run_id for r in runs if r.stage and r.target == "tiny_qa")))
    assert result.status == "done" and result.primary_metric == "em_f1"
    assert set(result.scores) == {"en", "de"} and set(result.scores["de"]) == {"em", "f1", "em_f1"}
    assert set(result.wall_time) == {"intermediate", "target", "eval"}
    assert result.task_versions == {"tiny_qa": "tiny-1", "tiny_nli": "tiny-1"}
    assert "tiny_nli/train-en" in result.data_fingerprints and "tiny_qa/test-de" in result.data_fingerprints
    assert (
        result.packages["torch"] and result.device.startswith("cpu") and result.extra["stage_id"] == stage_id
    )
    assert (run_dir(tmp_path, result.run_id) / "config.yaml").is_file()
    frame = scores_of(tmp_path, grid)
    assert len(frame) == 2 * (2 * 1 + 2 * 3 + 2 * 3)  # runs x languages x metrics
    assert execute(grid, exp_dir=tmp_path, progress=False)["ran"] == 0  # finished runs are skipped
    # Determinism: the same grid into another folder gives identical scores.
    other = tmp_path / "again"
    execute(grid, exp_dir=other, progress=False)
    assert scores_of(other, grid)[["language", "metric", "score"]].equals(
        frame[["language", "metric", "score"]]
    )


def test_config_and_result_record_the_data_dir_actually_used(tiny_encoder, tiny_data, tmp_path):
    """--data-dir wins over the grid's data_dir: config.yaml and result.json say so; the run id stays."""
    grid = make_grid(tiny_encoder, tmp_path / "not-used", intermediates=["none"], targets=["tiny_cls"])
    grid_run = expand_grid(grid)[1][0]
    execute(grid, exp_dir=tmp_path / "exp", data_dir=str(tiny_data), progress=False)
    folder = run_dir(tmp_path / "exp", grid_run.run_id)
    config = yaml.safe_load((folder / "config.yaml").read_text())
    assert config["data_dir"] == str(tiny_data.resolve()) and config["run_id"] == grid_run.run_id
    assert read_result(folder).spec["data_dir"] == str(tiny_data.resolve())
    assert grid_run.with_data_dir("/elsewhere").run_id == grid_run.run_id


def test_new_seeds_run_only_new_chains_and_checkpoints_can_be_kept(tiny_encoder, tiny_data, tmp_path):
    grid = make_grid(tiny_encoder, tiny_data, targets=["tiny_cls"], keep_checkpoints=True)
    execute(grid, exp_dir=tmp_path, progress=False)
    first = {p: p.stat().st_mtime_ns for p in tmp_path.glob("*/result.json")}
    grid2 = make_grid(tiny_encoder, tiny_data, targets=["tiny_cls"], keep_checkpoints=True, seeds=[1, 2])
    summary = execute(grid2, exp_dir=tmp_path, progress=False, seeds=[2])
    assert summary["ran"] == 2 and summary["stages_trained"] == 1 and summary["runs"] == 2
    assert {p: p.stat().st_mtime_ns for p in first} == first
    assert execute(grid2, exp_dir=tmp_path, progress=False)["ran"] == 0
    stage_id = expand_grid(grid2)[0][0].stage_id
    assert len(list(checkpoint_path(grid2, tmp_path, stage_id).parent.iterdir())) == 2  # keep_checkpoints


def test_bad_data_stops_before_training_and_a_failing_run_does_not_stop_the_others(
    tiny_encoder, tiny_data, tmp_path, monkeypatch
):
    import xitt.train.chain

    data = tmp_path / "data"
    shutil.copytree(tiny_data, data, ignore=shutil.ignore_patterns("prepared"))
    good = (data / "tiny_ner" / "test-de.tsv").read_text(encoding="utf-8")
    (data / "tiny_ner" / "test-de.tsv").write_text("anna\tB-PER\nthis line has no tag\n", encoding="utf-8")
    grid = make_grid(tiny_encoder, data, intermediates=["none"])
    with pytest.raises(DataError, match="tiny_ner.*test-de.*test-de.tsv:2"):  # prepare, before training
        execute(grid, exp_dir=tmp_path / "exp", progress=False)
    assert not (tmp_path / "exp").exists() or not any((tmp_path / "exp").iterdir())
    (data / "tiny_ner" / "test-de.tsv").write_text(good, encoding="utf-8")
    real = xitt.train.chain.run_target

    def flaky(run, *args, **kwargs):
        if run.target == "tiny_ner":
            raise RuntimeError("CUDA out of memory")
        return real(run, *args, **kwargs)

    monkeypatch.setattr(xitt.train.chain, "run_target", flaky)
    summary = execute(grid, exp_dir=tmp_path / "exp", progress=False)
    assert summary["done"] == 2 and summary["failed"] == 1
    bad = next(r for r in expand_grid(grid)[1] if r.target == "tiny_ner")
    result = read_result(run_dir(tmp_path / "exp", bad.run_id))
    assert result.status == "failed" and result.error == "RuntimeError: CUDA out of memory"
    assert "Traceback" in (run_dir(tmp_path / "exp", bad.run_id) / "train.log").read_text()
    monkeypatch.setattr(xitt.train.chain, "run_target", real)  # fixed: only the failed run is redone
    again = execute(grid, exp_dir=tmp_path / "exp", progress=False)
    assert again["ran"] == 1 and again["done"] == 3
    done = read_result(run_dir(tmp_path / "exp", bad.run_id))
    assert done.data["tiny_ner/test-de"]["sources"][0]["source"] == "local:tiny_ner/test-de.tsv"


def test_fail_fast_stops_after_the_first_failure(tiny_encoder, tiny_data, tmp_path, monkeypatch):
    import xitt.train.chain

    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(xitt.train.chain, "run_target", boom)
    grid = make_grid(tiny_encoder, tiny_data, intermediates=["none"], targets=["tiny_qa", "tiny_cls"])
    summary = execute(grid, exp_dir=tmp_path, progress=False, fail_fast=True)
    assert summary["failed"] == 1 and summary.get("stopped") == 1 and summary["done"] == 0


def test_corrupt_results_rerun_and_claims_are_respected(tiny_encoder, tiny_data, tmp_path):
    grid = make_grid(tiny_encoder, tiny_data, intermediates=["none"], targets=["tiny_cls", "tiny_ner"])
    runs = expand_grid(grid)[1]
    execute(grid, exp_dir=tmp_path, progress=False)
    (run_dir(tmp_path, runs[0].run_id) / "result.json").write_text('{"run_id": "x", "sta')  # half-written
    (run_dir(tmp_path, runs[1].run_id) / "result.json").unlink()
    (run_dir(tmp_path, runs[1].run_id) / "claim").write_text(
        json.dumps({"host": os.uname().nodename, "pid": os.getpid()})
    )  # a live worker owns it
    summary = execute(grid, exp_dir=tmp_path, progress=False)
    assert summary["ran"] == 1 and summary["busy"] == 1 and summary["done"] == 1
    assert read_result(run_dir(tmp_path, runs[0].run_id)).status == "done"


def test_a_done_run_loses_the_claim_of_a_worker_killed_before_releasing_it(tiny_encoder, tiny_data, tmp_path):
    """SIGKILL between writing result.json and releasing the claim: the re-run skips the run and
    removes the dead worker's claim; a live worker's claim on a done run stays."""
    import socket
    import subprocess
    import sys

    grid = make_grid(tiny_encoder, tiny_data, intermediates=["none", "tiny_nli"], targets=["tiny_cls"])
    stages, runs = expand_grid(grid)
    execute(grid, exp_dir=tmp_path, progress=False)
    dead = int(
        subprocess.run(
            [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
        ).stdout
    )
    left = [run_dir(tmp_path, runs[0].run_id), tmp_path / "stages" / stages[0].stage_id]
    for folder in left:
        (folder / "claim").write_text(json.dumps({"host": socket.gethostname(), "pid": dead}))
    live = run_dir(tmp_path, runs[1].run_id) / "claim"
    live.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid()}))
    summary = execute(grid, exp_dir=tmp_path, progress=False, executor="local")
    assert summary["skipped"] == summary["runs"] == 2 and summary["ran"] == 0
    assert not any((folder / "claim").exists() for folder in left) and live.exists()


def test_offline_without_data_fails_before_training(tiny_encoder, tmp_path, monkeypatch):
    monkeypatch.setenv("XITT_OFFLINE", "1")
    monkeypatch.delenv("XITT_DATA_DIR", raising=False)
    grid = parse_grid(
        {
            "encoders": [{"name": "tiny", "path": str(tiny_encoder)}],
            "intermediates": ["none", "mnli"],
            "targets": ["xnli"],
            "languages": {"xnli": ["en", "de"]},
            "seeds": [1],
        }
    )
    with pytest.raises(DataError) as err:
        execute(grid, exp_dir=tmp_path / "exp", progress=False)
    assert "mnli" in str(err.value) and "google/xtreme" in str(err.value) and "--data-dir" in str(err.value)
    assert not (tmp_path / "exp").exists() or not any((tmp_path / "exp").iterdir())
    with pytest.raises(FileNotFoundError, match="encoder 'gone'"):
        execute(
            parse_grid(
                {
                    "encoders": [{"name": "gone", "path": str(tmp_path / "gone")}],
                    "intermediates": ["none"],
                    "targets": ["tiny_cls"],
                    "seeds": [1],
                }
            ),
            exp_dir=tmp_path / "e2",
            progress=False,
        )


@pytest.mark.slow
def test_process_pool_gives_the_same_scores(tiny_encoder, tiny_data, tmp_path):
    grid = make_grid(tiny_encoder, tiny_data, targets=["tiny_cls", "tiny_ner"])
    execute(grid, exp_dir=tmp_path / "seq", progress=False)
    summary = execute(grid, exp_dir=tmp_path / "pool", progress=False, workers=2)
    assert summary["done"] == 4 and summary["stages_trained"] == 1
    a, b = scores_of(tmp_path / "seq", grid), scores_of(tmp_path / "pool", grid)
    assert a.equals(b)


def test_progress_bar_on_a_tty_and_grid_line(monkeypatch, capsys):
    import io

    from xitt.run import progress

    monkeypatch.setattr(progress, "interactive", lambda: True)
    with progress.StageBar(3, "mnli s1") as bar:
        for loss in (1.0, 0.5, 0.25):
            bar.step(loss)
        assert bar.bar is not None and bar.bar.n == 3
    stream = io.StringIO()
    grid = progress.GridProgress(4, done=1, stream=stream, runs={"r1": "xnli", "r2": "xnli", "r3": "xnli"})
    grid.update("done", "r1", 30.0)
    grid.update("failed", "r2")
    assert stream.getvalue().splitlines()[-1] == "[xitt] runs: 2 done, 1 failed, 1 pending of 4, ETA 30 s"


def test_grid_eta_weighs_each_pending_run_and_stage_by_its_own_kind():
    from xitt.run.progress import GridProgress

    runs = {"a1": "xnli", "a2": "xnli", "c1": "xnli", "b1": "xquad", "b2": "xquad", "c2": "xquad"}
    grid = GridProgress(6, enabled=False, runs=runs, stages={"s1": "mnli", "s2": "mnli", "s3": "squad"})
    assert grid.eta_seconds() is None and "ETA" not in grid.line()  # nothing measured yet
    grid.stage_finished("s1", 100.0)  # s2 like s1; s3 (squad) and every run: the only mean there is
    assert grid.eta_seconds() == pytest.approx(2 * 100 + 6 * 100)
    grid.update("done", "a1", 10.0)  # runs now from runs: 5 x 10
    assert grid.eta_seconds() == pytest.approx(200 + 5 * 10)
    grid.update("done", "b1", 40.0)  # xnli runs 10 each, xquad runs 40 each
    assert grid.eta_seconds() == pytest.approx(200 + 2 * 10 + 2 * 40)
    assert grid.line().endswith("ETA 5.0 min")
    grid.update("failed", "b2")  # finished, not measured
    grid.stage_finished("unknown", 5.0)  # not pending here: ignored
    assert grid.eta_seconds() == pytest.approx(200 + 2 * 10 + 40)
    pool = GridProgress(2, enabled=False, runs={"x": "xnli", "y": "xnli"}, workers=2)
    pool.update("done", "x", 60.0)
    assert pool.eta_seconds() == pytest.approx(30.0)


def test_run_exits_non_zero_while_a_run_is_busy(tiny_encoder, tiny_data, tmp_path, capsys):
    """`xitt run` once exited 0 with busy runs: a script could not tell a finished grid from a partial one."""
    from xitt.cli import main

    doc = {
        "experiment": "t",
        "encoders": [{"name": "tiny", "path": str(tiny_encoder)}],
        "intermediates": ["none"],
        "targets": ["tiny_cls", "tiny_ner"],
        "seeds": [1],
        "data_dir": str(tiny_data),
        "train": {"epochs": 1},
    }
    exp = tmp_path / "t"
    exp.mkdir()
    (exp / "grid.yaml").write_text(yaml.safe_dump(doc))
    busy = expand_grid(parse_grid(doc))[1][1]
    run_dir(exp, busy.run_id).mkdir()
    from xitt.run.store import Claim

    claim = Claim(run_dir(exp, busy.run_id))
    assert claim.acquire()  # a live worker (this process) owns it
    assert main(["run", str(exp), "--quiet"]) == 1
    assert (
        capsys.readouterr()
        .out.strip()
        .splitlines()[-1]
        .endswith("1 done, 1 running, 0 failed, 0 corrupt, 0 pending")
    )
    claim.release()
    assert main(["run", str(exp), "--quiet"]) == 0
    assert (
        capsys.readouterr()
        .out.strip()
        .splitlines()[-1]
        .endswith("2 done, 0 running, 0 failed, 0 corrupt, 0 pending")
    )


def test_an_unwritable_run_folder_fails_that_run_and_the_grid_goes_on(tiny_encoder, tiny_data, tmp_path):
    """One run folder that cannot be written once aborted the whole grid with a traceback.

    (Tests run as root, which ignores permission bits: a plain file where the folder should be
    makes every write into it fail the same way.)"""
    grid = make_grid(tiny_encoder, tiny_data, intermediates=["none"], targets=["tiny_cls", "tiny_ner"])
    blocked, other = expand_grid(grid)[1]
    tmp_path.mkdir(exist_ok=True)
    run_dir(tmp_path, blocked.run_id).write_text("not a folder")
    summary = execute(grid, exp_dir=tmp_path, progress=False)
    assert summary["ran"] == 2 and summary["done"] == 1, summary
    assert read_result(run_dir(tmp_path, other.run_id)).status == "done"


def test_a_damaged_checkpoint_is_retrained_and_leftovers_are_removed(tiny_encoder, tiny_data, tmp_path):
    """A checkpoint missing its weights once failed every dependent run on every re-run; a checkpoint
    whose runs are all done once stayed on disk for good when its worker died before cleaning up."""
    grid = make_grid(tiny_encoder, tiny_data, targets=["tiny_cls"], keep_checkpoints=True)
    stages, runs = expand_grid(grid)
    ckpt = checkpoint_path(grid, tmp_path, stages[0].stage_id)
    execute(grid, exp_dir=tmp_path, progress=False)
    weights = next(ckpt.glob("*.safetensors"))
    weights.unlink()
    rerun = next(r for r in runs if r.stage is not None)
    (run_dir(tmp_path, rerun.run_id) / "result.json").unlink()
    summary = execute(grid, exp_dir=tmp_path, progress=False)
    assert summary["stages_trained"] == 1 and summary["done"] == 2 and weights.is_file()
    # Same grid without keep_checkpoints, nothing left to run: the leftover checkpoint goes.
    assert (
        execute(make_grid(tiny_encoder, tiny_data, targets=["tiny_cls"]), exp_dir=tmp_path, progress=False)[
            "ran"
        ]
        == 0
    )
    assert not ckpt.exists()


def test_a_failed_stage_records_its_runs_failed_without_starting_them(
    tiny_encoder, tiny_data, tmp_path, monkeypatch
):
    """A failed stage once 'ran' each of its dependants only to record the failure (on SLURM: a GPU
    job each). Now its runs are recorded failed with the stage's error and never started."""
    import xitt.train.chain

    started = []
    real = xitt.train.chain.run_target

    def counting(run, *args, **kwargs):
        started.append(run.run_id)
        return real(run, *args, **kwargs)

    def broken_stage(*args, **kwargs):
        raise RuntimeError("the stage's data is broken")

    monkeypatch.setattr(xitt.train.chain, "run_target", counting)
    monkeypatch.setattr(xitt.train.chain, "train_stage", broken_stage)
    grid = make_grid(tiny_encoder, tiny_data, targets=["tiny_cls", "tiny_ner"])
    summary = execute(grid, exp_dir=tmp_path, progress=False)
    assert summary["done"] == 2 and summary["failed"] == 2 and summary["stages_trained"] == 0
    runs = expand_grid(grid)[1]
    assert sorted(started) == sorted(r.run_id for r in runs if r.stage is None)
    for run in (r for r in runs if r.stage is not None):
        result = read_result(run_dir(tmp_path, run.run_id))
        assert result.status == "failed"
        assert result.error.endswith("is not available: RuntimeError: the stage's data is broken")


def test_plan_prints_the_peak_disk_of_the_stage_checkpoints(tiny_encoder, tiny_data, tmp_path):
    from xitt.run.disk import describe_disk, folder_bytes, human

    grid = make_grid(tiny_encoder, tiny_data, targets=["tiny_cls"], seeds=[1, 2])
    stages = expand_grid(grid)[0]
    line = describe_disk(grid, stages, tmp_path, {})  # local, one worker: one checkpoint at a time
    assert (
        f"peak {human(folder_bytes(tiny_encoder))} " in line
        and "(1 at once, one at a time)" in line
        and "(folder)" in line
    )
    # one job trains at a time: one resume state of ~4 x the checkpoint (weights, AdamW, best weights)
    assert f"plus resume states up to {human(4 * folder_bytes(tiny_encoder))} (1 training at once" in line
    slurm = make_grid(tiny_encoder, tiny_data, targets=["tiny_cls"], seeds=[1, 2], executor={"kind": "slurm"})
    line = describe_disk(slurm, stages, tmp_path, {stages[0].stage_id: "done"})
    assert "(1 at once, pending stages train first)" in line  # the done stage's checkpoint is gone
    assert "(32 training at once" in line  # executor.slurm.max_jobs
    kept = make_grid(tiny_encoder, tiny_data, targets=["tiny_cls"], seeds=[1, 2], keep_checkpoints=True)
    execute(kept, exp_dir=tmp_path, progress=False)
    ckpt = checkpoint_path(kept, tmp_path, stages[0].stage_id)
    line = describe_disk(kept, stages, tmp_path, {s.stage_id: "done" for s in stages})
    assert f"peak {human(2 * folder_bytes(ckpt))} " in line and "(2 at once, kept)" in line
    assert "(measured)" in line and str(ckpt.parent) in line


def test_a_cuda_oom_halves_the_micro_batch_and_doubles_accumulation(
    tiny_encoder, tiny_data, tmp_path, monkeypatch
):
    """A simulated GPU with room for 8 training examples per forward: a stage and a run asked for
    micro-batches of 16 finish with 8 x 2, the same optimizer steps, under their own ids."""
    import torch

    import xitt.train.heads

    grid = make_grid(tiny_encoder, tiny_data, targets=["tiny_cls"], train={"epochs": 1, "batch_size": 16})
    execute(grid, exp_dir=tmp_path / "roomy", progress=False)
    real = xitt.train.heads.Head.forward
    sizes = []

    def small_gpu(self, encoder, batch):
        sizes.append(len(batch["input_ids"]))
        if self.training and len(batch["input_ids"]) > 8:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (simulated)")
        return real(self, encoder, batch)

    monkeypatch.setattr(xitt.train.heads.Head, "forward", small_gpu)
    summary = execute(grid, exp_dir=tmp_path / "small", progress=False)
    assert summary["done"] == 2 and summary["failed"] == 0 and 16 in sizes
    stage, runs = expand_grid(grid)[0][0], expand_grid(grid)[1]
    record = json.loads((tmp_path / "small" / "stages" / stage.stage_id / "stage.json").read_text())
    assert record["memory"] == {
        "oom_retries": 1,
        "batch_size": {"tiny_nli": 8},
        "grad_accum": {"tiny_nli": 2},
        "eval_batch_size": {"tiny_nli": stage.train["tiny_nli"].eval_batch_size // 2},
    }
    assert record["spec"]["train"]["tiny_nli"]["batch_size"] == 16  # the grid's setting, as asked
    for run in runs:
        small = read_result(run_dir(tmp_path / "small", run.run_id))
        roomy = read_result(run_dir(tmp_path / "roomy", run.run_id))
        assert small.run_id == run.run_id and small.spec["target_train"]["batch_size"] == 16
        assert small.extra["memory"]["batch_size"] == {"tiny_cls": 8}
        assert small.extra["memory"]["grad_accum"] == {"tiny_cls": 2}
        assert small.extra["steps"] == roomy.extra["steps"]  # same effective batch, same steps
        assert "memory" not in roomy.extra


def test_the_pool_records_a_failed_stages_runs_failed_without_starting_them(
    tiny_encoder, tiny_data, tmp_path
):
    """The stage cannot save its checkpoint (checkpoint_dir is a file), in spawned pool workers."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the checkpoints should go\n")
    grid = make_grid(tiny_encoder, tiny_data, targets=["tiny_cls"], checkpoint_dir=str(blocker))
    summary = execute(grid, exp_dir=tmp_path / "exp", progress=False, workers=2)
    assert summary["done"] == 1 and summary["failed"] == 1 and summary["stages_trained"] == 0
    staged = next(r for r in expand_grid(grid)[1] if r.stage is not None)
    log = (run_dir(tmp_path / "exp", staged.run_id) / "train.log").read_text()
    assert "not started: intermediate stage" in log and ": start" not in log


def test_a_stage_another_worker_trains_is_not_waited_for(tiny_encoder, tiny_data, tmp_path):
    """Its runs are left for the next `xitt run` (busy) instead of a worker waiting on the claim."""
    from xitt.run.store import Claim, stage_dir

    grid = make_grid(tiny_encoder, tiny_data, targets=["tiny_cls"])
    stage = expand_grid(grid)[0][0]
    claim = Claim(stage_dir(tmp_path, stage.stage_id))
    assert claim.acquire()  # a live worker (this process) trains it
    summary = execute(grid, exp_dir=tmp_path, progress=False)
    assert summary["done"] == 1 and summary["busy"] == 1 and summary["stages_trained"] == 0
    claim.release()
    assert execute(grid, exp_dir=tmp_path, progress=False)["done"] == 2


@pytest.mark.parametrize(
    "squeue, claimed",
    [
        ("echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1", False),  # purged
        ("exit 0", False),  # ended: squeue lists only queued and running jobs (slurm 22.05, measured)
        ("echo RUNNING", True),
        (None, True),  # no squeue here: only the claim's age counts
    ],
)
def test_a_claim_of_a_slurm_job_that_ended_on_another_node_is_stale(tmp_path, monkeypatch, squeue, claimed):
    """A cancelled stage job on another node once blocked its stage for STALE_AFTER_S (6 h)."""
    from xitt.run.store import is_claimed

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if squeue is not None:
        (bin_dir / "squeue").write_text(f'#!/bin/sh\n[ "$3" = 4242 ] || exit 2\n{squeue}\n')
        (bin_dir / "squeue").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    folder = tmp_path / "stage"
    folder.mkdir()
    (folder / "claim").write_text(json.dumps({"host": "gpu-node-7", "pid": 1, "slurm_job_id": "4242"}))
    assert is_claimed(folder) is claimed
