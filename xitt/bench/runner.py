"""Runner benchmarks (``xitt bench runner``); numbers are printed, nothing is asserted.

(a) training throughput (examples/s) of xitt's loop vs ``transformers.Trainer`` (xitt.bench.loop)
    at two encoder sizes, a tiny BERT (2 epochs) and a BERT-base-shaped one (12 layers, hidden
    768, random weights, 8 steps), fastest and median of 3 interleaved repeats; beside it xitt's
    evaluation throughput over the test languages of a tagging and a span-QA target;
(b) wall time of a 3-intermediate x 3-target x 2-seed tiny grid with stage reuse (the DAG) vs
    re-training the intermediate stage for every target (one grid per target);
(c) size and time of one mid-training resume save at both sizes, projected to XLM-R large
    (xitt.bench.resume).

Uses the tiny fixture tasks of a source checkout (tests/data/tiny); 1 torch thread.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from xitt.bench.fixtures import build_tiny_encoder, setup, tiny_data
from xitt.bench.loop import eval_throughput, throughput
from xitt.bench.resume import report as resume_report

# (size, training settings, evaluation repeat): the tiny model trains 2 epochs on tiny_cls x 16;
# the BERT-base-shaped one 1 epoch of tiny_cls, 10 steps (lr 5e-5: 5e-3, the tiny tasks' rate, is
# for h32). A whole epoch, not a few steps of a longer one: both loops then see the same 10
# length-grouped batches (160 examples < one mega-batch of 50 batches), so the same tokens.
TRAINING = (
    ("tiny", {"repeat": 16, "epochs": 2}, 16),
    ("base", {"repeat": 1, "epochs": 1, "lr": 5e-5}, 2),
)
REPEATS = 3


def _grid_doc(encoder: Path, targets: list[str], data_dir: Path) -> dict:
    return {
        "experiment": "bench",
        "encoders": [{"name": "tiny", "path": str(encoder)}],
        "intermediates": ["tiny_nli", "tiny_mc", "tiny_qa"],
        "targets": targets,
        "seeds": [1, 2],
        "data_dir": str(data_dir),
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
    reuse = execute(
        parse_grid(_grid_doc(encoder, targets, tiny_data(work))), exp_dir=work / "reuse", progress=False
    )
    reuse_s = time.perf_counter() - start
    from xitt.run.store import stage_seconds

    stage_s = sum(stage_seconds(work / "reuse", p.name) or 0.0 for p in (work / "reuse" / "stages").iterdir())
    _clear_caches()
    start, trained = time.perf_counter(), 0
    for target in targets:
        trained += execute(
            parse_grid(_grid_doc(encoder, [target], tiny_data(work))),
            exp_dir=work / f"per-{target}",
            progress=False,
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


def _num(x: float) -> str:
    return f"{x:.0f}" if x >= 100 else f"{x:.2g}" if x < 1 else f"{x:.1f}"


def _print_training(rows: dict[str, dict]) -> None:
    print(
        f"(a) training, examples/s over {REPEATS} repeats (xitt and Trainer interleaved): "
        "fastest | median repeat"
    )
    print(f"    {'size':5} {'examples':>8} {'xitt':>15} {'Trainer':>15} {'ratio':>13}")
    for size, a in rows.items():
        x = f"{_num(a['examples'] / min(a['xitt_s']))} | {_num(a['xitt_ex_per_s'])}"
        t = f"{_num(a['examples'] / min(a['trainer_s']))} | {_num(a['trainer_ex_per_s'])}"
        ratio = f"{a['ratio_best']:.2f} | {a['ratio_median']:.2f}x"
        print(f"    {size:5} {a['examples']:>8} {x:>15} {t:>15} {ratio:>13}")


def main() -> dict:
    """Print (a) training throughput at both sizes, evaluation throughput, (b) the DAG saving, (c) the
    cost of a resume save."""
    setup()
    work = Path(tempfile.mkdtemp(prefix="xitt-bench-"))
    load = os.getloadavg()
    training, evaluation, encoders = {}, {}, {}
    try:
        for size, settings, eval_repeat in TRAINING:
            encoder = encoders[size] = build_tiny_encoder(work, size)
            training[size] = throughput(encoder, tiny_data(work), repeats=REPEATS, **settings)
            evaluation[size] = eval_throughput(encoder, tiny_data(work), repeat=eval_repeat)
        b = _dag_saving(build_tiny_encoder(work, "tiny"), work)
        _print(training, evaluation, b, load)
        c = resume_report(encoders)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"training": training, "evaluation": evaluation, "dag": b, "resume": c}


def _print(training: dict, evaluation: dict, b: dict, load: tuple) -> None:
    print(
        "runner benchmark (random BERT: tiny h32 x 2 layers, base h768 x 12 layers; tiny fixture tasks; "
        f"1 CPU thread; load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f})"
    )
    _print_training(training)
    print("    evaluation (xitt: predict + decode + metric, every test language; features prepared before)")
    for size, targets in evaluation.items():
        for name, e in targets.items():
            print(
                f"    {size:5} {name:9} {'+'.join(e['languages'])}: {e['examples']} examples "
                f"{_num(e['ex_per_s'])} ex/s"
            )
    print(
        f"(b) 3 intermediates x 3 targets x 2 seeds ({b['runs']} runs): with stage reuse {b['reuse_s']:.1f} s "
        f"({b['stages_trained_reuse']} stages trained, {b['stage_training_s']:.1f} s of it), "
        f"re-training per target {b['per_target_s']:.1f} s "
        f"({b['stages_trained_per_target']} stages trained); saving {100 * b['saving']:.0f} %"
    )


if __name__ == "__main__":
    main()
