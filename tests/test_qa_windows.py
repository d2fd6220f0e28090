"""XTREME's QA windows (``qa_windows: step``): doc_stride is the step between window starts.

Reference: google-research/xtreme@838c13b69daafb9328785d16caae2711e4012123
third_party/processors/squad.py, squad_convert_example_to_features: ``while len(spans) *
doc_stride < len(all_doc_tokens)``, each window from ``tokenizer.encode_plus(truncated_query,
span_doc_tokens, max_length, stride=max_seq_length - doc_stride - len(truncated_query) -
sequence_pair_added_tokens, truncation_strategy="only_second")``, stopping when there are no
overflowing tokens; the overflow is transformers 2.x's truncate_sequences (``window_len =
min(len(pair_ids), stride + num_tokens_to_remove); overflowing_tokens = pair_ids[-window_len:]``).
The reference below replays exactly that loop on token lists; XTREME's settings are
max_seq_length 384, doc_stride 128, max_query_length 64 (scripts/train_qa.sh, run_squad.py).
"""

from types import SimpleNamespace

import numpy as np
import pytest

from xitt.synth.tiny import build_tokenizer


def run_squad_windows(all_doc_tokens, query_len, max_seq_length, doc_stride, pair_added):
    """[(start, tokens)] of each window, replaying run_squad's loop and the 2.x truncation."""
    spans, span_doc_tokens = [], all_doc_tokens
    while len(spans) * doc_stride < len(all_doc_tokens):
        stride = max_seq_length - doc_stride - query_len - pair_added
        remove = query_len + len(span_doc_tokens) + pair_added - max_seq_length
        if remove > 0:
            overflowing = span_doc_tokens[-min(len(span_doc_tokens), stride + remove) :]
            kept = span_doc_tokens[:-remove]
        else:
            overflowing, kept = None, span_doc_tokens
        paragraph_len = min(
            len(all_doc_tokens) - len(spans) * doc_stride, max_seq_length - query_len - pair_added
        )
        assert kept == all_doc_tokens[len(spans) * doc_stride :][:paragraph_len]
        spans.append((len(spans) * doc_stride, kept))
        if overflowing is None:
            break
        span_doc_tokens = overflowing
    return spans


@pytest.mark.parametrize(
    "n_context, query_len, max_len, stride",
    [(1000, 12, 384, 128), (317, 64, 384, 128), (318, 64, 384, 128), (40, 5, 24, 4), (0, 3, 24, 4)],
)
def test_window_starts_equal_run_squad(n_context, query_len, max_len, stride):
    from xitt.train.windows import qa_windows

    tokens = list(range(n_context))
    room = max_len - query_len - 3  # BERT: [CLS] q [SEP] c [SEP]
    expected = [(s, len(t)) for s, t in run_squad_windows(tokens, query_len, max_len, stride, 3)]
    assert qa_windows(n_context, room, stride) == expected


@pytest.fixture(scope="module")
def tok():
    words = [f"w{i}" for i in range(600)]
    return build_tokenizer([" ".join(words), "what is the answer ?"])


CONTEXT = " ".join(f"w{i}" for i in range(600))  # one token per word with the fixture tokenizer
CFG = SimpleNamespace(max_length=384, doc_stride=128, qa_windows="step", n_best=20, max_answer_length=30)


def test_qa_windows_equal_those_of_run_squad_with_xtreme_settings(tok):
    from xitt.train.heads import featurize

    answer = "w450 w451"
    example = {
        "id": "q1",
        "question": "what is the answer ?",
        "context": CONTEXT,
        "answers": [{"text": answer, "answer_start": CONTEXT.index(answer)}],
    }
    feats = featurize("span_qa", [example], tok, CFG)
    q_ids = tok("what is the answer ?", add_special_tokens=False)["input_ids"]
    ctx_ids = tok(CONTEXT, add_special_tokens=False)["input_ids"]
    expected = run_squad_windows(ctx_ids, len(q_ids), 384, 128, tok.num_special_tokens_to_add(pair=True))
    # 376 context tokens per window: starts 0, 128, 256 (the third reaches the end)
    assert [s for s, _ in expected] == [0, 128, 256] and len(feats) == 3
    for feat, (_, window) in zip(feats, expected):
        assert feat["input_ids"] == [tok.cls_token_id, *q_ids, tok.sep_token_id, *window, tok.sep_token_id]
        assert feat["token_type_ids"] == [0] * (len(q_ids) + 2) + [1] * (len(window) + 1)
        context_positions = [p for p, o in enumerate(feat["offsets"]) if o is not None]
        assert len(context_positions) == len(window)
    # the answer (tokens 450-451) lies in windows 2 and 3; each labels it at its own positions
    offset = 1 + len(q_ids) + 1
    assert [(f["start_positions"], f["end_positions"]) for f in feats] == [
        (0, 0),
        (450 - 128 + offset, 451 - 128 + offset),
        (450 - 256 + offset, 451 - 256 + offset),
    ]


def test_max_context_decides_which_window_answers(tok):
    """run_squad scores a start only in its max-context window (_new_check_is_max_context)."""
    from xitt.train.heads import decode, featurize
    from xitt.train.windows import max_context, qa_windows

    spans = qa_windows(600, 376, 128)
    flags = [max_context(spans, k) for k in range(len(spans))]
    owner = {pos: k for k, (s, n) in enumerate(spans) for pos, m in zip(range(s, s + n), flags[k]) if m}
    assert sorted(owner) == list(range(600))  # every token has exactly one max-context window
    # token 200: window 0 has min(200, 175) tokens on its shorter side, window 1 min(72, 303)
    assert owner[200] == 0 and owner[590] == 2

    example = {"id": "q", "question": "what is the answer ?", "context": CONTEXT, "answers": []}
    feats = featurize("span_qa", [example], tok, CFG)
    # window 1 scores token 200 highest (9), but its max-context window 0 scores it -9; window 2
    # scores token 590 at 5: run_squad answers w590 (a plain best-over-windows would say w200)
    logits = []
    for k, f in enumerate(feats):
        scores = np.zeros((len(f["input_ids"]), 2))
        context = [p for p, o in enumerate(f["offsets"]) if o is not None]
        pos = {spans[k][0] + i: p for i, p in enumerate(context)}
        for token, value in ((200, 9.0 if k == 1 else -9.0), (590, 5.0)):
            if token in pos:
                scores[pos[token]] = value
        logits.append(scores)
    preds, _ = decode("span_qa", [example], feats, logits, CFG)
    assert preds == {"q": "w590"}
