"""Chunked tagging (``long_sentences: chunk``): XTREME's split of long sentences and recombination.

Reference: google-research/xtreme@838c13b69daafb9328785d16caae2711e4012123
utils_preprocess.py panx_tokenize_preprocess._preprocess_one_file (identical in
udpos_tokenize_preprocess) writes a blank line before a word whose sub-tokens would overflow
max_len - special_tokens_count, and an .idx file with the source sentence of every line;
third_party/run_tag.py save_predictions walks both files and puts the chunks' predictions back
on one sentence. Both are replayed below on in-memory lines.
"""

from types import SimpleNamespace

import numpy as np
import pytest

from xitt.synth.tiny import build_tokenizer

LABELS = ["B-LOC", "B-PER", "O"]
SENTENCES = [
    (
        ["anna", "met", "bob", "in", "new-york", "and", "rome"],
        ["B-PER", "O", "B-PER", "O", "B-LOC", "O", "B-LOC"],
    ),
    (["bob"], ["B-PER"]),
    (["new-york", "new-york", "anna", "new-york"], ["B-LOC", "B-LOC", "B-PER", "B-LOC"]),
]


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer(["anna met bob in new-york and rome ."])


def xtreme_preprocess(sentences, tokenizer, max_len):
    """(lines, idx lines) as utils_preprocess.py writes them (BERT: special_tokens_count 2)."""
    max_seq_len = max_len - 2
    lines, idx_lines = [], []
    subword_len_counter = idx = 0
    for words, tags in sentences:
        for token, label in zip(words, tags):
            current_subwords_len = len(tokenizer.tokenize(token))
            if (current_subwords_len == 0 or current_subwords_len > max_seq_len) and len(token) != 0:
                token, current_subwords_len = tokenizer.unk_token, 1
            if (subword_len_counter + current_subwords_len) > max_seq_len:
                lines += ["", f"{token}\t{label}"]
                idx_lines += ["", str(idx)]
                subword_len_counter = current_subwords_len
            else:
                lines.append(f"{token}\t{label}")
                idx_lines.append(str(idx))
                subword_len_counter += current_subwords_len
        lines.append("")
        idx_lines.append("")
        idx += 1
        subword_len_counter = 0
    return lines, idx_lines


def chunks_of(lines):
    """The examples run_tag reads from the preprocessed file: blank lines separate them."""
    out, cur = [], []
    for line in lines:
        if line:
            cur.append(line.split("\t")[0])
        elif cur:
            out.append(cur)
            cur = []
    return out


def save_predictions(lines, idx_lines, predictions):
    """run_tag.py save_predictions, returning the recombined sentences instead of writing them."""
    sentences, example_id, prev_id = [[]], 0, int(idx_lines[0])
    for line, idx in zip(lines, idx_lines):
        if line == "":
            example_id += 1
        else:
            cur_id = int(idx)
            if cur_id != prev_id:
                sentences.append([])
            sentences[-1].append(predictions[example_id].pop(0))
            prev_id = cur_id
    return sentences


@pytest.mark.parametrize("max_length", [5, 6, 8, 48])
def test_chunked_predictions_recombine_to_the_full_sentence(tok, max_length):
    from xitt.train.heads import decode, featurize

    examples = [{"tokens": w, "tags": t} for w, t in SENTENCES]
    cfg = SimpleNamespace(max_length=max_length, long_sentences="chunk")
    feats = featurize("tagging", examples, tok, cfg, labels=LABELS)
    lines, idx_lines = xtreme_preprocess(SENTENCES, tok, max_length)
    reference_chunks = chunks_of(lines)
    ours = [
        [
            examples[f["example"]]["tokens"][f["first_word"] + w]
            for w in sorted({w for w in f["word_ids"] if w is not None})
        ]
        for f in feats
    ]
    assert ours == reference_chunks
    assert all(len(f["input_ids"]) <= max_length for f in feats)
    # a model that tags every chunk right: XTREME's recombination and ours give the gold sentences
    logits = []
    for f in feats:
        gold = examples[f["example"]]["tags"]
        rows = [gold[f["first_word"] + w] if w is not None else "O" for w in f["word_ids"]]
        logits.append(np.eye(3)[[LABELS.index(t) for t in rows]] * 5.0)
    preds, refs = decode("tagging", examples, feats, logits, cfg, LABELS)
    chunk_tags = [
        [
            gold
            for gold in (
                examples[f["example"]]["tags"][f["first_word"] + w]
                for w in sorted({w for w in f["word_ids"] if w is not None})
            )
        ]
        for f in feats
    ]
    assert preds == refs == save_predictions(lines, idx_lines, chunk_tags) == [t for _, t in SENTENCES]
    if max_length < 8:
        assert len(feats) > len(examples)  # the long sentences were split


def test_truncation_would_lose_the_tail(tok):
    from xitt.train.heads import decode, featurize

    examples = [{"tokens": w, "tags": t} for w, t in SENTENCES[:1]]
    cfg = SimpleNamespace(max_length=6, long_sentences="truncate")
    feats = featurize("tagging", examples, tok, cfg, labels=LABELS)
    logits = [np.tile([5.0, 0.0, 0.0], (len(f["input_ids"]), 1)) for f in feats]
    preds, _ = decode("tagging", examples, feats, logits, cfg, LABELS)
    assert preds[0][-1] == "O" and len(feats) == 1  # cut words scored "O": what chunking avoids


def test_a_chunked_tagging_target_trains_and_scores_every_word(tiny_encoder, tiny_data):
    from xitt.grid.spec import expand_grid, parse_grid
    from xitt.train import chain

    grid = parse_grid(
        {
            "encoders": [{"name": "tiny", "path": str(tiny_encoder)}],
            "intermediates": ["none"],
            "targets": ["tiny_ner"],
            "seeds": [1],
            "data_dir": str(tiny_data),
            "train": {"max_steps": 2, "max_length": 8, "long_sentences": "chunk", "select_on": "last"},
        }
    )
    run = expand_grid(grid)[1][0]
    out = chain.run_target(run, str(tiny_encoder), progress=False)
    assert 0 <= out.scores["de"]["f1"] <= 100
