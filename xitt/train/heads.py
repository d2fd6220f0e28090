"""Task heads on top of a shared encoder: features in, logits out, predictions decoded.

One head per kind. The encoder (an ``AutoModel``) is the only thing that passes between stages;
a head is always built fresh with an explicit ``num_labels`` (never reused from a checkpoint:
MNLI -> XNLI has the same label count and transformers would silently keep the old head).

* ``featurize(kind, examples, tokenizer, cfg, labels)`` -> feature dicts (``input_ids``, optional
  ``token_type_ids``, targets) with an ``example`` index back into ``examples``;
* ``collate(features, pad_id)`` -> a batch of padded tensors (dynamic padding);
* ``Head(kind, hidden, num_labels)`` -> ``head(encoder, batch) = (loss | None, logits)``;
* ``decode(kind, examples, features, logits, cfg, labels)`` -> (predictions, references) in the
  form ``xitt.metrics`` expects.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

KINDS = ("classification", "pair_classification", "multiple_choice", "span_qa", "tagging")


# ------------------------------------------------------------------------------------ features


def _keep(enc, i: int) -> dict:
    out = {"input_ids": enc["input_ids"][i]}
    if "token_type_ids" in enc:
        out["token_type_ids"] = enc["token_type_ids"][i]
    return out


def _featurize_tagging(examples, tokenizer, cfg, labels) -> list[dict]:
    tag_id = {t: i for i, t in enumerate(labels)}
    enc = tokenizer(
        [e["tokens"] for e in examples], is_split_into_words=True, truncation=True, max_length=cfg.max_length
    )
    feats = []
    for i, ex in enumerate(examples):
        word_ids, seen, tags = enc.word_ids(i), set(), []
        for w in word_ids:
            # Only the first sub-token of a word carries its label (XTREME); -100 is ignored by the loss.
            first = w is not None and w not in seen
            tags.append(tag_id.get(ex["tags"][w], -100) if first else -100)
            seen.add(w)
        feats.append({**_keep(enc, i), "labels": tags, "word_ids": word_ids, "example": i})
    return feats


def _answer_positions(ex: dict, offsets: Sequence) -> tuple[int, int]:
    """Token positions of the first gold answer in one window, or (0, 0) ([CLS]) when it is not inside."""
    if not ex["answers"]:
        return 0, 0
    a_start = ex["answers"][0]["answer_start"]
    a_end = a_start + len(ex["answers"][0]["text"])
    ctx = [k for k, o in enumerate(offsets) if o is not None]
    if not ctx or offsets[ctx[0]][0] > a_start or offsets[ctx[-1]][1] < a_end:
        return 0, 0
    start = next(k for k in ctx if offsets[k][1] > a_start)
    end = next(k for k in reversed(ctx) if offsets[k][0] < a_end)
    return start, end


def qa_windows(n_context: int, room: int, step: int) -> list[tuple[int, int]]:
    """(start, length) of the context windows of XTREME's run_squad (processors/squad.py).

    Window k starts at k * doc_stride (``step``) and holds at most ``room`` context tokens; the
    loop stops once a window reaches the end of the context (no overflowing tokens), and an empty
    context has no window at all (``while len(spans) * doc_stride < len(all_doc_tokens)``).
    """
    spans: list[tuple[int, int]] = []
    while len(spans) * step < n_context:
        start = len(spans) * step
        spans.append((start, min(n_context - start, room)))
        if start + room >= n_context:
            break
    return spans


def max_context(spans: Sequence[tuple[int, int]], k: int) -> list[bool]:
    """For each token of window ``k``: is this its 'max context' window (run_squad's
    _new_check_is_max_context: the most tokens on its shorter side, + 0.01 x window length)."""
    out = []
    for pos in range(spans[k][0], spans[k][0] + spans[k][1]):
        scores = [
            (min(pos - s, s + n - 1 - pos) + 0.01 * n, i)
            for i, (s, n) in enumerate(spans)
            if s <= pos < s + n
        ]
        out.append(max(scores, key=lambda t: (t[0], -t[1]))[1] == k)
    return out


def _pair_template(tokenizer) -> list[tuple[int | None, int, int]]:
    """The tokenizer's pair layout as blocks (token id or None for "sequence", sequence index,
    token type), read from one probe encoding: [CLS] A [SEP] B [SEP] for BERT, <s> A </s></s> B </s>
    for XLM-R. (Fast tokenizers in transformers 5 have no build_inputs_with_special_tokens.)"""
    if getattr(tokenizer, "_xitt_pair_template", None) is None:
        enc = tokenizer("a", "b")
        types = enc.get("token_type_ids") or [0] * len(enc["input_ids"])
        blocks: list[tuple[int | None, int, int]] = []
        for tid, seq, typ in zip(enc["input_ids"], enc.sequence_ids(), types):
            if seq is None:
                blocks.append((tid, -1, typ))
            elif not blocks or blocks[-1][1] != seq:
                blocks.append((None, seq, typ))
        tokenizer._xitt_pair_template = blocks
    return tokenizer._xitt_pair_template


def _build_pair(tokenizer, first: list[int], second: list[int]) -> tuple[list[int], list[int], list[int]]:
    """(input_ids, token_type_ids, positions of ``second``'s tokens) of a pair given as token ids."""
    ids: list[int] = []
    types: list[int] = []
    positions: list[int] = []
    for tid, seq, typ in _pair_template(tokenizer):
        part = [tid] if tid is not None else (first if seq == 0 else second)
        if seq == 1:
            positions = list(range(len(ids), len(ids) + len(part)))
        ids += part
        types += [typ] * len(part)
    return ids, types, positions


def _featurize_span_qa_step(examples, q_ids, tokenizer, cfg) -> list[dict]:
    """Span-QA features with XTREME's windows: ``doc_stride`` is the step between window starts.

    ``q_ids``: the questions' token ids, already cut to max_query_length. The context is tokenised
    as one string (run_squad tokenises it word by word after a whitespace split: the same
    sub-tokens for WordPiece and SentencePiece, whose word pieces never cross a space).
    """
    ctx = tokenizer([e["context"] for e in examples], add_special_tokens=False, return_offsets_mapping=True)
    with_types = "token_type_ids" in tokenizer.model_input_names
    feats = []
    for i, ex in enumerate(examples):
        ids, offs = ctx["input_ids"][i], ctx["offset_mapping"][i]
        room = cfg.max_length - len(q_ids[i]) - tokenizer.num_special_tokens_to_add(pair=True)
        if room <= cfg.doc_stride:
            raise ValueError(
                f"doc_stride {cfg.doc_stride} must be smaller than the room for context in a window "
                f"({room} tokens at max_length {cfg.max_length}); lower doc_stride or raise max_length."
            )
        spans = qa_windows(len(ids), room, cfg.doc_stride)
        for k, (start, length) in enumerate(spans):
            input_ids, types, positions = _build_pair(tokenizer, q_ids[i], ids[start : start + length])
            offsets: list = [None] * len(input_ids)
            best: list = [False] * len(input_ids)
            for p, o, m in zip(positions, offs[start : start + length], max_context(spans, k)):
                offsets[p], best[p] = tuple(o), m
            a_start, a_end = _answer_positions(ex, offsets)
            feat = {"input_ids": input_ids, "offsets": offsets, "max_context": best, "example": i}
            if with_types:
                feat["token_type_ids"] = types
            feats.append({**feat, "start_positions": a_start, "end_positions": a_end})
    return feats


def _featurize_span_qa(examples, tokenizer, cfg) -> list[dict]:
    # Questions are cut to XTREME's max_query_length (64 tokens, at most half the window) so that
    # every window keeps room for context; the stride must stay below that room.
    max_query = min(64, cfg.max_length // 2)
    q_enc = tokenizer(
        [e["question"].lstrip() for e in examples],
        add_special_tokens=False,
        truncation=True,
        max_length=max_query,
        return_offsets_mapping=True,
    )
    questions = [
        e["question"].lstrip()[: offs[-1][1]] if offs else e["question"].lstrip()
        for e, offs in zip(examples, q_enc["offset_mapping"])
    ]
    if cfg.qa_windows == "step":
        return _featurize_span_qa_step(examples, q_enc["input_ids"], tokenizer, cfg)
    stride = max(0, min(cfg.doc_stride, cfg.max_length - max_query - 4))
    enc = tokenizer(
        questions,
        [e["context"] for e in examples],
        truncation="only_second",
        max_length=cfg.max_length,
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
    )
    feats = []
    for i in range(len(enc["input_ids"])):
        ex_i = enc["overflow_to_sample_mapping"][i]
        ex, seq, offsets = examples[ex_i], enc.sequence_ids(i), enc["offset_mapping"][i]
        context_offsets = [o if s == 1 else None for o, s in zip(offsets, seq)]
        start, end = _answer_positions(ex, context_offsets)  # answer outside this window -> [CLS]
        feats.append(
            {
                **_keep(enc, i),
                "start_positions": start,
                "end_positions": end,
                "offsets": context_offsets,
                "example": ex_i,
            }
        )
    return feats


def featurize(
    kind: str, examples: Sequence[dict], tokenizer, cfg, labels: Sequence[str] | None = None
) -> list[dict]:
    """Tokenise examples (see xitt.data for their keys) into features; no padding here."""
    if kind in ("classification", "pair_classification"):
        pairs = [e["text_pair"] for e in examples] if kind == "pair_classification" else None
        enc = tokenizer([e["text"] for e in examples], pairs, truncation=True, max_length=cfg.max_length)
        return [{**_keep(enc, i), "labels": e["label"], "example": i} for i, e in enumerate(examples)]
    if kind == "multiple_choice":
        feats = []
        for i, e in enumerate(examples):
            first = (e["context"] + " " + e["question"]).strip()
            enc = tokenizer(
                [first] * len(e["choices"]), list(e["choices"]), truncation=True, max_length=cfg.max_length
            )
            feats.append(
                {
                    "input_ids": enc["input_ids"],
                    **({"token_type_ids": enc["token_type_ids"]} if "token_type_ids" in enc else {}),
                    "labels": e["label"],
                    "example": i,
                }
            )
        return feats
    if kind == "tagging":
        return _featurize_tagging(examples, tokenizer, cfg, labels)
    if kind == "span_qa":
        return _featurize_span_qa(examples, tokenizer, cfg)
    raise ValueError(f"no head for kind {kind!r}; heads exist for {list(KINDS)}.")


def feature_length(feature: dict) -> int:
    ids = feature["input_ids"]
    return max(len(x) for x in ids) if ids and isinstance(ids[0], list) else len(ids)


def _pad(rows: list[list[int]], value: int, width: int) -> list[list[int]]:
    return [r + [value] * (width - len(r)) for r in rows]


def collate(features: Sequence[dict], pad_id: int) -> dict[str, torch.Tensor]:
    """Pad a list of features to the longest one (dynamic padding) and stack them into tensors."""
    width = max(feature_length(f) for f in features)
    multi = isinstance(features[0]["input_ids"][0], list)
    flat = (
        (lambda key: [r for f in features for r in f[key]])
        if multi
        else (lambda key: [f[key] for f in features])
    )
    ids = _pad(flat("input_ids"), pad_id, width)
    batch = {
        "input_ids": torch.tensor(ids),
        "attention_mask": torch.tensor(
            [[int(t != -1) for t in r] for r in _pad(flat("input_ids"), -1, width)]
        ),
    }
    if "token_type_ids" in features[0]:
        batch["token_type_ids"] = torch.tensor(_pad(flat("token_type_ids"), 0, width))
    if multi:
        n = len(features[0]["input_ids"])
        batch = {k: v.view(len(features), n, width) for k, v in batch.items()}
    first = features[0]
    if isinstance(first.get("labels"), list):
        batch["labels"] = torch.tensor(_pad([f["labels"] for f in features], -100, width))
    elif "labels" in first:
        batch["labels"] = torch.tensor([f["labels"] for f in features])
    if "start_positions" in first:
        batch["start_positions"] = torch.tensor([f["start_positions"] for f in features])
        batch["end_positions"] = torch.tensor([f["end_positions"] for f in features])
    return batch


# ----------------------------------------------------------------------------------- the heads


class Head(nn.Module):
    """A fresh task head; ``head(encoder, batch)`` returns (loss or None, logits).

    classification/pair: [CLS] -> dense -> tanh -> linear (the BERT/RoBERTa classifier);
    multiple_choice: one [CLS] score per choice; span_qa: start/end logits per token;
    tagging: per-token labels.
    """

    def __init__(self, kind: str, hidden: int, num_labels: int, dropout: float = 0.1):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"no head for kind {kind!r}; heads exist for {list(KINDS)}.")
        self.kind = kind
        self.dropout = nn.Dropout(dropout)
        out = {"multiple_choice": 1, "span_qa": 2}.get(kind, num_labels)
        self.dense = nn.Linear(hidden, hidden) if kind in ("classification", "pair_classification") else None
        self.out = nn.Linear(hidden, out)

    def forward(self, encoder: nn.Module, batch: dict[str, torch.Tensor]):
        inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in batch}
        shape = inputs["input_ids"].shape
        if self.kind == "multiple_choice":
            inputs = {k: v.reshape(-1, shape[-1]) for k, v in inputs.items()}
        hidden = encoder(**inputs).last_hidden_state
        loss_fn = nn.CrossEntropyLoss()
        if self.kind in ("classification", "pair_classification", "multiple_choice"):
            x = self.dropout(hidden[:, 0])
            if self.dense is not None:
                x = self.dropout(torch.tanh(self.dense(x)))
            logits = self.out(x)
            if self.kind == "multiple_choice":
                logits = logits.view(shape[0], shape[1])
            loss = loss_fn(logits.float(), batch["labels"]) if "labels" in batch else None
            return loss, logits
        logits = self.out(self.dropout(hidden))
        if self.kind == "tagging":
            loss = (
                loss_fn(logits.float().view(-1, logits.shape[-1]), batch["labels"].view(-1))
                if "labels" in batch
                else None
            )
            return loss, logits
        loss = None
        if "start_positions" in batch:
            loss = (
                loss_fn(logits[..., 0].float(), batch["start_positions"])
                + loss_fn(logits[..., 1].float(), batch["end_positions"])
            ) / 2
        return loss, logits


