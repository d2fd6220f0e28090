"""Run folders on disk: config, atomic results, claims, status and ``collect`` into scores.csv.

Layout of an experiment ``runs/<exp>/``::

    grid.yaml                       the declarative grid (committed)
    <run_id>/config.yaml            resolved RunSpec (with the data dir used), written before training
    <run_id>/result.json            RunResult, written atomically and last
    <run_id>/train.log              the run's log
    <run_id>/claim                  present while a worker owns the run
    <run_id>/predictions/<lang>.jsonl.gz   optional per-example outputs
    stages/<stage_id>/stage.json    intermediate-stage result (dev scores, wall time, checkpoint path)
    trainings/<train_id>/training.json   a target training shared by several targets (same fields)
    checkpoints/<stage_id>/         intermediate encoder checkpoints (git-ignored; configurable)
    scores.csv                      `xitt collect`

This module alone reads and writes ``config.yaml``, ``result.json`` and ``stage.json``. The
training chain hands its outcome over as a typed record: ``train_stage`` returns a
:class:`StageRecord`, ``run_target`` a :class:`RunResult`; the executors add provenance and times
and pass them back here to be written.

A claim is a file created with O_EXCL holding host, pid and SLURM job id. It is stale (and may be
taken over) when its process is gone on this host, when it belongs to this very SLURM job (a
requeued job), or when it has not been touched for ``STALE_AFTER_S`` (workers touch it while
they train).
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from xitt.schema import SCORE_COLUMNS, atomic_write_text, validate_scores
from xitt.train.checkpoint import missing_files

STALE_AFTER_S = 6 * 3600
STATES = ("done", "failed", "running", "pending", "corrupt")


class CorruptResult(ValueError):
    """A result.json exists but cannot be read (truncated, not JSON, wrong fields)."""


@dataclass
class RunResult:
    """What a finished (or failed) run leaves in ``result.json``.

    ``scores`` maps language -> {metric: value on 0-100}; ``primary_metric`` names the metric that
    enters averages (``em_f1`` for QA targets). ``wall_time`` maps stage -> seconds.
    ``data_fingerprints`` maps "<task>/<split>-<lang>" (and "encoder") -> fingerprint; ``data`` maps
    the same keys to the prepared-data manifest entries the run read (source, config, split,
    revision, rows, fingerprint). ``extra`` holds stage_id, stage_dev_scores, steps, best_step.
    """

    run_id: str
    spec: Mapping[str, Any]
    status: str  # "done" | "failed"
    scores: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    primary_metric: str = ""
    dev_scores: Mapping[str, float] = field(default_factory=dict)
    wall_time: Mapping[str, float] = field(default_factory=dict)
    task_versions: Mapping[str, str] = field(default_factory=dict)
    packages: Mapping[str, str] = field(default_factory=dict)
    git_sha: str = ""
    data_fingerprints: Mapping[str, str] = field(default_factory=dict)
    data: Mapping[str, Any] = field(default_factory=dict)
    device: str = ""
    error: str | None = None
    started: str = ""
    finished: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True, default=str) + "\n"

    @classmethod
    def from_json(cls, text: str, *, where: str = "result.json") -> RunResult:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise CorruptResult(
                f"{where} is not valid JSON ({err}); it was probably cut off by a crash. "
                "Delete it and run `xitt run` again to redo that run."
            ) from err
        names = {f.name for f in dataclasses.fields(cls)}
        missing = [n for n in ("run_id", "spec", "status") if n not in data]
        if not isinstance(data, dict) or missing or data.get("status") not in ("done", "failed"):
            raise CorruptResult(f"{where} lacks {missing or 'a valid status'}; delete it and re-run the run.")
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class StageRecord:
    """What an intermediate stage leaves in ``stages/<stage_id>/stage.json``, and a shared target
    training in ``trainings/<train_id>/training.json`` (``stage_id`` then holds the training id).

    ``dev_scores`` maps "<task>.<metric>" (and "selection") -> English-dev score; ``wall_time`` is
    the stage's training seconds; ``checkpoint`` the folder of the trained encoder.
    """

    stage_id: str
    spec: Mapping[str, Any]
    status: str  # "done" | "failed"
    dev_scores: Mapping[str, float] = field(default_factory=dict)
    steps: int | None = None
    best_step: int | None = None
    wall_time: float = 0.0
    data_fingerprints: Mapping[str, str] = field(default_factory=dict)
    data: Mapping[str, Any] = field(default_factory=dict)
    checkpoint: str = ""
    task_versions: Mapping[str, str] = field(default_factory=dict)
    packages: Mapping[str, str] = field(default_factory=dict)
    git_sha: str = ""
    device: str = ""
    error: str | None = None
    started: str = ""
    finished: str = ""
    memory: Mapping[str, Any] = field(default_factory=dict)  # what an OOM retry used (xitt/run/memory.py)

    def to_json(self) -> str:
        data = {k: v for k, v in dataclasses.asdict(self).items() if not (k == "error" and v is None)}
        return json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"

    @classmethod
    def from_json(cls, text: str, *, where: str = "stage.json") -> StageRecord:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise CorruptResult(
                f"{where} is not valid JSON ({err}); delete it to retrain the stage."
            ) from err
        if (
            not isinstance(data, dict)
            or data.get("status") not in ("done", "failed")
            or "stage_id" not in data
        ):
            raise CorruptResult(
                f"{where} lacks a stage_id or a valid status; delete it to retrain the stage."
            )
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def run_dir(exp_dir: str | Path, run_id: str) -> Path:
    return Path(exp_dir) / run_id


# The nodes trained before the runs: kind -> (folder under the experiment, record file).
NODES = {"stage": ("stages", "stage.json"), "training": ("trainings", "training.json")}
# wall_time keys of a run that belong to a node shared with other runs (counted on that node).
SHARED_WALL = ("intermediate", "target_training")


def stage_dir(exp_dir: str | Path, stage_id: str, kind: str = "stage") -> Path:
    """The folder of an intermediate stage, or of a shared target training (``kind="training"``)."""
    return Path(exp_dir) / NODES[kind][0] / stage_id


def write_config(folder: str | Path, spec_dict: Mapping[str, Any]) -> Path:
    """The resolved spec, written before training starts (provenance even for runs that die)."""
    path = Path(folder) / "config.yaml"
    atomic_write_text(path, yaml.safe_dump(json.loads(json.dumps(spec_dict, default=str)), sort_keys=False))
    return path


def write_result(folder: str | Path, result: RunResult, name: str = "result.json") -> Path:
    path = Path(folder) / name
    atomic_write_text(path, result.to_json())
    return path


def read_result(folder: str | Path, name: str = "result.json") -> RunResult | None:
    """The folder's result, None if there is none yet; CorruptResult if it is unreadable."""
    path = Path(folder) / name
    if not path.exists():
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise CorruptResult(f"{path} cannot be read ({err}); delete it and re-run.") from err
    result = RunResult.from_json(text, where=str(path))
    if name == "result.json":
        _check_result(result, Path(folder).name, str(path))
    return result


