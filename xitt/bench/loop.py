"""Training and evaluation throughput of xitt's loop, paired with ``transformers.Trainer``.

``throughput`` times ``xitt.train.fit.fit`` and ``Trainer.train`` on the same encoder folder,
data (tiny_cls's training set repeated), batch size, length grouping, optimiser settings, steps
and thread count, ``repeats`` times, interleaved (xitt then Trainer, then the other way round),
so that load on a shared machine hits both alike. Each repeat starts from freshly loaded weights;
loading is not timed, everything each library does inside its own training call is (for the
Trainer that includes its end-of-training ``gc.collect``, which a user pays too). ``fit`` always
ends with an English-dev evaluation (the run record's dev scores); the Trainer evaluates the same
16 dev examples (accuracy) after training, inside its timed region, so both do the same work.

``eval_throughput`` times xitt's zero-shot evaluation (predict + decode + metric) over every test
language of a tagging and a span-QA target, with the features prepared before the clock starts.
Numbers are printed by ``xitt bench``, never asserted.
"""

from __future__ import annotations

import contextlib
import io
import statistics
import tempfile
import time
from pathlib import Path


def _training_data(encoder: Path, data_dir: Path, repeat: int, overrides: dict):
    from transformers import AutoTokenizer

    from xitt.data import loaders as xdata
    from xitt.grid.spec import make_train_config
    from xitt.tasks import registry
    from xitt.train.heads import featurize

    task = registry().get("tiny_cls")
    cfg = make_train_config(task.hparams, {"select_on": "last", **overrides})
    tokenizer = AutoTokenizer.from_pretrained(encoder)
    examples, _ = xdata.load_split(task, "train", "en", data_dir)
    examples = examples * repeat
    return task, cfg, tokenizer, examples, featurize("classification", examples, tokenizer, cfg)


def _time_xitt(encoder: Path, task, cfg, tokenizer, examples, feats, device: str) -> float:
    import torch

    from xitt.train import chain as train
    from xitt.train.fit import fit
    from xitt.train.heads import Head
    from xitt.train.predict import TaskData

    model, _ = train.load_encoder(str(encoder))
    train.set_seed(0)
    head = Head("classification", model.config.hidden_size, 2)
    model.to(device)
    head.to(device)
    td = TaskData(task, cfg, list(task.labels), feats, examples[:16], feats[:16])
    start = time.perf_counter()
    fit(
        model,
        {"cls": head},
        {"cls": td},
        seed=0,
        pad_id=tokenizer.pad_token_id,
        device=torch.device(device),
        desc="bench",
        progress=False,
    )
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def _time_trainer(encoder: Path, cfg, tokenizer, feats, device: str) -> float:
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(encoder, num_labels=2)
    rows = [
        {"input_ids": f["input_ids"], "token_type_ids": f["token_type_ids"], "labels": f["labels"]}
        for f in feats
    ]
    steps = cfg.max_steps if cfg.max_steps > 0 else int(cfg.epochs * -(-len(feats) // cfg.batch_size))
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out,
            per_device_train_batch_size=cfg.batch_size,
            per_device_eval_batch_size=cfg.eval_batch_size,
            num_train_epochs=cfg.epochs,
            max_steps=cfg.max_steps if cfg.max_steps > 0 else -1,
            learning_rate=cfg.lr,
            weight_decay=cfg.weight_decay,
            warmup_steps=int(cfg.warmup_ratio * steps),
            max_grad_norm=cfg.max_grad_norm,
            train_sampling_strategy="group_by_length",
            report_to=[],
            save_strategy="no",
            logging_strategy="no",
            use_cpu=device == "cpu",
            bf16=cfg.precision == "bf16",
            fp16=cfg.precision == "fp16",
            seed=0,
            dataloader_num_workers=0,
            disable_tqdm=True,
            log_level="error",
        )
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=rows,
            eval_dataset=rows[:16],
            data_collator=DataCollatorWithPadding(tokenizer),
            compute_metrics=lambda p: {"accuracy": float((p.predictions.argmax(-1) == p.label_ids).mean())},
        )
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # its metrics dict is not the table
            trainer.train()
            trainer.evaluate()  # fit ends with an English-dev score on the same 16 examples
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start


