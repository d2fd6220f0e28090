import dataclasses
from pathlib import Path

import pytest

from xitt.grid.spec import SpecError, TrainConfig, apply_sets, expand_grid, load_grid, parse_grid

BASE = {
    "encoders": ["xlm-roberta-base"],
    "intermediates": ["none", "mnli", "squad_v1"],
    "targets": ["xnli", "panx"],
    "languages": {"xnli": ["en", "de"], "panx": ["en", "fr"]},
    "seeds": [1, 2],
}


def grid(**over):
    doc = dict(BASE)
    doc.update(over)
    return parse_grid(doc, path="runs/exp/grid.yaml")


def test_expansion_is_a_dag_with_shared_stages():
    stages, runs = expand_grid(grid())
    assert len(stages) == 2 * 2 and len(runs) == 3 * 2 * 2
    mnli_runs = [r for r in runs if r.intermediate == "mnli" and r.seed == 1]
    assert len({r.stage.stage_id for r in mnli_runs}) == 1 and len(mnli_runs) == 2
    assert all(r.stage is None for r in runs if r.intermediate == "none")
    assert runs[0].run_id.startswith("xlmr-base__none__xnli__s1__")


def test_run_ids_are_stable_when_seeds_are_added():
    _, before = expand_grid(grid())
    _, after = expand_grid(grid(seeds=[1, 2, 3]))
    assert {r.run_id for r in before} < {r.run_id for r in after}
    _, only_new = expand_grid(grid(seeds=[1, 2, 3]), seeds=[3])
    assert {r.run_id for r in only_new} == {r.run_id for r in after} - {r.run_id for r in before}


def test_training_settings_precedence():
    g = grid(train={"epochs": 1}, task_train={"xnli": {"lr": 1e-5}})
    xnli = g.train_config("xnli", __import__("xitt.tasks", fromlist=["registry"]).registry())
    assert xnli.epochs == 1.0 and xnli.lr == 1e-5 and xnli.max_length == 128
    _, runs = expand_grid(g)
    changed = {r.run_id for r in runs}
    assert changed.isdisjoint({r.run_id for r in expand_grid(grid())[1]})


def test_multi_task_intermediate():
    g = grid(intermediates=["none", {"name": "nli+qa", "tasks": ["mnli", "squad_v1"]}])
    stages, _ = expand_grid(g)
    assert stages[0].intermediate_family == "multi" and stages[0].intermediate_tasks == ("mnli", "squad_v1")


def test_suite_targets_use_suite_languages():
    g = grid(targets="xtreme-r", languages=None)
    assert g.targets[1] == "xcopa" and "ro" in g.languages["xquad"]


@pytest.mark.parametrize(
    "over, message",
    [
        ({"targets": ["xnlii"]}, "Did you mean 'xnli'"),
        ({"targets": ["xtrme"]}, "Did you mean 'xtreme'"),
        ({"targets": ["mnli"]}, "intermediate-only"),
        ({"languages": {"xnli": ["xx"]}}, r"has no language\(s\) \['xx'\]"),
        ({"seeds": []}, "non-empty list"),
        ({"seeds": [1, 1]}, r"seed\(s\) \[1\] appear twice"),
        ({"seeds": ["a"]}, "must hold integers"),
        ({"sedes": [1]}, "unknown key 'sedes'.*Did you mean 'seeds'"),
        ({"train": {"lr": "fast"}}, r"train.lr must be float"),
        ({"train": {"epochs": 1, "learning_rate": 1e-5}}, "unknown training setting 'train.learning_rate'"),
        ({"intermediates": ["none", "xnli"]}, "is a target, not an intermediate"),
        ({"executor": {"kind": "kubernetes"}}, "executor.kind"),
        ({"keep_checkpoints": "yes"}, "keep_checkpoints must be bool"),
    ],
)
def test_bad_grids_name_the_problem(over, message):
    with pytest.raises((SpecError, ValueError), match=message):
        grid(**over)


def test_set_overrides_and_their_errors():
    doc = apply_sets(BASE, ["train.lr=1e-5", "seeds=[4,5]"])
    assert doc["seeds"] == [4, 5] and "train" not in BASE
    assert (
        parse_grid(doc).train_config("xnli", __import__("xitt.tasks", fromlist=["registry"]).registry()).lr
        == 1e-5
    )
    with pytest.raises(SpecError, match="unknown training setting 'lrr'"):
        apply_sets(BASE, ["train.lrr=1"])
    with pytest.raises(SpecError, match="unknown grid key 'seed'.*Did you mean 'seeds'"):
        apply_sets(BASE, ["seed=1"])
    with pytest.raises(SpecError, match="KEY=VALUE"):
        apply_sets(BASE, ["train.lr"])


def test_grid_file_that_is_not_yaml(tmp_path):
    (tmp_path / "grid.yaml").write_text("encoders: [a\n  - : :")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_grid(tmp_path)
    (tmp_path / "grid.yaml").write_text("just a string")
    with pytest.raises(SpecError, match="must be a YAML mapping"):
        load_grid(tmp_path)


