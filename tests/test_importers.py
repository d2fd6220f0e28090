import json
from pathlib import Path

import pytest

from xitt.cli import main
from xitt.importers import import_csv, import_jiant, import_xtreme
from xitt.schema import SchemaError, read_scores


def test_tidy_csv_is_filled_from_the_registry(tmp_path):
    src = tmp_path / "theirs.csv"
    src.write_text(
        "encoder,intermediate,target,language,seed,score\nxlmr,none,xnli,de,1,0.7\nxlmr,mnli,xnli,de,1,0.75\n"
    )
    frame = import_csv(src, scale=100)
    assert list(frame.score) == [70.0, 75.0]
    assert list(frame.intermediate_family) == ["none", "nli"] and set(frame.metric) == {"accuracy"}
    assert main(["import", str(src), "--out", str(tmp_path / "scores.csv"), "--scale", "100"]) == 0
    assert len(read_scores(tmp_path / "scores.csv")) == 2


@pytest.mark.parametrize(
    "text, message",
    [
        ("encoder,intermediate,target,language,seed\nx,none,xnli,de,1\n", "missing column"),
        ("encoder,intermediate,target,language,seed,score\nx,none,xnli,de,1,abc\n", "must be numeric"),
        (
            "encoder,intermediate,target,language,seed,score\nx,none,xnli,de,1,5\nx,none,xnli,de,1,6\n",
            "repeat",
        ),
        ("encoder,intermediate,target,language,seed,score\nx,mytask,xnli,de,1,5\n", "not in the registry"),
    ],
)
def test_bad_csv_is_refused_and_nothing_written(tmp_path, capsys, text, message):
    src = tmp_path / "theirs.csv"
    src.write_text(text)
    assert main(["import", str(src), "--out", str(tmp_path / "out.csv")]) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "out.csv").exists()


def test_jiant_folders(tmp_path):
    for inter, value in (("none", 0.6), ("mnli", 0.65)):
        folder = tmp_path / "xlmr" / inter / "xnli" / "seed1"
        folder.mkdir(parents=True)
        (folder / "val_metrics.json").write_text(
            json.dumps(
                {
                    "aggregated": value,
                    "xnli_de": {"loss": 1.0, "metrics": {"major": value, "minor": {"acc": value}}},
                    "xnli_fr": {
                        "loss": 1.0,
                        "metrics": {"major": value - 0.1, "minor": {"acc": value - 0.1}},
                    },
                }
            )
        )
    frame = import_jiant(tmp_path, pattern="{encoder}/{intermediate}/{target}/seed{seed}")
    # jiant's major is its acc for classification: one 'accuracy' row per cell, as xitt's runs write
    assert len(frame) == 4 and frame.primary.all() and set(frame.metric) == {"accuracy"}
    de = frame[(frame.language == "de") & frame.primary].set_index("intermediate").score
    assert de["mnli"] == pytest.approx(65.0) and de["none"] == pytest.approx(60.0)


DATA = Path(__file__).parent / "data" / "jiant"  # layouts cited in tests/data/jiant/README.md


def test_jiant_2x_folders_as_jiant_writes_them():
    # nyu-mll/jiant daa5a258, jiant/proj/main/components/evaluate.py write_val_results
    frame = import_jiant(DATA / "v2", pattern="{encoder}/{intermediate}/{target}/seed{seed}")
    major = frame[frame.primary].set_index(["intermediate", "language"]).score
    assert major[("mnli", "de")] == pytest.approx(75.14) and major[("none", "fr")] == pytest.approx(69.92)
    # squad-style QA metrics are percentages in jiant 2.x; the 'total' count is not a score;
    # major = (f1 + exact) / 2 (XlingQAEvaluationScheme) is xitt's em_f1, the primary column
    xquad = frame[frame.target == "xquad"].set_index("metric")
    assert dict(xquad.score) == pytest.approx({"em_f1": 66.25, "em": 56.5, "f1": 76.0})
    assert xquad.primary.to_dict() == {"em_f1": True, "em": False, "f1": False}


