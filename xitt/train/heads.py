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

from xitt.train.windows import answer_positions, span_qa_step_features, tagging_chunks

KINDS = ("classification", "pair_classification", "multiple_choice", "span_qa", "tagging")


# ------------------------------------------------------------------------------------ features


def _keep(enc, i: int) -> dict:
    out = {"input_ids": enc["input_ids"][i]}
    if "token_type_ids" in enc:
        out["token_type_ids"] = enc["token_type_ids"][i]
    return out


def _featurize_tagging(examples, tokenizer, cfg, labels) -> list[dict]:
    """One feature per sentence (``long_sentences: truncate``) or per chunk of whole words
    (``chunk``, XTREME); ``first_word`` is the chunk's first word in its sentence."""
    tag_id = {t: i for i, t in enumerate(labels)}
    if cfg.long_sentences == "chunk":
        parts = [
            (i, start, chunk)
            for i, e in enumerate(examples)
            for start, chunk in tagging_chunks(e["tokens"], tokenizer, cfg.max_length)
        ]
    else:
        parts = [(i, 0, e["tokens"]) for i, e in enumerate(examples)]
    if not parts:
        return []
    enc = tokenizer(
        [words for _, _, words in parts], is_split_into_words=True, truncation=True, max_length=cfg.max_length
    )
    feats = []
    for j, (i, start, _) in enumerate(parts):
        word_ids, seen, tags = enc.word_ids(j), set(), []
        for w in word_ids:
            # Only the first sub-token of a word carries its label (XTREME); -100 is ignored by the loss.
            first = w is not None and w not in seen
            tags.append(tag_id.get(examples[i]["tags"][start + w], -100) if first else -100)
            seen.add(w)
        feats.append(
            {**_keep(enc, j), "labels": tags, "word_ids": word_ids, "example": i, "first_word": start}
        )
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
        return span_qa_step_features(examples, q_enc["input_ids"], tokenizer, cfg)
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
        start, end = answer_positions(ex, context_offsets)  # answer outside this window -> [CLS]
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


def _pad(rows: list[list[int]], value: int, width: int) -> torch.Tensor:
    """``rows`` right-padded with ``value`` to ``width``, as one int64 tensor (filled in numpy)."""
    out = np.full((len(rows), width), value, dtype=np.int64)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return torch.from_numpy(out)


def collate(features: Sequence[dict], pad_id: int) -> dict[str, torch.Tensor]:
    """Pad a list of features to the longest one (dynamic padding) and stack them into tensors."""
    width = max(feature_length(f) for f in features)
    multi = isinstance(features[0]["input_ids"][0], list)
    flat = (
        (lambda key: [r for f in features for r in f[key]])
        if multi
        else (lambda key: [f[key] for f in features])
    )
    ids = flat("input_ids")
    lengths = np.array([len(r) for r in ids])
    batch = {
        "input_ids": _pad(ids, pad_id, width),
        "attention_mask": torch.from_numpy((np.arange(width) < lengths[:, None]).astype(np.int64)),
    }
    if "token_type_ids" in features[0]:
        batch["token_type_ids"] = _pad(flat("token_type_ids"), 0, width)
    if multi:
        n = len(features[0]["input_ids"])
        batch = {k: v.view(len(features), n, width) for k, v in batch.items()}
    first = features[0]
    if isinstance(first.get("labels"), list):
        batch["labels"] = _pad([f["labels"] for f in features], -100, width)
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

    classification/multiple choice: label ids; tagging: tag sequences per sentence, chunks put back
    together (with ``long_sentences: truncate`` the words cut off are predicted "O"); span QA:
    {id: text} and {id: [gold texts]}, best span over the n-best starts/ends of every window (with
    XTREME's windows only starts in their max-context window), at most ``max_answer_length``
    tokens; with ``allow_null`` (SQuAD v2) the empty answer wins when [CLS] scores higher.
    """
    if kind in ("classification", "pair_classification", "multiple_choice"):
        return [int(np.argmax(row)) for row in logits], [examples[f["example"]]["label"] for f in features]
    if kind == "tagging":
        # chunks of one sentence write into the same prediction list (run_tag.py save_predictions)
        preds = [["O"] * len(ex["tags"]) for ex in examples]
        for f, scores in zip(features, logits):
            seen = set()
            for pos, w in enumerate(f["word_ids"]):
                if w is not None and w not in seen:
                    preds[f["example"]][f.get("first_word", 0) + w] = labels[int(np.argmax(scores[pos]))]
                    seen.add(w)
        return preds, [list(ex["tags"]) for ex in examples]
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
