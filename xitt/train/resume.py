"""Mid-training resume states: a stage or run interrupted by preemption goes on where it stopped.

``fit`` saves one every ``train.resume_every_min`` minutes and when SIGTERM/SIGUSR2 arrives
(``xitt/run/preempt.py``), always at an optimizer-step boundary (no half-accumulated gradients),
and loads it when it starts. A state holds everything the rest of the run depends on, so that a
resumed run gives bit-identical scores to an uninterrupted one (same thread count, fp32 on CPU):

* tensors (``state.pt``): encoder + heads state dicts, optimizer (AdamW moments, steps), LR
  schedule, fp16 GradScaler, the kept best weights (``select_on: dev``), torch's CPU and CUDA RNG;
* ``meta`` (JSON inside ``state.pt``): the loop (step, micro-step, epoch, position inside the
  epoch's shuffled plan, the data Generator's state when that plan was drawn, best dev scores and
  step, evaluations without improvement, LossWatch's last loss and non-finite run), numpy's and
  Python's global RNG, and what earlier phases returned (``carry``: train_first's dev scores).

``resume.json`` beside it names the state's fingerprint (the stage or run id, which hashes the
training settings actually used, e.g. after an out-of-memory retry; data and encoder
fingerprints; torch version; the state format) and its phase. A state with another fingerprint
is never loaded: it is logged and ignored, and overwritten at the next save. Both files are
written to a temporary name, fsynced and renamed; the fingerprint inside ``state.pt`` is the one
that counts.

Size: weights + AdamW's two moments (fp32) ~ 12 bytes per parameter, plus 4 more with the kept
best weights (measured: 12.0 and 16.0 for a BERT-base-shaped encoder; README "Jobs that survive").
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import pickle
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xitt.schema import atomic_write_text

log = logging.getLogger("xitt")
STATE, MANIFEST = "state.pt", "resume.json"
FORMAT = 1  # bump when LoopState or the saved keys change: older states are then ignored, not misread


@dataclass
class LoopState:
    """Where ``fit``'s loop is: what, with the tensors, a resumed loop needs to go on identically."""

    step: int = 0
    micro: int = 0
    epoch: int = 0
    position: int = 0  # batches of this epoch's plan already trained on
    epoch_rng: dict | None = None  # the data Generator's state when this epoch's plan was drawn
    best: dict | None = None  # dev scores of the best evaluation (select_on: dev)
    best_step: int = 0
    dev: dict = field(default_factory=dict)  # the last evaluation's dev scores
    stale: int = 0  # evaluations since the best one (patience)
    stopped: bool = False  # early stop
    done: bool = False  # the loop and its final evaluation are over
    loss_last: float = math.nan  # LossWatch
    loss_run: int = 0


@dataclass
class Resume:
    """Where one stage or run keeps its resume state and what a state must match to be loaded.

    ``identity``: {"id": stage or run id, "data": data fingerprints, "encoder": ...}; ``phase``: which
    ``fit`` of the job (``train_first`` runs have two); ``carry``: results of earlier phases, saved
    with every later state."""

    folder: Path
    identity: dict
    phase: str = "train"
    carry: dict = field(default_factory=dict)
    warned: bool = field(default=False, repr=False)  # a foreign state is logged once

    @property
    def fingerprint(self) -> str:
        payload = {**self.identity, "torch": torch.__version__, "format": FORMAT}
        return hashlib.sha1(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def saved_phase(self) -> str | None:
        """The phase of the state on disk when it is this job's, else None (read from resume.json)."""
        try:
            manifest = json.loads((Path(self.folder) / MANIFEST).read_text())
        except (OSError, ValueError):
            return None
        if manifest.get("fingerprint") != self.fingerprint:
            if self.warned:
                return None
            self.warned = True
            log.warning(
                "resume state in %s belongs to other settings or data (%s); ignored, training starts "
                "from step 0",
                self.folder,
                manifest.get("id"),
            )
            return None
        return manifest.get("phase")

    def save(self, tensors: dict[str, Any], meta: dict[str, Any]) -> float:
        """Write the state (tmp file, fsync, rename), then resume.json; returns the seconds it took."""
        t0 = time.perf_counter()
        folder = Path(self.folder)
        folder.mkdir(parents=True, exist_ok=True)
        meta = {**meta, "fingerprint": self.fingerprint, "phase": self.phase, "carry": self.carry}
        tmp = folder / f"{STATE}.tmp{os.getpid()}"
        with open(tmp, "wb") as fh:
            torch.save({**tensors, "meta": json.dumps(meta)}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, folder / STATE)
        manifest = {
            "fingerprint": self.fingerprint,
            "id": self.identity.get("id"),
            "phase": self.phase,
            "step": meta["loop"]["step"],
            "bytes": (folder / STATE).stat().st_size,
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        atomic_write_text(folder / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        return time.perf_counter() - t0

    def load(self) -> tuple[dict, dict] | None:
        """(tensors, meta) of this job's saved state for this phase, or None (none, another job's, another phase)."""
        if self.saved_phase() != self.phase:
            return None
        try:
            tensors = torch.load(Path(self.folder) / STATE, map_location="cpu", weights_only=True)
            meta = json.loads(tensors.pop("meta"))
        except (OSError, EOFError, RuntimeError, ValueError, KeyError, pickle.UnpicklingError) as err:
            log.warning("resume state in %s is unreadable (%s); ignored", self.folder, err)
            return None
        if meta.get("fingerprint") != self.fingerprint or meta.get("phase") != self.phase:
            return None  # resume.json was left by a save that died before the state was replaced
        self.carry = dict(meta.get("carry", {}))
        return tensors, meta


def capture(loop: LoopState, modules, optimizer, schedule, scaler, best_state) -> tuple[dict, dict]:
    """(tensors, meta) of a training loop at an optimizer-step boundary."""
    tensors = {
        "modules": [m.state_dict() for m in modules],
        "optimizer": optimizer.state_dict(),
        "schedule": schedule.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "best_state": best_state,
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, py_gauss = random.getstate()
    meta = {
        "loop": dataclasses.asdict(loop),
        "numpy_rng": [name, keys.tolist(), pos, has_gauss, gauss],
        "python_rng": [version, list(internal), py_gauss],
    }
    return tensors, meta


def restore(tensors: dict, meta: dict, modules, optimizer, schedule, scaler) -> tuple[LoopState, list | None]:
    """Put a saved state back into the training objects and global RNGs; returns (loop, best_state)."""
    for module, state in zip(modules, tensors["modules"]):
        module.load_state_dict(state)
    optimizer.load_state_dict(tensors["optimizer"])
    schedule.load_state_dict(tensors["schedule"])
    if scaler is not None and tensors["scaler"] is not None:
        scaler.load_state_dict(tensors["scaler"])
    torch.set_rng_state(tensors["torch_rng"])
    if torch.cuda.is_available() and tensors["cuda_rng"]:
        torch.cuda.set_rng_state_all(tensors["cuda_rng"])
    name, keys, pos, has_gauss, gauss = meta["numpy_rng"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    version, internal, py_gauss = meta["python_rng"]
    random.setstate((version, tuple(internal), py_gauss))
    return LoopState(**meta["loop"]), tensors["best_state"]
