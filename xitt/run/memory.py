"""Out-of-memory fallback for stages and runs (issue 11, "jobs that survive": memory).

On ``torch.cuda.OutOfMemoryError`` the whole stage or run is trained again from its start with the
micro-batch halved and the gradient accumulation doubled, so the effective batch (``batch_size x
grad_accum``) and the number of optimizer steps stay the same; the evaluation batch is halved too
(it does not change scores). This repeats while the micro-batch is even. The run id and stage id keep the
grid's settings (what the user asked for); what was really used is recorded under ``memory`` in
``result.json`` (``extra.memory``) and ``stage.json``: {oom_retries, batch_size, grad_accum,
eval_batch_size}, per task for a stage. Nothing is recorded when no OOM happened.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
from collections.abc import Callable, Mapping
from typing import Any

from xitt.grid.spec import TrainConfig

log = logging.getLogger("xitt")


def halved(cfg: TrainConfig) -> TrainConfig | None:
    """``cfg`` with half the micro-batch and twice the accumulation; None when the micro-batch is odd
    (1, or one whose half would change the effective batch)."""
    if cfg.batch_size % 2:
        return None
    return dataclasses.replace(
        cfg,
        batch_size=cfg.batch_size // 2,
        grad_accum=cfg.grad_accum * 2,
        eval_batch_size=max(1, cfg.eval_batch_size // 2),
    )


def _is_oom(err: BaseException) -> bool:
    import torch

    return isinstance(err, torch.cuda.OutOfMemoryError)


def _free_memory() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def retry_on_oom(
    train: Callable[[Mapping[str, TrainConfig]], Any], configs: Mapping[str, TrainConfig], what: str
) -> tuple[Any, dict]:
    """``train(configs)``, again with every config ``halved`` after each CUDA out-of-memory error;
    returns (its result, the memory record: {} without an OOM). Other errors propagate."""
    current, retries = dict(configs), 0
    while True:
        failed = None
        try:
            return train(current), _record(current, retries)
        except Exception as err:
            if not _is_oom(err):
                raise
            failed = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        # out of the except block: the traceback's frames (and their tensors) are gone
        _free_memory()
        smaller = {name: halved(cfg) for name, cfg in current.items()}
        if any(cfg is None for cfg in smaller.values()):
            raise MemoryError(
                f"{what}: out of GPU memory with micro-batch {[c.batch_size for c in current.values()]}, which "
                f"cannot be halved keeping the effective batch ({failed}); lower max_length or use a larger GPU"
            )
        current, retries = smaller, retries + 1
        log.warning(
            "%s: %s; retrying with micro-batch %s and gradient accumulation %s",
            what,
            failed,
            {n: c.batch_size for n, c in current.items()},
            {n: c.grad_accum for n, c in current.items()},
        )


def _record(configs: Mapping[str, TrainConfig], retries: int) -> dict:
    if not retries:
        return {}
    return {
        "oom_retries": retries,
        **{
            key: {name: getattr(cfg, key) for name, cfg in configs.items()}
            for key in ("batch_size", "grad_accum", "eval_batch_size")
        },
    }