def throughput(
    encoder: Path,
    data_dir: Path,
    repeat: int = 16,
    epochs: int = 2,
    batch_size: int = 16,
    *,
    max_steps: int = 0,
    lr: float | None = None,
    repeats: int = 1,
    device: str = "cpu",
    precision: str = "fp32",
) -> dict:
    """Examples/s of xitt.train.fit and of transformers.Trainer on tiny_cls in ``data_dir`` (a copy
    of the fixtures, ``fixtures.tiny_data``; train set x ``repeat``;
    ``epochs`` or ``max_steps``), on ``device`` in ``precision`` (fp32 | bf16 | fp16: autocast in
    xitt, the Trainer's bf16/fp16), ``repeats`` times interleaved.

    Returns examples (per training call), xitt_s and trainer_s (seconds, one per repeat) and
    xitt_ex_per_s / trainer_ex_per_s (at the median time) and ratio_median / ratio_best (xitt's
    examples/s over the Trainer's at the median and at the fastest repeat).
    """
    overrides = {"epochs": epochs, "batch_size": batch_size, "precision": precision, "max_steps": max_steps}
    task, cfg, tokenizer, examples, feats = _training_data(
        encoder, data_dir, repeat, {**overrides, **({"lr": lr} if lr is not None else {})}
    )
    per_epoch = -(-len(feats) // batch_size)
    # every batch is full when the set is a multiple of the batch size (the tiny one is: 160 x 16)
    n = min(max_steps, epochs * per_epoch) * batch_size if max_steps > 0 else len(feats) * epochs
    xitt_s, trainer_s = [], []
    for r in range(repeats):
        runs = [
            lambda: xitt_s.append(_time_xitt(encoder, task, cfg, tokenizer, examples, feats, device)),
            lambda: trainer_s.append(_time_trainer(encoder, cfg, tokenizer, feats, device)),
        ]
        for run in runs if r % 2 == 0 else runs[::-1]:
            run()
    mid_x, mid_t = statistics.median(xitt_s), statistics.median(trainer_s)
    return {
        "examples": n,
        "xitt_s": xitt_s,
        "trainer_s": trainer_s,
        "xitt_ex_per_s": n / mid_x,
        "trainer_ex_per_s": n / mid_t,
        "ratio_median": mid_t / mid_x,
        "ratio_best": min(trainer_s) / min(xitt_s),
    }


def eval_throughput(
    encoder: Path,
    data_dir: Path,
    targets: tuple[str, ...] = ("tiny_ner", "tiny_qa"),
    repeat: int = 16,
    device: str = "cpu",
) -> dict[str, dict]:
    """Examples/s of xitt's evaluation (``evaluate_split``: predict + decode + metric) over every test
    language of each target, test sets x ``repeat``; the head is untrained (the time does not
    depend on the weights). Returns target -> {languages, examples, seconds, ex_per_s}."""
    import torch

    from xitt.data import loaders as xdata
    from xitt.grid.spec import make_train_config
    from xitt.tasks import registry
    from xitt.train import chain as train
    from xitt.train.heads import Head, featurize, num_outputs
    from xitt.train.predict import TaskData, evaluate_split

    model, tokenizer = train.load_encoder(str(encoder))
    model.to(device)
    out = {}
    for name in targets:
        task = registry().get(name)
        cfg = make_train_config(task.hparams)
        labels = train.task_labels(task, data_dir)
        train.set_seed(0)
        head = Head(task.kind, model.config.hidden_size, num_outputs(task.kind, labels)).to(device)
        td = TaskData(task, cfg, labels, [], [], [])
        splits = []
        for lang in task.languages:
            examples, _ = xdata.load_split(task, "test", lang, data_dir)
            examples = examples * repeat
            splits.append((lang, examples, featurize(task.kind, examples, tokenizer, cfg, labels)))
        start = time.perf_counter()
        for lang, examples, feats in splits:
            evaluate_split(
                model, head, td, examples, feats, lang, tokenizer.pad_token_id, torch.device(device)
            )
        if device == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        n = sum(len(examples) for _, examples, _ in splits)
        out[name] = {
            "languages": list(task.languages),
            "examples": n,
            "seconds": seconds,
            "ex_per_s": n / seconds,
        }
    return out