def test_jiant_1x_results_tsv_needs_a_choice_for_the_rerun(tmp_path, capsys):
    # nyu-mll/jiant v1.3.2, jiant/evaluate.py write_results: run mnli-xnli-de-s1 appended twice
    pattern = "{encoder}/{intermediate}-{target}-{language}-s{seed}"
    with pytest.raises(SchemaError) as err:
        import_jiant(DATA / "v1", pattern=pattern)
    assert "74.1 (" in str(err.value) and "75.3 (" in str(err.value) and "results.tsv:3" in str(err.value)
    last = import_jiant(DATA / "v1", pattern=pattern, on_duplicate="last").set_index("intermediate")
    assert last.score["mnli"] == pytest.approx(75.3) and last.score["none"] == pytest.approx(70.2)
    assert list(last.metric) == ["accuracy", "accuracy"] and last.primary.all()
    mean = import_jiant(DATA / "v1", pattern=pattern, on_duplicate="mean").set_index("intermediate")
    assert mean.score["mnli"] == pytest.approx(74.7)
    argv = ["import", str(DATA / "v1"), "--format", "jiant", "--pattern", pattern, "--out"]
    assert main([*argv, str(tmp_path / "a.csv")]) == 2
    assert "--on-duplicate last" in capsys.readouterr().err and not (tmp_path / "a.csv").exists()
    assert main([*argv, str(tmp_path / "a.csv"), "--on-duplicate", "mean"]) == 0
    assert read_scores(tmp_path / "a.csv").score.max() == pytest.approx(74.7)


def test_csv_duplicates_are_listed_with_their_lines_then_resolved_on_request(tmp_path, capsys):
    src = tmp_path / "theirs.csv"
    src.write_text(
        "encoder,intermediate,target,language,seed,score\n"
        "x,none,xnli,de,1,70\nx,none,xnli,fr,1,60\nx,none,xnli,de,1,72\nx,none,xnli,de,1,77\n"
    )
    assert main(["import", str(src), "--out", str(tmp_path / "o.csv")]) == 2
    err = capsys.readouterr().err
    assert f"70 ({src}:2), 72 ({src}:4), 77 ({src}:5)" in err and "fr" not in err
    assert import_csv(src, on_duplicate="last").score.tolist() == [60.0, 77.0]
    assert import_csv(src, on_duplicate="mean").score.tolist() == pytest.approx([60.0, 73.0])
    assert import_csv(src, on_duplicate="mean", scale=0.5).score.tolist() == pytest.approx([30.0, 36.5])


def test_a_non_number_among_duplicates_is_named_before_the_duplicates(tmp_path):
    src = tmp_path / "theirs.csv"
    src.write_text(
        "encoder,intermediate,target,language,seed,score\nx,none,xnli,de,1,7o\nx,none,xnli,de,1,72\n"
    )
    with pytest.raises(SchemaError, match="must be numeric"):
        import_csv(src, on_duplicate="mean")


XTREME = Path(__file__).parent / "data" / "xtreme"  # layout and readers cited in its README.md


def test_xtreme_submission_scored_with_the_official_readers_tolerance(tmp_path):
    # google-research/xtreme 838c13b6, evaluate.py read_label/read_tag/read_squad, third_party/evaluate_squad.py
    frame = import_xtreme(
        XTREME / "predictions", labels=XTREME / "labels", pattern="{encoder}/{intermediate}/seed{seed}"
    )
    got = frame.set_index(["target", "metric"]).score
    assert got[("xnli", "accuracy")] == pytest.approx(75.0)
    assert got[("panx", "f1")] == pytest.approx(200 / 3) and got[("panx", "recall")] == pytest.approx(50.0)
    assert got[("xquad", "em")] == pytest.approx(100 / 3) and got[("xquad", "f1")] == pytest.approx(500 / 9)
    assert got[("xquad", "em_f1")] == pytest.approx(400 / 9)
    assert set(frame[frame.primary].metric) == {"accuracy", "f1", "em_f1"} and set(frame.language) == {"de"}
    argv = ["import", str(XTREME / "predictions"), "--format", "xtreme", "--out", str(tmp_path / "s.csv")]
    assert main([*argv, "--labels", str(XTREME / "labels")]) == 0
    assert len(read_scores(tmp_path / "s.csv")) == len(frame)


def test_xtreme_submission_with_a_missing_line_is_one_message(tmp_path, capsys):
    import shutil

    shutil.copytree(XTREME, tmp_path / "x")
    pred = tmp_path / "x" / "predictions" / "xlmr" / "mnli" / "seed1" / "xnli" / "test-de.tsv"
    pred.write_text("entailment\nneutral\n")
    argv = [
        "import",
        str(tmp_path / "x" / "predictions"),
        "--format",
        "xtreme",
        "--out",
        str(tmp_path / "s.csv"),
    ]
    assert main([*argv, "--labels", str(tmp_path / "x" / "labels")]) == 2
    assert f"{pred} has 2 lines but" in capsys.readouterr().err
    assert main(argv) == 2 and "needs --labels" in capsys.readouterr().err
    assert not (tmp_path / "s.csv").exists()


