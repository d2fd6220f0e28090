"""xitt collect's example-level file: per-example numerators/denominators that give back the
recorded score (xitt/run/examples.py), on random tag sequences and on real tiny runs."""

import gzip

import numpy as np
import pandas as pd
import pytest

from xitt.grid.spec import expand_grid, parse_grid
from xitt.run.examples import collect_extras, example_values, write_extras
from xitt.run.store import run_dir, write_result
from xitt.schema import SchemaError, read_examples, validate_examples
from xitt.tasks import Task, registry
from xitt.train.metrics import mlqa_em_f1, seqeval_scores, squad_em_f1

TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "NOUN", "SCONJ"]


def _ratio(values) -> float:
    num = sum(v[1] for v in values)
    den = sum(v[2] for v in values)
    return 100.0 * num / den


def test_tagging_ratio_of_sums_is_the_corpus_f1():
    rng = np.random.default_rng(0)
    gold = [list(rng.choice(TAGS, size=rng.integers(1, 9))) for _ in range(200)]
    pred = [[t if rng.random() < 0.7 else str(rng.choice(TAGS)) for t in s] for s in gold]
    task = Task(
        name="t", family="tagging", roles=("target",), kind="tagging", metric="f1_seqeval", languages=("de",)
    )
    rows = [{"index": i, "prediction": p, "reference": g} for i, (p, g) in enumerate(zip(pred, gold))]
    assert _ratio(example_values(task, rows, "de")) == pytest.approx(
        seqeval_scores(pred, gold)["f1"], abs=1e-9
    )


@pytest.mark.parametrize(
    "metric,language", [("squad_em_f1", "de"), ("mlqa_em_f1", "zh"), ("mlqa_em_f1", "sw")]
)
def test_qa_mean_is_the_official_em_f1(metric, language):
    preds = {0: "the Cat sat", 1: "猫在", 2: "", 3: "a dog!"}
    gold = {0: ["cat sat"], 1: ["猫在垫子上"], 2: [], 3: ["the dog", "dogs"]}
    task = Task(
        name="q", family="qa", roles=("target",), kind="span_qa", metric=metric, languages=(language,)
    )
    rows = [{"index": i, "id": i, "prediction": preds[i], "reference": gold[i]} for i in preds]
    if metric == "squad_em_f1":
        expected = squad_em_f1(preds, gold)["em_f1"]
    else:
        expected = mlqa_em_f1(preds, gold, language if language == "zh" else "en")["em_f1"]
    assert _ratio(example_values(task, rows, language)) == pytest.approx(expected, abs=1e-9)


def test_bad_examples_file_is_one_clear_error():
    bad = pd.DataFrame(
        dict(run_id="r", language="de", metric="accuracy", example=[0, 0], numerator=1, denominator=1)
    )
    with pytest.raises(SchemaError, match="repeat a"):
        validate_examples(bad)
    with pytest.raises(SchemaError, match="missing column"):
        validate_examples(bad.drop(columns="numerator"))


@pytest.mark.parametrize("target", ["tiny_cls", "tiny_ner", "tiny_qa"])
def test_full_sample_gives_back_the_recorded_score(target, tiny_encoder, tiny_data, tmp_path):
    from xitt.train import chain

    grid = parse_grid(
        {
            "encoders": [{"name": "tiny", "path": str(tiny_encoder)}],
            "intermediates": ["none"],
            "targets": [target],
            "seeds": [1],
            "data_dir": str(tiny_data),
            "save_predictions": True,
            "train": {"max_steps": 4},
        }
    )
    run = expand_grid(grid)[1][0]
    folder = run_dir(tmp_path, run.run_id)
    result = chain.run_target(run, str(tiny_encoder), out_dir=folder, progress=False)
    write_result(folder, result)
    examples, dev = collect_extras(tmp_path, [run.run_id], registry())
    for language, sub in examples.groupby("language"):
        recorded = result.scores[language][result.primary_metric]
        assert 100 * sub["numerator"].sum() / sub["denominator"].sum() == pytest.approx(recorded, abs=1e-9)
    assert set(examples["language"]) == set(result.scores)
    assert dev["score"].tolist() == [pytest.approx(result.dev_scores["selection"])]
    written = write_extras(tmp_path, examples, dev)
    assert len(written) == 2 and gzip.decompress(written[0].read_bytes())  # gzip, no time stamp
    assert read_examples(written[0]).equals(
        examples.sort_values(["run_id", "language", "example"]).reset_index(drop=True)
    )


def test_xitt_collect_writes_the_examples_and_dev_files(tiny_encoder, tiny_data, tmp_path, capsys):
    import yaml

    from xitt.cli import main
    from xitt.grid.spec import load_grid
    from xitt.train import chain

    exp = tmp_path / "exp"
    exp.mkdir()
    doc = {
        "encoders": [{"name": "tiny", "path": str(tiny_encoder)}],
        "intermediates": ["none"],
        "targets": ["tiny_cls", "tiny_tatoeba"],
        "seeds": [1],
        "data_dir": str(tiny_data),
        "save_predictions": True,
        "train": {"max_steps": 2},
    }
    (exp / "grid.yaml").write_text(yaml.safe_dump(doc))
    for run in expand_grid(load_grid(exp))[1]:
        folder = run_dir(exp, run.run_id)
        write_result(folder, chain.run_target(run, str(tiny_encoder), out_dir=folder, progress=False))
    assert main(["collect", str(exp)]) == 0
    out = capsys.readouterr().out
    assert "examples.csv.gz" in out and "dev_scores.csv" in out
    examples = read_examples(exp / "examples.csv.gz")
    assert examples["run_id"].str.contains("tiny_cls").all()  # the retrieval target saves no predictions
    scores = pd.read_csv(exp / "scores.csv")
    cls = scores[scores["run_id"].str.contains("tiny_cls") & scores["primary"]].set_index("language")["score"]
    ratio = examples.groupby("language").apply(lambda g: 100 * g["numerator"].sum() / g["denominator"].sum())
    assert np.allclose(ratio.sort_index(), cls.sort_index())


def test_the_committed_demo_examples_give_back_its_scores():
    from pathlib import Path

    from xitt.schema import read_scores

    demo = Path(__file__).resolve().parents[1] / "runs" / "demo"
    examples, scores = read_examples(demo / "examples.csv.gz"), read_scores(demo / "scores.csv")
    ratio = examples.groupby(["run_id", "language"]).apply(
        lambda g: 100 * g["numerator"].sum() / g["denominator"].sum()
    )
    recorded = scores[scores["primary"]].set_index(["run_id", "language"])["score"]
    assert len(ratio) > 400 and np.allclose(ratio, recorded.loc[ratio.index], atol=1e-9)