def test_train_config_is_frozen_and_checked():
    with pytest.raises(dataclasses.FrozenInstanceError):
        TrainConfig().lr = 1
    with pytest.raises(SpecError, match="precision"):
        TrainConfig(precision="fp8")


HOSTILE_NAMES = [
    "../../../../escaped_enc",
    "/tmp/absolute",
    "org/model",
    ".hidden",
    "..",
    "a__b",
    "x" * 65,
    "name with space",
    "tab\tname",
    "back\\slash",
    "ümlaut",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_names_are_rejected_when_the_grid_is_read(name):
    """Names become run ids and folders: none may lead a write outside the experiment or nest folders."""
    with pytest.raises(SpecError, match="cannot name folders"):
        grid(encoders=[{"name": name, "path": "xlm-roberta-base"}])
    with pytest.raises(SpecError, match="cannot name folders"):
        grid(intermediates=["none", {"name": name, "tasks": ["mnli", "squad_v1"]}])
    with pytest.raises(SpecError, match="cannot name folders"):
        grid(experiment=name)


def test_hub_ids_keep_their_slash_in_the_path_only():
    g = grid(encoders=["FacebookAI/xlm-roberta-large", {"name": "nli+qa.v2", "path": "org/model"}])
    assert g.encoders == (("xlm-roberta-large", "FacebookAI/xlm-roberta-large"), ("nli+qa.v2", "org/model"))


def test_task_files_with_hostile_names_or_languages_are_invalid(tmp_path):
    from xitt.tasks import scan, task_dirs

    (tmp_path / "bad.yaml").write_text(
        "family: custom\ntasks:\n"
        "  ../evil: {roles: [target], kind: classification, metric: accuracy, languages: [en],"
        " version: '1', source: {local_only: true}, labels: [a, b]}\n"
        "  fine: {roles: [target], kind: classification, metric: accuracy, languages: [en, ../de],"
        " version: '1', source: {local_only: true}, labels: [a, b]}\n"
    )
    _, problems = scan([*task_dirs(), tmp_path])
    assert any("'../evil' cannot be used" in p for p in problems)
    assert any("['../de'] that cannot name files" in p for p in problems)


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("lr", float("inf")),
        ("lr", float("nan")),
        ("lr", 0.0),
        ("epochs", 1e12),
        ("max_train_examples", -5),
        ("warmup_ratio", 5.0),
        ("weight_decay", -1.0),
        ("batch_size", 10**12),
        ("max_length", 10**9),
        ("grad_accum", 0),
        ("max_grad_norm", 0.0),
    ],
)
def test_every_numeric_setting_has_a_checked_range(setting, value):
    with pytest.raises(SpecError, match=f"train.{setting} = .* outside its valid range"):
        grid(train={setting: value})


def test_the_range_table_covers_every_numeric_setting():
    from xitt.grid.spec import TRAIN_RANGES

    numeric = {f.name for f in dataclasses.fields(TrainConfig) if f.type in ("int", "float")}
    assert numeric == set(TRAIN_RANGES)
    for name, (low, high) in TRAIN_RANGES.items():
        assert low <= getattr(TrainConfig(), name) <= high, name


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"train": [1, 2]}, "train must be a mapping"),
        ({"task_train": {"xnli": 5}}, "task_train.xnli must be a mapping"),
        ({"seeds": [-1]}, "from 0 to 2\\*\\*32 - 1"),
        ({"experiment": ["a", "b"]}, "cannot name folders"),
    ],
)
def test_wrong_shapes_are_one_clear_error(over, message):
    with pytest.raises(SpecError, match=message):
        grid(**over)


def test_set_train_to_a_number_is_a_clear_error():
    with pytest.raises(SpecError, match="train must be a mapping"):
        parse_grid(apply_sets(dict(BASE), ["train=5"]))


@pytest.mark.parametrize("inside", ["", "stages", "some_run", "stages/x"])
def test_checkpoints_never_land_in_stage_or_run_folders(tmp_path, inside, monkeypatch):
    from xitt.run.executors import checkpoint_path

    monkeypatch.delenv("XITT_CHECKPOINT_DIR")

    exp = tmp_path / "exp"
    with pytest.raises(SpecError, match="checkpoint_dir .* among the experiment's run or stage folders"):
        checkpoint_path(str(exp / inside), exp, "stage1")
    default = checkpoint_path(None, exp, "s1")  # outside the repository, one folder per experiment folder
    assert default.parent.parent == Path("~/.cache/xitt/checkpoints").expanduser().resolve()
    assert default.name == "s1" and default.parent.name.startswith("exp-")
    assert checkpoint_path(None, tmp_path / "other" / "exp", "s1") != default
    assert checkpoint_path(str(tmp_path / "ckpt"), exp, "s1") == (tmp_path / "ckpt" / "s1").resolve()