SPEC_FIELDS = (
    "encoder",
    "intermediate",
    "intermediate_family",
    "target",
    "target_family",
    "seed",
    "languages",
)


def _check_result(result: RunResult, folder_name: str, where: str) -> None:
    """A result.json counts as done only when it is whole: its own run id, the spec fields collect reads,
    and a finite 0-100 primary score for every language the run declares. Anything less is corrupt,
    so that `xitt run` redoes the run instead of skipping it as done."""
    fix = "delete it and run `xitt run` again to redo that run."
    if result.run_id != folder_name:
        raise CorruptResult(
            f"{where} belongs to run {result.run_id!r}, not to its folder {folder_name!r}; {fix}"
        )
    spec = result.spec if isinstance(result.spec, Mapping) else {}
    missing = [key for key in SPEC_FIELDS if key not in spec]
    if missing:
        raise CorruptResult(f"{where} lacks the spec field(s) {missing}; {fix}")
    if result.status != "done":
        return
    scores = result.scores if isinstance(result.scores, Mapping) else {}
    for language in spec["languages"]:
        value = (scores.get(language) or {}).get(result.primary_metric)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 100:
            raise CorruptResult(
                f"{where} has no valid {result.primary_metric or 'primary'} score for language "
                f"{language!r} (got {value!r}); {fix}"
            )


def read_stage(exp_dir: str | Path, stage_id: str, kind: str = "stage") -> StageRecord | None:
    """The stage's (or training's) record; None if it has none yet; CorruptResult if it is unreadable."""
    path = stage_dir(exp_dir, stage_id, kind) / NODES[kind][1]
    if not path.exists():
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise CorruptResult(f"{path} cannot be read ({err}); delete it to retrain the stage.") from err
    return StageRecord.from_json(text, where=str(path))


def write_stage(exp_dir: str | Path, record: StageRecord, kind: str = "stage") -> Path:
    path = stage_dir(exp_dir, record.stage_id, kind) / NODES[kind][1]
    atomic_write_text(path, record.to_json())
    return path


