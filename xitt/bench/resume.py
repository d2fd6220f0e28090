"""Resume-state benchmark (part of ``xitt bench runner``): the size and time of one mid-training save
(``xitt/train/resume.py``) for the bench's random BERT encoders, and what that projects to for
XLM-R large (a projection from the measured bytes per parameter and write speed, not a measurement).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from xitt.run.disk import PAPER_PARAMS, human

REPEATS = 3


def save_cost(encoder_path: Path, best_weights: bool) -> dict[str, float]:
    """{params, bytes, seconds (fastest of REPEATS)} of one resume save of encoder + a 3-way head after
    one AdamW step (its two moments exist), with or without the kept best dev weights."""
    import torch
    from transformers import AutoModel

    from xitt.grid.spec import TrainConfig
    from xitt.train.fit import keep_state, make_optimizer
    from xitt.train.heads import Head
    from xitt.train.resume import LoopState, Resume, capture

    encoder = AutoModel.from_pretrained(encoder_path)
    modules = [encoder, Head("classification", encoder.config.hidden_size, 3)]
    optimizer, schedule = make_optimizer(modules, TrainConfig(), total=10)
    for p in (p for m in modules for p in m.parameters()):
        p.grad = torch.zeros_like(p)
    optimizer.step()
    schedule.step()
    best = keep_state(modules, None) if best_weights else None
    with tempfile.TemporaryDirectory(prefix="xitt-bench-resume-") as folder:
        resume = Resume(Path(folder), {"id": "bench"})
        state = capture(LoopState(step=1), modules, optimizer, schedule, None, best)
        times = [resume.save(*state) for _ in range(REPEATS)]
        size = (Path(folder) / "state.pt").stat().st_size
    params = sum(p.numel() for m in modules for p in m.parameters())
    return {"params": params, "bytes": size, "seconds": min(times)}


def report(encoders: dict[str, Path]) -> dict:
    """Print one line per encoder size x (select_on last | dev), then the XLM-R large projection."""
    print("(c) one resume save (weights + AdamW moments [+ best dev weights]; tmp file, fsync, rename)")
    out = {}
    for size, path in encoders.items():
        for best in (False, True):
            cost = out[(size, best)] = save_cost(path, best)
            print(
                f"    {size:5} {'with' if best else 'without'} best weights: {cost['params'] / 1e6:.2f}M params, "
                f"{human(cost['bytes'])} ({cost['bytes'] / cost['params']:.1f} B/param), "
                f"{cost['seconds'] * 1000:.0f} ms ({cost['bytes'] / 1e6 / cost['seconds']:.0f} MB/s)"
            )
    largest = max(encoders, key=lambda s: out[(s, False)]["params"])
    params = PAPER_PARAMS["xlm-roberta-large"]
    for best in (False, True):
        cost = out[(largest, best)]
        size = params * cost["bytes"] / cost["params"]
        print(
            f"    projection, XLM-R large ({params / 1e6:.0f}M params) {'with' if best else 'without'} best "
            f"weights: {human(size)}, ~{size / (cost['bytes'] / cost['seconds']):.0f} s at the {largest} "
            "write speed here (not measured)"
        )
    return out
