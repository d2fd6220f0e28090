"""Shared fixtures: the tiny task files (tests/data/tiny) and a session-wide tiny encoder.

The tiny tasks are registered through XITT_TASKS_PATH; torch (when a test imports it) runs with
one thread so that scores are bit-identical between runs.
"""

import os
from pathlib import Path

import pytest

TINY = Path(__file__).parent / "data" / "tiny"
_paths = [p for p in os.environ.get("XITT_TASKS_PATH", "").split(os.pathsep) if p]
if str(TINY / "tasks") not in _paths:  # subprocesses inherit it: add it once
    os.environ["XITT_TASKS_PATH"] = os.pathsep.join(_paths + [str(TINY / "tasks")])
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _tiny_texts() -> list[str]:
    texts = []
    for path in sorted(TINY.glob("tiny_*/*")):
        texts.append(path.read_text(encoding="utf-8"))
    return texts


@pytest.fixture(autouse=True)
def _checkpoints_in_tmp(tmp_path_factory, monkeypatch):
    """Stage checkpoints default to ~/.cache/xitt/checkpoints; tests keep theirs in pytest's tmp."""
    monkeypatch.setenv("XITT_CHECKPOINT_DIR", str(tmp_path_factory.getbasetemp() / "checkpoints"))


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """A copy of the tiny fixture tasks' data: `xitt prepare` writes its cache (prepared/) into the
    data dir, which must not be the committed fixture folder."""
    import shutil

    copy = tmp_path_factory.mktemp("tiny") / "data"
    shutil.copytree(TINY, copy, ignore=shutil.ignore_patterns("tasks", "*.py"))
    return copy


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory) -> Path:
    """A random-init BERT (hidden 32, 2 layers) with a word-level vocabulary of the fixtures."""
    import torch

    from xitt.synth.tiny import build_encoder, build_tokenizer

    torch.set_num_threads(1)
    tokenizer = build_tokenizer(_tiny_texts())
    return build_encoder(
        tokenizer,
        tmp_path_factory.mktemp("tiny") / "encoder",
        hidden=32,
        layers=2,
        heads=2,
        intermediate=64,
        max_position=64,
        seed=0,
    )
