"""The paper's alternative intermediates as grid conditions (issue 15): MLM mixed in, translated
training data, the one-line multi-task intermediate. Grid syntax, bad input, data, training."""

import json

import pytest
import torch
import yaml

from xitt.cli import main
from xitt.data.conditions import stage_needs
from xitt.data.prepare import needs_of, prepare
from xitt.grid.spec import expand_grid, load_grid, parse_grid
from xitt.tasks import registry

MLM = {"source": "tiny_text", "languages": ["de"], "ratio": 0.5}
TRANSLATED = {"languages": ["de"], "mode": "union"}


def _grid(encoder, data, intermediates, **extra):
    doc = {
        "encoders": [{"name": "tiny", "path": str(encoder)}],
        "intermediates": intermediates,
        "targets": ["tiny_cls"],
        "seeds": [1],
        "data_dir": str(data),
        **extra,
    }
    return parse_grid(doc)


def test_conditions_parse_with_families_and_ids_of_their_own(tmp_path):
    plain = ["none", "tiny_nli", "tiny_mc"]
    grid = _grid(
        tmp_path,
        tmp_path,
        [
            *plain,
            {"name": "nli+mlm", "tasks": ["tiny_nli"], "mlm": MLM},
            {"name": "nli-tr", "tasks": ["tiny_nli"], "translated": TRANSLATED},
            {"name": "all2", "tasks": "all"},
        ],
    )
    by = {i.name: i for i in grid.intermediates}
    assert by["all2"].tasks == ("tiny_nli", "tiny_mc") and by["all2"].family == "multi"
    assert by["nli+mlm"].family == "nli+mlm" and by["nli+mlm"].mlm.ratio == 0.5
    assert by["nli-tr"].family == "nli+translated" and by["nli-tr"].translated.mode == "union"
    stages, runs = expand_grid(grid)
    assert len({s.stage_id for s in stages}) == len(stages) == 5
    assert len({r.run_id for r in runs}) == len(runs)
    # the plain entries keep the ids they had in a grid without the alternatives
    old_stages, old_runs = expand_grid(_grid(tmp_path, tmp_path, plain))
    assert {s.stage_id for s in old_stages} <= {s.stage_id for s in stages}
    assert {r.run_id for r in old_runs} <= {r.run_id for r in runs}
    # another ratio or mode is another stage
    other = _grid(
        tmp_path,
        tmp_path,
        ["none", {"name": "nli+mlm", "tasks": ["tiny_nli"], "mlm": {**MLM, "ratio": 0.25}}],
    )
    assert expand_grid(other)[0][0].stage_id != next(
        s.stage_id for s in stages if s.intermediate == "nli+mlm"
    )


def test_the_demo_grid_keeps_its_old_runs_and_gains_the_three_conditions():
    grid = load_grid("runs/demo")
    families = {i.name: i.family for i in grid.intermediates}
    assert families["synth_nli+mlm"] == "nli+mlm" and families["synth_nli-translated"] == "nli+translated"
    assert families["all-tasks"] == "multi" and grid.save_predictions
    _, runs = expand_grid(grid)
    done = {
        p.name for p in __import__("pathlib").Path("runs/demo").iterdir() if (p / "result.json").is_file()
    }
    plain = {r.run_id for r in runs if r.intermediate in ("none", "synth_nli", "synth_qa")}
    assert plain <= done  # the committed runs still have the ids the grid gives them


BAD = [
    ({"name": "x", "tasks": ["tiny_nli"], "mlm": {**MLM, "ratio": 1.5}}, "strictly between 0 and 1"),
    ({"name": "x", "tasks": ["tiny_nli"], "mlm": {"languages": ["de"]}}, "mlm.source must name"),
    ({"name": "x", "tasks": ["tiny_nli"], "mlm": {**MLM, "rate": 0.5}}, "unknown key 'rate'"),
    (
        {"name": "x", "tasks": ["tiny_nli"], "translated": {"languages": ["de"], "mode": "both"}},
        "use 'union'",
    ),
    ({"name": "x", "tasks": ["tiny_nli"], "translated": {"languages": []}}, "non-empty list"),
    ({"name": "x", "tasks": ["tiny_nli"], "translated": {"languages": ["en"]}}, "English is the original"),
    ({"tasks": ["tiny_nli"], "mlm": MLM}, "give it a 'name:'"),
    ({"name": "x", "tasks": ["tiny_nli"], "mlm": MLM, "translated": TRANSLATED}, "not both"),
    ({"name": "x", "tasks": ["tiny_nli"]}, "at least two tasks"),
    ({"name": "x", "tasks": ["tiny_nli"], "mlm": {**MLM, "source": "tiny_cls"}}, "is the name of a task"),
    ({"name": "../x", "tasks": ["tiny_nli"], "mlm": MLM}, "cannot name folders"),
]


