"""A normal (non-editable) install works outside the checkout: the wheel carries the task YAMLs and the
report templates, and `xitt report` renders the committed demo from it."""

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_a_built_wheel_renders_the_demo_report(tmp_path):
    # Built from a copy: a stale build/ folder in the checkout could carry files the source no longer ships.
    source = tmp_path / "source"
    skip = shutil.ignore_patterns(".*", "build", "*.egg-info", "runs", "tests", "__pycache__")
    shutil.copytree(ROOT, source, ignore=skip)
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            str(source),
            "-w",
            wheels,
        ],
        check=True,
        cwd=tmp_path,
    )
    (wheel,) = wheels.glob("xitt-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    # The dependencies come from this environment (no network here); xitt itself only from the wheel.
    site = next((env_dir / "lib").glob("python*/site-packages"))
    deps = next(p for p in map(Path, sys.path) if p.name == "site-packages" and (p / "jinja2").is_dir())
    (site / "deps.pth").write_text(f"{deps}\n")
    python = env_dir / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True, cwd=tmp_path)
    # Nothing may reach the checkout: no PYTHONPATH (a developer's worktree setting) in the new venv.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    exp = tmp_path / "demo"
    shutil.copytree(ROOT / "runs" / "demo", exp, ignore=shutil.ignore_patterns("report", "analysis"))
    where = subprocess.run(
        [python, "-c", "import xitt, analysis; print(xitt.__file__); print(analysis.__file__)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
        env=env,
    ).stdout.split()
    assert all(path.startswith(str(site)) for path in where), where
    proc = subprocess.run(
        [env_dir / "bin" / "xitt", "report", str(exp)], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (exp / "report" / "report.html").stat().st_size > 10_000
    assert (exp / "report" / "report.tex").is_file()
