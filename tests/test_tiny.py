"""xitt.tiny: a deterministic word-level tokenizer and a random tiny BERT."""

from importlib.util import find_spec

import pytest

from xitt.synth.tiny import SPECIAL_TOKENS, build_encoder, build_tokenizer

# torch is imported inside the tests, never at collection (test_cli checks that `xitt run` errors load no torch).
pytestmark = pytest.mark.skipif(find_spec("torch") is None, reason="needs torch")

TEXTS = ["The cat sat on the mat.", "the dog sat", "Le chat, est là!"]


def test_vocab_is_specials_then_count_then_token():
    tok = build_tokenizer(TEXTS)
    vocab = tok.convert_ids_to_tokens(list(range(len(tok))))
    assert vocab[:5] == list(SPECIAL_TOKENS)
    assert vocab[5:8] == ["the", "sat", "!"]  # 'the' x3, 'sat' x2, then count-1 tokens sorted
    assert vocab[8:] == sorted(vocab[8:])


def test_same_texts_give_the_same_tokenizer_and_limits_apply():
    a, b = build_tokenizer(TEXTS), build_tokenizer(list(reversed(TEXTS)))
    assert a.backend_tokenizer.to_str() == b.backend_tokenizer.to_str()
    assert len(build_tokenizer(TEXTS, min_count=2)) == len(SPECIAL_TOKENS) + 2
    assert len(build_tokenizer(TEXTS, max_vocab=7)) == 7
    with pytest.raises(ValueError, match="max_vocab"):
        build_tokenizer(TEXTS, max_vocab=3)


def test_pairs_offsets_word_and_sequence_ids():
    tok = build_tokenizer(TEXTS)
    enc = tok("The cat sat.", "le chat", return_offsets_mapping=True)
    assert tok.convert_ids_to_tokens(enc.input_ids) == [
        "[CLS]",
        "the",
        "cat",
        "sat",
        ".",
        "[SEP]",
        "le",
        "chat",
        "[SEP]",
    ]
    assert enc.token_type_ids == [0, 0, 0, 0, 0, 0, 1, 1, 1]
    assert enc.sequence_ids() == [None, 0, 0, 0, 0, None, 1, 1, None]
    assert enc.word_ids()[1:5] == [0, 1, 2, 3]
    assert enc.offset_mapping[2] == (4, 7)
    assert tok("zebra").input_ids == [2, 1, 3]  # unknown word -> [UNK]


def test_encoder_loads_with_auto_classes_and_is_seeded(tmp_path):
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok = build_tokenizer(TEXTS)
    state = torch.random.get_rng_state()
    a = build_encoder(tok, tmp_path / "a", seed=3)
    assert torch.equal(state, torch.random.get_rng_state())  # caller's RNG untouched
    build_encoder(tok, tmp_path / "b", seed=3)
    build_encoder(tok, tmp_path / "c", seed=4)
    ma, mb, mc = (AutoModel.from_pretrained(tmp_path / n) for n in "abc")
    assert ma.config.hidden_size == 32 and ma.config.num_hidden_layers == 2
    assert torch.equal(ma.embeddings.word_embeddings.weight, mb.embeddings.word_embeddings.weight)
    assert not torch.equal(ma.embeddings.word_embeddings.weight, mc.embeddings.word_embeddings.weight)
    assert AutoTokenizer.from_pretrained(a)("the cat").input_ids == tok("the cat").input_ids
    with pytest.raises(ValueError, match="divisible"):
        build_encoder(tok, tmp_path / "d", hidden=30, heads=4)
