import json
import socket
import subprocess
import sys

import pytest

from xitt.grid.spec import expand_grid, parse_grid
from xitt.run.store import (
    Claim,
    RunResult,
    collect,
    read_result,
    run_dir,
    run_state,
    write_config,
    write_result,
)


@pytest.fixture
def runs():
    grid = parse_grid(
        {
            "encoders": ["mbert-test"],
            "intermediates": ["none", "mnli"],
            "targets": ["xnli"],
            "languages": {"xnli": ["en", "de"]},
            "seeds": [1],
        }
    )
    return expand_grid(grid)[1]


def finish(exp, spec, score=70.0):
    folder = run_dir(exp, spec.run_id)
    write_config(folder, spec.to_dict())
    write_result(
        folder,
        RunResult(
            spec.run_id,
            spec.to_dict(),
            "done",
            scores={"en": {"accuracy": score}, "de": {"accuracy": score - 10}},
            primary_metric="accuracy",
        ),
    )


def test_collect_done_runs(tmp_path, runs):
    for spec in runs:
        finish(tmp_path, spec)
    scores, status = collect(tmp_path, [r.run_id for r in runs])
    assert len(scores) == 4 and set(status.state) == {"done"}
    assert set(scores.intermediate) == {"none", "mnli"} and scores.primary.all()


def test_corrupt_result_is_reported_and_never_skipped(tmp_path, runs):
    finish(tmp_path, runs[0])
    finish(tmp_path, runs[1])
    path = run_dir(tmp_path, runs[1].run_id) / "result.json"
    path.write_text(path.read_text()[:40])  # truncated by a crash
    state, detail = run_state(path.parent)
    assert state == "corrupt" and "not valid JSON" in detail
    with pytest.raises(ValueError, match="(?s)corrupt.*Corrupt result files are not skipped"):
        collect(tmp_path, [r.run_id for r in runs])
    scores, status = collect(tmp_path, [r.run_id for r in runs], allow_incomplete=True)
    assert set(scores.run_id) == {runs[0].run_id} and "corrupt" in set(status.state)


def test_failed_and_pending_states(tmp_path, runs):
    folder = run_dir(tmp_path, runs[0].run_id)
    write_result(
        folder, RunResult(runs[0].run_id, runs[0].to_dict(), "failed", error="Traceback...\nOOM: boom")
    )
    assert run_state(folder) == ("failed", "OOM: boom")
    assert run_state(run_dir(tmp_path, runs[1].run_id))[0] == "pending"
    assert read_result(folder).status == "failed"


def test_claims_are_exclusive_and_stale_ones_are_taken_over(tmp_path):
    first, second = Claim(tmp_path), Claim(tmp_path)
    assert first.acquire() and not second.acquire()
    assert run_state(tmp_path)[0] == "running"
    first.release()
    assert second.acquire()
    second.release()
    # a claim left behind by a killed process on this host is stale
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    (tmp_path / "claim").write_text(json.dumps({"host": socket.gethostname(), "pid": int(dead.stdout)}))
    assert Claim(tmp_path).acquire()


@pytest.mark.parametrize("content", ["", "{}", "{not json", "[1, 2]", '{"pid": 1}'])
def test_an_empty_or_unreadable_claim_is_stale_at_once(tmp_path, content):
    """A kill between creating a claim and writing it once blocked a run for the 6-hour rule."""
    (tmp_path / "claim").write_text(content)
    assert run_state(tmp_path)[0] == "pending"
    assert Claim(tmp_path).acquire()


def test_a_reused_pid_does_not_keep_a_claim_alive(tmp_path):
    """The pid of a dead owner now belongs to another live process (here: this one)."""
    mine = Claim(tmp_path)
    assert mine.acquire()
    info = json.loads((tmp_path / "claim").read_text())
    assert info["process_start"] and info["boot_id"] and info["pid"]
    mine.release()
    (tmp_path / "claim").write_text(json.dumps({**info, "process_start": "1"}))  # another process
    assert run_state(tmp_path)[0] == "pending"
    assert Claim(tmp_path).acquire()


