"""xitt prepare: the real grid resolves, is verified and cached once; every bad input is one clear error."""

import json
import re
from pathlib import Path

import pytest
import xtremer_files
from hub_standin import StandInHub

from xitt.cli import main
from xitt.data import cache
from xitt.tasks import registry

GRID = Path(__file__).parent.parent / "runs" / "nli-vs-qa" / "grid.yaml"


@pytest.fixture
def hub(monkeypatch):
    for name in ("XITT_OFFLINE", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):  # other tests go offline
        monkeypatch.delenv(name, raising=False)
    return StandInHub(rows=3).install(monkeypatch)


@pytest.fixture
def data_dir(tmp_path):
    folder = tmp_path / "cache"
    xtremer_files.convert_all(folder, tmp_path / "downloads", registry())
    return folder


def _exp(tmp_path, doc) -> Path:
    import yaml

    exp = tmp_path / "runs" / "probe"
    exp.mkdir(parents=True)
    (exp / "grid.yaml").write_text(yaml.safe_dump(doc))
    return exp


def test_converters_write_the_local_layout(data_dir):
    lines = (data_dir / "mewslix" / "test-de.tsv").read_text().splitlines()
    assert len(lines) == 4 and lines[0].split("\t")[1] == "north is a place" and lines[-1].startswith("\t")
    lareqa = (data_dir / "lareqa" / "test-de.tsv").read_text().splitlines()
    assert lareqa[0] == "What is the river?\tThe river is table."
    assert len(lareqa) == 4  # 3 questions + the one sentence that answers none
    train = (data_dir / "ccg" / "train-en.tsv").read_text().split("\n\n")
    assert len(train) == 8 and train[0].splitlines()[1].split("\t")[1] == "(S[dcl]\\NP)/NP"


def test_ccg_without_ccgbank_says_what_to_obtain(tmp_path, capsys):
    assert main(["convert", "ccg", str(tmp_path / "nothing"), "--data-dir", str(tmp_path)]) == 2
    assert "LDC2005T13" in capsys.readouterr().err


