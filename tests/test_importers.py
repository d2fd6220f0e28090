import json

import pytest

from xitt.cli import main
from xitt.importers import import_csv, import_jiant
from xitt.schema import read_scores


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
    assert len(frame) == 8 and frame.primary.sum() == 4
    de = frame[(frame.language == "de") & frame.primary].set_index("intermediate").score
    assert de["mnli"] == pytest.approx(65.0) and de["none"] == pytest.approx(60.0)
