"""xitt.pretrain: BERT masking, deterministic MLM pretraining, and that the pretrained tiny encoder
transfers across the synthetic languages better than a random one of the same size."""

import pytest

DOCS = [
    "Anna owns the red car .",
    "Boris lives in Oslo . Anna meets Boris .",
    "Clara sees the big dog in Lima .",
] * 8


def _tokenizer():
    from xitt.synth.tiny import build_tokenizer

    return build_tokenizer(DOCS)


def test_masking_skips_specials_masks_about_15_percent_and_is_seeded():
    import torch

    from xitt.synth.pretrain import mask_tokens

    ids = torch.randint(5, 50, (64, 40))
    ids[:, 0], ids[:, -1] = 2, 3
    special = torch.isin(ids, torch.tensor([0, 2, 3]))
    a, labels = mask_tokens(ids, special, 50, torch.Generator().manual_seed(0), mask_id=4)
    b, _ = mask_tokens(ids, special, 50, torch.Generator().manual_seed(0), mask_id=4)
    assert torch.equal(a, b)
    chosen = labels != -100
    assert not chosen[special].any()
    assert 0.12 < chosen.float().mean().item() < 0.18
    assert torch.equal(labels[chosen], ids[chosen])
    assert (a[chosen] == 4).float().mean().item() == pytest.approx(0.8, abs=0.06)
    assert torch.equal(a[~chosen], ids[~chosen])


def test_pretraining_is_deterministic_learns_and_saves_a_loadable_encoder(tmp_path):
    import torch
    from transformers import AutoModel, AutoTokenizer

    from xitt.synth.pretrain import pretrain_encoder

    torch.set_num_threads(1)
    kw = dict(
        hidden=16,
        layers=1,
        heads=2,
        intermediate=32,
        max_position=32,
        max_length=32,
        epochs=30,
        batch_size=8,
        lr=5e-3,
        seed=0,
    )
    lines = []
    info = pretrain_encoder(DOCS, _tokenizer(), tmp_path / "a", log=lines.append, **kw)
    pretrain_encoder(DOCS, _tokenizer(), tmp_path / "b", **kw)
    assert len(lines) == 10 and lines[-1].startswith("synth: pretraining step 90/90 (100%)")  # progress
    assert info["loss_last"] < info["loss_first"] - 1.0
    assert info["steps"] == 90 and info["n_documents"] == len(DOCS)
    a, b = AutoModel.from_pretrained(tmp_path / "a"), AutoModel.from_pretrained(tmp_path / "b")
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name
    assert "pooler.dense.weight" in a.state_dict()
    assert AutoTokenizer.from_pretrained(tmp_path / "a")("Anna owns").input_ids[1] != 1  # not [UNK]
    with pytest.raises(ValueError, match="at least one document"):
        pretrain_encoder([], _tokenizer(), tmp_path / "c", **kw)
    with pytest.raises(ValueError, match="max_length"):
        pretrain_encoder(DOCS, _tokenizer(), tmp_path / "c", **{**kw, "max_length": 64})


@pytest.mark.slow
def test_pretrained_encoder_transfers_better_than_a_random_one(tmp_path):
    """Zero-shot XQuAD-like QA: the MLM-pretrained encoder beats a randomly initialised encoder of the
    same size (same vocabulary) in at least one synthetic language."""
    import torch
    from transformers import AutoTokenizer

    from xitt.grid.spec import expand_grid, parse_grid
    from xitt.synth.benchmark import ENCODER, main_synth
    from xitt.synth.tiny import build_encoder
    from xitt.train import chain as train

    torch.set_num_threads(1)
    main_synth(tmp_path, n_languages=2, size="small", log=lambda *_: None)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "encoder")
    random_encoder = build_encoder(tokenizer, tmp_path / "random", seed=0, **ENCODER)
    scores = {}
    for name, path in (("pretrained", str(tmp_path / "encoder")), ("random", str(random_encoder))):
        grid = parse_grid(
            {
                "encoders": [{"name": name, "path": path}],
                "intermediates": ["none"],
                "targets": ["synth_xquad"],
                "languages": {"synth_xquad": ["en", "qaa", "qab"]},
                "seeds": [1],
                "data_dir": str(tmp_path / "data"),
            }
        )
        run = expand_grid(grid)[1][0]
        out = train.run_target(run, path, progress=False)
        scores[name] = {lang: s[out.primary_metric] for lang, s in out.scores.items()}
    gains = {lang: scores["pretrained"][lang] - scores["random"][lang] for lang in ("qaa", "qab")}
    assert max(gains.values()) > 0, scores