def test_a_kill_inside_acquire_leaves_no_claim(tmp_path):
    """SIGKILL between writing the claim's draft and linking it into place: the run stays free."""
    code = (
        "import os, signal, sys; from xitt.run.store import Claim; "
        "os.link = lambda *a: os.kill(os.getpid(), signal.SIGKILL); "
        f"Claim({str(tmp_path)!r}).acquire()"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert proc.returncode == -9
    assert not (tmp_path / "claim").exists() and run_state(tmp_path)[0] == "pending"
    assert Claim(tmp_path).acquire()


def test_stage_records_round_trip_and_their_states(tmp_path):
    from xitt.run.store import StageRecord, read_stage, stage_ready, stage_seconds, stage_state, write_stage
    from xitt.train.checkpoint import write_manifest

    assert stage_state(tmp_path, "s1") == "pending" and read_stage(tmp_path, "s1") is None
    record = StageRecord("s1", {"seed": 1}, "done", dev_scores={"selection": 50.0}, steps=3, wall_time=2.5)
    write_stage(tmp_path, record)
    assert read_stage(tmp_path, "s1") == record and stage_state(tmp_path, "s1") == "done"
    assert stage_seconds(tmp_path, "s1") == 2.5
    assert not stage_ready(tmp_path, "s1", tmp_path / "ckpt")  # done, but its checkpoint is gone
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "config.json").write_text("{}")
    assert not stage_ready(tmp_path, "s1", tmp_path / "ckpt")  # no manifest: not known to be whole
    write_manifest(tmp_path / "ckpt")
    assert stage_ready(tmp_path, "s1", tmp_path / "ckpt")
    write_stage(tmp_path, StageRecord("s2", {}, "failed", error="OOM"))
    assert stage_state(tmp_path, "s2") == "failed" and stage_seconds(tmp_path, "s2") is None
    path = tmp_path / "stages" / "s1" / "stage.json"
    path.write_text(path.read_text()[:30])  # cut off by a crash
    assert stage_state(tmp_path, "s1") == "corrupt" and stage_seconds(tmp_path, "s1") is None
    assert not stage_ready(tmp_path, "s1", tmp_path / "ckpt")


def test_the_committed_demo_stage_records_parse():
    from pathlib import Path

    from xitt.grid.spec import expand_grid, load_grid
    from xitt.run.store import read_stage

    stages = Path(__file__).parent.parent / "runs" / "demo" / "stages"
    records = [read_stage(stages.parent, p.name) for p in sorted(stages.iterdir())]
    expected = {s.stage_id for s in expand_grid(load_grid(stages.parent))[0]}
    assert {r.stage_id for r in records} == expected and all(
        r.status == "done" and r.wall_time > 0 for r in records
    )
    assert all(r.data_fingerprints["encoder"] for r in records)


def test_only_the_store_names_the_run_records():
    """One owner per record: no other module spells result.json, stage.json or config.yaml as a path."""
    from pathlib import Path

    root = Path(__file__).parent.parent / "xitt"
    owners = {}
    for path in root.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for name in ('"stage.json"', '"result.json"', '"config.yaml"', "/ 'stage.json'"):
            if name in text:
                owners.setdefault(name, []).append(path.relative_to(root).as_posix())
    assert owners == {
        '"stage.json"': ["run/store.py"],
        '"result.json"': ["run/store.py"],
        '"config.yaml"': ["run/store.py"],
    }


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: d.update(spec={}), "lacks the spec field"),
        (lambda d: d["scores"].pop("de"), "no valid accuracy score for language 'de'"),
        (lambda d: d["scores"]["en"].pop("accuracy"), "no valid accuracy score for language 'en'"),
        (lambda d: d["scores"]["en"].update(accuracy=170.0), "got 170.0"),
        (lambda d: d.update(run_id="someone-else"), "belongs to run 'someone-else'"),
    ],
)
def test_an_incomplete_result_is_corrupt_not_done(tmp_path, runs, damage, message):
    """Valid JSON that is not a whole result once counted as done and crashed collect (or lost rows)."""
    finish(tmp_path, runs[0])
    path = run_dir(tmp_path, runs[0].run_id) / "result.json"
    data = json.loads(path.read_text())
    damage(data)
    path.write_text(json.dumps(data))
    state, detail = run_state(run_dir(tmp_path, runs[0].run_id))
    assert state == "corrupt" and message in detail
    with pytest.raises(ValueError, match="Corrupt result files are not skipped"):
        collect(tmp_path, [r.run_id for r in runs[:1]])
    scores, status = collect(tmp_path, [r.run_id for r in runs[:1]], allow_incomplete=True)
    assert scores.empty and list(status.state) == ["corrupt"]
