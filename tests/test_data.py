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


def test_hub_sources_fill_placeholders(reg):
    assert xdata.hub_sources(reg.get("xnli"), "test", "de") == [
        {
            "hub": "google/xtreme",
            "config": "XNLI",
            "split": "test",
            "filter": {"language": "de"},
            "fields": {},
        }
    ]
    assert xdata.hub_sources(reg.get("xnli"), "train", "en")[0]["fields"]["sentence1"] == "premise"
    assert xdata.hub_sources(reg.get("xnli"), "train", "en")[0]["hub"] == "nyu-mll/glue"
    assert xdata.hub_sources(reg.get("udpos"), "test", "de")[0]["config"] == "udpos.German"
    assert xdata.hub_sources(reg.get("tatoeba"), "test", "de")[0]["config"] == "tatoeba.deu"
    assert len(xdata.hub_sources(reg.get("anli"), "train", "en")) == 5
    assert xdata.hub_sources(reg.get("ccg"), "train", "en") == []


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


def test_offline_without_local_copy_names_task_hub_and_flag(reg, tmp_path):
    needs = [
        (reg.get("xnli"), s, lang)
        for s, lang in xdata.needed_splits(reg.get("xnli"), ["en", "de"], as_target=True)
    ]
    with pytest.raises(xdata.DataError) as err:
        xdata.check_available(needs, tmp_path, offline=True)
    text = str(err.value)
    assert "xnli" in text and "google/xtreme" in text and "nyu-mll/glue" in text
    assert "--data-dir" in text and "XITT_DATA_DIR" in text and "4 data split(s)" in text
    with pytest.raises(xdata.DataError, match="ccg.*local data only"):
        xdata.check_available([(reg.get("ccg"), "train", "en")], None, offline=False)
    xdata.check_available(needs, tmp_path, offline=False)  # online: the hub will be tried


def test_local_copy_wins_and_data_dir_precedence(reg, tiny_data, monkeypatch, tmp_path):
    task = reg.get("tiny_cls")
    xdata.check_available([(task, "test", "de")], tiny_data, offline=True)
    monkeypatch.setenv("XITT_DATA_DIR", str(tmp_path))
    assert xdata.resolve_data_dir(None, "grid") == tmp_path.resolve()
    assert xdata.resolve_data_dir(str(tiny_data), "grid") == tiny_data.resolve()
    monkeypatch.delenv("XITT_DATA_DIR")
    assert xdata.resolve_data_dir(None, None) is None


def test_offline_flags(monkeypatch):
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "XITT_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    assert xdata.set_offline_flags() is False
    monkeypatch.setenv("XITT_OFFLINE", "1")
    assert xdata.set_offline_flags() is True
    import os

    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["HF_DATASETS_OFFLINE"] == "1"


def test_load_hub_with_a_fake_hub(reg, monkeypatch):
    """The hub path end to end (filters, per-source fields, ClassLabel names) without a network."""
    import datasets

    tables = {
        ("nyu-mll/glue", "mnli", "train"): datasets.Dataset.from_dict(
            {"premise": ["a", "b"], "hypothesis": ["c", "d"], "label": [2, -1]}
        ),
        ("google/xtreme", "XNLI", "test"): datasets.Dataset.from_dict(
            {
                "language": ["de", "fr"],
                "sentence1": ["x", "y"],
                "sentence2": ["z", "w"],
                "gold_label": ["neutral", "entailment"],
            }
        ),
        ("google/xtreme", "PAN-X.de", "test"): datasets.Dataset.from_dict(
            {"tokens": [["Anna", "lacht"]], "ner_tags": [[1, 0]]},
            features=datasets.Features(
                {
                    "tokens": datasets.Sequence(datasets.Value("string")),
                    "ner_tags": datasets.Sequence(datasets.ClassLabel(names=["O", "B-PER"])),
                }
            ),
        ),
    }
    calls = []

    def fake_load(hub, config, split, cache_dir=None):
        calls.append((hub, config, split))
        if (hub, config, split) not in tables:
            raise ConnectionError("offline")
        return tables[(hub, config, split)]

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    train, fp = xdata.load_hub(reg.get("xnli"), "train", "en")
    assert train == [{"text": "a", "text_pair": "c", "label": 2}] and len(fp) == 12  # label -1 dropped
    test, _ = xdata.load_hub(reg.get("xnli"), "test", "de")
    assert test == [{"text": "x", "text_pair": "z", "label": 1}]  # filtered to de
    assert xdata.load_hub(reg.get("panx"), "test", "de")[0] == [
        {"tokens": ["Anna", "lacht"], "tags": ["B-PER", "O"]}
    ]
    with pytest.raises(xdata.DataError, match="pawsx.*google/xtreme.*ConnectionError.*--data-dir"):
        xdata.load_hub(reg.get("pawsx"), "test", "de")
