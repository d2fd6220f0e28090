"""xitt.data.sources: every source the registry declares exists on the (recorded) hub."""

import pytest
from hub_standin import load_schemas

from xitt.data import sources
from xitt.tasks import SUITES, registry


@pytest.fixture(scope="module")
def reg():
    return registry()


def test_placeholders_and_per_language_sources(reg):
    (xnli,) = sources.resolve(reg.get("xnli"), "test", "de")
    assert (xnli.hub, xnli.config, xnli.split, dict(xnli.filter)) == (
        "google/xtreme",
        "XNLI",
        "test",
        {"language": "de"},
    )
    assert sources.resolve(reg.get("xnli"), "train", "en")[0].fields["sentence1"] == "premise"
    assert sources.resolve(reg.get("udpos"), "test", "af")[0].config == "udpos.Afrikaans"
    assert sources.resolve(reg.get("tatoeba"), "test", "de")[0].config == "tatoeba.deu"
    assert sources.resolve(reg.get("tydiqa"), "test", "bn")[0].filter == {"id": {"prefix": "bengali-"}}
    assert [s.config for s in sources.resolve(reg.get("udpos"), "test", "pl")] == [
        "pl_lfg",
        "pl_pdb",
        "pl_pud",
    ]
    assert sources.resolve(reg.get("xquad"), "test", "ro")[0].hub == "google/xquad"
    assert len(sources.resolve(reg.get("anli"), "train", "en")) == 5
    assert sources.resolve(reg.get("ccg"), "train", "en") == []
    assert sources.keep_row({"id": "bengali-7"}, {"id": {"prefix": "bengali-"}})
    assert not sources.keep_row({"id": "arabic-7"}, {"id": {"prefix": "bengali-"}})


def _all_needs(reg):
    for task in reg.tasks.values():
        if task.source.get("local_only"):
            continue
        languages = set(task.languages) | set(task.languages_xtreme_r or ())
        for split, lang in sources.needed_splits(task, sorted(languages), as_target=task.is_target):
            yield task, split, lang


def test_every_declared_source_exists_with_its_config_split_and_columns(reg):
    """Would have caught udpos.Afrikans, XQuAD.ro, the missing XTREME-R languages and HellaSwag's
    script-only main branch: each source is checked against the recorded hub schemas."""
    from xitt.data.prepare import _with_fields, needed_columns

    hub, problems, checked = load_schemas(), [], 0
    for task, split, lang in _all_needs(reg):
        for src in sources.resolve(task, split, lang):
            checked += 1
            where = f"{task.name} {split}-{lang}: {src.describe()}"
            spec = hub.get(src.hub)
            if spec is None:
                problems.append(f"{where}: unknown dataset")
                continue
            if spec["script_only"] and src.revision != sources.PARQUET_EXPORT:
                problems.append(f"{where}: script-only repository read without its Parquet export")
            configs = spec["configs"]
            config = src.config or (next(iter(configs)) if len(configs) == 1 else None)
            if config not in configs:
                problems.append(f"{where}: no config {config}")
                continue
            group = configs[config]
            if src.split not in group["splits"]:
                problems.append(f"{where}: no split {src.split} (has {group['splits']})")
            missing = set(needed_columns(_with_fields(task, src))) - set(group["columns"])
            if missing:
                problems.append(f"{where}: no column(s) {sorted(missing)}")
    assert checked > 200 and problems == []


def test_every_xtreme_r_target_language_has_a_source_or_is_local(reg):
    for target in SUITES["xtreme-r"]:
        task = reg.get(target)
        for lang in task.languages_for("xtreme-r"):
            split = "test"
            assert task.source.get("local_only") or sources.resolve(task, split, lang), (target, lang)


def test_a_misspelt_source_key_is_an_error_not_ignored(reg):
    import dataclasses

    from xitt.tasks import TaskError

    task = reg.get("hellaswag")
    broken = dataclasses.replace(task, source={**task.source, "train": {"split": "train", "revison": "x"}})
    with pytest.raises(TaskError, match="unknown key 'revison'.*revision"):
        sources.resolve(broken, "train", "en")
