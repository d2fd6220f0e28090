"""The CLI's bad-input paths: one paragraph, exit 2, nothing written. No torch is imported here."""

import subprocess
import sys

import pytest
import yaml

from xitt.cli import main
from xitt.grid.spec import expand_grid, load_grid
from xitt.run.store import RunResult, run_dir, write_result

GRID = {
    "encoders": ["mbert-test"],
    "intermediates": ["none", "mnli", "squad_v1"],
    "targets": ["xnli"],
    "languages": {"xnli": ["en", "de"]},
    "seeds": [1, 2],
    "cost": {"intermediate": {"default": 2.0}, "target": {"xnli": 0.5}},
}


@pytest.fixture
def exp(tmp_path):
    folder = tmp_path / "runs" / "exp"
    folder.mkdir(parents=True)
    (folder / "grid.yaml").write_text(yaml.safe_dump(GRID))
    return folder


def snapshot(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_plan_shows_dag_and_gpu_hours(exp, capsys):
    assert main(["plan", str(exp)]) == 0
    out = capsys.readouterr().out
    assert "intermediate stages: 4" in out and "target runs: 6" in out
    assert "stages 8.0 + runs 3.0 = 11.0; remaining 11.0" in out
    assert main(["plan", str(exp), "--seeds", "3", "--set", "seeds=[1,2,3]"]) == 0
    assert "target runs: 3" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--set", "targets=[xnlii]"], "Did you mean 'xnli'"),
        (["--set", "languages={xnli: [xx]}"], "no language"),
        (["--set", "targets=[squad_v1]"], "intermediate-only"),
        (["--set", "seeds=[1,1]"], "appear twice"),
        (["--set", "seeds=[]"], "non-empty"),
        (["--set", "train.lrr=1"], "unknown training setting"),
        (["--set", "train.lr=fast"], "must be float"),
        (["--seeds", "x"], "--seeds takes integers"),
    ],
)
def test_run_rejects_bad_input_before_any_compute(exp, capsys, args, message):
    before = snapshot(exp)
    assert main(["run", str(exp), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("xitt run: error:")
    assert snapshot(exp) == before


def test_a_failing_run_never_imports_torch(exp):
    """In a fresh process: whatever other tests imported, a rejected grid must not cost a torch import."""
    code = (
        "import sys; from xitt.cli import main; "
        f"rc = main(['run', {str(exp)!r}, '--set', 'targets=[xnlii]']); "
        "sys.exit(10 + rc if 'torch' in sys.modules else rc)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "Did you mean 'xnli'" in done.stderr


def test_not_yaml_grid(exp, capsys):
    (exp / "grid.yaml").write_text("{{{")
    assert main(["plan", str(exp)]) == 2
    assert "not valid YAML" in capsys.readouterr().err


def test_status_reports_failed_and_corrupt_runs(exp, capsys):
    _, runs = expand_grid(load_grid(exp))
    write_result(
        run_dir(exp, runs[0].run_id),
        RunResult(runs[0].run_id, runs[0].to_dict(), "failed", error="ValueError: loss is NaN"),
    )
    broken = run_dir(exp, runs[1].run_id)
    broken.mkdir(parents=True)
    (broken / "result.json").write_text('{"run_id": "x", "sta')
    assert main(["status", str(exp)]) == 1
    out = capsys.readouterr().out
    assert "1 failed, 1 corrupt, 4 pending" in out and "loss is NaN" in out and "not valid JSON" in out
    assert main(["collect", str(exp)]) == 2
    assert "Corrupt result files are not skipped" in capsys.readouterr().err
    assert not (exp / "scores.csv").exists()


def test_collect_writes_scores(exp, capsys):
    _, runs = expand_grid(load_grid(exp))
    for spec in runs:
        write_result(
            run_dir(exp, spec.run_id),
            RunResult(
                spec.run_id,
                spec.to_dict(),
                "done",
                scores={"en": {"accuracy": 60.0}, "de": {"accuracy": 50.0}},
                primary_metric="accuracy",
            ),
        )
    assert main(["collect", str(exp)]) == 0
    assert (exp / "scores.csv").read_text().count("\n") == 1 + 2 * len(runs)


def test_tasks_list_and_validate(capsys):
    assert main(["tasks", "--validate"]) == 0
    assert main(["tasks", "--role", "target"]) == 0
    out = capsys.readouterr().out
    assert "xnli" in out and "suite xtreme-r" in out


@pytest.mark.parametrize("workers", ["0", "-2", "two"])
def test_workers_below_one_is_an_error(exp, workers, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["run", str(exp), "--workers", workers])
    assert stop.value.code == 2 and "--workers" in capsys.readouterr().err
    assert sorted(p.name for p in exp.iterdir()) == ["grid.yaml"]


def test_status_shows_stage_claims_and_prints_no_control_characters(exp, capsys):
    from xitt.run.store import Claim, stage_dir

    stages, runs = expand_grid(load_grid(exp))
    claim = Claim(stage_dir(exp, stages[0].stage_id))
    assert claim.acquire()
    write_result(
        run_dir(exp, runs[0].run_id),
        RunResult(runs[0].run_id, runs[0].to_dict(), "failed", error="boom in \x1b[2Jtask"),
    )
    assert main(["status", str(exp)]) == 1
    out = capsys.readouterr().out
    claim.release()
    assert f"running  stage {stages[0].stage_id}" in out and "1 running" in out.splitlines()[-2]
    assert "\x1b" not in out and "boom in ?[2Jtask" in out