def stage_state(exp_dir: str | Path, stage_id: str, kind: str = "stage") -> str:
    """done | running (a live worker holds its claim) | failed | corrupt | pending (no record yet)."""
    try:
        record = read_stage(exp_dir, stage_id, kind)
    except CorruptResult:
        record = None
        state = "corrupt"
    else:
        state = record.status if record else "pending"
    if state != "done" and is_claimed(stage_dir(exp_dir, stage_id, kind)):
        return "running"
    return state


def done_stage(exp_dir: str | Path, stage_id: str, kind: str = "stage") -> StageRecord | None:
    """The record of a stage (or training) that finished training, else None (missing, failed or corrupt)."""
    try:
        record = read_stage(exp_dir, stage_id, kind)
    except CorruptResult:
        return None
    return record if record and record.status == "done" else None


def stage_ready(exp_dir: str | Path, stage_id: str, checkpoint: str | Path, kind: str = "stage") -> bool:
    """Done and its checkpoint is on disk whole (a deleted or damaged checkpoint: train it again)."""
    return done_stage(exp_dir, stage_id, kind) is not None and not missing_files(checkpoint)


def stage_seconds(exp_dir: str | Path, stage_id: str, kind: str = "stage") -> float | None:
    """Training time of a trained stage or training (None unless it is done), for the grid's ETA."""
    record = done_stage(exp_dir, stage_id, kind)
    return record.wall_time if record else None


def run_seconds(exp_dir: str | Path, run_id: str) -> float | None:
    """Work time of a finished run, its own target training and evaluation only (the intermediate
    stage and a shared target training are counted on their own nodes)."""
    try:
        result = read_result(run_dir(exp_dir, run_id))
    except CorruptResult:
        return None
    return sum(v for k, v in result.wall_time.items() if k not in SHARED_WALL) if result else None


# ---------------------------------------------------------------------------------------- claims


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _process_start(pid: int) -> str:
    """The start time of process ``pid`` (clock ticks since boot), '' when unknown or gone.

    With the boot id it tells a live owner from a new process that reuses a dead owner's pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return ""
    return stat.rsplit(")", 1)[-1].split()[19]  # field 22; the command name may hold spaces


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError, ValueError):
        return False
    except PermissionError:
        return True
    return True


def _owner_alive(info: Mapping[str, Any]) -> bool:
    """Is the process that wrote this claim (on this host) still running?"""
    try:
        pid = int(info.get("pid", -1))
    except (TypeError, ValueError):
        return False
    if pid <= 0 or not _pid_alive(pid):
        return False
    if info.get("boot_id") and info["boot_id"] != _boot_id():
        return False  # written before a reboot
    started = info.get("process_start")
    return not started or started == _process_start(pid)


def _claim_is_stale(info: Mapping[str, Any], mtime: float) -> bool:
    if not info.get("host"):
        return True  # empty or unreadable: claims are linked into place whole, so its writer died
    job = os.environ.get("SLURM_JOB_ID")
    if job and str(info.get("slurm_job_id")) == job:
        return True  # our own job, requeued after preemption
    if info.get("host") == socket.gethostname() and not _owner_alive(info):
        return True
    if info.get("slurm_job_id") and _slurm_job_ended(str(info["slurm_job_id"])):
        return True  # a cancelled or failed job on another node: no need to wait STALE_AFTER_S
    return time.time() - mtime > STALE_AFTER_S


def _slurm_job_ended(job_id: str) -> bool:
    """True when squeue no longer lists ``job_id`` as queued or running (an unknown id is an error,
    a finished one is not listed); False when squeue cannot be asked (then only the age counts)."""
    try:
        out = subprocess.run(
            ["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    if out.returncode:
        return "Invalid job id" in out.stderr
    return out.stdout.strip() in (
        "",
        "COMPLETED",
        "CANCELLED",
        "FAILED",
        "TIMEOUT",
        "NODE_FAIL",
        "OUT_OF_MEMORY",
    )


class Claim:
    """Exclusive ownership of a run or stage folder; use as a context manager."""

    def __init__(self, folder: str | Path):
        self.path = Path(folder) / "claim"

    def acquire(self) -> bool:
        """Take the claim; False when a live worker holds it.

        The claim is written to a private file first and then hard-linked into place, which fails when
        a claim exists: so a claim is never seen half-written, and an empty or unreadable one can only
        be debris (it is broken at once)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        info = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "process_start": _process_start(os.getpid()),
            "boot_id": _boot_id(),
            "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
            "since": now(),
        }
        draft = self.path.with_name(f"claim.new.{socket.gethostname()}.{os.getpid()}")
        draft.write_text(json.dumps(info))
        try:
            for _ in range(2):
                try:
                    os.link(draft, self.path)
                except FileExistsError:
                    if not self._break_if_stale():
                        return False
                    continue
                return True
            return False
        finally:
            draft.unlink(missing_ok=True)

    def _break_if_stale(self) -> bool:
        info, mtime = _read_claim(self.path)
        if not _claim_is_stale(info, mtime):
            return False
        # Rename first so that two workers breaking the same stale claim cannot both win.
        grave = self.path.with_name(f"claim.stale.{os.getpid()}")
        try:
            os.replace(self.path, grave)
            grave.unlink(missing_ok=True)
        except FileNotFoundError:
            pass
        return True

    def clear_if_stale(self) -> None:
        """Remove a claim whose owner died after finishing (killed between writing its result and
        releasing): the folder is done, but a leftover claim would look like a live worker."""
        if self.path.exists():
            self._break_if_stale()

    def touch(self) -> None:
        """Heartbeat: keeps a long-running claim from looking stale."""
        try:
            os.utime(self.path)
        except FileNotFoundError:
            pass

    def release(self) -> None:
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> Claim:
        if not self.acquire():
            raise RuntimeError(f"{self.path.parent.name} is claimed by another worker")
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _read_claim(path: Path) -> tuple[dict, float]:
    """(owner info, mtime) of a claim file; ({}, 0) when it is empty, unreadable or not a mapping."""
    try:
        info, mtime = json.loads(path.read_text() or "{}"), path.stat().st_mtime
    except (OSError, ValueError):
        return {}, 0.0
    return (info if isinstance(info, dict) else {}), mtime


