"""The alternative intermediates at training time (xitt/grid/intermediates.py), for ``train_stage``.

``with_translations``: a task's English training features plus (``union``) or replaced by
(``only``) its translated training data, featurised like the English ones; the English dev set
still selects the checkpoint. ``mlm_objective``: the unlabelled texts and the MLM head that
``fit`` mixes in as one more task, with ``ratio`` of all batches (xitt/train/mlm.py).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from xitt.data import loaders as xdata
from xitt.data.conditions import text_task, translated_task
from xitt.grid.intermediates import MlmMix, Translated
from xitt.train.mlm import MlmData, MlmHead, lm_head_of, mlm_batches
from xitt.train.predict import TaskData

MLM = "mlm"  # the MLM objective's key among a stage's tasks and heads


def with_translations(
    td: TaskData, translated: Translated, tokenizer, data_dir: Path | None
) -> tuple[TaskData, dict[str, str]]:
    """(``td`` with the translated training features, their fingerprints by "<task>/train-<lang>")."""
    from xitt.train.chain import features_for

    task = translated_task(td.task, translated)
    features, prints = [], {}
    for lang in translated.languages:
        _, feats, fp = features_for(task, "train", lang, tokenizer, td.cfg, data_dir, td.labels)
        features += feats
        prints[f"{task.name}/train-{lang}"] = fp
    train = td.train + features if translated.mode == "union" else features
    return dataclasses.replace(td, train=train), prints


def mlm_objective(
    mix: MlmMix,
    tasks: dict[str, TaskData],
    encoder,
    tokenizer,
    encoder_path: str,
    data_dir: Path | None,
    seed: int,
) -> tuple[MlmData, MlmHead, dict[str, str]]:
    """(data, head, fingerprints) of the MLM objective mixed into a stage training ``tasks``."""
    text = text_task(mix)
    cfg = next(iter(tasks.values())).cfg
    texts, prints = [], {}
    for lang in mix.languages:
        rows, fp = xdata.load_split(text, "train", lang, data_dir)
        texts += [r["text"] for r in rows]
        prints[f"{text.name}/train-{lang}"] = fp
    encoded = tokenizer(texts, truncation=True, max_length=cfg.max_length)["input_ids"]
    features = [{"input_ids": list(ids)} for ids in encoded]
    task_batches = sum(math.ceil(len(td.train) / td.cfg.batch_size) for td in tasks.values())
    data = MlmData(text, cfg, features, mlm_batches(task_batches, mix.ratio))
    return data, MlmHead(lm_head_of(encoder_path, encoder), tokenizer, seed), prints
