"""Per-query outcomes of retrieval targets (xitt/train/retrieval.py, pool.py) and their example rows
(xitt/run/examples.py): the full sample gives back the recorded Tatoeba accuracy, mAP@20 and BUCC
F1, and a retrieval target enters the paired multi-bootstrap.

The local files stand for XTREME's: ``<task>/test-<lang>.tsv`` lines ``source<TAB>target`` (the
tab-separated layout of xitt's local reader for google/xtreme tatoeba.<iso3>, bucc18.<lang>: an
empty side is a sentence without partner, as BUCC's monolingual corpora have); Mewsli-X's shared
pool as `xitt convert mewslix` writes it (tests/test_dual.py). Encodings are a noisy meaning
vector per sentence, so that scores lie strictly between 0 and 100.
"""

import dataclasses
import gzip
import json
import re
import zlib

import numpy as np
import pandas as pd
import pytest
import yaml

from xitt.grid.spec import expand_grid, parse_grid
from xitt.run.examples import example_values
from xitt.run.store import run_dir, write_result
from xitt.schema import read_examples
from xitt.tasks import registry
from xitt.train.metrics import mean_average_precision_at_k
from xitt.train.retrieval import evaluate_retrieval

DIM = 16
MEANINGS = np.random.default_rng(0).normal(size=(200, DIM))


def _encode(noise: float):
    """Text -> the meaning vector of the first number in it, plus noise fixed by the text."""

    def encode(texts):
        out = []
        for text in texts:
            rng = np.random.default_rng(zlib.crc32(text.encode()))
            meaning = MEANINGS[int(re.search(r"\d+", text).group())]
            out.append(meaning + noise * rng.normal(size=DIM))
        return np.stack(out)

    return encode


