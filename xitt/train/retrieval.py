"""Retrieval targets (Tatoeba, BUCC, Mewsli-X/LAReQA-style mAP@20): the encoder itself is
evaluated; ``embed`` pools the hidden states of the recipe's layer. With ``retrieval_training:
dual`` (xitt.train.dual) the mAP targets are ranked with the fine-tuned dual encoder's encodings
instead (``encoders``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xitt.data import loaders as xdata
from xitt.grid.spec import TrainConfig
from xitt.tasks import Task
from xitt.train.metrics import evaluate, mine_bucc_candidates, tatoeba_nearest, tune_bucc_threshold
from xitt.train.pool import Outcomes, shared_pool_for, shared_pool_results
from xitt.train.predict import autocast, write_predictions


@torch.inference_mode()
def embed(encoder, tokenizer, sentences: Sequence[str], cfg: TrainConfig, device) -> np.ndarray:
    """Pooled hidden states of layer ``cfg.retrieval_layer`` (an index into ``hidden_states``:
    0 = embeddings, k = output of layer k, -1 = last layer), one row per sentence, in input order.

    ``cfg.retrieval_pool``: "mean" over all tokens of the sentence, [CLS] and [SEP] included, or
    "cls", the first token (XTREME's evaluate_retrieval.py: mean_pool_embedding over the attention
    mask, --pool_skip_special_token off by default; cls_pool_embedding takes position 0).
    """
    encoder.eval()
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
    out = np.zeros((len(sentences), encoder.config.hidden_size), dtype=np.float32)
    for start in range(0, len(order), cfg.eval_batch_size):
        idx = order[start : start + cfg.eval_batch_size]
        enc = tokenizer(
            [sentences[i] for i in idx],
            truncation=True,
            max_length=cfg.max_length,
            padding=True,
            return_tensors="pt",
        ).to(device)
        with autocast(device, cfg.precision):
            states = encoder(**enc, output_hidden_states=True).hidden_states[cfg.retrieval_layer]
        if cfg.retrieval_pool == "cls":
            out[idx] = states[:, 0].float().cpu().numpy()
            continue
        mask = enc["attention_mask"].unsqueeze(-1).float()
        out[idx] = ((states.float() * mask).sum(1) / mask.sum(1).clamp(min=1)).cpu().numpy()
    return out


Encode = Callable[[Sequence[str]], np.ndarray]


def _retrieval_inputs(rows, encode_src: Encode, encode_tgt: Encode) -> dict[str, Any]:
    src = [i for i, r in enumerate(rows) if r["src"]]
    tgt = [i for i, r in enumerate(rows) if r["tgt"]]
    return {
        "src": encode_src([rows[i]["src"] for i in src]),
        "src_ids": src,
        "tgt": encode_tgt([rows[i]["tgt"] for i in tgt]),
        "tgt_ids": tgt,
        "gold": [(i, i) for i, r in enumerate(rows) if r["src"] and r["tgt"]],
    }


def _tatoeba(x: dict) -> tuple[dict[str, float], tuple[list, list]]:
    nearest = tatoeba_nearest(x["src"], x["tgt"])
    scores = evaluate("tatoeba_accuracy", src_embeddings=x["src"], tgt_embeddings=x["tgt"])
    return scores, ([int(j) for j in nearest], list(range(len(nearest))))


def _map_at_20(x: dict) -> tuple[dict[str, float], tuple[list, list]]:
    def unit(m):
        return m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)

    sim = unit(x["src"]) @ unit(x["tgt"]).T
    ranked = [[x["tgt_ids"][j] for j in np.argsort(-row, kind="stable")[:20]] for row in sim]
    relevant = [[i] for i in x["src_ids"]]
    return evaluate("map_at_20", ranked=ranked, relevant=relevant), (ranked, relevant)


def _bucc(x: dict, s: dict) -> tuple[dict[str, float], tuple[list, list]]:
    """Tuned F1 and, per source sentence, its mined target ids at the tuned threshold and its gold ones."""
    sample = mine_bucc_candidates(s["src"], s["tgt"], s["src_ids"], s["tgt_ids"])
    candidates = mine_bucc_candidates(x["src"], x["tgt"], x["src_ids"], x["tgt_ids"])
    scores = evaluate(
        "bucc_f1", gold=x["gold"], sample_gold=s["gold"], sample_candidates=sample, candidates=candidates
    )
    threshold = tune_bucc_threshold(sample, s["gold"])  # bucc_tuned_f1's threshold
    predicted, gold = {i: [] for i in x["src_ids"]}, {i: [] for i in x["src_ids"]}
    for (src, tgt), score in candidates.items():
        if score >= threshold:
            predicted[src].append(tgt)
    for src, tgt in x["gold"]:
        gold[src].append(tgt)
    return scores, ([sorted(predicted[i]) for i in x["src_ids"]], [sorted(gold[i]) for i in x["src_ids"]])


def write_outcomes(folder: Path, task: Task, outcomes: Outcomes) -> None:
    """``folder/<language>.jsonl.gz``: one line {index, prediction, reference} per query, the layout
    of the trained targets' predictions (xitt.run.examples turns them into example rows)."""
    for lang, (preds, refs) in outcomes.items():
        write_predictions(Path(folder) / f"{lang}.jsonl.gz", task, [], preds, refs)


