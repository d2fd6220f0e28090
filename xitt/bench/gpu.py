"""``make gpu-check``: a tiny chain in bf16 and fp16 on a CUDA device, and xitt's training
throughput against ``transformers.Trainer`` in the same precision at both benchmark sizes (the
tiny BERT and the BERT-base-shaped one, xitt.bench.fixtures.SIZES), 3 interleaved repeats. Printed, never asserted (the
``gpu`` tests in tests/test_gpu.py assert that the chain runs and scores stay finite).

Without a CUDA device it prints that it was skipped and why, and returns an empty dict.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from pathlib import Path

from xitt.bench.fixtures import build_tiny_encoder, setup, tiny_data
from xitt.bench.loop import throughput

PRECISIONS = ("bf16", "fp16")


def tiny_chain(encoder: Path, work: Path, precision: str) -> dict:
    """tiny_nli -> {tiny_cls, tiny_qa}, one seed, in ``precision``; returns execute()'s counts and the
    primary scores {run_id: {language: score}}."""
    from xitt.grid.spec import parse_grid
    from xitt.run.executors import execute
    from xitt.run.store import collect

    doc = {
        "experiment": f"gpu-{precision}",
        "encoders": [{"name": "tiny", "path": str(encoder)}],
        "intermediates": ["none", "tiny_nli"],
        "targets": ["tiny_cls", "tiny_qa"],
        "seeds": [1],
        "data_dir": str(tiny_data(work)),
        "train": {"epochs": 1, "precision": precision},
    }
    grid = parse_grid(doc)
    counts = execute(grid, exp_dir=work / precision, progress=False)
    from xitt.grid.spec import expand_grid

    frame, _ = collect(work / precision, [r.run_id for r in expand_grid(grid)[1]])
    scores = frame[frame.primary].groupby(["run_id", "language"]).score.first().unstack().to_dict("index")
    return {"counts": counts, "scores": scores}


def main() -> dict:
    import torch

    if not torch.cuda.is_available():
        print("gpu-check skipped: no CUDA device (torch.cuda.is_available() is False on this machine).")
        return {}
    setup()
    work = Path(tempfile.mkdtemp(prefix="xitt-gpu-"))
    out = {}
    try:
        encoder, base = build_tiny_encoder(work), build_tiny_encoder(work, "base")
        name = torch.cuda.get_device_name(0)
        print(f"gpu-check on {name} (bf16 supported: {torch.cuda.is_bf16_supported()})")
        for precision in PRECISIONS:
            if precision == "bf16" and not torch.cuda.is_bf16_supported():
                print("  bf16: not supported by this device; skipped")
                continue
            chain = tiny_chain(encoder, work, precision)
            finite = all(math.isfinite(v) for row in chain["scores"].values() for v in row.values())
            out[precision] = {**chain, "finite": finite}
            print(
                f"  {precision}: tiny chain {chain['counts']['done']}/{chain['counts']['runs']} runs done, "
                f"scores finite: {finite}"
            )
            for size, encoder_size in (("tiny", encoder), ("base", base)):
                # the base-shaped model: 4 epochs of tiny_cls (40 steps), lr for its size
                settings = {"repeat": 64} if size == "tiny" else {"repeat": 1, "epochs": 4, "lr": 5e-5}
                speed = throughput(
                    encoder_size, tiny_data(work), repeats=3, device="cuda", precision=precision, **settings
                )
                out[precision][size] = speed
                print(
                    f"    {size}: training {speed['xitt_ex_per_s']:.0f} ex/s (xitt) vs "
                    f"{speed['trainer_ex_per_s']:.0f} ex/s (transformers.Trainer), median of 3; ratio "
                    f"{speed['ratio_median']:.2f}x (fastest repeats: {speed['ratio_best']:.2f}x)"
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


if __name__ == "__main__":
    main()