def _pairs_file(path, n, lone_src=0, lone_tgt=0, offset=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"src{i} x\ttgt{i} y" for i in range(offset, offset + n)]
    lines += [f"src{i} x\t" for i in range(offset + n, offset + n + lone_src)]
    lines += [f"\ttgt{i} y" for i in range(offset + n + lone_src, offset + n + lone_src + lone_tgt)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _cfg(target, data_dir, languages, **task_train):
    grid = parse_grid(
        {
            "encoders": ["bert-base-multilingual-cased"],
            "intermediates": ["none"],
            "targets": [target],
            "languages": {target: languages},
            "seeds": [1],
            "data_dir": str(data_dir),
        }
    )
    return dataclasses.replace(expand_grid(grid)[1][0].target_train, **task_train)


def _lines(folder, language):
    with gzip.open(folder / f"{language}.jsonl.gz", "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def _ratio(values):
    return 100.0 * sum(v[1] for v in values) / sum(v[2] for v in values)


def _evaluate(target, data_dir, languages, noise, tmp_path, **task_train):
    task = registry().get(target)
    cfg = _cfg(target, data_dir, languages, **task_train)
    encode = _encode(noise)
    scores, _ = evaluate_retrieval(
        None, None, task, languages, cfg, data_dir, None, (encode, encode), predictions_dir=tmp_path / "pred"
    )
    return task, scores


def test_tatoeba_hits_average_to_the_recorded_accuracy_exactly(tmp_path):
    for lang, n in (("de", 60), ("fr", 45)):
        _pairs_file(tmp_path / "data" / "tatoeba" / f"test-{lang}.tsv", n)
    task, scores = _evaluate("tatoeba", tmp_path / "data", ["de", "fr"], 1.2, tmp_path)
    for lang, n in (("de", 60), ("fr", 45)):
        lines = _lines(tmp_path / "pred", lang)
        assert [line["index"] for line in lines] == list(range(n))
        assert {line["reference"] for line in lines} == set(range(n))
        hits = np.array([line["prediction"] == line["reference"] for line in lines])
        recorded = scores[lang]["accuracy"]
        assert 0 < recorded < 100
        assert 100.0 * float(np.mean(hits)) == recorded  # the formula of tatoeba_accuracy, bit for bit
        assert _ratio(example_values(task, lines, lang)) == pytest.approx(recorded, abs=1e-9)


def test_map_per_language_pool_ap_averages_to_the_recorded_map(tmp_path):
    _pairs_file(tmp_path / "data" / "mewslix" / "test-de.tsv", 50)
    task, scores = _evaluate("mewslix", tmp_path / "data", ["de"], 1.5, tmp_path, candidate_pool="language")
    lines = _lines(tmp_path / "pred", "de")
    assert len(lines) == 50 and all(len(line["prediction"]) == 20 for line in lines)
    recorded = scores["de"]["map_at_20"]
    assert 0 < recorded < 100
    ranked, relevant = [line["prediction"] for line in lines], [line["reference"] for line in lines]
    assert mean_average_precision_at_k(ranked, relevant, k=20) == recorded
    assert _ratio(example_values(task, lines, "de")) == pytest.approx(recorded, abs=1e-9)


def test_map_shared_pool_ap_averages_to_the_recorded_map_per_language(tmp_path):
    shared = tmp_path / "data" / "mewslix" / "shared"
    shared.mkdir(parents=True)
    # xitt convert mewslix's layout (xitt/train/pool.py read_entity_pool): entities.tsv id<TAB>text,
    # mentions-<lang>.tsv example id<TAB>mention<TAB>entity id
    (shared / "entities.tsv").write_text("".join(f"Q{i}\tentity{i} thing\n" for i in range(80)))
    for lang, first in (("de", 0), ("es", 30)):
        rows = [f"{lang}{i}\tmention{i} {lang}\tQ{i}\n" for i in range(first, first + 40)]
        (shared / f"mentions-{lang}.tsv").write_text("".join(rows))
    task, scores = _evaluate(
        "mewslix", tmp_path / "data", ["de", "es"], 1.5, tmp_path, candidate_pool="shared"
    )
    for lang, first in (("de", 0), ("es", 30)):
        lines = _lines(tmp_path / "pred", lang)
        assert [line["reference"] for line in lines] == [[i] for i in range(first, first + 40)]
        recorded = scores[lang]["map_at_20"]
        assert 0 < recorded < 100
        assert _ratio(example_values(task, lines, lang)) == pytest.approx(recorded, abs=1e-9)


def test_bucc_counts_give_back_the_tuned_f1(tmp_path):
    data = tmp_path / "data" / "bucc2018"
    _pairs_file(data / "dev-de.tsv", 40, lone_src=15, lone_tgt=15, offset=100)  # the sample split
    _pairs_file(data / "test-de.tsv", 60, lone_src=20, lone_tgt=25)
    task, scores = _evaluate("bucc2018", tmp_path / "data", ["de"], 0.9, tmp_path)
    lines = _lines(tmp_path / "pred", "de")
    assert len(lines) == 80  # every source sentence, with or without a partner
    assert sum(len(line["reference"]) for line in lines) == 60
    predicted = sum(len(line["prediction"]) for line in lines)
    tp = sum(len(set(line["prediction"]) & set(line["reference"])) for line in lines)
    recorded = scores["de"]
    assert 0 < tp < predicted and 0 < recorded["f1"] < 100
    assert 100.0 * tp / predicted == pytest.approx(recorded["precision"], abs=1e-9)
    assert 100.0 * tp / 60 == pytest.approx(recorded["recall"], abs=1e-9)
    assert _ratio(example_values(task, lines, "de")) == pytest.approx(recorded["f1"], abs=1e-9)


def test_a_retrieval_target_enters_the_multi_bootstrap(tiny_encoder, tiny_data, tmp_path):
    from analysis.multiboot import example_level_frame
    from xitt.cli import main
    from xitt.train import chain

    exp = tmp_path / "exp"
    doc = {
        "encoders": [{"name": "tiny", "path": str(tiny_encoder)}],
        "intermediates": ["none", "tiny_nli"],
        "targets": ["tiny_tatoeba"],
        "seeds": [1],
        "data_dir": str(tiny_data),
        "save_predictions": True,
        "train": {"max_steps": 3},
    }
    stages, runs = expand_grid(parse_grid(doc))
    chain.train_stage(stages[0], tmp_path / "ckpt", progress=False)
    for run in runs:
        folder = run_dir(exp, run.run_id)
        path = str(tmp_path / "ckpt") if run.stage is not None else str(tiny_encoder)
        write_result(folder, chain.run_target(run, path, out_dir=folder, progress=False))
    (exp / "grid.yaml").write_text(yaml.safe_dump(doc))
    assert main(["collect", str(exp)]) == 0
    examples = read_examples(exp / "examples.csv.gz")
    assert set(examples["metric"]) == {"accuracy"} and examples["run_id"].nunique() == 2
    scores = pd.read_csv(exp / "scores.csv")
    scores = scores[scores["primary"]]
    frame = example_level_frame(examples, scores, rng=np.random.default_rng(0), n_boot=200)
    assert frame[["target", "intermediate"]].values.tolist() == [["tiny_tatoeba", "tiny_nli"]]
    by_inter = scores.groupby("intermediate")["score"].mean()
    assert frame["estimate"].iloc[0] == pytest.approx(by_inter["tiny_nli"] - by_inter["none"], abs=1e-9)
