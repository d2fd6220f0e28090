"""Provenance that travels with every result: package versions, git sha, device."""

from __future__ import annotations

import functools
import platform
import subprocess
from importlib import metadata
from pathlib import Path

PACKAGES = ("xitt", "torch", "transformers", "tokenizers", "datasets", "numpy", "seqeval", "submitit")


@functools.lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_sha(folder: str | Path | None = None) -> str:
    """The commit of the git checkout holding ``folder`` (default: xitt's own checkout), with ``-dirty``
    when it has local changes; '' outside a checkout (e.g. a wheel install) or without git."""
    return _git_sha(Path(folder or Path(__file__).parents[2]).resolve())


@functools.lru_cache(maxsize=8)
def _git_sha(root: Path) -> str:
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return sha + ("-dirty" if sha and dirty else "")


def device_name() -> str:
    import torch

    if torch.cuda.is_available():
        return f"cuda:{torch.cuda.get_device_name(0)}"
    return f"cpu:{platform.processor() or platform.machine()} threads={torch.get_num_threads()}"
