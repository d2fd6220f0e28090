"""``train_first``: XTREME-R's XCOPA recipe trains SIQA, then COPA, with one model and one head.

Reference: google-research/xtreme@838c13b69daafb9328785d16caae2711e4012123 scripts/train_xcopa.sh
(run_xcopa.py --task siqa, then --task xcopa --model_name_or_path <the SIQA output>, the same LR,
epochs, batch and max length). Here a second tiny multiple-choice task stands in for SIQA.
"""

import shutil

import pytest
import yaml

from xitt.grid.spec import SpecError, expand_grid, parse_grid
from xitt.tasks import scan, task_dirs


@pytest.fixture
def setup(tmp_path, tiny_data):
    """A registry with 'tiny_first' (multiple choice, tiny_mc's English data) and a data dir."""
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    entry = {"roles": ["intermediate"], "kind": "multiple_choice", "metric": "accuracy", "languages": ["en"]}
    doc = {
        "family": "tinyfirst",
        "defaults": {"train_language": "en", "source": {"local_only": True}, "version": "t1"},
        "tasks": {"tiny_first": entry},
    }
    (tasks / "first.yaml").write_text(yaml.safe_dump(doc))
    reg, problems = scan([*task_dirs(), tasks])
    assert not problems
    data = tmp_path / "data"
    shutil.copytree(tiny_data / "tiny_mc", data / "tiny_mc")
    (data / "tiny_first").mkdir()
    for split in ("train", "dev"):
        shutil.copy(tiny_data / "tiny_mc" / f"{split}-en.jsonl", data / "tiny_first" / f"{split}-en.jsonl")
    return reg, data


def grid(encoder, data, reg, **train):
    doc = {
        "encoders": [{"name": "tiny", "path": str(encoder)}],
        "intermediates": ["none"],
        "targets": ["tiny_mc"],
        "languages": {"tiny_mc": ["de"]},
        "seeds": [1],
        "data_dir": str(data),
        "train": {"max_steps": 3, "select_on": "last", **train},
    }
    return parse_grid(doc, reg=reg)


def test_train_first_trains_the_first_task_then_the_target(setup, tiny_encoder):
    from xitt.train import chain

    reg, data = setup
    plain = expand_grid(grid(tiny_encoder, data, reg), reg=reg)[1][0]
    chained = expand_grid(grid(tiny_encoder, data, reg, train_first="tiny_first"), reg=reg)[1][0]
    assert plain.run_id != chained.run_id  # a different protocol is a different run
    a = chain.run_target(plain, str(tiny_encoder), progress=False, reg=reg)
    b = chain.run_target(chained, str(tiny_encoder), progress=False, reg=reg)
    assert "tiny_first:selection" in b.dev_scores and not any(
        k.startswith("tiny_first:") for k in a.dev_scores
    )
    assert "tiny_first/train-en" in b.data_fingerprints
    assert a.dev_scores["selection"] != b.dev_scores["selection"] or a.scores != b.scores


def test_train_first_must_share_the_targets_kind(setup, tiny_encoder):
    reg, data = setup
    with pytest.raises(SpecError, match="must be another task of the same kind"):
        grid(tiny_encoder, data, reg, train_first="tiny_nli")


def test_xtreme_r_trains_siqa_before_copa():
    doc = {"encoders": ["xlm-roberta-large"], "intermediates": ["none"], "targets": ["xcopa"], "seeds": [1]}
    cfg = expand_grid(parse_grid({**doc, "recipe": "xtreme-r"}))[1][0].target_train
    assert cfg.train_first == "siqa" and (cfg.lr, cfg.batch_size, cfg.grad_accum) == (3e-5, 2, 16)
    assert expand_grid(parse_grid(doc))[1][0].target_train.train_first == ""


def test_siqa_rows_map_their_labels_to_choice_indices():
    # allenai/social_i_qa rows: answerA..C and a label "1".."3" (older copies end it with "\n")
    from xitt.data.loaders import _hub_example
    from xitt.tasks import registry

    row = {
        "context": "Kai paid.",
        "question": "Why?",
        "answerA": "a",
        "answerB": "b",
        "answerC": "c",
        "label": "2\n",
    }
    example = _hub_example(registry().get("siqa"), row, None)
    assert example["choices"] == ["a", "b", "c"] and example["label"] == 1


DOC = {
    "encoders": ["xlm-roberta-large"],
    "intermediates": ["none"],
    "targets": ["xcopa"],
    "languages": {"xcopa": ["et"]},
    "seeds": [1],
    "recipe": "xtreme-r",
}


def test_the_first_task_is_prepared_with_the_targets_data():
    # `xitt prepare` / `xitt run` check and cache every split before training: SIQA's too
    from xitt.data.prepare import needs_of
    from xitt.tasks import registry

    stages, runs = expand_grid(parse_grid(DOC))
    needs = {(t.name, split, lang) for t, split, lang in needs_of(stages, runs, registry())}
    assert {("siqa", "train", "en"), ("siqa", "dev", "en"), ("xcopa", "test", "et")} <= needs
    plain = expand_grid(parse_grid({k: v for k, v in DOC.items() if k != "recipe"}))
    assert not any(t.name == "siqa" for t, _, _ in needs_of(*plain, registry()))


def test_a_missing_first_task_fails_before_any_compute(tmp_path):
    from xitt.data.loaders import DataError
    from xitt.data.prepare import needs_of, prepare
    from xitt.tasks import registry

    stages, runs = expand_grid(parse_grid(DOC))
    needs = needs_of(stages, runs, registry())
    with pytest.raises(
        DataError, match=r"(?s)2 data split\(s\).*task 'siqa' train-en: not prepared.*siqa' dev-en"
    ):
        prepare([n for n in needs if n[0].name == "siqa"], tmp_path, offline=True)


def test_xcopa_reads_its_question_as_run_xcopa_writes_it():
    # google-research/xtreme third_party/run_xcopa.py: first segment f"{premise} What was the {question}?"
    # for xcopa, f"{context} {question}" for siqa; xitt's multiple-choice head joins context + " " + question
    from xitt.tasks import registry
    from xitt.train.chain import with_question_template

    examples = [{"context": "The man fell.", "question": "cause", "choices": ["a", "b"], "label": 0}]
    out = with_question_template(registry().get("xcopa"), examples)
    assert f"{out[0]['context']} {out[0]['question']}" == "The man fell. What was the cause?"
    assert examples[0]["question"] == "cause"  # the loaded examples are not changed
    assert with_question_template(registry().get("siqa"), examples) is examples
