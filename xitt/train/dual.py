"""Dual-encoder fine-tuning of retrieval targets (``retrieval_training: dual``), as XTREME-R trains
Mewsli-X and LAReQA before ranking (google-research/xtreme@838c13b69daafb9328785d16caae2711e4012123
third_party/bert.py BertForRetrieval, third_party/run_retrieval_el.py, run_retrieval_qa.py,
processors/mewslix.py, processors/lareqa.py, scripts/train_mewslix.sh, train_lareqa.sh):

* one encoder with shared weights for both towers; a text's encoding is the L2-normalised pooler
  output ([CLS] of the last layer -> dense -> tanh; an encoder saved without a pooler gives its
  [CLS] vector instead);
* loss: in-batch softmax. The logits of a batch of B (query, candidate) pairs are
  ``logit_scale * q @ c.T`` (B x B), the matching candidate of each query is its class
  (cross-entropy over the rows, queries -> candidates only); ``logit_scale`` is a trained scalar
  that starts at 100;
* training data (the task YAML's ``dual_encoder``): Mewsli-X ``pairs: aligned``, English Wikipedia
  mention -> entity description (``mewslix/train-en.tsv`` from ``xitt convert mewslix``);
  LAReQA ``pairs: answer_sentence``, SQuAD v1.1 train question -> the sentence that holds the
  first answer followed by the whole paragraph, newlines removed (questions whose answer lies in
  no sentence are skipped);
* queries are cut at ``max_query_length`` tokens (0: ``max_length``), candidates at ``max_length``
  (LAReQA 96 and 256, Mewsli-X 64 and 64);
* trained by ``xitt.train.fit`` with ``DualEncoder`` as the head (AdamW, linear schedule, clipping,
  gradient accumulation, and its resume states: a preempted run goes on where it stopped); batches
  are random (no length grouping: the batch is the negatives); the final model is evaluated (the
  official scripts evaluate a saved checkpoint, for LAReQA checkpoint-9000 of the run); no
  English-dev selection or evaluation.

Evaluation: ``xitt.train.retrieval.evaluate_retrieval`` with these encodings (the first tower,
``inference=True`` in BertForRetrieval), for the shared pools of xitt.train.pool.

Differences kept: SQuAD sentences are split by ``sentence_breaks`` below, which follows the first
rule and the abbreviation and initials exceptions of XTREME-R's processors/sb_sed.py but not its
~20 SQuAD-specific patches (tests/test_dual.py replays those rules); the answer-text check of
processors/lareqa.py (a handful of SQuAD questions) is not repeated; XTREME-R lower-cases XLM-R's
input (--do_lower_case), xitt does not.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from xitt.data import loaders as xdata
from xitt.grid.spec import TrainConfig
from xitt.tasks import Registry, Task
from xitt.train.fit import fit
from xitt.train.heads import collate
from xitt.train.pool import shared_pool_for
from xitt.train.predict import TaskData, autocast
from xitt.train.resume import Resume
from xitt.train.retrieval import evaluate_retrieval

# processors/sb_sed.py's first rule: a break after . ? ! (and closing quotes/brackets) and space,
# before an upper-case letter or digit (optionally after an opening quote or bracket) ...
_BREAK = re.compile(r"[.?!][)'\"\u201d]*(?=\s+[\['\"(\u201c]?[A-Z0-9])")
# ... except after the titles, abbreviations, months and Mt/Ft it lists ...
_ABBREVIATION = re.compile(
    r"\b(?:Mrs?|Ms|Dr|Prof|Fr|Rev|Msgr|Sta?|Lt|Gen|Col|Maj|Adm|Capt|Sgt|Rep|Gov|Sen|Pres"
    r"|e\.g|i\.?e|vs?|pp?|cf|a\.k\.a|approx|app|es[pt]|tr|Jan|Aug|Oct|Nov|Dec|Mt|Ft)\.$"
)
# ... and after initials ("J.", "U.S.") when a capitalised word follows.
_INITIALS = re.compile(r"\b[A-Z]\.(?:[A-Z]\.)?$")
_CAPITALISED = re.compile(r"\s+\"?[A-Z][a-z]")


def _keeps_together(text: str, end: int) -> bool:
    """No sentence break after ``text[:end]`` (which ends in "."): an abbreviation or initials."""
    before = text[max(0, end - 10) : end]
    if _ABBREVIATION.search(before):
        return True
    return bool(_INITIALS.search(before)) and bool(_CAPITALISED.match(text, end))


def sentence_breaks(text: str) -> list[tuple[int, int]]:
    """(start, end) character spans of the sentences of a paragraph, leading/trailing space excluded."""
    spans, start = [], 0
    for match in _BREAK.finditer(text):
        if match.group() == "." and _keeps_together(text, match.end()):
            continue
        spans.append((start, match.end()))
        start = match.end()
    spans.append((start, len(text)))
    out = []
    for begin, end in spans:
        piece = text[begin:end]
        begin += len(piece) - len(piece.lstrip())
        end -= len(piece) - len(piece.rstrip())
        if end > begin:
            out.append((begin, end))
    return out


def answer_sentence_pairs(examples: Sequence[dict]) -> list[tuple[str, str]]:
    """SQuAD examples {question, context, answers} -> (question, answer sentence + paragraph)."""
    pairs = []
    for ex in examples:
        if not ex["answers"]:
            continue
        start, context = ex["answers"][0]["answer_start"], ex["context"]
        sentence = next((context[b:e] for b, e in sentence_breaks(context) if b <= start < e), None)
        if sentence:
            pairs.append((ex["question"], (sentence + context).replace("\n", "")))
    return pairs


def training_pairs(
    task: Task, cfg: TrainConfig, reg: Registry, data_dir: Path | None
) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """(query, candidate) pairs of the task's ``dual_encoder`` training data and its fingerprint."""
    source = reg.get(task.dual_encoder["train"])
    rows, fp = xdata.load_split(source, "train", source.train_language, data_dir)
    how = task.dual_encoder.get("pairs")
    if how == "answer_sentence":
        pairs = answer_sentence_pairs(rows)
    elif how == "aligned":
        pairs = [(r["src"], r["tgt"]) for r in rows if r["src"] and r["tgt"]]
    else:
        raise ValueError(
            f"{task.file}: {task.name}.dual_encoder.pairs is {how!r}; use aligned or answer_sentence."
        )
    if 0 < cfg.max_train_examples < len(pairs):  # the same fixed subsample as xitt.train.chain
        keep = np.sort(np.random.default_rng(0).choice(len(pairs), cfg.max_train_examples, replace=False))
        pairs = [pairs[i] for i in keep]
    return pairs, {f"{source.name}/train-{source.train_language}": fp}


