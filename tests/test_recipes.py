"""Recipes: cited presets, their place in the resolution order, `xitt plan`'s settings and hours.

Golden values are copied from the official scripts at the commits the recipes cite:
google-research/xtreme@838c13b69daafb9328785d16caae2711e4012123 (scripts/train_*.sh,
scripts/run_tatoeba.sh, scripts/run_bucc2018.sh) and nyu-mll/jiant@daa5a258e3af5e7503288de8401429eaf3f58e13
(guides/projects/xstilts.md, jiant/scripts/benchmarks/xtreme/subscripts/*.sh).
"""

import re

import pytest
import yaml

from xitt.cli import main
from xitt.grid.recipes import RecipeError, available, load_recipe, parse_recipe
from xitt.grid.spec import SpecError, TrainConfig, expand_grid, load_grid, make_train_config, parse_grid
from xitt.run.store import StageRecord, write_stage
from xitt.tasks import registry

XLMR, MBERT = "xlm-roberta-large", "bert-base-multilingual-cased"
REAL = "runs/nli-vs-qa"


def grid_doc(**extra):
    doc = {
        "encoders": [MBERT, XLMR],
        "intermediates": ["none", "mnli", "squad_v1"],
        "targets": ["xnli", "xquad", "tatoeba", "udpos"],
        "seeds": [1],
    }
    return {**doc, **extra}


def test_shipped_recipes_cite_every_value():
    assert {"phang2020", "xtreme-r"} <= set(available())
    for name in available():
        recipe = load_recipe(name)
        for source in recipe.sources.values():
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", source), source
        blocks = list(recipe.defaults.values())
        for entry in recipe.tasks.values():
            blocks += [entry.block, *entry.encoders.values()]
        for block in blocks:
            for key in block.train:
                alias, _, path = block.source_of(key).partition(":")
                assert alias in recipe.sources and path, (name, key)
            make_train_config(block.train)  # every value is a valid setting


# golden values: (recipe, encoder, task) -> settings, from the scripts named in the comment
GOLDEN = [
    # xtreme scripts/train_xnli.sh: XLM-R large BATCH_SIZE=2 GRAD_ACC=16 LR=3e-5; else 8, 4, 2e-5
    (
        "xtreme-r",
        XLMR,
        "xnli",
        {"lr": 3e-5, "batch_size": 2, "grad_accum": 16, "epochs": 5, "max_length": 128},
    ),
    ("xtreme-r", MBERT, "xnli", {"lr": 2e-5, "batch_size": 8, "grad_accum": 4, "eval_every": 100}),
    # scripts/train_qa.sh: BATCH_SIZE=4 GRAD_ACC=8 MAXL=384 LR=3e-5 NUM_EPOCHS=3.0 --warmup_steps 500
    (
        "xtreme-r",
        XLMR,
        "xquad",
        {
            "lr": 3e-5,
            "batch_size": 4,
            "grad_accum": 8,
            "epochs": 3,
            "warmup_steps": 500,
            "qa_windows": "step",
        },
    ),
    # scripts/train_udpos.sh: 10 epochs, max length 128; utils_preprocess.py splits long sentences
    ("xtreme-r", XLMR, "udpos", {"epochs": 10, "batch_size": 2, "grad_accum": 16, "long_sentences": "chunk"}),
    # run_tatoeba.sh: LAYER=7 of NLAYER=12 (mBERT), LAYER=13 of NLAYER=24 (XLM-R): hidden_states 8, 14
    ("xtreme-r", MBERT, "tatoeba", {"retrieval_layer": 8, "max_length": 512, "retrieval_pool": "mean"}),
    ("xtreme-r", XLMR, "tatoeba", {"retrieval_layer": 14}),
    # run_bucc2018.sh: --pool_type cls --specific_layer 7 for every model
    ("xtreme-r", XLMR, "bucc2018", {"retrieval_layer": 8, "retrieval_pool": "cls"}),
    # jiant d_write_configs.sh + e_run_models.sh + c_tokenize_and_cache.sh
    (
        "phang2020",
        XLMR,
        "xnli",
        {"lr": 1e-5, "epochs": 2, "batch_size": 4, "grad_accum": 8, "max_length": 256},
    ),
    (
        "phang2020",
        XLMR,
        "xquad",
        {"lr": 1e-5, "epochs": 2, "batch_size": 4, "grad_accum": 4, "max_length": 384},
    ),
    ("phang2020", XLMR, "tatoeba", {"retrieval_layer": 14, "max_length": 512}),
    # jiant xstilts.md: --train_batch_size 4; simple runscript defaults lr 1e-5, 3 epochs, length 256
    ("phang2020", XLMR, "mnli", {"lr": 1e-5, "batch_size": 4, "epochs": 3, "max_length": 256}),
]


