"""xitt.heads: features (first sub-token labels, QA windows), dynamic padding, heads, decoding."""

from types import SimpleNamespace

import numpy as np
import pytest

from xitt.synth.tiny import build_tokenizer

# xitt.heads imports torch: import it inside the tests, never at collection time.

CFG = SimpleNamespace(
    max_length=24,
    doc_stride=8,
    n_best=5,
    max_answer_length=3,
    qa_windows="overlap",
    long_sentences="truncate",
)


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer(
        [
            "anna met bob in new-york .",
            "where does anna live ? anna lives in rome . bob lives in oslo .",
            "the film was good",
            "the car is red",
        ]
    )


def test_pair_classification_features_and_padding(tok):
    from xitt.train.heads import collate, featurize

    ex = [
        {"text": "the film", "text_pair": "was good", "label": 1},
        {"text": "the car is red", "text_pair": "the", "label": 0},
    ]
    feats = featurize("pair_classification", ex, tok, CFG)
    assert feats[0]["token_type_ids"] == [0, 0, 0, 0, 1, 1, 1]
    batch = collate(feats, tok.pad_token_id)
    assert batch["input_ids"].shape == (2, 8)
    assert batch["attention_mask"].tolist()[0] == [1] * 7 + [0]
    assert batch["input_ids"][0, -1].item() == tok.pad_token_id and batch["labels"].tolist() == [1, 0]


def test_tagging_labels_only_first_sub_token(tok):
    from xitt.train.heads import decode, featurize

    ex = [{"tokens": ["anna", "met", "new-york"], "tags": ["B-PER", "O", "B-LOC"]}]
    feats = featurize("tagging", ex, tok, CFG, labels=["B-LOC", "B-PER", "O"])
    # [CLS] anna met new - york [SEP]: 'new-york' is three sub-tokens, only 'new' is labelled
    assert feats[0]["labels"] == [-100, 1, 2, 0, -100, -100, -100]
    logits = [np.eye(3)[[0, 1, 2, 0, 2, 2, 0]] * 5.0]
    preds, refs = decode("tagging", ex, feats, logits, CFG, ["B-LOC", "B-PER", "O"])
    assert preds == [["B-PER", "O", "B-LOC"]] and refs == [["B-PER", "O", "B-LOC"]]


def test_tagging_truncated_words_are_predicted_outside(tok):
    from xitt.train.heads import decode, featurize

    ex = [{"tokens": ["anna"] * 30, "tags": ["B-PER"] * 30}]
    feats = featurize("tagging", ex, tok, CFG, labels=["B-PER", "O"])
    logits = [np.tile([5.0, 0.0], (len(feats[0]["input_ids"]), 1))]
    preds, _ = decode("tagging", ex, feats, logits, CFG, ["B-PER", "O"])
    assert preds[0][:22] == ["B-PER"] * 22 and preds[0][22:] == ["O"] * 8


def test_span_qa_windows_positions_and_decoding(tok):
    from xitt.train.heads import decode, featurize

    context = "anna lives in rome . anna lives in rome . bob lives in oslo . anna lives in rome ."
    ex = [
        {
            "id": "q1",
            "question": "where does bob live ?",
            "context": context,
            "answers": [{"text": "oslo", "answer_start": context.index("oslo")}],
        }
    ]
    feats = featurize("span_qa", ex, tok, CFG)
    assert len(feats) > 1  # doc stride: several windows
    hits = [f for f in feats if f["start_positions"] > 0]
    assert hits, "the answer is inside at least one window"
    for f in hits:
        s, e = f["offsets"][f["start_positions"]], f["offsets"][f["end_positions"]]
        assert context[s[0] : e[1]] == "oslo"
    logits = []
    for f in feats:
        z = np.zeros((len(f["input_ids"]), 2))
        if f["start_positions"] > 0:
            z[f["start_positions"], 0] = z[f["end_positions"], 1] = 10.0
        logits.append(z)
    preds, refs = decode("span_qa", ex, feats, logits, CFG)
    assert preds == {"q1": "oslo"} and refs == {"q1": ["oslo"]}
    # A longer span than max_answer_length is never chosen; with allow_null a high [CLS] wins.
    f = hits[0]
    z = np.zeros((len(f["input_ids"]), 2))
    z[f["start_positions"] - 4, 0], z[f["end_positions"], 1] = 20.0, 20.0
    z[f["start_positions"], 0] = 5.0
    assert decode("span_qa", ex, [f], [z], CFG)[0]["q1"] == "oslo"
    z[0, :] = 50.0
    assert decode("span_qa", ex, [f], [z], CFG, allow_null=True)[0]["q1"] == ""


def test_long_questions_are_cut_and_windows_keep_context(tok):
    from xitt.train.heads import featurize

    ex = [
        {
            "id": "q",
            "question": "where does anna live ? " * 10,
            "context": "anna lives in rome .",
            "answers": [{"text": "rome", "answer_start": 14}],
        }
    ]
    feats = featurize("span_qa", ex, tok, CFG)
    assert len(feats[0]["input_ids"]) <= CFG.max_length and feats[0]["start_positions"] > 0


def test_multiple_choice_batches_are_three_dimensional(tok):
    from xitt.train.heads import collate, featurize

    ex = [
        {
            "context": "anna lives in rome .",
            "question": "where does anna live ?",
            "choices": ["rome", "oslo"],
            "label": 0,
        }
    ] * 3
    batch = collate(featurize("multiple_choice", ex, tok, CFG), tok.pad_token_id)
    assert (
        batch["input_ids"].shape[:2] == (3, 2) and batch["token_type_ids"].shape == batch["input_ids"].shape
    )


@pytest.mark.parametrize(
    "kind,labels",
    [
        ("classification", 2),
        ("pair_classification", 3),
        ("multiple_choice", 1),
        ("tagging", 4),
        ("span_qa", 1),
    ],
)
def test_heads_give_logits_and_a_finite_loss(tok, kind, labels):
    import torch
    from transformers import BertConfig, BertModel

    from xitt.train.heads import Head

    torch.manual_seed(0)
    encoder = BertModel(
        BertConfig(
            vocab_size=len(tok),
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
            max_position_embeddings=64,
        )
    )
    head = Head(kind, 16, labels)
    batch = {
        "input_ids": torch.randint(5, len(tok), (2, 6)),
        "attention_mask": torch.ones(2, 6, dtype=torch.long),
    }
    if kind == "multiple_choice":
        batch = {k: v.view(1, 2, 6) for k, v in batch.items()}
        batch["labels"] = torch.tensor([1])
    elif kind == "tagging":
        batch["labels"] = torch.tensor([[-100, 1, 2, 3, 0, -100]] * 2)
    elif kind == "span_qa":
        batch["start_positions"], batch["end_positions"] = torch.tensor([1, 0]), torch.tensor([2, 0])
    else:
        batch["labels"] = torch.tensor([0, 1])
    loss, logits = head(encoder, batch)
    expected = {
        "classification": (2, 2),
        "pair_classification": (2, 3),
        "multiple_choice": (1, 2),
        "tagging": (2, 6, 4),
        "span_qa": (2, 6, 2),
    }[kind]
    assert tuple(logits.shape) == expected and torch.isfinite(loss)
    loss.backward()
    assert head.out.weight.grad is not None


def test_unknown_kind_is_an_error():
    from xitt.train.heads import Head

    with pytest.raises(ValueError, match="no head for kind"):
        Head("regression", 8, 1)
