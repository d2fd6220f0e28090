"""The SLURM executor for real: a single-node Slurm cluster (../shared/slurm), a tiny grid through submitit."""

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


@pytest.mark.slow
def test_tiny_grid_on_slurm(slurm_cluster, tiny_encoder, tiny_data, tmp_path):
    from xitt.grid.spec import expand_grid, parse_grid
    from xitt.run.executors import execute
    from xitt.run.store import read_result, run_dir

    grid = parse_grid(
        {
            "experiment": "slurm",
            "encoders": [{"name": "tiny", "path": str(tiny_encoder)}],
            "intermediates": ["none", "tiny_nli"],
            "targets": ["tiny_cls"],
            "seeds": [1],
            "data_dir": str(tiny_data),
            "train": {"epochs": 1},
            "executor": {
                "kind": "slurm",
                "slurm": {
                    "partition": "debug",
                    "gpus_per_node": 0,
                    "cpus_per_task": 1,
                    "mem_gb": 1,
                    "timeout_min": 10,
                },
            },
        }
    )
    exp = tmp_path / "exp"
    summary = execute(grid, exp_dir=exp, progress=False)
    assert summary["done"] == 2 and summary["failed"] == 0 and summary["stages_trained"] == 1
    assert summary["submitted"] == 3  # 1 stage job + 1 dependent run + 1 none run
    for run in expand_grid(grid)[1]:
        result = read_result(run_dir(exp, run.run_id))
        assert result.status == "done" and set(result.scores) == {"en", "de"}
    assert list((exp / "slurm").iterdir()), "submitit logs live under <exp>/slurm/"
    assert execute(grid, exp_dir=exp, progress=False)["ran"] == 0