@pytest.mark.parametrize("recipe, encoder, task, expected", GOLDEN)
def test_recipe_values_equal_the_official_scripts(recipe, encoder, task, expected):
    grid = parse_grid(grid_doc(recipe=recipe, targets=["xnli", "xquad", "tatoeba", "udpos", "bucc2018"]))
    cfg = grid.train_config(task, registry(), encoder)
    assert {k: getattr(cfg, k) for k in expected} == pytest.approx(expected)


def test_resolution_order_default_yaml_recipe_train_task_train():
    reg = registry()
    yaml_only = parse_grid(grid_doc()).train_config("xnli", reg, XLMR)
    assert yaml_only == make_train_config(reg.get("xnli").hparams)  # no recipe: exactly as before
    grid = parse_grid(grid_doc(recipe="xtreme-r"))
    assert grid.train_config("xnli", reg, XLMR).lr == 3e-5  # encoder block beats the task block
    assert grid.train_config("xnli", reg, MBERT).lr == 2e-5
    grid = parse_grid(grid_doc(recipe="xtreme-r", train={"lr": 1e-4, "epochs": 1}))
    assert grid.train_config("xnli", reg, XLMR).lr == 1e-4  # grid train beats the recipe
    grid = parse_grid(grid_doc(recipe="xtreme-r", train={"lr": 1e-4}, task_train={"xnli": {"lr": 5e-6}}))
    assert grid.train_config("xnli", reg, XLMR).lr == 5e-6
    origins = grid.setting_origins("xnli", reg, XLMR)
    assert origins["lr"] == "grid task_train.xnli" and origins["batch_size"] == f"recipe xtreme-r ({XLMR})"
    assert origins["weight_decay"] == "recipe xtreme-r (target default)"


def test_a_local_copy_of_a_hub_encoder_gets_its_recipe_values(tmp_path):
    local = str(tmp_path / "models" / XLMR)
    grid = parse_grid(grid_doc(recipe="xtreme-r", encoders=[{"name": "xlmr", "path": local}]))
    assert grid.train_config("tatoeba", registry(), local).retrieval_layer == 14


def test_added_settings_at_their_default_keep_run_ids():
    plain = expand_grid(parse_grid(grid_doc()))[1]
    same = expand_grid(parse_grid(grid_doc(train={"qa_windows": "overlap", "long_sentences": "truncate"})))[1]
    assert [r.run_id for r in plain] == [r.run_id for r in same]
    other = expand_grid(parse_grid(grid_doc(train={"qa_windows": "step"})))[1]
    assert {r.run_id for r in other if r.target == "xquad"}.isdisjoint(r.run_id for r in plain)


def test_recipe_changes_ids_and_is_per_encoder():
    plain = {r.run_id for r in expand_grid(parse_grid(grid_doc()))[1]}
    stages, runs = expand_grid(parse_grid(grid_doc(recipe="phang2020")))
    assert plain.isdisjoint(r.run_id for r in runs)
    tatoeba = {r.encoder: r.target_train.retrieval_layer for r in runs if r.target == "tatoeba"}
    assert tatoeba == {"mbert": 8, "xlmr-large": 14}
    assert {s.train["mnli"].batch_size for s in stages if s.intermediate == "mnli"} == {4}


@pytest.mark.parametrize(
    "doc, message",
    [
        (
            {"name": "x", "sources": {"a": "o/r@abc"}, "tasks": {"xnli": {"train": {"lr": 1}}}},
            "needs a 'source'",
        ),
        (
            {
                "name": "x",
                "sources": {"a": "o/r@abc"},
                "tasks": {"xnli": {"source": "b:f", "train": {"lr": 1}}},
            },
            "Unknown alias",
        ),
        (
            {
                "name": "x",
                "sources": {"a": "o/r@abc"},
                "tasks": {"xnli": {"source": {"lr": "a:f"}, "train": {"lr": 1, "epochs": 2}}},
            },
            "No source for ['epochs']",
        ),
        ({"name": "x", "sources": {"a": "no-commit"}}, "owner/repo@commit"),
        (
            {"name": "x", "sources": {"a": "o/r@c"}, "tasks": {"xnli": {"source": "a:f", "trian": {}}}},
            "unknown key",
        ),
    ],
)
def test_bad_recipe_files_are_rejected(doc, message):
    with pytest.raises(RecipeError, match=re.escape(message)):
        parse_recipe(doc, "bad.yaml")


