import pytest
import yaml

from xitt.tasks import KINDS, METRICS, SUITES, TaskError, registry, scan


def test_builtin_task_files_are_valid():
    reg, problems = scan()
    assert problems == []
    for name in (
        "anli",
        "mnli",
        "squad_v1",
        "squad_v2",
        "cosmosqa",
        "commonsenseqa",
        "qqp",
        "hellaswag",
        "ccg",
    ):
        assert reg.get(name).is_intermediate and reg.get(name).languages == ("en",)
    assert {reg.get(n).family for n in ("anli", "mnli")} == {"nli"}
    assert {reg.get(n).family for n in ("squad_v1", "squad_v2", "cosmosqa", "commonsenseqa")} == {"qa"}
    for targets in SUITES.values():
        for name in targets:
            task = reg.target(name)
            assert task.kind in KINDS and task.metric in METRICS and task.version
    assert len(reg.get("xnli").languages) == 15 and len(reg.get("panx").languages) == 40
    assert "ro" in reg.get("xquad").languages_for("xtreme-r") and "ro" not in reg.get("xquad").languages_for(
        "xtreme"
    )


def test_suites_expand_and_intermediate_only_tasks_are_refused():
    reg = registry()
    assert reg.expand_targets("xtreme-r")[:2] == ["xnli", "xcopa"]
    with pytest.raises(TaskError, match="intermediate-only"):
        reg.expand_targets(["mnli"])
    with pytest.raises(TaskError, match="Did you mean 'xnli'"):
        reg.get("xnlii")


def write(folder, doc):
    (folder / "fam.yaml").write_text(yaml.safe_dump(doc))


@pytest.mark.parametrize(
    "entry, message",
    [
        (
            {"roles": ["target"], "kind": "tagging", "metric": "f1_seqeval", "version": "1", "source": {}},
            "no 'languages'",
        ),
        (
            {
                "roles": ["target"],
                "kind": "tagger",
                "metric": "f1_seqeval",
                "languages": ["en"],
                "version": "1",
                "source": {},
            },
            "unknown kind 'tagger'.*Did you mean 'tagging'",
        ),
        (
            {
                "roles": ["target"],
                "kind": "tagging",
                "metric": "f2",
                "languages": ["en"],
                "version": "1",
                "source": {},
            },
            "unknown metric 'f2'",
        ),
        (
            {
                "roles": ["target"],
                "kind": "tagging",
                "metric": "f1_seqeval",
                "languages": ["en"],
                "version": "1",
                "source": {},
                "langauges": ["de"],
            },
            "unknown key 'langauges'.*Did you mean 'languages'",
        ),
    ],
)
def test_validate_reports_bad_entries(tmp_path, entry, message):
    write(tmp_path, {"family": "x", "tasks": {"t1": entry}})
    _, problems = scan([tmp_path])
    assert any(__import__("re").search(message, p) for p in problems), problems


def test_duplicate_task_names_across_files(tmp_path):
    entry = {
        "roles": ["intermediate"],
        "kind": "classification",
        "metric": "accuracy",
        "languages": ["en"],
        "version": "1",
        "source": {"local_only": True},
    }
    (tmp_path / "a.yaml").write_text(yaml.safe_dump({"family": "a", "tasks": {"t": entry}}))
    (tmp_path / "b.yaml").write_text(yaml.safe_dump({"family": "b", "tasks": {"t": entry}}))
    _, problems = scan([tmp_path])
    assert len(problems) == 1 and "already declared" in problems[0]


def test_chance_levels():
    reg = registry()
    assert reg.get("xnli").chance == pytest.approx(100 / 3)
    assert reg.get("xcopa").chance == 50.0
    assert reg.get("panx").chance is None