def is_claimed(folder: str | Path) -> bool:
    path = Path(folder) / "claim"
    return path.exists() and not _claim_is_stale(*_read_claim(path))


# ------------------------------------------------------------------------------ status, collect


def run_state(folder: str | Path) -> tuple[str, str]:
    """(state, detail) of one run folder; state is one of STATES."""
    try:
        result = read_result(folder)
    except CorruptResult as err:
        return "corrupt", str(err)
    if result is not None:
        last = (result.error or "").strip().splitlines()
        return result.status, (last[-1] if last else "")
    if is_claimed(folder):
        return "running", ""
    return "pending", ""


def status_frame(exp_dir: str | Path, run_ids: Iterable[str]) -> pd.DataFrame:
    """One row per run: run_id, state, detail (the failing run's last error line)."""
    rows = [(rid, *run_state(run_dir(exp_dir, rid))) for rid in run_ids]
    return pd.DataFrame(rows, columns=["run_id", "state", "detail"])


def result_rows(result: RunResult) -> list[dict]:
    """scores.csv rows of one finished run."""
    spec = result.spec
    rows = []
    for language, metrics in sorted(result.scores.items()):
        for metric, value in sorted(metrics.items()):
            rows.append(
                {
                    "run_id": result.run_id,
                    "encoder": spec["encoder"],
                    "intermediate": spec["intermediate"],
                    "intermediate_family": spec["intermediate_family"],
                    "target": spec["target"],
                    "target_family": spec["target_family"],
                    "language": language,
                    "seed": spec["seed"],
                    "metric": metric,
                    "score": value,
                    "primary": metric == result.primary_metric,
                    "task_version": spec.get("target_version", result.task_versions.get(spec["target"], "")),
                }
            )
    return rows


def collect(
    exp_dir: str | Path, run_ids: Iterable[str], *, allow_incomplete: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Gather the results of ``run_ids`` into a validated scores frame.

    Returns (scores, status). Corrupt result files and runs that are not done raise ValueError
    listing them, unless ``allow_incomplete`` — then they are left out and listed in ``status``.
    """
    status = status_frame(exp_dir, run_ids)
    not_done = status[status.state != "done"]
    corrupt = status[status.state == "corrupt"]
    if len(not_done) and not allow_incomplete:
        lines = [
            f"  {r.run_id}: {r.state}{' - ' + r.detail if r.detail else ''}"
            for r in not_done.head(20).itertuples()
        ]
        more = f"\n  ... and {len(not_done) - 20} more" if len(not_done) > 20 else ""
        hint = (
            " Corrupt result files are not skipped: delete them and re-run `xitt run`."
            if len(corrupt)
            else ""
        )
        raise ValueError(
            f"{len(not_done)} of {len(status)} runs are not done:\n"
            + "\n".join(lines)
            + more
            + f"\nRun `xitt run` to finish them, or pass --allow-incomplete to collect what is done.{hint}"
        )
    rows = []
    for rid in status.loc[status.state == "done", "run_id"]:
        rows += result_rows(read_result(run_dir(exp_dir, rid)))
    frame = pd.DataFrame(rows, columns=list(SCORE_COLUMNS))
    return validate_scores(frame, source=f"{exp_dir} results"), status
