"""xitt.data: local XTREME-format readers, hub source resolution, the offline error."""

import pytest

from xitt.data import loaders as xdata
from xitt.tasks import registry


@pytest.fixture
def reg():
    return registry()


def test_every_local_kind_reads(reg, tiny_data):
    cls, _ = xdata.load_split(reg.get("tiny_cls"), "train", "en", tiny_data)
    assert len(cls) == 160 and set(cls[0]) == {"text", "label"} and cls[0]["label"] in (0, 1)
    nli, _ = xdata.load_split(reg.get("tiny_nli"), "dev", "en", tiny_data)
    assert set(nli[0]) == {"text", "text_pair", "label"}
    ner, _ = xdata.load_split(reg.get("tiny_ner"), "test", "de", tiny_data)
    assert len(ner) == 40 and len(ner[0]["tokens"]) == len(ner[0]["tags"]) and "B-PER" in ner[0]["tags"]
    qa, _ = xdata.load_split(reg.get("tiny_qa"), "test", "en", tiny_data)
    ex = qa[0]
    start = ex["answers"][0]["answer_start"]
    assert ex["context"][start : start + len(ex["answers"][0]["text"])] == ex["answers"][0]["text"]
    mc, _ = xdata.load_split(reg.get("tiny_mc"), "dev", "en", tiny_data)
    assert len(mc[0]["choices"]) == 3 and 0 <= mc[0]["label"] < 3
    tat, fp = xdata.load_split(reg.get("tiny_tatoeba"), "test", "de", tiny_data)
    assert set(tat[0]) == {"src", "tgt"} and len(fp) == 12


def test_tsv_keeps_quotes_and_checks_labels_and_columns(reg, tmp_path):
    task = reg.get("tiny_nli")
    path = tmp_path / "train-en.tsv"
    path.write_text('he said "hi\tshe said "hi" too\tentailment\nx\ty\t2\n', encoding="utf-8")
    rows = xdata.read_local(task, path)
    assert rows[0]["text"] == 'he said "hi' and rows[0]["text_pair"] == 'she said "hi" too'
    assert [r["label"] for r in rows] == [0, 2]  # label names and indices both work
    path.write_text("a\tb\tmaybe\n", encoding="utf-8")
    with pytest.raises(xdata.DataError, match="maybe.*entailment"):
        xdata.read_local(task, path)
    path.write_text("a\tentailment\n", encoding="utf-8")
    with pytest.raises(xdata.DataError, match="3 tab-separated columns"):
        xdata.read_local(task, path)


def test_tagging_reader_splits_on_blank_lines(reg, tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("anna\tB-PER\nmet\tO\n\n\nbob\tB-PER\n", encoding="utf-8")
    assert xdata.read_local(reg.get("tiny_ner"), path) == [
        {"tokens": ["anna", "met"], "tags": ["B-PER", "O"]},
        {"tokens": ["bob"], "tags": ["B-PER"]},
    ]


def test_hub_rows_map_to_examples(reg):
    csqa = reg.get("commonsenseqa")
    row = {"question": "q?", "answerKey": "B", "choices": {"label": ["A", "B"], "text": ["x", "y"]}}
    assert xdata._hub_example(csqa, row, None) == {
        "context": "",
        "question": "q?",
        "choices": ["x", "y"],
        "label": 1,
    }
    xcopa = reg.get("xcopa")
    row = {"premise": "p", "question": "cause", "choice1": "a", "choice2": "b", "label": 1}
    assert xdata._hub_example(xcopa, row, None)["choices"] == ["a", "b"]
    mnli = reg.get("mnli")
    assert xdata._hub_example(mnli, {"premise": "a", "hypothesis": "b", "label": -1}, None) is None
    xnli = reg.get("xnli")
    assert (
        xdata._hub_example(xnli, {"sentence1": "a", "sentence2": "b", "gold_label": "neutral"}, None)["label"]
        == 1
    )
    panx = reg.get("panx")
    out = xdata._hub_example(panx, {"tokens": ["a", "b"], "ner_tags": [1, 0]}, ["O", "B-PER"])
    assert out == {"tokens": ["a", "b"], "tags": ["B-PER", "O"]}


def test_data_dir_precedence_and_default(monkeypatch, tmp_path, tiny_data):
    monkeypatch.setenv("XITT_DATA_DIR", str(tmp_path))
    assert xdata.resolve_data_dir(None, "grid") == tmp_path.resolve()
    assert xdata.resolve_data_dir(str(tiny_data), "grid") == tiny_data.resolve()
    monkeypatch.delenv("XITT_DATA_DIR")
    assert xdata.resolve_data_dir(None, None) == (xdata.Path.home() / ".cache" / "xitt").resolve()


def test_a_split_that_is_neither_prepared_nor_local_names_the_fix(reg, tmp_path):
    with pytest.raises(xdata.DataError, match="xnli.*test-de.*not prepared.*xitt prepare"):
        xdata.load_split(reg.get("xnli"), "test", "de", tmp_path)


def test_offline_flags(monkeypatch):
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "XITT_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    assert xdata.set_offline_flags() is False
    monkeypatch.setenv("XITT_OFFLINE", "1")
    assert xdata.set_offline_flags() is True
    import os

    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["HF_DATASETS_OFFLINE"] == "1"
