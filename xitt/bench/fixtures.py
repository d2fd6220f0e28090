"""What the runner benchmarks run on: the tiny fixture tasks of a source checkout
(tests/data/tiny) and random-weight BERT encoders built locally at two sizes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

TINY = Path(__file__).resolve().parents[2] / "tests" / "data" / "tiny"

# encoder shapes (xitt.synth.tiny.build_encoder arguments); "base" is BERT-base's 12 x 768 with
# the fixtures' word-level vocabulary (the embedding table is small, every layer full size)
SIZES = {
    "tiny": {"hidden": 32, "layers": 2, "heads": 2, "intermediate": 64},
    "base": {"hidden": 768, "layers": 12, "heads": 12, "intermediate": 3072},
}


def setup() -> None:
    """Register the tiny tasks (XITT_TASKS_PATH), 1 torch thread, no library progress bars."""
    if not (TINY / "tasks" / "tiny.yaml").is_file():
        raise FileNotFoundError(f"xitt bench needs the tiny fixtures of a source checkout at {TINY}.")
    paths = [p for p in os.environ.get("XITT_TASKS_PATH", "").split(os.pathsep) if p]
    if str(TINY / "tasks") not in paths:
        os.environ["XITT_TASKS_PATH"] = os.pathsep.join(paths + [str(TINY / "tasks")])
    import torch
    from transformers.utils import logging as hf_logging

    torch.set_num_threads(1)
    hf_logging.disable_progress_bar()  # the table is the output, not the library's save bars


def build_tiny_encoder(folder: Path, size: str = "tiny") -> Path:
    """A random-weight BERT of shape ``SIZES[size]`` (seed 0) with the fixtures' vocabulary, saved
    to ``folder/encoder-<size>``; returns that folder."""
    from xitt.synth.tiny import build_encoder, build_tokenizer

    texts = [p.read_text(encoding="utf-8") for p in sorted(TINY.glob("tiny_*/*"))]
    return build_encoder(
        build_tokenizer(texts), folder / f"encoder-{size}", max_position=64, seed=0, **SIZES[size]
    )


def tiny_data(work: Path) -> Path:
    """A copy of the fixture tasks' data in ``work/data`` (made once): loading a split writes its
    prepared cache into the data folder, which must not be the source checkout's fixtures."""
    copy = work / "data"
    if not copy.is_dir():
        shutil.copytree(TINY, copy, ignore=shutil.ignore_patterns("tasks", "*.py", "prepared"))
    return copy
