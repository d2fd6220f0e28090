"""The shipped real grid (runs/nli-vs-qa) through `xitt prepare` and `xitt run` against the stand-in hub.

One seed, a tiny XLM-R-architecture encoder with an XLM-R-style (sentencepiece Unigram, Metaspace)
tokenizer built here, a few examples per task; every run must finish and no run may call the hub.
"""

import shutil
from pathlib import Path

import pytest
import xtremer_files
from hub_standin import WORDS, StandInHub

from xitt.cli import main
from xitt.run.store import read_result
from xitt.tasks import SUITES, registry

GRID = Path(__file__).parent.parent / "runs" / "nli-vs-qa" / "grid.yaml"
SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


def build_tiny_xlmr(folder: Path) -> Path:
    """An XLM-R encoder (hidden 32, 2 layers) with a Unigram/Metaspace tokenizer over the test words."""
    import torch
    from tokenizers import Tokenizer, decoders, pre_tokenizers, processors
    from tokenizers.models import Unigram
    from transformers import XLMRobertaConfig, XLMRobertaModel, XLMRobertaTokenizerFast

    words = sorted(set(WORDS) | set(xtremer_files.WORDS) | {"what", "is", "was", "went", "to", "a", "place"})
    pieces = [(s, 0.0) for s in SPECIALS] + [("▁" + w, -2.0) for w in words]
    pieces += [(c, -8.0) for c in sorted({c for w in words for c in w} | set(".?,()\\/[]_-0123456789"))]
    pieces += [("▁", -5.0)]
    core = Tokenizer(Unigram(pieces, unk_id=3))
    core.pre_tokenizer = pre_tokenizers.Metaspace()
    core.decoder = decoders.Metaspace()
    core.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    tokenizer = XLMRobertaTokenizerFast(
        tokenizer_object=core,
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
    )
    torch.manual_seed(0)
    config = XLMRobertaConfig(
        vocab_size=len(pieces),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=130,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    )
    XLMRobertaModel(config, add_pooling_layer=False).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


SETS = [
    "seeds=[1]",
    "executor.kind=local",
    "train.epochs=1",
    "train.max_train_examples=8",
    "train.max_eval_examples=8",
    "train.max_length=64",
    "train.doc_stride=16",
    "train.batch_size=8",
    "train.eval_batch_size=16",
    "train.num_threads=1",
    "train.precision=fp32",
]


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["phang2020", "xtreme-r"])  # the shipped grid's, and XTREME-R's
def test_the_real_grid_prepares_and_every_run_finishes(tmp_path, monkeypatch, capsys, recipe):
    for name in ("XITT_OFFLINE", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    encoder = build_tiny_xlmr(tmp_path / "tiny-xlmr")
    sets = [f"encoders=[{{name: tiny-xlmr, path: {encoder}}}]", f"recipe={recipe}", *SETS]
    args = [x for s in sets for x in ("--set", s)]
    data = tmp_path / "cache"
    xtremer_files.convert_all(data, tmp_path / "downloads", registry())
    exp = tmp_path / "runs" / "nli-vs-qa"
    exp.mkdir(parents=True)
    shutil.copy(GRID, exp / "grid.yaml")
    hub = StandInHub(rows=3).install(monkeypatch)

    assert main(["prepare", str(exp), "--data-dir", str(data), *args]) == 0
    loads = list(hub.calls)
    assert len(loads) == len(set(loads)) > 150  # one load per (dataset, config, split, revision)
    capsys.readouterr()

    assert main(["run", str(exp), "--data-dir", str(data), "--quiet", *args]) == 0
    assert hub.calls == loads  # the runs read only the prepared copies
    assert main(["status", str(exp), *args]) == 0
    out = capsys.readouterr().out
    assert "100 runs: 100 done, 0 running, 0 failed" in out, out
    # XQuAD and MLQA share one SQuAD training per intermediate (and seed): 10 trainings, not 20
    assert "10 shared target trainings: 10 done" in out, out
    assert len(list(exp.glob("trainings/*/training.json"))) == 10
    results = [read_result(p.parent) for p in exp.glob("*/result.json")]
    by_target = {r.spec["target"]: r for r in results if r.spec["intermediate"] == "anli"}
    assert set(by_target) == set(SUITES["xtreme-r"]) and len(results) == 100
    assert len(by_target["panx"].scores) == 48 and len(by_target["tatoeba"].scores) == 41
    assert {"lt", "pl", "ro", "uk", "wo"} <= set(by_target["udpos"].scores) and "ro" in by_target[
        "xquad"
    ].scores
    assert by_target["xquad"].extra["training_id"] == by_target["mlqa"].extra["training_id"]
    assert "squad_v1/train-en" in by_target["mlqa"].data_fingerprints
    tydiqa = by_target["tydiqa"]
    assert set(tydiqa.scores) == {"en", "ar", "bn", "fi", "id", "ko", "ru", "sw", "te"}
    assert tydiqa.data["tydiqa/test-bn"]["sources"][0]["config"] == "tydiqa"
    assert tydiqa.data["anli/train-en"]["rows"] > 0  # the stage's entries travel into the run's result
    assert by_target["xnli"].extra["steps"] > 0
    if recipe == "xtreme-r":  # SIQA before COPA; LAReQA ranked against the shared pool
        assert "siqa/train-en" in by_target["xcopa"].data_fingerprints
        assert any(k.startswith("lareqa/xquad-r-") for k in by_target["lareqa"].data_fingerprints)
        # dual encoders: LAReQA on SQuAD v1.1, Mewsli-X on English Wikipedia pairs, one entity pool
        assert "squad_v1/train-en" in by_target["lareqa"].data_fingerprints
        assert by_target["lareqa"].extra["steps"] > 0 and by_target["mewslix"].extra["steps"] > 0
        assert any(k.startswith("mewslix/shared-") for k in by_target["mewslix"].data_fingerprints)
    else:  # phang2020: no dual encoder, one pool per language
        assert not by_target["mewslix"].extra["steps"]
        assert "mewslix/test-de" in by_target["mewslix"].data_fingerprints
