"""The masked-LM objective as one more "task" of ``fit``: Phang et al. (2020)'s MLM-mixed intermediates.

    data = MlmData(text_task, cfg, features, batches=120)    # unlabelled texts, tokenised
    head = MlmHead(lm_head_of(encoder_path, encoder), tokenizer, seed)
    fit(encoder, {**heads, "mlm": head}, {**tasks, "mlm": data}, ...)

Masking is BERT's, the one the synthetic encoder was pretrained with (``mask_tokens``, shared with
xitt/synth/pretrain.py): 15% of the non-special tokens chosen, 80% of them [MASK], 10% a random
token, 10% kept; drawn anew for every batch (dynamic masking, as jiant's MLM task does on the fly:
nyu-mll/jiant jiant/tasks/lib/templates/mlm.py ``mlm_mask_tokens``, mlm_probability 0.15).

``MlmData`` is what ``fit`` treats as an unlabelled task: it brings its own ``epoch_batches``
(``batches`` per epoch, drawn from the shuffled texts and cycling through them, so that the
share of MLM batches is the grid's ``mlm.ratio`` whatever the corpus size) and is never scored
on English dev (``unlabelled``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from xitt.grid.spec import TrainConfig
from xitt.tasks import Task

MASK_PROB = 0.15


def mask_tokens(
    input_ids, special_mask, vocab_size: int, generator, mask_id: int, mask_prob: float = MASK_PROB
):
    """BERT masking of a padded id tensor; returns (inputs, labels) with labels -100 where not chosen.

    ``special_mask`` is True for [CLS]/[SEP]/[PAD] (never chosen). Random replacement tokens are
    drawn from ids >= 5 (the non-special ids of ``xitt.tiny``'s vocabulary).
    """
    chosen = (torch.rand(input_ids.shape, generator=generator) < mask_prob) & ~special_mask
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))
    roll = torch.rand(input_ids.shape, generator=generator)
    inputs = input_ids.clone()
    inputs[chosen & (roll < 0.8)] = mask_id
    swap = chosen & (roll >= 0.8) & (roll < 0.9)
    random_ids = torch.randint(5, vocab_size, input_ids.shape, generator=generator)
    inputs[swap] = random_ids[swap]
    return inputs, labels


@dataclass
class MlmData:
    """Unlabelled texts as features ({input_ids}) and the number of MLM batches per epoch."""

    task: Task  # the corpus' pseudo-task (xitt/data/conditions.py text_task)
    cfg: TrainConfig  # batch size and max length: the stage's first task's
    train: list[dict]
    batches: int
    labels: None = None
    unlabelled: bool = True

    def epoch_batches(self, rng: np.random.Generator) -> list[list[int]]:
        """``batches`` batches of text indices: shuffled passes over the texts, cut to length."""
        size = self.cfg.batch_size
        need = self.batches * size
        passes = math.ceil(need / len(self.train))
        order = np.concatenate([rng.permutation(len(self.train)) for _ in range(passes)])[:need]
        return [order[i : i + size].tolist() for i in range(0, need, size)]


def mlm_batches(task_batches: int, ratio: float) -> int:
    """MLM batches per epoch so that they are ``ratio`` of all batches (at least one)."""
    return max(1, round(task_batches * ratio / (1.0 - ratio)))


def lm_head_of(encoder_path: str, encoder) -> nn.Module:
    """The encoder's masked-LM head from ``encoder_path`` (``AutoModelForMaskedLM``: BERT's ``cls``,
    XLM-R's ``lm_head``), its output layer tied to ``encoder``'s input embeddings as in pretraining.

    A checkpoint saved without its head (the synthetic encoder is a plain ``BertModel``) gets a
    fresh transform and bias (seeded by the caller); the tied output layer is the trained one.
    """
    from transformers import AutoModelForMaskedLM

    full = AutoModelForMaskedLM.from_pretrained(encoder_path)
    head = next(module for name, module in full.named_children() if name != full.base_model_prefix)
    full.get_output_embeddings().weight = encoder.get_input_embeddings().weight
    return head


class MlmHead(nn.Module):
    """``head(encoder, batch) -> (loss, logits)`` like xitt.train.heads.Head, masking the batch itself."""

    kind = "mlm"

    def __init__(self, lm_head: nn.Module, tokenizer, seed: int):
        super().__init__()
        self.lm_head = lm_head
        self.vocab_size = len(tokenizer)
        self.mask_id = tokenizer.mask_token_id
        self.special = torch.tensor(sorted(set(tokenizer.all_special_ids)))
        self.generator = torch.Generator().manual_seed(seed)  # masks: their own stream, CPU
        # The stream's position is a buffer, so it travels in the head's state dict: a resume
        # state (xitt/train/resume.py) restores it and a resumed stage masks as an uninterrupted one.
        self.register_buffer("mask_state", self.generator.get_state(), persistent=True)

    def forward(self, encoder: nn.Module, batch: dict[str, torch.Tensor]):
        ids, attention = batch["input_ids"], batch["attention_mask"]
        cpu = ids.cpu()
        special = torch.isin(cpu, self.special) | (attention.cpu() == 0)
        self.generator.set_state(self.mask_state.cpu())
        inputs, labels = mask_tokens(cpu, special, self.vocab_size, self.generator, self.mask_id)
        self.mask_state.copy_(self.generator.get_state())
        hidden = encoder(input_ids=inputs.to(ids.device), attention_mask=attention).last_hidden_state
        logits = self.lm_head(hidden)
        if not bool((labels != -100).any()):  # nothing chosen (a batch of very short texts): no loss
            return logits.float().sum() * 0.0, logits
        loss = nn.functional.cross_entropy(
            logits.float().view(-1, logits.shape[-1]), labels.to(ids.device).view(-1), ignore_index=-100
        )
        return loss, logits