def num_outputs(kind: str, labels: Sequence[str] | None) -> int:
    if kind in ("classification", "pair_classification", "tagging"):
        if not labels:
            raise ValueError(f"a {kind} task needs its label list (task YAML 'labels' or the training tags).")
        return len(labels)
    return 1


# ----------------------------------------------------------------------------------- decoding


def _best_span(
    start: np.ndarray,
    end: np.ndarray,
    offsets: list,
    n_best: int,
    max_len: int,
    starts_ok: list | None = None,
) -> tuple[float, Any]:
    """Best (score, character span) among the n-best starts and ends; ``starts_ok`` (run_squad's
    token_is_max_context) excludes starts whose max-context window is another one."""
    best = (-np.inf, None)
    for s in np.argsort(start)[::-1][:n_best]:
        if starts_ok is not None and not starts_ok[s]:
            continue
        for e in np.argsort(end)[::-1][:n_best]:
            if offsets[s] is None or offsets[e] is None or e < s or e - s + 1 > max_len:
                continue
            score = float(start[s] + end[e])
            if score > best[0]:
                best = (score, (offsets[s][0], offsets[e][1]))
    return best


def decode(
    kind: str,
    examples: Sequence[dict],
    features: Sequence[dict],
    logits: Sequence[np.ndarray],
    cfg,
    labels: Sequence[str] | None = None,
    allow_null: bool = False,
) -> tuple[Any, Any]:
    """(predictions, references) for the metric; ``logits[i]`` belongs to ``features[i]`` (unpadded).

    classification/multiple choice: label ids; tagging: tag sequences per sentence (words cut off
    by truncation are predicted "O"); span QA: {id: text} and {id: [gold texts]}, best span over
    the n-best starts/ends of every window, at most ``max_answer_length`` tokens; with
    ``allow_null`` (SQuAD v2) the empty answer wins when [CLS] scores higher.
    """
    if kind in ("classification", "pair_classification", "multiple_choice"):
        return [int(np.argmax(row)) for row in logits], [examples[f["example"]]["label"] for f in features]
    if kind == "tagging":
        preds, refs = [], []
        for f, scores in zip(features, logits):
            gold = examples[f["example"]]["tags"]
            words = ["O"] * len(gold)
            seen = set()
            for pos, w in enumerate(f["word_ids"]):
                if w is not None and w not in seen:
                    words[w] = labels[int(np.argmax(scores[pos]))]
                    seen.add(w)
            preds.append(words)
            refs.append(list(gold))
        return preds, refs
    best: dict[int, tuple[float, Any]] = {}
    null: dict[int, float] = {}
    for f, scores in zip(features, logits):
        i = f["example"]
        score, span = _best_span(
            scores[:, 0], scores[:, 1], f["offsets"], cfg.n_best, cfg.max_answer_length, f.get("max_context")
        )
        if span is not None and score > best.get(i, (-np.inf, None))[0]:
            best[i] = (score, span)
        null[i] = min(null.get(i, np.inf), float(scores[0, 0] + scores[0, 1]))
    preds, refs = {}, {}
    for i, ex in enumerate(examples):
        score, span = best.get(i, (-np.inf, None))
        text = ex["context"][span[0] : span[1]] if span else ""
        preds[ex["id"]] = "" if allow_null and null.get(i, -np.inf) > score else text
        refs[ex["id"]] = [a["text"] for a in ex["answers"]]
    return preds, refs