def test_bad_recipe_in_grid_is_one_clear_error(tmp_path):
    with pytest.raises(SpecError, match="Did you mean 'phang2020'"):
        parse_grid(grid_doc(recipe="phang2021"))
    bad = tmp_path / "r.yaml"
    bad.write_text(
        yaml.safe_dump({"sources": {"a": "o/r@c"}, "tasks": {"xnli": {"source": "a:f", "train": {"lrr": 1}}}})
    )
    with pytest.raises(SpecError, match="unknown training setting 'recipe r tasks.xnli.train.lrr'"):
        parse_grid(grid_doc(recipe=str(bad)))


def test_shipped_real_grid_uses_phang2020_and_plan_shows_settings(capsys):
    grid = load_grid(REAL)
    assert grid.recipe is not None and grid.recipe.name == "phang2020"
    assert main(["plan", REAL, "--full"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"xlmr-large\s+xquad\s+target\s+lr=1e-05\[R\] epochs=2.0\[R\]", out)
    assert re.search(r"mbert\s+tatoeba\s+target\s+max_length=512\[R\] retrieval_layer=8\[R\]", out)
    assert (
        "xlmr-large tatoeba retrieval_layer=14  <- recipe phang2020 (xlm-roberta-large): nyu-mll/jiant@"
        in out
    )
    assert "recipe phang2020 has no entry for:" in out and "xcopa" in out


def test_plan_costs_per_encoder_and_measured_times(tmp_path, capsys):
    folder = tmp_path / "exp"
    folder.mkdir()
    doc = grid_doc(
        intermediates=["mnli"],
        targets=["xnli"],
        languages={"xnli": ["de"]},
        seeds=[1, 2],
        cost={
            "intermediate": {"default": 3.0},
            "target": {"default": 1.0},
            "mbert": {"intermediate": {"mnli": 1.0}},
        },
    )
    (folder / "grid.yaml").write_text(yaml.safe_dump(doc))
    assert main(["plan", str(folder), "--no-baseline"]) == 0
    # stages: mbert 2 x 1.0 (its own table) + xlmr 2 x 3.0; runs 4 x 1.0
    assert "stages 8.0 + runs 4.0 = 12.0; remaining 12.0" in capsys.readouterr().out
    stages, _ = expand_grid(load_grid(folder))
    done = next(s for s in stages if s.encoder == "xlmr-large")
    write_stage(folder, StageRecord(done.stage_id, {}, "done", wall_time=5 * 3600, checkpoint="ckpt"))
    assert main(["plan", str(folder), "--no-baseline"]) == 0
    out = capsys.readouterr().out
    # the finished XLM-R stage took 5 h: it counts 5 h, and the pending XLM-R stage is estimated at 5 h
    assert "stages 12.0 + runs 4.0 = 16.0; remaining 11.0" in out
    assert "1 from measured means" in out


def test_train_config_defaults_are_unchanged():
    # runs/demo's ids hash these values: changing a default renames every published run
    cfg = TrainConfig()
    assert (cfg.lr, cfg.doc_stride, cfg.qa_windows, cfg.long_sentences, cfg.retrieval_layer) == (
        2e-5,
        128,
        "overlap",
        "truncate",
        -1,
    )


def test_warmup_steps_win_over_the_ratio():
    # XTREME's train_qa.sh passes --warmup_steps 500 (an absolute count), not a proportion
    import torch

    from xitt.train.fit import make_optimizer

    module = torch.nn.Linear(2, 2)
    _, schedule = make_optimizer([module], TrainConfig(warmup_steps=5, warmup_ratio=0.5), total=100)
    factors = []
    for _ in range(7):
        factors.append(schedule.get_last_lr()[0] / 2e-5)
        schedule.optimizer.step()
        schedule.step()
    assert factors == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 94 / 95])


def test_a_cost_table_for_a_usual_encoder_survives_replacing_the_encoders():
    doc = grid_doc(cost={"xlmr-large": {"target": {"xnli": 2.0}}}, encoders=["some/other-encoder"])
    assert parse_grid(doc).gpu_hours("target", "xnli", "other-encoder") is None
    with pytest.raises(SpecError, match="unknown key 'xlmr-larg' in cost"):
        parse_grid(grid_doc(cost={"xlmr-larg": {"target": {"xnli": 2.0}}}))


def test_plan_names_encoders_the_recipe_has_no_values_for(tmp_path, capsys):
    folder = tmp_path / "exp"
    folder.mkdir()
    doc = grid_doc(recipe="xtreme-r", encoders=[XLMR, {"name": "mine", "path": "org/my-encoder"}])
    (folder / "grid.yaml").write_text(yaml.safe_dump(doc))
    assert main(["plan", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "recipe xtreme-r has no encoder-specific values for: mine " in out
    assert re.search(r"mine\s+tatoeba\s+target\s+max_length=512\[R\] retrieval_layer=-1\[D\]", out)
