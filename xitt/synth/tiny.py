"""Tiny, deterministic encoders for tests and the offline demo.

The ``tokenizers`` WordPiece trainer is not deterministic across processes (an open upstream bug),
so the vocabulary here is a plain word-level one built from sorted counts: the same texts give
the same ``tokenizer.json`` byte for byte, in any process.

    tok = build_tokenizer(["the cat sat .", "le chat"])          # [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4
    path = build_encoder(tok, "/tmp/enc", hidden=32, layers=2, seed=0)
    AutoModel.from_pretrained(path); AutoTokenizer.from_pretrained(path)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def _pre_tokenizer():
    from tokenizers import pre_tokenizers

    # Whitespace split, then punctuation as separate tokens (like BERT's basic tokenizer).
    return pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])


def build_tokenizer(
    texts: Iterable[str], *, min_count: int = 1, max_vocab: int | None = None, lowercase: bool = True
):
    """A word-level ``BertTokenizerFast`` over ``texts``; vocabulary ordered by (-count, token).

    Special tokens come first ([PAD] [UNK] [CLS] [SEP] [MASK] = ids 0-4); words seen fewer than
    ``min_count`` times or beyond ``max_vocab`` (counting the specials) map to [UNK]. Single
    sentences are encoded ``[CLS] a [SEP]``, pairs ``[CLS] a [SEP] b [SEP]`` with token type ids,
    and offsets, ``word_ids()`` and ``sequence_ids()`` work as for any fast tokenizer.
    """
    from tokenizers import Tokenizer, normalizers, processors
    from tokenizers.models import WordLevel
    from transformers import BertTokenizerFast

    pre = _pre_tokenizer()
    norm = normalizers.Sequence([normalizers.NFKC()] + ([normalizers.Lowercase()] if lowercase else []))
    counts: Counter[str] = Counter()
    for text in texts:
        words = pre.pre_tokenize_str(norm.normalize_str(text))
        counts.update(w for w, _ in words)
    for special in SPECIAL_TOKENS:
        counts.pop(special, None)
    words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    if max_vocab is not None:
        if max_vocab <= len(SPECIAL_TOKENS):
            raise ValueError(
                f"max_vocab must exceed the {len(SPECIAL_TOKENS)} special tokens, got {max_vocab}."
            )
        words = words[: max_vocab - len(SPECIAL_TOKENS)]
    vocab = {tok: i for i, tok in enumerate(list(SPECIAL_TOKENS) + words)}

    core = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    core.normalizer = norm
    core.pre_tokenizer = pre
    core.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    return BertTokenizerFast(
        tokenizer_object=core,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        do_lower_case=lowercase,
    )


def build_encoder(
    tokenizer,
    out_dir: str | Path,
    *,
    hidden: int = 32,
    layers: int = 2,
    heads: int = 2,
    intermediate: int = 64,
    max_position: int = 128,
    seed: int = 0,
) -> Path:
    """Save a randomly initialised ``BertModel`` (+ its tokenizer) to ``out_dir``; returns the path.

    Deterministic for a seed: the weights are drawn under ``torch.manual_seed(seed)`` with the
    global RNG state restored afterwards, so calling this does not disturb the caller's seeding.
    """
    import torch
    from transformers import BertConfig, BertModel

    if hidden % heads:
        raise ValueError(f"hidden ({hidden}) must be divisible by heads ({heads}).")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=intermediate,
        max_position_embeddings=max_position,
        type_vocab_size=2,
        pad_token_id=tokenizer.pad_token_id,
    )
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = BertModel(config)
    finally:
        torch.random.set_rng_state(state)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    for path in out.iterdir():  # safetensors is written 0600; shared run folders need it readable
        path.chmod(0o644)
    return out
