"""The SLURM executor for real: a single-node Slurm cluster (../shared/slurm), a tiny grid through submitit."""

import dataclasses
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CANDIDATES = [
    REPO.parent / "shared" / "slurm" / "start-local-slurm.sh",
    Path("/work/shared/slurm/start-local-slurm.sh"),
]


def _script() -> Path | None:
    return next((p for p in CANDIDATES if p.is_file()), None)


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    script = _script()
    if script is None:
        pytest.skip(f"no start-local-slurm.sh at {[str(p) for p in CANDIDATES]}")
    if os.geteuid() != 0:
        pytest.skip("the local Slurm cluster needs root (it starts munged/slurmctld/slurmd)")
    if shutil.which("apt-get") is None and shutil.which("slurmctld") is None:
        pytest.skip("neither slurmctld nor apt-get to install it")
    # munged wants every parent of its socket executable by all: pytest's tmp folders are 0700.
    state = Path(tempfile.mkdtemp(prefix="xitt-slurm-", dir="/tmp"))
    state.chmod(0o755)
    started = subprocess.run(
        ["bash", str(script), "start", str(state)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )
    if started.returncode != 0:
        # On a developer's machine a cluster that will not start is skipped; in CI it is a failure.
        (pytest.fail if os.environ.get("CI") else pytest.skip)(
            f"could not start the local Slurm cluster: {started.stderr[-500:]}"
        )
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(state / "etc" / "slurm.conf")
    try:
        yield state
    finally:
        subprocess.run(
            ["bash", str(script), "stop", str(state)],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=120,
        )
        shutil.rmtree(state, ignore_errors=True)
        if old is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = old


def slurm_grid(tiny_encoder, tiny_data, **extra):
    from xitt.grid.spec import parse_grid

    slurm = {"partition": "debug", "gpus_per_node": 0, "cpus_per_task": 1, "mem_gb": 1, "timeout_min": 10}
    return parse_grid(
        {
            "experiment": "slurm",
            "encoders": [{"name": "tiny", "path": str(tiny_encoder)}],
            "intermediates": ["none", "tiny_nli"],
            "targets": ["tiny_cls"],
            "seeds": [1],
            "data_dir": str(tiny_data),
            "train": {"epochs": 1},
            "executor": {"kind": "slurm", "slurm": {**slurm, "max_jobs": 1}},
            **extra,
        }
    )


def sacct(ids) -> dict[str, dict[str, str]]:
    """JobID -> {State, Start, End} from the cluster's accounting (slurmdbd)."""
    out = subprocess.run(
        ["sacct", "-X", "-n", "-P", "-j", ",".join(ids), "-o", "JobID,JobName,State,Start,End"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = [line.split("|") for line in out.splitlines() if line]
    return {r[0]: {"name": r[1], "state": r[2].split()[0], "start": r[3], "end": r[4]} for r in rows}


def jobs_of(exp) -> dict[str, str]:
    return json.loads((exp / "slurm" / "jobs.json").read_text())


@pytest.mark.slow
def test_tiny_grid_on_slurm(slurm_cluster, tiny_encoder, tiny_data, tmp_path):
    """One stage, its run and a none run under max_jobs: 1; a second `xitt run` while they are queued
    submits nothing; the stage checkpoint is removed by a cleanup job once its run is done."""
    from xitt.grid.spec import expand_grid
    from xitt.run.executors import execute
    from xitt.run.store import read_result, run_dir

    ckpts = tmp_path / "ckpt"
    grid = slurm_grid(tiny_encoder, tiny_data, checkpoint_dir=str(ckpts))
    exp = tmp_path / "exp"
    first = execute(grid, exp_dir=exp, progress=False, wait=False)
    assert first["submitted"] == 4  # stage, its run, the none run, the stage's cleanup
    ids = list(jobs_of(exp).values())
    subprocess.run(["scontrol", "hold", ",".join(ids)], capture_output=True)  # running ones refuse: fine
    again = execute(grid, exp_dir=exp, progress=False, wait=False)
    assert again["submitted"] == 0 and again["queued"] >= 3, again
    subprocess.run(["scontrol", "release", ",".join(ids)], capture_output=True, check=True)
    summary = execute(grid, exp_dir=exp, progress=False)  # waits for the queued jobs, submits none
    assert summary["submitted"] == 0 and summary["done"] == 2 and summary["failed"] == 0, summary
    assert summary["stages_trained"] == 1 and summary["checkpoints_removed"] == 1
    assert ckpts.is_dir() and not any(ckpts.iterdir()), "the cleanup job removed the stage checkpoint"
    for run in expand_grid(grid)[1]:
        result = read_result(run_dir(exp, run.run_id))
        assert result.status == "done" and set(result.scores) == {"en", "de"}
    jobs = jobs_of(exp)
    acct = sacct(jobs.values())
    slots = sorted(
        (acct[j]["start"], acct[j]["end"]) for k, j in jobs.items() if not k.startswith("cleanup:")
    )
    assert len(slots) == 3 and all(a[1] <= b[0] for a, b in zip(slots, slots[1:])), f"max_jobs 1: {slots}"
    assert execute(grid, exp_dir=exp, progress=False)["submitted"] == 0


@pytest.mark.slow
def test_a_failed_stage_starts_none_of_its_runs_on_slurm(slurm_cluster, tiny_encoder, tiny_data, tmp_path):
    """The stage cannot save its checkpoint (checkpoint_dir is a file): its job fails, SLURM cancels the
    dependent run without starting it (afterok + kill_on_invalid_dep), the run records the stage's error."""
    from xitt.grid.spec import expand_grid
    from xitt.run.executors import execute
    from xitt.run.store import read_result, run_dir

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the checkpoints should go\n")
    grid = slurm_grid(tiny_encoder, tiny_data, checkpoint_dir=str(blocker))
    exp = tmp_path / "exp"
    summary = execute(grid, exp_dir=exp, progress=False)
    assert summary["done"] == 1 and summary["failed"] == 1 and summary["stages_trained"] == 0, summary
    staged = next(r for r in expand_grid(grid)[1] if r.stage is not None)
    result = read_result(run_dir(exp, staged.run_id))
    assert result.status == "failed" and f"stage {staged.stage.stage_id} is not available" in result.error
    jobs = jobs_of(exp)
    acct = sacct(jobs.values())
    assert acct[jobs[f"stage:{staged.stage.stage_id}"]]["state"] == "FAILED"
    run_job = acct[jobs[f"run:{staged.run_id}"]]
    # Cancelled while pending: sacct shows no start, or (Slurm 22.05, under load) start = end = the
    # cancel time; either way the job wrote no output, so it never ran.
    assert run_job["state"] == "CANCELLED", run_job
    assert run_job["start"] in ("None", "Unknown", run_job["end"]), run_job
    job_id = jobs[f"run:{staged.run_id}"]
    assert not list((exp / "slurm").glob(f"{job_id}/*_log.out")), "the cancelled run job produced output"


@pytest.mark.slow
def test_a_stage_job_signalled_usr2_saves_requeues_and_resumes(
    slurm_cluster, tiny_encoder, tiny_data, tmp_path
):
    """`scancel --signal=USR2` (what `--signal=USR2@90` sends before the time limit) to a training stage
    job: it saves its resume state, submitit requeues it, the requeued job goes on from that step; the
    grid ends with the scores of a local, uninterrupted run."""
    import time

    from xitt.grid.spec import expand_grid
    from xitt.run.executors import execute
    from xitt.run.store import collect

    train = {"epochs": 40, "select_on": "last", "resume_every_min": 1e-9}  # seconds of training
    grid = slurm_grid(tiny_encoder, tiny_data, checkpoint_dir=str(tmp_path / "ckpt"), train=train)
    stage = expand_grid(grid)[0][0]
    exp = tmp_path / "exp"
    execute(grid, exp_dir=exp, progress=False, wait=False)
    job = jobs_of(exp)[f"stage:{stage.stage_id}"]
    state = tmp_path / "ckpt" / "resume" / stage.stage_id / "resume.json"
    deadline = time.time() + 240
    while not state.exists() and time.time() < deadline:
        time.sleep(0.05)
    assert state.exists(), "the stage job never saved a resume state"
    subprocess.run(["scancel", "--signal=USR2", job], check=True)
    summary = execute(grid, exp_dir=exp, progress=False)  # waits for the queued (requeued) jobs
    assert summary["done"] == 2 and summary["failed"] == 0 and summary["submitted"] == 0, summary
    log = (exp / "stages" / stage.stage_id / "train.log").read_text()
    assert "resumed at step" in log and not (tmp_path / "ckpt" / "resume").exists()
    out = "\n".join(p.read_text() for p in (exp / "slurm").glob(f"{job}/*_log.*"))
    assert "Requeued job" in out or "requeue" in out.lower(), out[-2000:]
    local = dataclasses.replace(grid, executor=dataclasses.replace(grid.executor, kind="local"))
    execute(local, exp_dir=tmp_path / "local", progress=False)
    ids = [r.run_id for r in expand_grid(grid)[1]]
    (a, _), (b, _) = collect(exp, ids), collect(tmp_path / "local", ids)
    keys = ["run_id", "language", "metric"]
    assert (
        a.sort_values(keys)[[*keys, "score"]]
        .reset_index(drop=True)
        .equals(b.sort_values(keys)[[*keys, "score"]].reset_index(drop=True))
    )


def fake_slurm(folder: Path, monkeypatch) -> Path:
    """sbatch that keeps each job script and answers as sbatch does; squeue that lists every kept job
    as RUNNING. Enough to read what xitt submits, without a cluster."""
    bin_dir = folder / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(
        "#!/bin/sh\n"
        f"n=$(ls {folder}/job-*.sh 2>/dev/null | wc -l); n=$((n + 100))\n"
        f'cp "$1" {folder}/job-$n.sh\necho "Submitted batch job $n"\n'
    )
    (bin_dir / "squeue").write_text(
        f'#!/bin/sh\nfor f in {folder}/job-*.sh; do n=${{f##*job-}}; echo "${{n%.sh}} RUNNING"; done\n'
    )
    for tool in ("sbatch", "squeue"):
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return folder


def test_every_job_takes_one_of_max_jobs_slots_and_queued_jobs_are_not_resubmitted(
    tiny_encoder, tiny_data, tmp_path, monkeypatch
):
    import re

    from xitt.grid.spec import expand_grid
    from xitt.run import slurm

    (tmp_path / "sbatch").mkdir()
    scripts = fake_slurm(tmp_path / "sbatch", monkeypatch)
    grid = slurm_grid(tiny_encoder, tiny_data, seeds=[1, 2])
    options = dataclasses.replace(grid.executor.slurm, max_jobs=2, gpus_per_node=1)
    grid = dataclasses.replace(grid, executor=dataclasses.replace(grid.executor, slurm=options))
    stages, runs = expand_grid(grid)
    exp = tmp_path / "exp"
    ckpt = {s.stage_id: tmp_path / "ckpt" / s.stage_id for s in stages}
    deps = {s.stage_id: [r for r in runs if r.stage and r.stage.stage_id == s.stage_id] for s in stages}
    sub = slurm.submit(grid, exp, stages, ckpt, runs, stages, deps)
    assert len(sub.jobs) == 8  # 2 stages, 2 none runs, 2 staged runs, 2 cleanups
    heads = {
        key: dict(re.findall(r"#SBATCH --([\w-]+)=(\S+)", (scripts / f"job-{job.job_id}.sh").read_text()))
        for key, job in sub.jobs.items()
    }
    slotted = [h for k, h in heads.items() if not k.startswith("cleanup:")]
    assert sorted(h["job-name"] for h in slotted) == ["xitt-slurm-0"] * 3 + ["xitt-slurm-1"] * 3
    assert all(h["dependency"].endswith("singleton") and h["kill-on-invalid-dep"] == "yes" for h in slotted)
    assert all(h["gpus-per-node"] == "1" for h in slotted)
    assert all(h["signal"] == "USR2@90" for h in slotted)  # preemption: save the resume state, requeue
    for stage in stages:
        stage_job = sub.jobs[f"stage:{stage.stage_id}"].job_id
        (run,) = deps[stage.stage_id]
        assert heads[f"run:{run.run_id}"]["dependency"] == f"afterok:{stage_job},singleton"
        cleanup = heads[f"cleanup:{stage.stage_id}"]
        assert cleanup["dependency"] == f"afterany:{sub.jobs[f'run:{run.run_id}'].job_id}:{stage_job}"
        assert "gpus-per-node" not in cleanup and cleanup["cpus-per-task"] == "1"
    again = slurm.submit(grid, exp, stages, ckpt, runs, stages, deps)  # squeue lists all 8 as running
    assert not again.jobs and len(again.live) == 8


def test_no_wait_submits_and_returns(tiny_encoder, tiny_data, tmp_path, monkeypatch, capsys):
    """`xitt run --no-wait` on SLURM: the jobs are submitted and recorded, nothing waits for them; a second
    call submits none again. Locally --no-wait is a mistake, said before anything runs."""
    import yaml

    from xitt.cli import main

    (tmp_path / "sbatch").mkdir()
    scripts = fake_slurm(tmp_path / "sbatch", monkeypatch)
    exp = tmp_path / "nowait"
    exp.mkdir()
    slurm = {"partition": "debug", "gpus_per_node": 0, "cpus_per_task": 1, "mem_gb": 1, "timeout_min": 10}
    doc = {
        "experiment": "nowait",
        "encoders": [{"name": "tiny", "path": str(tiny_encoder)}],
        "intermediates": ["none", "tiny_nli"],
        "targets": ["tiny_cls"],
        "seeds": [1],
        "data_dir": str(tiny_data),
        "executor": {"kind": "slurm", "slurm": slurm},
    }
    (exp / "grid.yaml").write_text(yaml.safe_dump(doc))
    cmd = ["run", str(exp / "grid.yaml"), "--offline", "--quiet", "--no-wait"]
    assert main(cmd) == 0
    out = capsys.readouterr()
    assert "submitted=4 queued=0" in out.out and "xitt status" in out.err
    assert len(jobs_of(exp)) == 4 and len(list(scripts.glob("job-*.sh"))) == 4
    assert main(cmd) == 0 and "submitted=0 queued=4" in capsys.readouterr().out  # squeue: all running
    assert main([*cmd, "--executor", "local"]) == 2
    assert "--no-wait applies to the slurm executor only" in capsys.readouterr().err
    assert len(list(scripts.glob("job-*.sh"))) == 4