@pytest.mark.parametrize(("entry", "message"), BAD)
def test_bad_conditions_fail_before_compute_with_one_message(tmp_path, capsys, entry, message):
    folder = tmp_path / "runs" / "exp"
    folder.mkdir(parents=True)
    doc = {
        "encoders": [{"name": "tiny", "path": str(tmp_path)}],
        "intermediates": ["none", "tiny_nli", entry],
        "targets": ["tiny_cls"],
        "seeds": [1],
    }
    (folder / "grid.yaml").write_text(yaml.safe_dump(doc))
    assert main(["run", str(folder), "--offline"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and message in err, err
    assert not list(folder.glob("tiny__*"))


def test_tasks_all_needs_two_task_intermediates(tmp_path, capsys):
    folder = tmp_path / "exp"
    folder.mkdir()
    doc = {"encoders": ["x/y"], "intermediates": ["none", "tiny_nli", {"name": "a", "tasks": "all"}]}
    (folder / "grid.yaml").write_text(yaml.safe_dump({**doc, "targets": ["tiny_cls"], "seeds": [1]}))
    assert main(["plan", str(folder)]) == 2
    assert "'tasks: all' mixes the tasks" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ data


# Stands for XTREME's translate-train layout: google-research/xtreme third_party/processors/xnli.py
# reads <data_dir>/XNLI-Translated/en-{lg}-translated.tsv (sentence1, sentence2, label; the label
# "contradictory" is read as "contradiction"), no header line.
def _xtreme_translations(folder, train_file):
    rows = [line.split("\t") for line in train_file.read_text(encoding="utf-8").splitlines()]
    out = folder / "XNLI-Translated"
    out.mkdir(parents=True)
    text = "".join(
        f"de {a}\tde {b}\t{'contradictory' if label == 'contradiction' else label}\n" for a, b, label in rows
    )
    (out / "en-de-translated.tsv").write_text(text, encoding="utf-8")
    return len(rows)


@pytest.fixture
def data(tiny_data, tmp_path):
    """The tiny data plus an MLM corpus (<data>/tiny_text/train-de.txt) and XTREME-layout translations."""
    import shutil

    copy = tmp_path / "data"
    shutil.copytree(tiny_data, copy, ignore=shutil.ignore_patterns("prepared"))
    (copy / "tiny_text").mkdir()
    lines = [f"the car of {n} is green" for n in ("fay", "hana", "bo", "ida")] * 10
    (copy / "tiny_text" / "train-de.txt").write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    n = _xtreme_translations(tmp_path / "translations", copy / "tiny_nli" / "train-en.tsv")
    return copy, tmp_path / "translations", n


def test_prepare_resolves_verifies_and_caches_the_conditions_data(data, tiny_encoder):
    folder, translations, n = data
    grid = _grid(
        tiny_encoder,
        folder,
        [
            "none",
            {"name": "nli+mlm", "tasks": ["tiny_nli"], "mlm": MLM},
            {
                "name": "nli-tr",
                "tasks": ["tiny_nli"],
                "translated": {**TRANSLATED, "source": str(translations)},
            },
        ],
    )
    stages, runs = expand_grid(grid)
    reg = registry()
    extra = [(t.name, s, lang) for st in stages for t, s, lang in stage_needs(st, reg)]
    assert sorted(extra) == [("tiny_nli", "train", "de"), ("tiny_text", "train", "de")]
    outcome = prepare(needs_of(stages, runs, reg), folder, offline=True)
    status = {(ln.task, ln.split, ln.language): (ln.rows, ln.status) for ln in outcome.lines}
    assert status[("tiny_text", "train", "de")] == (40, "prepared")  # blank lines skipped
    assert status[("tiny_nli", "train", "de")] == (n, "prepared")
    manifest = json.loads((folder / "prepared" / "tiny_nli" / "train-de.manifest.json").read_text())
    assert manifest["sources"][0]["source"] == "local:tiny_nli/en-de-translated.tsv"
    copy = [
        json.loads(x) for x in (folder / "prepared" / "tiny_nli" / "train-de.jsonl").read_text().splitlines()
    ]
    assert {r["label"] for r in copy} == {0, 1, 2} and copy[0]["text"].startswith("de ")
    again = prepare(needs_of(stages, runs, reg), folder, offline=True)
    assert all(ln.status == "cached" for ln in again.lines)


def test_missing_condition_data_is_one_problem_naming_the_file(data, tiny_encoder):
    folder, _, _ = data
    grid = _grid(
        tiny_encoder,
        folder,
        ["none", {"name": "m", "tasks": ["tiny_nli"], "mlm": {**MLM, "languages": ["fr"]}}],
    )
    stages, runs = expand_grid(grid)
    with pytest.raises(ValueError, match="tiny_text/train-<lang>.txt"):
        prepare(needs_of(stages, runs, registry()), folder, offline=True)


# -------------------------------------------------------------------------------------- training


def test_mask_tokens_is_berts_15_percent_80_10_10():
    from xitt.train.mlm import mask_tokens

    ids = torch.randint(5, 1000, (400, 100))
    special = torch.zeros_like(ids, dtype=torch.bool)
    special[:, 0] = True
    inputs, labels = mask_tokens(ids, special, 1000, torch.Generator().manual_seed(0), mask_id=4)
    chosen = labels != -100
    assert not chosen[:, 0].any() and abs(chosen.float().mean().item() - 0.15 * 0.99) < 0.005
    masked = (inputs == 4) & chosen
    kept = (inputs == ids) & chosen
    assert abs(masked.sum().item() / chosen.sum().item() - 0.8) < 0.02
    assert abs(kept.sum().item() / chosen.sum().item() - 0.1) < 0.02  # (+ the rare random = itself)


def test_mlm_batches_are_the_ratio_of_all_batches():
    import numpy as np

    from xitt.grid.spec import TrainConfig
    from xitt.train.mlm import MlmData, mlm_batches

    assert mlm_batches(10, 0.5) == 10 and mlm_batches(30, 0.25) == 10 and mlm_batches(1, 0.01) == 1
    data = MlmData(None, TrainConfig(batch_size=4), [{"input_ids": [1]}] * 7, batches=5)
    batches = data.epoch_batches(np.random.default_rng(0))
    assert len(batches) == 5 and all(len(b) == 4 for b in batches)
    assert set(batches[0] + batches[1][:3]) == set(range(7))  # a full pass before any repeat


def test_mlm_mixed_stage_trains_both_objectives(data, tiny_encoder, tmp_path):
    from xitt.train import chain

    folder, _, _ = data
    grid = _grid(tiny_encoder, folder, ["none", {"name": "nli+mlm", "tasks": ["tiny_nli"], "mlm": MLM}])
    stage = expand_grid(grid)[0][0]
    info = chain.train_stage(stage, tmp_path / "ckpt", progress=False)
    assert info.steps == 2 * (10 + 10)  # 2 epochs of 160/16 NLI batches and as many MLM batches
    assert "tiny_nli.accuracy" in info.dev_scores and not any(k.startswith("mlm") for k in info.dev_scores)
    assert "tiny_text/train-de" in info.data_fingerprints
    again = chain.train_stage(stage, tmp_path / "ckpt2", progress=False)
    assert again.dev_scores == info.dev_scores  # seeded masking: deterministic


def test_mlm_mixed_stage_stopped_by_sigterm_resumes_bit_identical(data, tiny_encoder, tmp_path, monkeypatch):
    """The MLM's mask stream is part of the resume state: the masks after the resume point are the
    uninterrupted stage's, so the weights are bit-identical."""
    import os
    import signal

    from xitt.run.preempt import Preempted, catch_preemption
    from xitt.train import chain
    from xitt.train.mlm import MlmHead

    folder, _, _ = data
    grid = _grid(tiny_encoder, folder, ["none", {"name": "nli+mlm", "tasks": ["tiny_nli"], "mlm": MLM}])
    stage = expand_grid(grid)[0][0]
    clean = chain.train_stage(stage, tmp_path / "clean", progress=False)
    forward, calls = MlmHead.forward, {"n": 0}

    def counted(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 7:  # the 7th MLM batch, in the first of the 2 epochs
            os.kill(os.getpid(), signal.SIGTERM)
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(MlmHead, "forward", counted)
    with catch_preemption(), pytest.raises(Preempted):
        chain.train_stage(stage, tmp_path / "ckpt", progress=False, resume=tmp_path / "resume")
    monkeypatch.setattr(MlmHead, "forward", forward)
    again = chain.train_stage(stage, tmp_path / "ckpt", progress=False, resume=tmp_path / "resume")
    assert 0 < calls["n"] < 20 and (again.dev_scores, again.steps) == (clean.dev_scores, clean.steps)
    weights = "model.safetensors"
    assert (tmp_path / "ckpt" / weights).read_bytes() == (tmp_path / "clean" / weights).read_bytes()


@pytest.mark.parametrize(("mode", "steps"), [("union", 2 * 20), ("only", 2 * 10)])
def test_translated_stage_trains_on_union_or_translations_only(data, tiny_encoder, tmp_path, mode, steps):
    from xitt.train import chain

    folder, translations, _ = data
    entry = {
        "name": "tr",
        "tasks": ["tiny_nli"],
        "translated": {**TRANSLATED, "mode": mode, "source": str(translations)},
    }
    stage = expand_grid(_grid(tiny_encoder, folder, ["none", entry]))[0][0]
    info = chain.train_stage(stage, tmp_path / "ckpt", progress=False)
    assert info.steps == steps and "tiny_nli/train-de" in info.data_fingerprints


def test_the_three_conditions_run_from_the_command_line(data, tiny_encoder, tmp_path, monkeypatch):
    from xitt.schema import read_scores

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # restored after the test (the CLI sets them too)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    folder, translations, _ = data
    exp = tmp_path / "runs" / "cond"
    exp.mkdir(parents=True)
    doc = {
        "encoders": [{"name": "tiny", "path": str(tiny_encoder)}],
        "intermediates": [
            "none",
            "tiny_nli",
            "tiny_mc",
            {"name": "nli+mlm", "tasks": ["tiny_nli"], "mlm": MLM},
            {
                "name": "nli-tr",
                "tasks": ["tiny_nli"],
                "translated": {**TRANSLATED, "source": str(translations)},
            },
            {"name": "both", "tasks": "all"},
        ],
        "targets": ["tiny_cls"],
        "seeds": [1],
        "data_dir": str(folder),
        "train": {"num_threads": 1},
    }
    (exp / "grid.yaml").write_text(yaml.safe_dump(doc))
    assert main(["run", str(exp), "--offline", "--quiet"]) == 0
    assert main(["collect", str(exp)]) == 0
    scores = read_scores(exp / "scores.csv")
    families = dict(zip(scores.intermediate, scores.intermediate_family))
    assert families == {
        "none": "none",
        "tiny_nli": "nli",
        "tiny_mc": "qa",
        "nli+mlm": "nli+mlm",
        "nli-tr": "nli+translated",
        "both": "multi",
    }
    stage = json.loads(next((exp / "stages").glob("tiny__nli+mlm__*/stage.json")).read_text())
    assert "tiny_text/train-de" in stage["data"] and stage["data"]["tiny_text/train-de"]["rows"] == 40


def test_condition_files_are_found_in_xitt_and_xtreme_layouts(tmp_path):
    from xitt.data.conditions import text_task, translated_task
    from xitt.data.loaders import local_path
    from xitt.grid.intermediates import MlmMix, Translated

    reg = registry()
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "de.txt").write_text("a\n")
    text = text_task(MlmMix(str(corpus), ("de",)))
    assert text.name == "corpus" and local_path(text, "train", "de", tmp_path / "data") == corpus / "de.txt"
    bare = text_task(MlmMix("wiki", ("de",)))
    assert local_path(bare, "train", "de", tmp_path) == tmp_path / "wiki" / "train-de.txt"
    # XTREME's SQuAD translate-train name (gs://xtreme_translations/SQuAD/translate-train/
    # squad.translate.train.en-{lang}.json, as XTREME's run_squad reads it)
    squad = translated_task(reg.get("tiny_qa"), Translated(("de",), "union", str(tmp_path)))
    xtreme = tmp_path / "squad" / "translate-train" / "squad.translate.train.en-de.json"
    assert (
        local_path(squad, "train", "de", None) == tmp_path / "tiny_qa" / "train-de.json"
    )  # none yet: the first
    xtreme.parent.mkdir(parents=True)
    xtreme.write_text("{}")
    assert local_path(squad, "train", "de", None) == xtreme
    own = tmp_path / "tiny_qa" / "train-de.json"
    own.parent.mkdir()
    own.write_text("{}")
    assert local_path(squad, "train", "de", None) == own  # xitt's own layout first
