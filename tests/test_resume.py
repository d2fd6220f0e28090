"""SIGKILL `xitt run` in the middle of a grid, run it again: the same scores, no run lost or duplicated."""

import signal
import subprocess
import sys
import time

import pytest
import yaml

from xitt.grid.spec import expand_grid, load_grid
from xitt.run.executors import execute
from xitt.run.store import collect


def _write_grid(folder, encoder, data):
    folder.mkdir(parents=True)
    doc = {
        "experiment": folder.name,
        "encoders": [{"name": "tiny", "path": str(encoder)}],
        "intermediates": ["none", "tiny_nli"],
        "targets": ["tiny_cls", "tiny_ner", "tiny_qa"],
        "seeds": [1, 2],
        "data_dir": str(data),
        "train": {"epochs": 3},
    }
    (folder / "grid.yaml").write_text(yaml.safe_dump(doc))
    return folder / "grid.yaml"


def _frame(exp, grid):
    frame, _ = collect(exp, [r.run_id for r in expand_grid(grid)[1]])
    return frame.sort_values(["run_id", "language", "metric"]).reset_index(drop=True)


@pytest.mark.slow
def test_sigkill_mid_grid_then_resume(tiny_encoder, tiny_data, tmp_path):
    exp = tmp_path / "killed"
    grid_file = _write_grid(exp, tiny_encoder, tiny_data)
    cmd = [sys.executable, "-m", "xitt.cli", "run", str(grid_file), "--offline", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while len(list(exp.glob("*/result.json"))) < 3 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    grid = load_grid(grid_file)
    runs = expand_grid(grid)[1]
    finished = len(list(exp.glob("*/result.json")))
    assert 0 < finished < len(runs), f"the kill should land mid-grid ({finished} of {len(runs)} done)"

    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"skipped={finished}" in again.stdout

    reference = tmp_path / "reference"
    _write_grid(reference, tiny_encoder, tiny_data)
    execute(load_grid(reference / "grid.yaml"), exp_dir=reference, progress=False)
    killed, clean = _frame(exp, grid), _frame(reference, load_grid(reference / "grid.yaml"))
    assert len(killed) == len(clean) and set(killed.run_id) == {r.run_id for r in runs}
    assert killed[["run_id", "language", "metric", "score"]].equals(
        clean[["run_id", "language", "metric", "score"]]
    )
    for run in runs:  # each run finished exactly once (a killed attempt never reached "done")
        assert (exp / run.run_id / "train.log").read_text().count(": done {") == 1
    assert not list(exp.glob("*/claim")) and not list(exp.glob("checkpoints/*"))


@pytest.mark.slow
def test_pool_workers_die_with_their_parent(tiny_encoder, tiny_data, tmp_path):
    """Killing only the parent of `--workers 2` once left the pool workers alive and idle for minutes."""
    import psutil

    exp = tmp_path / "orphans"
    grid_file = _write_grid(exp, tiny_encoder, tiny_data)
    cmd = [sys.executable, "-m", "xitt.cli", "run", str(grid_file), "--offline", "--quiet", "--workers", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parent = psutil.Process(proc.pid)
    deadline = time.time() + 120
    while len(parent.children(recursive=True)) < 2 and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # workers past their initializer
    workers = parent.children(recursive=True)
    assert workers, "the pool never started"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    gone, alive = psutil.wait_procs(workers, timeout=30)
    assert not alive, f"{len(alive)} pool worker(s) outlived their parent"
