"""`xitt run` preempted for real: SIGTERM mid-run, then SIGUSR2 mid-stage, then `xitt run` again gives
the scores, dev scores and stage dev scores of an uninterrupted grid, bit for bit."""

import json
import signal
import subprocess
import sys
import time

import pytest
import yaml

from xitt.grid.spec import expand_grid, load_grid
from xitt.run.executors import checkpoint_root, execute
from xitt.run.store import collect, read_result, run_dir


def _write_grid(folder, encoder, data):
    folder.mkdir(parents=True)
    doc = {
        "experiment": folder.name,
        "encoders": [{"name": "tiny", "path": str(encoder)}],
        "intermediates": ["none", "tiny_nli"],
        "targets": ["tiny_cls"],
        "seeds": [1],
        "data_dir": str(data),
        # 15 epochs: seconds of training per stage and run; a resume state at every step; the last
        # weights (not the best dev ones, which may predate the signal) make the scores
        "train": {"epochs": 15, "select_on": "last", "resume_every_min": 1e-9},
    }
    (folder / "grid.yaml").write_text(yaml.safe_dump(doc))
    return folder / "grid.yaml"


def _interrupt(cmd, state_file, signum) -> subprocess.CompletedProcess:
    """Start `xitt run`, send ``signum`` once ``state_file`` (a resume state) exists, wait for the exit."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 180
    while not state_file.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, f"`xitt run` ended before {state_file} was saved"
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _outcome(exp, grid):
    runs = expand_grid(grid)[1]
    frame, _ = collect(exp, [r.run_id for r in runs])
    frame = frame.sort_values(["run_id", "language", "metric"]).reset_index(drop=True)
    results = {r.run_id: read_result(run_dir(exp, r.run_id)) for r in runs}
    dev = {k: (v.dev_scores, v.extra["stage_dev_scores"], v.extra["steps"]) for k, v in results.items()}
    return frame[["run_id", "language", "metric", "score"]], json.dumps(dev, sort_keys=True)


@pytest.mark.slow
def test_sigterm_then_sigusr2_then_run_again_gives_the_uninterrupted_scores(
    tiny_encoder, tiny_data, tmp_path
):
    exp = tmp_path / "preempted"
    grid_file = _write_grid(exp, tiny_encoder, tiny_data)
    grid = load_grid(grid_file)
    stages, runs = expand_grid(grid)
    none_run = next(r for r in runs if r.stage is None)
    resume = checkpoint_root(grid, exp) / "resume"
    cmd = [sys.executable, "-m", "xitt.cli", "run", str(grid_file), "--offline", "--quiet"]

    first = _interrupt(cmd, resume / none_run.run_id / "resume.json", signal.SIGTERM)  # mid-run
    assert first.returncode == 128 + signal.SIGTERM, first.stderr[-2000:]
    assert "preempted by SIGTERM" in first.stderr and (resume / none_run.run_id / "state.pt").exists()
    assert not list(exp.glob("*/result.json")) and not list(exp.glob("*/claim"))  # pending, released

    second = _interrupt(cmd, resume / stages[0].stage_id / "resume.json", signal.SIGUSR2)  # mid-stage
    assert second.returncode == 128 + signal.SIGUSR2, second.stderr[-2000:]
    assert (exp / none_run.run_id / "result.json").exists()  # the resumed run finished first
    assert not (resume / none_run.run_id).exists()  # and deleted its resume state
    assert not (exp / "stages" / stages[0].stage_id / "stage.json").exists()

    third = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert third.returncode == 0, third.stderr[-2000:]
    assert not resume.exists()  # every resume state deleted once its stage or run ended
    for folder in (run_dir(exp, none_run.run_id), exp / "stages" / stages[0].stage_id):
        log = (folder / "train.log").read_text()
        assert "resumed at step" in log and "resumed at step 0 " not in log

    orphan = resume / none_run.run_id / "state.pt"  # left by a worker killed after its result
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"left over")
    assert subprocess.run(cmd, capture_output=True, timeout=300).returncode == 0 and not resume.exists()

    reference = tmp_path / "reference"
    _write_grid(reference, tiny_encoder, tiny_data)
    execute(load_grid(reference / "grid.yaml"), exp_dir=reference, progress=False)
    scores, dev = _outcome(exp, grid)
    clean_scores, clean_dev = _outcome(reference, load_grid(reference / "grid.yaml"))
    assert len(scores) == len(clean_scores) > 0 and scores.equals(clean_scores)
    assert dev == clean_dev


@pytest.mark.slow
def test_pool_workers_save_their_states_on_sigterm_to_xitt_run(tiny_encoder, tiny_data, tmp_path):
    """`--workers 2`: a SIGTERM to `xitt run` alone reaches the workers training the `none` run and the
    stage; each saves its state; the next `xitt run` (serial) ends with the uninterrupted scores."""
    exp = tmp_path / "pool"
    grid_file = _write_grid(exp, tiny_encoder, tiny_data)
    grid = load_grid(grid_file)
    stages, runs = expand_grid(grid)
    none_run = next(r for r in runs if r.stage is None)
    resume = checkpoint_root(grid, exp) / "resume"
    cmd = [sys.executable, "-m", "xitt.cli", "run", str(grid_file), "--offline", "--quiet"]
    deadline = time.time() + 180
    proc = subprocess.Popen(
        [*cmd, "--workers", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    states = [resume / none_run.run_id / "resume.json", resume / stages[0].stage_id / "resume.json"]
    while not all(s.exists() for s in states) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "`xitt run --workers 2` ended before both workers saved a state"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert all(s.exists() for s in states) and not list(exp.glob("*/result.json"))
    assert not list(exp.glob("*/claim")) and not list(exp.glob("stages/*/claim"))

    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert not resume.exists()
    for folder in (run_dir(exp, none_run.run_id), exp / "stages" / stages[0].stage_id):
        assert "resumed at step" in (folder / "train.log").read_text()
    reference = tmp_path / "reference"
    _write_grid(reference, tiny_encoder, tiny_data)
    execute(load_grid(reference / "grid.yaml"), exp_dir=reference, progress=False)
    assert _outcome(exp, grid)[1] == _outcome(reference, load_grid(reference / "grid.yaml"))[1]
    assert _outcome(exp, grid)[0].equals(_outcome(reference, load_grid(reference / "grid.yaml"))[0])