@pytest.mark.parametrize(
    ("path", "content", "message"),
    [
        ("predictions/xlmr/mnli/seed1/xcopa/test-et.tsv", "1\n", "not 'xcopa'"),
        ("predictions/xlmr/mnli/seed1/xnli/test-fr.tsv", "neutral\n", "has no label file"),
        ("predictions/xlmr/mnli/seed1/xquad/test-de.json", '["Paris"]', "not {question id: answer text}"),
        ("predictions/xlmr/mnli/seed1/xquad/test-de.json", "{'q1': 1", "is not valid JSON"),
        ("labels/xquad/test-de.json", '{"data": [{"qas": []}]}', "not a SQuAD-format gold file"),
        ("predictions/xlmr/mnli/s1/xnli/test-de.tsv", "neutral\n", "does not match --pattern"),
    ],
)
def test_xtreme_folders_that_xtreme_would_not_score(tmp_path, capsys, path, content, message):
    import shutil

    shutil.copytree(XTREME, tmp_path / "x")
    (tmp_path / "x" / path).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / "x" / path).write_text(content)
    argv = [
        "import",
        str(tmp_path / "x" / "predictions"),
        "--format",
        "xtreme",
        "--out",
        str(tmp_path / "s.csv"),
    ]
    assert main([*argv, "--labels", str(tmp_path / "x" / "labels")]) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "s.csv").exists()


def test_jiant_1x_lines_that_jiant_does_not_write(tmp_path, capsys):
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "results.tsv").write_text("mnli-xnli-de-s1 xnli_accuracy 0.7\n")
    argv = [
        "import",
        str(tmp_path),
        "--format",
        "jiant",
        "--pattern",
        "{encoder}/{intermediate}-{target}-{language}-s{seed}",
    ]
    assert main([*argv, "--out", str(tmp_path / "s.csv")]) == 2
    assert "results.tsv:1" in capsys.readouterr().err


def test_a_single_submission_folder_is_told_to_name_its_run(capsys, tmp_path):
    run = XTREME / "predictions" / "xlmr" / "mnli" / "seed1"
    argv = [
        "import",
        str(run),
        "--format",
        "xtreme",
        "--labels",
        str(XTREME / "labels"),
        "--out",
        str(tmp_path / "s.csv"),
    ]
    assert main(argv) == 2 and "is itself one submission" in capsys.readouterr().err


def test_a_rescored_xtreme_submission_needs_a_choice(tmp_path):
    import shutil

    run = XTREME / "predictions" / "xlmr" / "mnli" / "seed1"
    for attempt in ("a1", "a2"):
        shutil.copytree(run, tmp_path / "p" / "xlmr" / "mnli" / attempt / "seed1")
    (tmp_path / "p" / "xlmr" / "mnli" / "a2" / "seed1" / "xnli" / "test-de.tsv").write_text(
        "entailment\nx\nx\nneutral\n"
    )
    kwargs = {"labels": XTREME / "labels", "pattern": "{encoder}/{intermediate}/{attempt}/seed{seed}"}
    with pytest.raises(SchemaError, match=r"xlmr/mnli/xnli/de/1/accuracy: 75 \(.*a1.*\), 50 \(.*a2"):
        import_xtreme(tmp_path / "p", **kwargs)
    mean = import_xtreme(tmp_path / "p", on_duplicate="mean", **kwargs).set_index(["target", "metric"]).score
    assert mean[("xnli", "accuracy")] == pytest.approx(62.5) and mean[("panx", "f1")] == pytest.approx(
        200 / 3
    )


def test_jiant_1x_runs_without_the_targets_metric_are_refused(tmp_path):
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "results.tsv").write_text("mnli-xnli-de-s1\tmicro_avg: 0.700, xnli_mcc: 0.400\n")
    with pytest.raises(
        SchemaError, match=r"results.tsv:1: xnli's metrics are \['mcc'\], none of them xitt's accuracy"
    ):
        import_jiant(tmp_path, pattern="{encoder}/{intermediate}-{target}-{language}-s{seed}")
