"""Long inputs split the way XTREME splits them: QA context windows and tagging chunks.

* ``qa_windows`` / ``max_context`` / ``span_qa_step_features``: run_squad's windows, where
  ``doc_stride`` is the step between window starts (google-research/xtreme
  third_party/processors/squad.py), and the max-context rule that decides which window may
  answer for a token;
* ``tagging_chunks``: utils_preprocess.py's split of a sentence longer than ``max_length``
  sub-tokens into consecutive chunks of whole words (panx/udpos_tokenize_preprocess); the
  predictions of the chunks are put back together per sentence when decoding (run_tag.py
  save_predictions), so a long sentence is scored in full.
"""

from __future__ import annotations

from collections.abc import Sequence


def answer_positions(ex: dict, offsets: Sequence) -> tuple[int, int]:
    """Token positions of the first gold answer in one window, or (0, 0) ([CLS]) when it is not inside."""
    if not ex["answers"]:
        return 0, 0
    a_start = ex["answers"][0]["answer_start"]
    a_end = a_start + len(ex["answers"][0]["text"])
    ctx = [k for k, o in enumerate(offsets) if o is not None]
    if not ctx or offsets[ctx[0]][0] > a_start or offsets[ctx[-1]][1] < a_end:
        return 0, 0
    start = next(k for k in ctx if offsets[k][1] > a_start)
    end = next(k for k in reversed(ctx) if offsets[k][0] < a_end)
    return start, end


def qa_windows(n_context: int, room: int, step: int) -> list[tuple[int, int]]:
    """(start, length) of the context windows of XTREME's run_squad (processors/squad.py).

    Window k starts at k * doc_stride (``step``) and holds at most ``room`` context tokens; the
    loop stops once a window reaches the end of the context (no overflowing tokens), and an empty
    context has no window at all (``while len(spans) * doc_stride < len(all_doc_tokens)``).
    """
    spans: list[tuple[int, int]] = []
    while len(spans) * step < n_context:
        start = len(spans) * step
        spans.append((start, min(n_context - start, room)))
        if start + room >= n_context:
            break
    return spans


def max_context(spans: Sequence[tuple[int, int]], k: int) -> list[bool]:
    """For each token of window ``k``: is this its 'max context' window (run_squad's
    _new_check_is_max_context: the most tokens on its shorter side, + 0.01 x window length)."""
    out = []
    for pos in range(spans[k][0], spans[k][0] + spans[k][1]):
        scores = [
            (min(pos - s, s + n - 1 - pos) + 0.01 * n, i)
            for i, (s, n) in enumerate(spans)
            if s <= pos < s + n
        ]
        out.append(max(scores, key=lambda t: (t[0], -t[1]))[1] == k)
    return out


def _pair_template(tokenizer) -> list[tuple[int | None, int, int]]:
    """The tokenizer's pair layout as blocks (token id or None for "sequence", sequence index,
    token type), read from one probe encoding: [CLS] A [SEP] B [SEP] for BERT, <s> A </s></s> B </s>
    for XLM-R. (Fast tokenizers in transformers 5 have no build_inputs_with_special_tokens.)"""
    if getattr(tokenizer, "_xitt_pair_template", None) is None:
        enc = tokenizer("a", "b")
        types = enc.get("token_type_ids") or [0] * len(enc["input_ids"])
        blocks: list[tuple[int | None, int, int]] = []
        for tid, seq, typ in zip(enc["input_ids"], enc.sequence_ids(), types):
            if seq is None:
                blocks.append((tid, -1, typ))
            elif not blocks or blocks[-1][1] != seq:
                blocks.append((None, seq, typ))
        tokenizer._xitt_pair_template = blocks
    return tokenizer._xitt_pair_template


def _build_pair(tokenizer, first: list[int], second: list[int]) -> tuple[list[int], list[int], list[int]]:
    """(input_ids, token_type_ids, positions of ``second``'s tokens) of a pair given as token ids."""
    ids: list[int] = []
    types: list[int] = []
    positions: list[int] = []
    for tid, seq, typ in _pair_template(tokenizer):
        part = [tid] if tid is not None else (first if seq == 0 else second)
        if seq == 1:
            positions = list(range(len(ids), len(ids) + len(part)))
        ids += part
        types += [typ] * len(part)
    return ids, types, positions


def span_qa_step_features(examples, q_ids, tokenizer, cfg) -> list[dict]:
    """Span-QA features with XTREME's windows: ``doc_stride`` is the step between window starts.

    ``q_ids``: the questions' token ids, already cut to max_query_length. The context is tokenised
    as one string (run_squad tokenises it word by word after a whitespace split: the same
    sub-tokens for WordPiece and SentencePiece, whose word pieces never cross a space).
    """
    ctx = tokenizer([e["context"] for e in examples], add_special_tokens=False, return_offsets_mapping=True)
    with_types = "token_type_ids" in tokenizer.model_input_names
    feats = []
    for i, ex in enumerate(examples):
        ids, offs = ctx["input_ids"][i], ctx["offset_mapping"][i]
        room = cfg.max_length - len(q_ids[i]) - tokenizer.num_special_tokens_to_add(pair=True)
        if room <= cfg.doc_stride:
            raise ValueError(
                f"doc_stride {cfg.doc_stride} must be smaller than the room for context in a window "
                f"({room} tokens at max_length {cfg.max_length}); lower doc_stride or raise max_length."
            )
        spans = qa_windows(len(ids), room, cfg.doc_stride)
        for k, (start, length) in enumerate(spans):
            input_ids, types, positions = _build_pair(tokenizer, q_ids[i], ids[start : start + length])
            offsets: list = [None] * len(input_ids)
            best: list = [False] * len(input_ids)
            for p, o, m in zip(positions, offs[start : start + length], max_context(spans, k)):
                offsets[p], best[p] = tuple(o), m
            a_start, a_end = answer_positions(ex, offsets)
            feat = {"input_ids": input_ids, "offsets": offsets, "max_context": best, "example": i}
            if with_types:
                feat["token_type_ids"] = types
            feats.append({**feat, "start_positions": a_start, "end_positions": a_end})
    return feats


def tagging_budget(tokenizer, max_length: int) -> int:
    """Sub-tokens a chunk may hold: max_length minus XTREME's special-token count (3 for XLM-R's
    tokenizer, 2 otherwise: utils_preprocess.py special_tokens_count)."""
    return max_length - (3 if "XLMRoberta" in type(tokenizer).__name__ else 2)


def tagging_chunks(words: Sequence[str], tokenizer, max_length: int) -> list[tuple[int, list[str]]]:
    """(first word index, words) of each chunk of one sentence, as utils_preprocess.py splits it.

    Words are added while the chunk's sub-token count stays within the budget; a word with no
    sub-token, or with more than the budget, becomes the unknown token (one sub-token).
    """
    budget = tagging_budget(tokenizer, max_length)
    counts = [0] * len(words)
    if words:
        enc = tokenizer(list(words), is_split_into_words=True, add_special_tokens=False)
        for w in enc.word_ids():
            if w is not None:
                counts[w] += 1
    chunks: list[tuple[int, list[str]]] = []
    used = budget + 1  # forces a first chunk
    for i, (word, n) in enumerate(zip(words, counts)):
        if (n == 0 or n > budget) and word:
            word, n = tokenizer.unk_token, 1
        if used + n > budget:
            chunks.append((i, []))
            used = 0
        chunks[-1][1].append(word)
        used += n
    return chunks