def test_the_real_grid_is_prepared_once_with_one_load_per_dataset_split(hub, data_dir, capsys):
    """Every split of runs/nli-vs-qa (10 intermediates, the 10 XTREME-R targets in all their
    languages) resolves, verifies and is cached; each (dataset, config, split) is loaded once."""
    assert main(["prepare", str(GRID), "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert len(hub.calls) == len(set(hub.calls)) > 150
    assert "tydiqa         bn    test" in out and "PROBLEM" not in out
    for lang in ("qu", "pl", "uk", "az", "lt", "pa", "gu", "ro"):
        assert f"panx           {lang:<5} test" in out
    entry = json.loads(cache.manifest_path(data_dir, "udpos", "test", "pl").read_text())
    assert [s["config"] for s in entry["sources"]] == ["pl_lfg", "pl_pdb", "pl_pud"]
    assert all(s["revision"] == "refs/convert/parquet" and len(s["sha"]) == 40 for s in entry["sources"])
    assert "_" not in entry["labels"]
    before = len(hub.calls)
    assert main(["prepare", str(GRID), "--data-dir", str(data_dir)]) == 0
    rows = capsys.readouterr().out.splitlines()[1:-1]
    assert len(hub.calls) == before and len(rows) > 200 and all(r.endswith(" cached") for r in rows)
    assert main(["plan", str(GRID), "--data-dir", str(data_dir)]) == 0
    assert "splits prepared in" in capsys.readouterr().out


XNLI_GRID = {
    "encoders": ["xlm-roberta-base"],
    "intermediates": ["none"],
    "targets": ["xnli"],
    "languages": {"xnli": ["de"]},
    "seeds": [1],
}


def _schema(hub, repo, config):
    return hub.schemas[repo]["configs"][config]


def _break_config(hub):
    hub.schemas["google/xtreme"]["configs"].pop("XNLI")


def _rename_column(hub):
    group = _schema(hub, "google/xtreme", "XNLI")
    group["columns"] = {("label" if c == "gold_label" else c): t for c, t in group["columns"].items()}
    group["values"] = {("label" if c == "gold_label" else c): v for c, v in group["values"].items()}


def _wrong_labels(hub):
    _schema(hub, "google/xtreme", "XNLI")["values"]["gold_label"] = ["entails", "neutral", "contradicts"]


def _label_count(hub):
    _schema(hub, "nyu-mll/glue", "mnli")["labels"]["label"] = ["entailment", "not_entailment"]


def _empty_split(hub):
    _schema(hub, "google/xtreme", "XNLI")["values"]["language"] = ["en", "fr"]


def _script_only(hub):
    hub.schemas["nyu-mll/glue"]["script_only"] = "glue.py"


@pytest.mark.parametrize(
    "breakage, expected",
    [
        (_break_config, "XNLI.*configuration not found.*Fix: correct the config name"),
        (_rename_column, r"no column\(s\) \['gold_label'\].*columns are.*Fix: map the task's fields"),
        (_wrong_labels, "label 'entails' is not one of task 'xnli' labels.*Fix: check the fields and labels"),
        (_label_count, r"mnli.*label names \['entailment', 'not_entailment'\].*has 3 labels.*Fix"),
        (_empty_split, r"gives no rows with \{'language': 'de'\}.*Fix"),
        (_script_only, "nyu-mll/glue ships only a loading script.*Fix: add `revision: refs/convert/parquet`"),
    ],
)
def test_a_bad_source_is_one_clear_error_and_nothing_is_written(hub, tmp_path, capsys, breakage, expected):
    breakage(hub)
    exp = _exp(tmp_path, XNLI_GRID)
    assert main(["prepare", str(exp), "--data-dir", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "(nothing was trained)" in err
    assert re.search(expected, err, flags=re.S), err
    assert sorted(p.name for p in exp.iterdir()) == ["grid.yaml"]  # nothing outside the cache
    failed = re.findall(r"task '(\w+)' (\w+)-(\w+):", err)
    assert failed and not any(cache.copy_path(tmp_path / "cache", *f).exists() for f in failed)


def test_a_script_only_repo_without_parquet_export(hub, tmp_path, capsys):
    hub.schemas["Rowan/hellaswag"]["parquet_export"] = False
    exp = _exp(tmp_path, {**XNLI_GRID, "intermediates": ["hellaswag"]})
    assert main(["prepare", str(exp), "--data-dir", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err
    assert "task 'hellaswag' train-en" in err and "no Parquet export" in err and "Fix:" in err


@pytest.mark.parametrize(
    "damage, expected",
    [
        (lambda copy, manifest: manifest.write_text("{not json"), "cannot be read"),
        (lambda copy, manifest: manifest.unlink(), "has no manifest"),
        (lambda copy, manifest: copy.write_text(copy.read_text()[:-10]), "its manifest says"),
        (lambda copy, manifest: copy.unlink(), "which is missing"),
        (lambda copy, manifest: copy.write_text(copy.read_text().replace("e", "a", 1)), "has fingerprint"),
    ],
)
def test_a_damaged_cache_entry_is_reported_with_its_fix(hub, tmp_path, capsys, damage, expected):
    exp = _exp(tmp_path, XNLI_GRID)
    folder = tmp_path / "cache"
    assert main(["prepare", str(exp), "--data-dir", str(folder)]) == 0
    damage(cache.copy_path(folder, "xnli", "test", "de"), cache.manifest_path(folder, "xnli", "test", "de"))
    assert main(["prepare", str(exp), "--data-dir", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "task 'xnli' test-de" in err and expected in err and "Fix: delete" in err


def test_offline_without_a_prepared_copy_names_the_fix(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("XITT_OFFLINE", raising=False)
    exp = _exp(tmp_path, XNLI_GRID)
    assert main(["prepare", str(exp), "--data-dir", str(tmp_path / "cache"), "--offline"]) == 2
    err = capsys.readouterr().err
    assert "hub is off" in err and "--data-dir" in err and "task 'xnli' test-de" in err


def test_a_run_never_reads_a_copy_that_disagrees_with_its_manifest(hub, tmp_path):
    from xitt.data import loaders

    exp = _exp(tmp_path, XNLI_GRID)
    folder = tmp_path / "cache"
    assert main(["prepare", str(exp), "--data-dir", str(folder)]) == 0
    task = registry().get("xnli")
    rows, fingerprint = loaders.load_split(task, "test", "de", folder)
    assert (
        rows
        and fingerprint
        == json.loads(cache.manifest_path(folder, "xnli", "test", "de").read_text())["fingerprint"]
    )
    copy = cache.copy_path(folder, "xnli", "test", "de")
    copy.write_text(copy.read_text().replace("e", "a", 1))
    loaders._CACHE.clear()
    with pytest.raises(loaders.DataError, match="does not match its manifest.*xitt prepare"):
        loaders.load_split(task, "test", "de", folder)