def evaluate_retrieval(
    encoder,
    tokenizer,
    task: Task,
    languages: Sequence[str],
    cfg: TrainConfig,
    data_dir: Path | None,
    device,
    encoders: tuple[Encode, Encode] | None = None,
    shared=None,
    predictions_dir: Path | None = None,
) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
    """XTREME's retrieval evaluation of the encoder: (language -> metric columns, fingerprints).

    Tatoeba: top-1 cosine accuracy of each sentence's English partner; BUCC: margin-based mining,
    threshold tuned on the dev (sample) split; mAP@20: with ``candidate_pool: language`` every
    candidate of the language ranked by cosine for each query, the aligned one relevant; with
    ``shared`` one pool of all languages (xitt.train.pool; ``shared``: that pool and its
    fingerprints, when already read). ``encoders`` (query, candidate) replace the pooled hidden
    states (``embed``) of the encoder.

    ``predictions_dir`` (``save_predictions``): per language one line per query (``write_outcomes``):
    Tatoeba: per English sentence j, prediction = its nearest source row, reference = j; mAP@20:
    per query its top-20 candidate ids, best first, and its relevant ids; BUCC: per source sentence
    (test rows with a source side) its mined target ids at the tuned threshold and its gold ones.
    """

    def pooled(texts):
        return embed(encoder, tokenizer, texts, cfg, device)

    encode_src, encode_tgt = encoders or (pooled, pooled)
    if task.metric == "map_at_20" and cfg.candidate_pool == "shared":
        pool, prints = shared or shared_pool_for(task, languages, data_dir)
        scores, outcomes = shared_pool_results(pool, encode_src, encode_candidates=encode_tgt)
    else:
        scores, prints, outcomes = {}, {}, {}
        for lang in languages:
            rows, prints[f"{task.name}/test-{lang}"] = xdata.load_split(task, "test", lang, data_dir)
            x = _retrieval_inputs(rows, encode_src, encode_tgt)
            if task.metric == "tatoeba_accuracy":
                scores[lang], outcomes[lang] = _tatoeba(x)
            elif task.metric == "map_at_20":
                scores[lang], outcomes[lang] = _map_at_20(x)
            else:
                sample_rows, prints[f"{task.name}/dev-{lang}"] = xdata.load_split(task, "dev", lang, data_dir)
                s = _retrieval_inputs(sample_rows, encode_src, encode_tgt)
                scores[lang], outcomes[lang] = _bucc(x, s)
    if predictions_dir is not None:
        write_outcomes(predictions_dir, task, outcomes)
    return scores, prints
