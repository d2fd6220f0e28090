import pandas as pd
import pytest

from xitt.schema import (
    SCORE_COLUMNS,
    SchemaError,
    atomic_write_bytes,
    atomic_write_text,
    read_scores,
    validate_scores,
    write_scores,
)


def rows(n=2, **over):
    base = dict(
        run_id="r1",
        encoder="mbert",
        intermediate="mnli",
        intermediate_family="nli",
        target="xnli",
        target_family="nli",
        language="de",
        seed=1,
        metric="accuracy",
        score=70.5,
        primary=True,
        task_version="1",
    )
    out = [dict(base, language=lang) for lang in ["de", "fr", "es"][:n]]
    for r in out:
        r.update(over)
    return pd.DataFrame(out)


def test_valid_frame_gets_canonical_types_and_order():
    frame = rows().astype(str)[list(reversed(SCORE_COLUMNS))]
    out = validate_scores(frame)
    assert list(out.columns) == list(SCORE_COLUMNS)
    assert out["seed"].dtype.kind == "i" and out["score"].dtype.kind == "f" and out["primary"].dtype == bool


def test_missing_columns_are_named():
    with pytest.raises(SchemaError, match=r"missing column\(s\) \['score'\]"):
        validate_scores(rows().drop(columns="score"))


def test_non_numeric_scores_are_listed():
    frame = rows()
    frame["score"] = frame["score"].astype(object)
    frame.loc[1, "score"] = "n/a"
    with pytest.raises(SchemaError, match=r"'score' must be numeric; rows \[1\] hold \['n/a'\]"):
        validate_scores(frame)


def test_duplicate_cells_are_listed():
    frame = pd.concat([rows(1), rows(1, run_id="r2")])
    with pytest.raises(SchemaError, match="repeat a .* cell.*'language': 'de'"):
        validate_scores(frame)


def test_scale_and_baseline_are_checked():
    with pytest.raises(SchemaError, match="0-100 scale"):
        validate_scores(rows(score=0.7 * 200))
    with pytest.raises(SchemaError, match="literal 'none'"):
        validate_scores(rows(intermediate=""))


def test_roundtrip_is_atomic_and_sorted(tmp_path):
    path = write_scores(rows(3).iloc[::-1], tmp_path / "scores.csv")
    again = read_scores(path)
    assert list(again["language"]) == ["de", "es", "fr"]
    assert not list(tmp_path.glob(".*tmp"))


def test_unreadable_scores_file(tmp_path):
    with pytest.raises(SchemaError, match="xitt collect"):
        read_scores(tmp_path / "missing.csv")


def test_atomic_write_keeps_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "f.txt"
    atomic_write_text(path, "old")
    with pytest.raises(TypeError):  # fails inside the write: the temp file must go, the old file stay
        atomic_write_bytes(path, "text where bytes belong")
    assert path.read_text() == "old" and len(list(tmp_path.iterdir())) == 1


def test_atomic_writes_replace_a_symlink_instead_of_writing_through_it(tmp_path):
    """A symlinked report.html once overwrote the link's target."""
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    link = tmp_path / "report.html"
    link.symlink_to(target)
    atomic_write_text(link, "<html>")
    assert target.read_text() == "keep me" and not link.is_symlink() and link.read_text() == "<html>"
