"""Masked-language-model pretraining of a tiny BERT: the offline demo's "mBERT".

    tok = build_tokenizer(texts)                             # xitt.tiny
    info = pretrain_encoder(documents, tok, "out/encoder", hidden=64, layers=2, seed=0)
    AutoModel.from_pretrained("out/encoder")                 # what the runner loads

The encoder starts as ``xitt.tiny.build_encoder`` (random weights under ``seed``), is trained
with BERT's MLM objective (15% of the tokens chosen; 80% of them [MASK], 10% a random token,
10% kept) on unlabelled documents of every language, and is saved as a plain ``BertModel`` with
its tokenizer. Deterministic: one torch thread, a seeded ``torch.Generator`` for masking and a
numpy Generator for the order of documents, so the same inputs give bit-identical weights.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xitt.train.mlm import mask_tokens  # BERT's 15% / 80-10-10 masking, shared with MLM-mixed stages


def _encode(documents: Sequence[str], tokenizer, max_length: int) -> list[list[int]]:
    enc = tokenizer(list(documents), truncation=True, max_length=max_length)
    return [list(ids) for ids in enc["input_ids"]]


def _train_mlm(
    model,
    ids: list[list[int]],
    tokenizer,
    *,
    epochs: float,
    batch_size: int,
    lr: float,
    mask_prob: float,
    warmup_ratio: float,
    seed: int,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The MLM loop (AdamW, linear warmup/decay, clip 1.0); returns losses and masked-token hits per step.

    ``log`` gets a progress line at every tenth of the steps (step, share, recent loss, seconds).
    """
    import torch

    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    per_epoch = math.ceil(len(ids) / batch_size)
    total = max(1, int(epochs * per_epoch))
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    warmup = max(1, int(warmup_ratio * total))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: (s + 1) / warmup if s < warmup else max(0.0, (total - s) / max(1, total - warmup)),
    )
    pad, special = (
        tokenizer.pad_token_id,
        {tokenizer.pad_token_id, tokenizer.cls_token_id, tokenizer.sep_token_id},
    )
    losses, correct = [], []
    model.train()
    step, started = 0, time.time()
    while step < total:
        order = rng.permutation(len(ids))
        for start in range(0, len(order), batch_size):
            rows = [ids[i] for i in order[start : start + batch_size]]
            width = max(len(r) for r in rows)
            batch = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
            attention = (batch != pad).long()
            inputs, labels = mask_tokens(
                batch,
                torch.isin(batch, torch.tensor(sorted(special))),
                len(tokenizer),
                gen,
                tokenizer.mask_token_id,
                mask_prob,
            )
            result = model(input_ids=inputs, attention_mask=attention, labels=labels)
            result.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            with torch.no_grad():
                hit = (result.logits.argmax(-1) == labels)[labels != -100]
            losses.append(result.loss.item())
            correct.append((int(hit.sum()), int(hit.numel())))
            step += 1
            if log is not None and (step % max(1, total // 10) == 0 or step == total):
                recent = float(np.mean(losses[-max(1, total // 10) :]))
                log(
                    f"synth: pretraining step {step}/{total} ({100 * step // total}%), MLM loss {recent:.2f}, "
                    f"{time.time() - started:.0f} s"
                )
            if step >= total:
                break
    return {"steps": total, "losses": losses, "correct": correct, "n_documents": len(ids)}


def pretrain_encoder(
    documents: Sequence[str],
    tokenizer,
    out_dir: str | Path,
    *,
    hidden: int = 64,
    layers: int = 2,
    heads: int = 2,
    intermediate: int = 128,
    max_position: int = 128,
    max_length: int = 96,
    epochs: float = 4.0,
    batch_size: int = 32,
    lr: float = 2e-3,
    mask_prob: float = 0.15,
    warmup_ratio: float = 0.06,
    seed: int = 0,
    num_threads: int = 1,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Pretrain with MLM and save the encoder to ``out_dir``; returns {steps, loss_first, loss_last,
    masked_accuracy_last, wall_time, n_documents, parameters}.

    ``loss_first``/``loss_last`` are the mean MLM losses of the first and last 10% of steps;
    ``masked_accuracy_last`` the share of masked tokens predicted right over the last 10%.
    """
    import torch
    from transformers import BertForMaskedLM, BertModel
    from transformers.utils import logging as hf_logging

    from xitt.synth.tiny import build_encoder

    if not documents:
        raise ValueError("pretraining needs at least one document.")
    if max_length > max_position:
        raise ValueError(f"max_length ({max_length}) cannot exceed max_position ({max_position}).")
    if num_threads > 0:
        torch.set_num_threads(num_threads)
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    t0 = time.time()
    out = Path(out_dir)
    build_encoder(
        tokenizer,
        out,
        hidden=hidden,
        layers=layers,
        heads=heads,
        intermediate=intermediate,
        max_position=max_position,
        seed=seed,
    )
    base = BertModel.from_pretrained(out)
    with torch.random.fork_rng(devices=[]):  # MLM head init and dropout seeded; the caller's RNG untouched
        torch.manual_seed(seed)
        model = BertForMaskedLM(base.config)
        model.bert.load_state_dict(
            {k: v for k, v in base.state_dict().items() if not k.startswith("pooler.")}
        )
        curve = _train_mlm(
            model,
            _encode(documents, tokenizer, max_length),
            tokenizer,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            mask_prob=mask_prob,
            warmup_ratio=warmup_ratio,
            seed=seed,
            log=log,
        )
    base.load_state_dict({**base.state_dict(), **{k: v for k, v in model.bert.state_dict().items()}})
    base.save_pretrained(out)
    tokenizer.save_pretrained(out)
    for path in out.iterdir():  # safetensors is written 0600; shared folders need it readable
        path.chmod(0o644)
    losses, tail = curve["losses"], max(1, curve["steps"] // 10)
    hits, seen = map(sum, zip(*curve["correct"][-tail:]))
    return {
        "steps": curve["steps"],
        "loss_first": float(np.mean(losses[:tail])),
        "loss_last": float(np.mean(losses[-tail:])),
        "masked_accuracy_last": 100.0 * hits / max(1, seen),
        "wall_time": time.time() - t0,
        "n_documents": curve["n_documents"],
        "parameters": sum(p.numel() for p in base.parameters()),
    }