def featurize_pairs(pairs, tokenizer, query_length: int, candidate_length: int) -> list[dict]:
    """One feature per pair: ``input_ids`` (query) and ``candidate_ids``, each [CLS] ... [SEP], cut."""
    q = tokenizer([p[0] for p in pairs], truncation=True, max_length=query_length)["input_ids"]
    c = tokenizer([p[1] for p in pairs], truncation=True, max_length=candidate_length)["input_ids"]
    return [{"input_ids": a, "candidate_ids": b} for a, b in zip(q, c)]


def in_batch_loss(queries: torch.Tensor, candidates: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of ``scale * queries @ candidates.T`` with the diagonal as the classes
    (BertForRetrieval.forward); inputs are (B, d) unit vectors."""
    logits = _scores(queries, candidates, scale)
    return nn.functional.cross_entropy(logits, torch.arange(len(queries), device=logits.device))


def _scores(queries: torch.Tensor, candidates: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    # in fp32 even under bf16/fp16 autocast: at a scale of 100, bf16's 8-bit mantissa would round
    # the logits to steps of 0.5, i.e. cosine differences below 0.005 would vanish
    with torch.autocast(queries.device.type, enabled=False):
        return scale.float() * queries.float() @ candidates.float().T


class DualEncoder(nn.Module):
    """The scale of the in-batch softmax; ``encode`` gives a text's unit vector with the shared
    encoder. As a head of ``xitt.train.fit``: ``collate`` batches the pairs' features,
    ``dual(encoder, batch)`` returns (loss, scores)."""

    def __init__(self, scale: float = 100.0):
        super().__init__()
        self.logit_scale = nn.Parameter(torch.full((1,), float(scale)))

    @staticmethod
    def encode(encoder, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        out = encoder(**inputs)
        pooled = getattr(out, "pooler_output", None)
        vector = pooled if pooled is not None else out.last_hidden_state[:, 0]
        return nn.functional.normalize(vector.float(), p=2, dim=1)

    @staticmethod
    def collate(features: Sequence[dict], pad_id: int) -> dict[str, torch.Tensor]:
        """Queries (``input_ids``, ``attention_mask``) and candidates (``candidate_ids``,
        ``candidate_mask``), each side padded to its own longest text."""
        candidates = collate([{"input_ids": f["candidate_ids"]} for f in features], pad_id)
        return {
            **collate([{"input_ids": f["input_ids"]} for f in features], pad_id),
            "candidate_ids": candidates["input_ids"],
            "candidate_mask": candidates["attention_mask"],
        }

    def forward(self, encoder, batch) -> tuple[torch.Tensor, torch.Tensor]:
        q = self.encode(encoder, {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]})
        c = self.encode(
            encoder, {"input_ids": batch["candidate_ids"], "attention_mask": batch["candidate_mask"]}
        )
        return in_batch_loss(q, c, self.logit_scale), _scores(q, c, self.logit_scale).detach()


@torch.inference_mode()
def encode_texts(
    encoder, tokenizer, texts: Sequence[str], max_length: int, cfg: TrainConfig, device
) -> np.ndarray:
    """Unit vectors of ``texts`` (DualEncoder.encode), in input order; batches sorted by length."""
    encoder.eval()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = None
    for start in range(0, len(order), cfg.eval_batch_size):
        idx = order[start : start + cfg.eval_batch_size]
        enc = tokenizer(
            [texts[i] for i in idx], truncation=True, max_length=max_length, padding=True, return_tensors="pt"
        )
        with autocast(device, cfg.precision):
            vectors = DualEncoder.encode(encoder, {k: v.to(device) for k, v in enc.items()}).cpu().numpy()
        if out is None:
            out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
        out[idx] = vectors
    return out if out is not None else np.zeros((0, 1), dtype=np.float32)


def run_dual(
    encoder,
    tokenizer,
    task: Task,
    cfg: TrainConfig,
    *,
    languages,
    seed,
    data_dir,
    device,
    reg,
    desc,
    progress,
    resume: Resume | None = None,
) -> dict[str, Any]:
    """Fine-tune the dual encoder on the task's English pairs, then rank as XTREME-R does.
    ``resume``: the run's resume state (its identity gains the training pairs' fingerprints).

    Returns {scores: {language: {metric: value}}, prints: fingerprints, steps, wall_time}."""
    t0 = time.time()
    # the shared pool is read (and its files checked) before anything trains
    shared = shared_pool_for(task, languages, data_dir) if cfg.candidate_pool == "shared" else None
    pairs, prints = training_pairs(task, cfg, reg, data_dir)
    if not pairs:
        raise ValueError(
            f"{task.name}: the dual encoder's training data ({task.dual_encoder['train']}) has no pairs."
        )
    query_length = cfg.max_query_length or cfg.max_length
    features = featurize_pairs(pairs, tokenizer, query_length, cfg.max_length)
    # random batches (the batch is the negatives), no English dev: the final weights are evaluated
    loop_cfg = dataclasses.replace(cfg, select_on="last", eval_every=0, patience=0, group_by_length=False)
    if resume is not None:
        data = {**resume.identity.get("data", {}), **prints}
        resume = dataclasses.replace(resume, identity={**resume.identity, "data": data})
    encoder.to(device)
    steps = fit(
        encoder,
        {task.name: DualEncoder().to(device)},
        {task.name: TaskData(task, loop_cfg, None, features, [], [])},
        seed=seed,
        pad_id=tokenizer.pad_token_id,
        device=device,
        desc=desc,
        progress=progress,
        resume=resume,
        evaluate=False,
    )["steps"]
    t1 = time.time()
    encoders = (
        lambda texts: encode_texts(encoder, tokenizer, texts, query_length, cfg, device),
        lambda texts: encode_texts(encoder, tokenizer, texts, cfg.max_length, cfg, device),
    )
    scores, more = evaluate_retrieval(
        encoder, tokenizer, task, languages, cfg, data_dir, device, encoders, shared
    )
    return {
        "scores": scores,
        "prints": {**prints, **more},
        "steps": steps,
        "wall_time": {"target": t1 - t0, "eval": time.time() - t1},
    }
