"""Peak disk of a grid's stage checkpoints, for ``xitt plan``. Reads files only (no torch).

A stage checkpoint is the encoder re-saved in its training dtype (fp32) plus its tokenizer. Its size,
first that applies: a checkpoint of that encoder already on disk (measured); the encoder's local
folder; the encoder's parameter count x 4 bytes for the encoders of the paper (counts from Conneau et
al. 2020, arXiv 1911.02116, Table 7: mBERT 172M, XLM-R Base 270M, XLM-R 550M); else unknown.

How many checkpoints exist at once: with ``keep_checkpoints`` every stage's; ``local`` with one worker
trains a stage, runs its targets, then deletes it (one at a time); a pool or SLURM trains the pending
stages first (for throughput), so every pending stage's checkpoint can exist at once, each deleted when
its targets are done (SLURM: by a cleanup job).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from xitt.grid.spec import GridSpec, StageSpec
from xitt.run.executors import checkpoint_path

PAPER_PARAMS = {  # hub id -> parameters (Conneau et al. 2020, Table 7)
    "bert-base-multilingual-cased": 172e6,
    "bert-base-multilingual-uncased": 172e6,
    "xlm-roberta-base": 270e6,
    "facebook/xlm-roberta-base": 270e6,
    "xlm-roberta-large": 550e6,
    "facebook/xlm-roberta-large": 550e6,
}


def human(size: float) -> str:
    return f"{size / 1e9:.1f} GB" if size >= 1e9 else f"{size / 1e6:.1f} MB"


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def checkpoint_bytes(
    grid: GridSpec, stages: Sequence[StageSpec], exp_dir: Path
) -> dict[str, tuple[float, str]]:
    """encoder short name -> (bytes of one stage checkpoint, how it was found: measured|folder|paper)."""
    out: dict[str, tuple[float, str]] = {}
    for stage in stages:
        ckpt = checkpoint_path(grid, exp_dir, stage.stage_id)
        if ckpt.is_dir() and (size := folder_bytes(ckpt)):
            out[stage.encoder] = (size, "measured")
    for name, path in grid.encoders:
        local = Path(path).expanduser()
        if name in out:
            continue
        if path.startswith((".", "/", "~")) and local.is_dir():
            out[name] = (folder_bytes(local), "folder")
        elif path in PAPER_PARAMS:
            out[name] = (PAPER_PARAMS[path] * 4, "paper")
    return out


def describe_disk(
    grid: GridSpec, stages: Sequence[StageSpec], exp_dir: Path, states: Mapping[str, str]
) -> str:
    """One line: the peak number of stage checkpoints on disk at once, their size and where they go."""
    pending = [s for s in stages if states.get(s.stage_id) != "done"]
    kind, workers = grid.executor.kind, grid.executor.workers
    together = stages if grid.keep_checkpoints else pending
    one_at_a_time = not grid.keep_checkpoints and kind == "local" and workers == 1
    if one_at_a_time:
        sizes = checkpoint_bytes(grid, pending, exp_dir)
        peak = max((sizes.get(s.encoder, (None,))[0] or 0 for s in pending), default=0)
        count, unknown = min(len(pending), 1), any(s.encoder not in sizes for s in pending)
    else:
        sizes = checkpoint_bytes(grid, together, exp_dir)
        peak = sum(sizes[s.encoder][0] for s in together if s.encoder in sizes)
        count, unknown = len(together), any(s.encoder not in sizes for s in together)
    where = checkpoint_path(grid, exp_dir, "x").parent
    how = ", ".join(f"{enc} {human(size)} ({src})" for enc, (size, src) in sorted(sizes.items()))
    why = (
        "kept"
        if grid.keep_checkpoints
        else "one at a time"
        if one_at_a_time
        else "pending stages train first"
    )
    return (
        f"disk     peak {human(peak)} of stage checkpoints ({count} at once, {why}) in {where}"
        + (f"; per checkpoint: {how}" if how else "")
        + ("; some encoders' size unknown (not counted)" if unknown else "")
    )
