"""The encoder checkpoint's file manifest: a checkpoint is complete only when every file it was saved
with is there at its saved size (a checkpoint that lost its weights once failed every dependent run, on
every re-run). Torch-free, so the store can check checkpoints without loading the training stack."""

from __future__ import annotations

import json
from pathlib import Path

MANIFEST = "xitt-checkpoint.json"


def write_manifest(folder: str | Path) -> None:
    """List every file of a freshly saved checkpoint folder with its size (call before moving it in place)."""
    folder = Path(folder)
    files = {p.name: p.stat().st_size for p in sorted(folder.iterdir()) if p.is_file() and p.name != MANIFEST}
    (folder / MANIFEST).write_text(json.dumps({"files": files}, indent=1, sort_keys=True) + "\n")


def missing_files(folder: str | Path) -> list[str]:
    """What a checkpoint lacks: files listed in its manifest that are gone or changed size, or the
    manifest itself; [] for a complete checkpoint."""
    folder = Path(folder)
    try:
        files = json.loads((folder / MANIFEST).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return [MANIFEST]
    return [
        name
        for name, size in sorted(files.items())
        if not (folder / name).is_file() or (folder / name).stat().st_size != size
    ]
