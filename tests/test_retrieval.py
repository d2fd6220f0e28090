"""Retrieval embeddings pool the layer XTREME documents, per encoder depth.

Reference: google-research/xtreme@838c13b69daafb9328785d16caae2711e4012123
third_party/evaluate_retrieval.py: extract_embeddings keeps ``all_layer_outputs[-num_layers:]``
(the embedding output dropped) and uses index ``--specific_layer``; mean_pool_embedding averages
over the attention mask; cls_pool_embedding takes position 0. scripts/run_tatoeba.sh: mBERT
NLAYER=12 LAYER=7, XLM-R large NLAYER=24 LAYER=13 (mean); scripts/run_bucc2018.sh: NLAYER 12 / 24,
--specific_layer 7, --pool_type cls. The reference below re-implements those lines on a random
encoder of the same depth (a 2-dim-per-head BERT: only the layer count matters here).
"""

import numpy as np
import pytest
import torch

from xitt.grid.spec import parse_grid
from xitt.tasks import registry

SENTENCES = ["a b c", "b c", "c a b a b", "a"]  # words of the tiny fixture vocabulary
# (encoder hub id, task, depth, XTREME's NLAYER, LAYER, pool) from the scripts named above
CASES = [
    ("bert-base-multilingual-cased", "tatoeba", 12, 12, 7, "mean"),
    ("xlm-roberta-large", "tatoeba", 24, 24, 13, "mean"),
    ("xlm-roberta-large", "bucc2018", 24, 24, 7, "cls"),
]


def xtreme_embeddings(model, tokenizer, sentences, num_layers, specific_layer, pool):
    enc = tokenizer(sentences, padding=True, return_tensors="pt")
    with torch.no_grad():
        all_layer_outputs = model(**enc, output_hidden_states=True).hidden_states
    layer = all_layer_outputs[-num_layers:][specific_layer]
    if pool == "cls":
        return layer[:, 0].numpy()
    mask = enc["attention_mask"]
    return ((layer * mask.unsqueeze(2).float()).sum(dim=1) / mask.sum(dim=1).view(-1, 1).float()).numpy()


@pytest.mark.parametrize("hub_id, task, depth, nlayer, layer, pool", CASES)
def test_layer_pooling_picks_the_documented_layer(tiny_encoder, hub_id, task, depth, nlayer, layer, pool):
    from transformers import AutoTokenizer, BertConfig, BertModel

    from xitt.train.retrieval import embed

    tokenizer = AutoTokenizer.from_pretrained(tiny_encoder)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=8,
        num_hidden_layers=depth,
        num_attention_heads=2,
        intermediate_size=16,
        max_position_embeddings=64,
    )
    model = BertModel(config).eval()
    grid = parse_grid(
        {
            "encoders": [hub_id],
            "intermediates": ["none"],
            "targets": [task],
            "seeds": [1],
            "recipe": "xtreme-r",
            "train": {"eval_batch_size": 3},  # batches of different padding than the reference
        }
    )
    cfg = grid.train_config(task, registry(), hub_id)
    ours = embed(model, tokenizer, SENTENCES, cfg, torch.device("cpu"))
    reference = xtreme_embeddings(model, tokenizer, SENTENCES, nlayer, layer, pool)
    np.testing.assert_allclose(ours, reference, atol=1e-5)
    last = xtreme_embeddings(model, tokenizer, SENTENCES, nlayer, nlayer - 1, pool)
    assert not np.allclose(ours, last, atol=1e-3)  # the last layer would not pass
