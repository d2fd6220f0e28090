"""Runner benchmarks (``xitt bench runner``); numbers are printed, nothing is asserted.

(a) training throughput (examples/s) of xitt's loop vs ``transformers.Trainer`` on the same tiny
    BERT, data, batch size, epochs, length grouping and thread count;
(b) wall time of a 3-intermediate x 3-target x 2-seed tiny grid with stage reuse (the DAG) vs
    re-training the intermediate stage for every target (one grid per target).

Uses the tiny fixture tasks of a source checkout (tests/data/tiny); 1 torch thread.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

TINY = Path(__file__).resolve().parents[2] / "tests" / "data" / "tiny"


def setup() -> None:
    if not (TINY / "tasks" / "tiny.yaml").is_file():
        raise FileNotFoundError(f"xitt bench needs the tiny fixtures of a source checkout at {TINY}.")
    paths = [p for p in os.environ.get("XITT_TASKS_PATH", "").split(os.pathsep) if p]
    if str(TINY / "tasks") not in paths:
        os.environ["XITT_TASKS_PATH"] = os.pathsep.join(paths + [str(TINY / "tasks")])
    import torch
    from transformers.utils import logging as hf_logging

    torch.set_num_threads(1)
    hf_logging.disable_progress_bar()  # the table is the output, not the library's save bars


def build_tiny_encoder(folder: Path) -> Path:
    from xitt.synth.tiny import build_encoder, build_tokenizer

    texts = [p.read_text(encoding="utf-8") for p in sorted(TINY.glob("tiny_*/*"))]
    return build_encoder(build_tokenizer(texts), folder / "encoder", max_position=64, seed=0)


def throughput(
    encoder: Path,
    repeat: int = 16,
    epochs: int = 2,
    batch_size: int = 16,
    *,
    device: str = "cpu",
    precision: str = "fp32",
) -> dict[str, float]:
    """Examples/s of xitt.train.fit and of transformers.Trainer on tiny_cls (train set x ``repeat``),
    on ``device`` with ``precision`` (fp32 | bf16 | fp16: autocast in xitt, Trainer's bf16/fp16)."""
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    from xitt.grid.spec import make_train_config
    from xitt.tasks import registry
    from xitt.train import chain as train
    from xitt.train.heads import Head, featurize

    task = registry().get("tiny_cls")
    cfg = make_train_config(
        task.hparams,
        {"epochs": epochs, "batch_size": batch_size, "select_on": "last", "precision": precision},
    )
    tokenizer = AutoTokenizer.from_pretrained(encoder)
    examples, _ = train.xdata.load_split(task, "train", "en", TINY)
    examples = examples * repeat
    feats = featurize("classification", examples, tokenizer, cfg)
    n = len(feats) * epochs

    model, _ = train.load_encoder(str(encoder))
    train.set_seed(0)
    head = Head("classification", model.config.hidden_size, 2)
    model.to(device)
    head.to(device)
    td = train.TaskData(task, cfg, list(task.labels), feats, examples[:16], feats[:16])
    start = time.perf_counter()
    train.fit(
        model,
        {"cls": head},
        {"cls": td},
        seed=0,
        pad_id=tokenizer.pad_token_id,
        device=torch.device(device),
        desc="bench",
        progress=False,
    )
    xitt_s = time.perf_counter() - start

    torch.manual_seed(0)
    hf_model = AutoModelForSequenceClassification.from_pretrained(encoder, num_labels=2)
    rows = [
        {"input_ids": f["input_ids"], "token_type_ids": f["token_type_ids"], "labels": f["labels"]}
        for f in feats
    ]
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out,
            per_device_train_batch_size=batch_size,
            num_train_epochs=epochs,
            learning_rate=cfg.lr,
            weight_decay=cfg.weight_decay,
            warmup_steps=int(cfg.warmup_ratio * epochs * -(-len(feats) // batch_size)),
            max_grad_norm=cfg.max_grad_norm,
            train_sampling_strategy="group_by_length",
            report_to=[],
            save_strategy="no",
            logging_strategy="no",
            use_cpu=device == "cpu",
            bf16=precision == "bf16",
            fp16=precision == "fp16",
            seed=0,
            dataloader_num_workers=0,
            disable_tqdm=True,
            log_level="error",
        )
        trainer = Trainer(
            model=hf_model, args=args, train_dataset=rows, data_collator=DataCollatorWithPadding(tokenizer)
        )
        start = time.perf_counter()
        trainer.train()
        hf_s = time.perf_counter() - start
    return {
        "examples": n,
        "xitt_s": xitt_s,
        "trainer_s": hf_s,
        "xitt_ex_per_s": n / xitt_s,
        "trainer_ex_per_s": n / hf_s,
    }


def _grid_doc(encoder: Path, targets: list[str]) -> dict:
    return {
        "experiment": "bench",
        "encoders": [{"name": "tiny", "path": str(encoder)}],
        "intermediates": ["tiny_nli", "tiny_mc", "tiny_qa"],
        "targets": targets,
        "seeds": [1, 2],
        "data_dir": str(TINY),
        "train": {"epochs": 2},
    }


def _clear_caches() -> None:
    from xitt.data import loaders as data
    from xitt.train import chain as train

    data._CACHE.clear()
    train._FEATURES.clear()


def _dag_saving(encoder: Path, work: Path) -> dict[str, float]:
    """Wall time of the grid with stage reuse vs one grid per target (the stage re-trained per target)."""
    from xitt.grid.spec import parse_grid
    from xitt.run.executors import execute

    targets = ["tiny_cls", "tiny_ner", "tiny_qa"]
    _clear_caches()
    start = time.perf_counter()
    reuse = execute(parse_grid(_grid_doc(encoder, targets)), exp_dir=work / "reuse", progress=False)
    reuse_s = time.perf_counter() - start
    from xitt.run.store import stage_seconds

    stage_s = sum(stage_seconds(work / "reuse", p.name) or 0.0 for p in (work / "reuse" / "stages").iterdir())
    _clear_caches()
    start, trained = time.perf_counter(), 0
    for target in targets:
        trained += execute(
            parse_grid(_grid_doc(encoder, [target])), exp_dir=work / f"per-{target}", progress=False
        )["stages_trained"]
    per_target_s = time.perf_counter() - start
    return {
        "runs": reuse["runs"],
        "stages_trained_reuse": reuse["stages_trained"],
        "stages_trained_per_target": trained,
        "reuse_s": reuse_s,
        "stage_training_s": stage_s,
        "per_target_s": per_target_s,
        "saving": 1 - reuse_s / per_target_s,
    }


def main() -> dict:
    setup()
    work = Path(tempfile.mkdtemp(prefix="xitt-bench-"))
    try:
        encoder = build_tiny_encoder(work)
        a = throughput(encoder)
        b = _dag_saving(encoder, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("runner benchmark (tiny BERT h32 x 2 layers, tiny fixture tasks, 1 CPU thread)")
    print(
        f"(a) training throughput on {a['examples']} examples: xitt loop {a['xitt_ex_per_s']:.0f} ex/s "
        f"({a['xitt_s']:.2f} s), transformers.Trainer {a['trainer_ex_per_s']:.0f} ex/s ({a['trainer_s']:.2f} s); "
        f"ratio {a['xitt_ex_per_s'] / a['trainer_ex_per_s']:.2f}x"
    )
    print(
        f"(b) 3 intermediates x 3 targets x 2 seeds ({b['runs']} runs): with stage reuse {b['reuse_s']:.1f} s "
        f"({b['stages_trained_reuse']} stages trained, {b['stage_training_s']:.1f} s of it), "
        f"re-training per target {b['per_target_s']:.1f} s "
        f"({b['stages_trained_per_target']} stages trained); saving {100 * b['saving']:.0f} %"
    )
    return {"throughput": a, "dag": b}


if __name__ == "__main__":
    main()
