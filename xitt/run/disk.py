"""Peak disk of a grid's stage checkpoints, for ``xitt plan``. Reads files only (no torch).

A stage checkpoint is the encoder re-saved in its training dtype (fp32) plus its tokenizer. Its size,
first that applies: a checkpoint of that encoder already on disk (measured); the encoder's local
folder; the encoder's parameter count x 4 bytes for the encoders of the paper (counts from Conneau et
al. 2020, arXiv 1911.02116, Table 7: mBERT 172M, XLM-R Base 270M, XLM-R 550M); else unknown.

How many checkpoints exist at once: with ``keep_checkpoints`` every stage's; ``local`` with one worker
trains a stage, runs its targets, then deletes it (one at a time); a pool or SLURM trains the pending
stages first (for throughput), so every pending stage's checkpoint can exist at once, each deleted when
its targets are done (SLURM: by a cleanup job). Shared target trainings (XQuAD and MLQA on SQuAD) add
their checkpoints the same way: one at a time locally, every pending one otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from xitt.grid.spec import GridSpec, StageSpec, TrainSpec
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
    grid: GridSpec,
    stages: Sequence[StageSpec],
    exp_dir: Path,
    states: Mapping[str, str],
    trainings: Sequence[TrainSpec] = (),
) -> str:
    """One line: the peak number of stage (and shared training) checkpoints on disk at once, their
    size and where they go. ``states`` maps stage and training ids to their state. A shared training's
    checkpoint is its encoder plus a head of a few KB, counted at the encoder's size."""
    nodes = [(s.stage_id, s.encoder) for s in stages] + [(t.train_id, t.encoder) for t in trainings]
    pending = [(nid, enc) for nid, enc in nodes if states.get(nid) != "done"]
    kind, workers = grid.executor.kind, grid.executor.workers
    together = nodes if grid.keep_checkpoints else pending
    one_at_a_time = not grid.keep_checkpoints and kind == "local" and workers == 1
    sizes = checkpoint_bytes(grid, stages, exp_dir)
    if one_at_a_time:  # a stage, and one of its trainings while that one's runs evaluate
        stage_ids = {s.stage_id for s in stages}
        kinds = [[n for n in pending if n[0] in stage_ids], [n for n in pending if n[0] not in stage_ids]]
        peak = sum(max((sizes.get(enc, (0,))[0] for _, enc in nodes_of), default=0) for nodes_of in kinds)
        count = sum(min(len(nodes_of), 1) for nodes_of in kinds)
        unknown = any(enc not in sizes for _, enc in pending)
    else:
        peak = sum(sizes[enc][0] for _, enc in together if enc in sizes)
        count, unknown = len(together), any(enc not in sizes for _, enc in together)
    where = checkpoint_path(grid, exp_dir, "x").parent
    how = ", ".join(f"{enc} {human(size)} ({src})" for enc, (size, src) in sorted(sizes.items()))
    why = (
        "kept"
        if grid.keep_checkpoints
        else "one at a time"
        if one_at_a_time
        else "pending stages train first"
    )
    what = "stage and shared training checkpoints" if trainings else "stage checkpoints"
    return (
        f"disk     peak {human(peak)} of {what} ({count} at once, {why}) in {where}"
        + (f"; per checkpoint: {how}" if how else "")
        + ("; some encoders' size unknown (not counted)" if unknown else "")
    )
