"""Evaluation metrics with the official XTREME / XTREME-R semantics; every score is on 0-100.

Sources mirrored (facts, not code): XTREME's ``evaluate.py`` (accuracy, seqeval F1, BUCC F1),
``third_party/evaluate_squad.py`` (the SQuAD v1.1 script), ``third_party/evaluate_mlqa.py`` (MLQA's
``mlqa_evaluation_v1.py``), ``third_party/utils_retrieve.py`` (BUCC mining and threshold tuning,
Tatoeba search) and XTREME-R's ``average_precision_at_k`` (Mewsli-X, LAReQA).

``METRICS`` maps the metric names used in the task YAMLs to a :class:`Metric` (the function and
the columns it returns, the primary one first); :func:`evaluate` looks a name up and calls it.
Pure Python + numpy + seqeval; no torch here.
"""

from __future__ import annotations

import re
import string
import sys
import unicodedata
import warnings
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from xitt.schema import XTREME_GROUPS, XTREME_VERSIONS, did_you_mean
from xitt.schema import XTREME_LANGUAGES as XTREME_LANGUAGES  # re-exported: the official lists
from xitt.schema import XTREME_R_LANGUAGES as XTREME_R_LANGUAGES

Pair = tuple[Hashable, Hashable]


# ----------------------------------------------------------------------------- classification
def accuracy(predictions: Sequence, references: Sequence) -> float:
    """Percentage of positions where ``predictions[i] == references[i]`` (XNLI, PAWS-X, XCOPA)."""
    _check_parallel(predictions, references, "predictions", "references")
    return 100.0 * sum(p == r for p, r in zip(predictions, references)) / len(references)


def _check_parallel(a: Sequence, b: Sequence, name_a: str, name_b: str) -> None:
    if len(a) != len(b):
        raise ValueError(
            f"{name_a} has {len(a)} items but {name_b} has {len(b)}; pass one "
            f"prediction per reference, in the same order."
        )
    if len(b) == 0:
        raise ValueError(f"{name_b} is empty; a metric needs at least one example.")


# ----------------------------------------------------------------------------- tagging
SEQEVAL_SCHEMES = ("xtreme", "seqeval")


def _chunk_ends(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    """seqeval 0.0.12's end-of-chunk rule (what XTREME's evaluate.py ran in 2020)."""
    return (
        prev_tag in ("E", "S")
        or (prev_tag in ("B", "I") and tag in ("B", "S", "O"))
        or (prev_tag not in ("O", ".") and prev_type != type_)
    )


def _chunk_starts(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    """seqeval 0.0.12's start-of-chunk rule."""
    return (
        tag in ("B", "S")
        or (prev_tag in ("E", "S", "O") and tag in ("E", "I"))
        or (tag not in ("O", ".") and prev_type != type_)
    )


def xtreme_chunks(sentences: Sequence[Sequence[str]]) -> set[tuple[str, int, int]]:
    """Chunks (type, start, end) as seqeval 0.0.12 finds them, the version XTREME's evaluate.py
    ran (chakki-works/seqeval, tag v0.0.12, seqeval/metrics/sequence_labeling.py, get_entities):
    the sentences are joined with an ``O`` after each; a label's first character is its chunk tag
    and the part after the last ``-`` its type (``B-PER`` -> B, PER; UD-POS ``SCONJ`` -> S, SCONJ,
    ``NOUN`` -> N, NOUN). So ``NOUN NOUN`` is one chunk, and a tag starting with S (SCONJ, SYM) is
    a chunk of its own."""
    flat = [label for sentence in sentences for label in [*sentence, "O"]]
    chunks, prev_tag, prev_type, begin = set(), "O", "", 0
    for i, label in enumerate([*flat, "O"]):
        tag, type_ = label[0], label.split("-")[-1]
        if _chunk_ends(prev_tag, tag, prev_type, type_):
            chunks.add((prev_type, begin, i - 1))
        if _chunk_starts(prev_tag, tag, prev_type, type_):
            begin = i
        prev_tag, prev_type = tag, type_
    return chunks


def _prf(gold: set, pred: set) -> dict[str, float]:
    correct = len(gold & pred)
    p = correct / len(pred) if pred else 0.0
    r = correct / len(gold) if gold else 0.0
    f = 2 * p * r / (p + r) if p + r > 0 else 0.0
    return {"f1": 100.0 * f, "precision": 100.0 * p, "recall": 100.0 * r}


def seqeval_scores(
    predictions: Sequence[Sequence[str]], references: Sequence[Sequence[str]], *, scheme: str = "xtreme"
) -> dict[str, float]:
    """Entity-level micro ``f1``, ``precision``, ``recall`` (0-100) as XTREME scores PAN-X and UD-POS.

    ``scheme="xtreme"`` (default): the chunks of seqeval 0.0.12, the version the official scorer
    ran (:func:`xtreme_chunks`). ``scheme="seqeval"``: the installed seqeval (>= 1.2, default
    mode), which differs on labels without a B-/I- prefix: it reads the first character as the
    tag and the rest as the type, so UD-POS ``SCONJ`` and ``CCONJ`` become one type ``CONJ`` and
    chunk boundaries move (issue 12 measured 77.23 vs the official 80.00 on its cases). PAN-X's
    IOB2 tags score the same under both.
    """
    if scheme not in SEQEVAL_SCHEMES:
        raise ValueError(f"scheme must be one of {SEQEVAL_SCHEMES}; got {scheme!r}")
    _check_parallel(predictions, references, "predictions", "references")
    for i, (p, g) in enumerate(zip(predictions, references)):
        if len(p) != len(g):
            raise ValueError(
                f"sentence {i} has {len(p)} predicted tags but {len(g)} gold tags; "
                "predict one tag per gold token (first sub-token of each word)."
            )
    pred, gold = [list(s) for s in predictions], [list(s) for s in references]
    if scheme == "xtreme":
        return _prf(xtreme_chunks(gold), xtreme_chunks(pred))
    from seqeval.metrics import f1_score, precision_score, recall_score

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # non-IOB tags (UD-POS) and zero-division warnings
        return {
            "f1": 100.0 * float(f1_score(gold, pred)),
            "precision": 100.0 * float(precision_score(gold, pred)),
            "recall": 100.0 * float(recall_score(gold, pred)),
        }


def seqeval_f1(pred_tags: Sequence[Sequence[str]], gold_tags: Sequence[Sequence[str]]) -> float:
    """seqeval entity F1 (0-100) as XTREME reports it for PAN-X and UD-POS; see :func:`seqeval_scores`."""
    return seqeval_scores(pred_tags, gold_tags)["f1"]


# ----------------------------------------------------------------------------- extractive QA
def _squad_normalize(text: str) -> str:
    """SQuAD v1.1: lowercase, drop ASCII punctuation, drop a/an/the, collapse whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _ASCII_PUNCT)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


_ASCII_PUNCT = frozenset(string.punctuation)
# MLQA's article patterns, exactly as in mlqa_evaluation_v1.py (hi and zh have none). Arabic
# removes every "ال" substring, not only a word-initial prefix: that is what the official regex
# ('\sال^|ال') does, and we keep it for comparability.
_MLQA_ARTICLES = {
    "en": r"\b(a|an|the)\b",
    "es": r"\b(un|una|unos|unas|el|la|los|las)\b",
    "vi": r"\b(của|là|cái|chiếc|những)\b",
    "de": r"\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b",
    "ar": r"\sال^|ال",
    "hi": None,
    "zh": None,
}
MLQA_LANGUAGES = tuple(_MLQA_ARTICLES)


def _is_mlqa_punct(ch: str) -> bool:
    # MLQA's PUNCT: every Unicode "P*" category character plus string.punctuation.
    return ch in _ASCII_PUNCT or unicodedata.category(ch).startswith("P")


def _mixed_segmentation(text: str) -> list[str]:
    """MLQA's zh tokenisation: each CJK ideograph (U+4E00-U+9FA5) or punctuation mark is a token;
    runs of other characters are split on whitespace."""
    tokens, run = [], ""
    for ch in text:
        if "\u4e00" <= ch <= "\u9fa5" or _is_mlqa_punct(ch):
            tokens.extend(run.split())
            run = ""
            tokens.append(ch)
        else:
            run += ch
    tokens.extend(run.split())
    return tokens


def _mlqa_normalize(text: str, language: str) -> str:
    """MLQA: lowercase, drop Unicode punctuation, drop the language's articles, re-tokenise."""
    text = "".join(ch for ch in text.lower() if not _is_mlqa_punct(ch))
    if _MLQA_ARTICLES[language]:
        text = re.sub(_MLQA_ARTICLES[language], " ", text)
    tokens = _mixed_segmentation(text) if language == "zh" else text.split()
    return " ".join(t for t in tokens if t.strip())


def _token_f1(prediction: str, gold: str) -> float:
    pred, ref = prediction.split(), gold.split()
    same = sum((Counter(pred) & Counter(ref)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def _qa_em_f1(
    predictions: Mapping[Hashable, str],
    gold: Mapping[Hashable, Sequence[str]],
    normalize: Callable[[str], str],
    official: bool,
) -> dict[str, float]:
    """EM / F1 over the gold questions. ``official=False`` (xitt's own runner): predictions must
    cover exactly the gold ids, else ValueError. ``official=True`` (files from outside): the
    official scripts' reading -- google-research/xtreme third_party/evaluate_squad.py (the SQuAD
    v1.1 ``evaluate``) and third_party/evaluate_mlqa.py loop over the gold questions only, so a
    prediction id no gold question has is never looked at, and a gold question without a
    prediction prints "Unanswered question <id> will receive score 0." to stderr and counts 0 in
    the denominator ``total``. Whitespace around an answer never matters in either mode: both
    normalisations collapse it (``white_space_fix``)."""
    if not gold:
        raise ValueError("gold is empty; pass {question_id: [answer texts]} for every question.")
    missing = [q for q in gold if q not in predictions]
    if not official:
        extra = [q for q in predictions if q not in gold]
        if extra:
            raise ValueError(
                f"{len(extra)} predictions have no gold question (e.g. {extra[:3]}); "
                "are predictions and gold from the same language/split?"
            )
        if missing:
            raise ValueError(
                f"{len(missing)} questions have no prediction (e.g. {missing[:3]}); predict every "
                "question, or pass official=True to score them 0 as the official scripts do."
            )
    for qid in missing:
        print(f"Unanswered question {qid} will receive score 0.", file=sys.stderr)
    em = f1 = 0.0
    for qid, answers in gold.items():
        if qid not in predictions:
            continue
        pred = normalize(predictions[qid])
        if len(answers) == 0:
            # No-answer question (SQuAD v2 rule): only the empty prediction is right.
            hit = float(pred == "")
            em, f1 = em + hit, f1 + hit
            continue
        refs = [normalize(a) for a in answers]
        em += max(float(pred == r) for r in refs)
        f1 += max(_token_f1(pred, r) for r in refs)
    em, f1 = 100.0 * em / len(gold), 100.0 * f1 / len(gold)
    return {"em": em, "f1": f1, "em_f1": qa_score(em, f1)}


def squad_em_f1(
    predictions: Mapping[Hashable, str],
    gold: Mapping[Hashable, Sequence[str]],
    *,
    official: bool = False,
) -> dict[str, float]:
    """SQuAD v1.1 exact match and token F1, max over gold answers (XQuAD, TyDiQA-GoldP).

    ``predictions``: question id -> answer text; ``gold``: question id -> list of answer texts
    (an empty list means "no answer": only the prediction "" scores 1). Returns ``em``, ``f1`` and
    ``em_f1`` = (em + f1) / 2, all 0-100, averaged over every gold question. ``official=True``
    reads as the official script (unanswered questions score 0, unknown prediction ids are
    ignored; see :func:`_qa_em_f1`); the default is strict.
    """
    return _qa_em_f1(predictions, gold, _squad_normalize, official)


def mlqa_em_f1(
    predictions: Mapping[Hashable, str],
    gold: Mapping[Hashable, Sequence[str]],
    language: str,
    *,
    official: bool = False,
) -> dict[str, float]:
    """MLQA's official EM/F1 with its language-specific normalisation (``language`` = the answer
    language: en, es, de, vi, ar, hi, zh). Same inputs and returned columns as :func:`squad_em_f1`.

    Normalisation: lowercase; remove every Unicode punctuation character; remove the language's
    articles (the official lists: vi is của/là/cái/chiếc/những; ar removes every "ال"); tokenise on
    whitespace, or for zh one token per CJK character (mixed segmentation).
    """
    if language not in _MLQA_ARTICLES:
        raise ValueError(
            f"MLQA normalisation is defined for {list(MLQA_LANGUAGES)}, not {language!r}; "
            "score other languages with squad_em_f1 as XTREME does for XQuAD/TyDiQA."
        )
    return _qa_em_f1(predictions, gold, lambda s: _mlqa_normalize(s, language), official)


def qa_score(em: float, f1: float) -> float:
    """XTREME's QA task score: (EM + F1) / 2."""
    return (em + f1) / 2.0


# ----------------------------------------------------------------------------- retrieval
def _unit_rows(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array (sentences x dims), got shape {x.shape}.")
    x = x.astype(np.float64) if not np.issubdtype(x.dtype, np.floating) else x
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, np.finfo(x.dtype).tiny)


def tatoeba_nearest(src_embeddings: np.ndarray, tgt_embeddings: np.ndarray) -> np.ndarray:
    """Row j: the source row nearest (cosine) to target row j; ties go to the lowest index.

    As XTREME's ``similarity_search(x=src, y=tgt)``: the source sentences (non-English) form the
    index and each target sentence (English) queries it; row i of each side is a pair.
    """
    x, y = _unit_rows(src_embeddings, "src_embeddings"), _unit_rows(tgt_embeddings, "tgt_embeddings")
    if x.shape != y.shape:
        raise ValueError(
            f"src_embeddings {x.shape} and tgt_embeddings {y.shape} must have the same shape: "
            "Tatoeba pairs row i with row i."
        )
    return np.argmax(y @ x.T, axis=1)


def tatoeba_accuracy(src_embeddings: np.ndarray, tgt_embeddings: np.ndarray) -> float:
    """Tatoeba top-1 accuracy (0-100): a hit is when target row j's nearest source row
    (``tatoeba_nearest``) is j."""
    nearest = tatoeba_nearest(src_embeddings, tgt_embeddings)
    return 100.0 * float(np.mean(nearest == np.arange(len(nearest))))


def _knn(x: np.ndarray, y: np.ndarray, k: int, block_elems: int = 1 << 24) -> tuple[np.ndarray, np.ndarray]:
    """Top-k cosine neighbours in ``y`` of each (unit) row of ``x``: (sims, indices), best first."""
    k = min(k, len(y))
    sims, inds = np.empty((len(x), k), x.dtype), np.empty((len(x), k), np.int64)
    step = max(1, block_elems // len(y))  # bounds memory: step x len(y) similarities at a time
    for start in range(0, len(x), step):
        s = x[start : start + step] @ y.T
        part = np.argpartition(-s, k - 1, axis=1)[:, :k]
        part_sims = np.take_along_axis(s, part, axis=1)
        order = np.argsort(-part_sims, axis=1, kind="stable")
        inds[start : start + step] = np.take_along_axis(part, order, axis=1)
        sims[start : start + step] = np.take_along_axis(part_sims, order, axis=1)
    return sims, inds


_MARGINS = {"ratio": lambda a, b: a / b, "distance": lambda a, b: a - b, "absolute": lambda a, b: a}


def mine_bucc_candidates(
    src_embeddings: np.ndarray,
    tgt_embeddings: np.ndarray,
    src_ids: Sequence[Hashable],
    tgt_ids: Sequence[Hashable],
    *,
    k: int = 4,
    margin: str = "ratio",
    min_score: float = 0.0,
) -> dict[Pair, float]:
    """Mine candidate pairs as XTREME/LASER's ``mine_bitext`` (mode mine, retrieval max).

    For each sentence on either side, score its k nearest neighbours by the margin criterion
    ``margin(cos(x, y), (mean_k(x) + mean_k(y)) / 2)`` (``ratio``, the default; ``distance``;
    ``absolute`` = plain cosine), keep its best; then, best score first, accept pairs whose source
    and target are both still unused, dropping scores <= ``min_score`` (XTREME mines with 0).
    Returns ``{(src_id, tgt_id): score}``. Pass unique sentences (XTREME drops sentences that occur
    under several ids). Memory is bounded by computing similarities in row blocks.
    """
    if margin not in _MARGINS:
        raise ValueError(f"margin must be one of {list(_MARGINS)}, got {margin!r}.")
    x, y = _unit_rows(src_embeddings, "src_embeddings"), _unit_rows(tgt_embeddings, "tgt_embeddings")
    if len(src_ids) != len(x) or len(tgt_ids) != len(y):
        raise ValueError(
            f"need one id per embedding row: {len(src_ids)} src_ids for {len(x)} rows, "
            f"{len(tgt_ids)} tgt_ids for {len(y)} rows."
        )
    fn = _MARGINS[margin]
    x2y_sim, x2y_ind = _knn(x, y, k)
    y2x_sim, y2x_ind = _knn(y, x, k)
    fwd_mean, bwd_mean = x2y_sim.mean(axis=1), y2x_sim.mean(axis=1)
    fwd = fn(x2y_sim, (fwd_mean[:, None] + bwd_mean[x2y_ind]) / 2)
    bwd = fn(y2x_sim, (bwd_mean[:, None] + fwd_mean[y2x_ind]) / 2)
    src = np.concatenate([np.arange(len(x)), y2x_ind[np.arange(len(y)), bwd.argmax(axis=1)]])
    tgt = np.concatenate([x2y_ind[np.arange(len(x)), fwd.argmax(axis=1)], np.arange(len(y))])
    scores = np.concatenate([fwd.max(axis=1), bwd.max(axis=1)])
    seen_src, seen_tgt, mined = set(), set(), {}
    for i in np.argsort(-scores, kind="stable"):
        s, t = int(src[i]), int(tgt[i])
        if s not in seen_src and t not in seen_tgt:
            seen_src.add(s)
            seen_tgt.add(t)
            if scores[i] > min_score:
                mined[(src_ids[s], tgt_ids[t])] = float(scores[i])
    return mined


def tune_bucc_threshold(candidates: Mapping[Pair, float], gold: Iterable[Pair]) -> float:
    """The score threshold that maximises F1 on ``gold`` (XTREME's ``bucc_optimize``).

    Candidates are swept best score first; the threshold is the midpoint between the score of the
    last kept candidate at the best F1 and the next one (that score itself if it is the last
    candidate). Pairs with score >= threshold are extracted. With no correct candidate at all the
    threshold is 0, as in XTREME.
    """
    gold = set(gold)
    if not gold:
        raise ValueError("gold is empty; pass the (src_id, tgt_id) pairs of the sample split.")
    items = sorted(candidates.items(), key=lambda item: -item[1])
    correct, best_f1, threshold = 0, 0.0, 0.0
    for n, (pair, score) in enumerate(items, start=1):
        correct += pair in gold
        if correct:
            precision, recall = correct / n, correct / len(gold)
            f1 = 2 * precision * recall / (precision + recall)
            if f1 > best_f1:
                best_f1 = f1
                threshold = (score + items[n][1]) / 2 if n < len(items) else score
    return float(threshold)


def bucc_f1(
    candidates: Mapping[Pair, float] | Iterable[Pair], gold: Iterable[Pair], threshold: float | None = None
) -> dict[str, float]:
    """BUCC ``f1``, ``precision``, ``recall`` (0-100) of predicted pairs against gold pairs.

    ``candidates`` is either ``{(src_id, tgt_id): score}`` with a ``threshold`` (pairs with
    score >= threshold are predicted) or an iterable of predicted pairs (then no threshold).
    """
    if isinstance(candidates, Mapping):
        if threshold is None:
            raise ValueError(
                "scored candidates need a threshold; tune one with tune_bucc_threshold "
                "on the sample split, or pass the predicted pairs themselves."
            )
        predicted = {pair for pair, score in candidates.items() if score >= threshold}
    elif threshold is not None:
        raise ValueError("threshold applies to scored candidates ({pair: score}), not to a list of pairs.")
    else:
        predicted = set(candidates)
    gold = set(gold)
    if not gold:
        raise ValueError("gold is empty; pass the (src_id, tgt_id) pairs of the split.")
    correct = len(predicted & gold)
    if correct == 0:
        return {"f1": 0.0, "precision": 0.0, "recall": 0.0}
    precision, recall = correct / len(predicted), correct / len(gold)
    return {
        "f1": 100.0 * 2 * precision * recall / (precision + recall),
        "precision": 100.0 * precision,
        "recall": 100.0 * recall,
    }


def bucc_tuned_f1(
    sample_candidates: Mapping[Pair, float],
    sample_gold: Iterable[Pair],
    candidates: Mapping[Pair, float],
    gold: Iterable[Pair],
) -> dict[str, float]:
    """BUCC as XTREME reports it: tune the threshold on the sample split, apply it to the test split."""
    return bucc_f1(candidates, gold, tune_bucc_threshold(sample_candidates, sample_gold))


def mean_average_precision_at_k(
    ranked: Sequence[Sequence[Hashable]], relevant: Sequence[Iterable[Hashable]], k: int = 20
) -> float:
    """mAP@k (0-100) as XTREME-R's ``average_precision_at_k`` (Mewsli-X, LAReQA).

    ``ranked[q]``: ids retrieved for query q, best first; ``relevant[q]``: its relevant ids. AP@k
    sums precision@i at each first-time hit within the top k and divides by min(|relevant|, k);
    with one relevant id (Mewsli-X) this is the reciprocal rank within the top k.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}.")
    _check_parallel(ranked, relevant, "ranked", "relevant")
    total = 0.0
    for q, (ids, rel) in enumerate(zip(ranked, relevant)):
        rel = set(rel)
        if not rel:
            raise ValueError(f"query {q} has no relevant id; AP is undefined. Drop such queries first.")
        hits, ap, seen = 0, 0.0, set()
        for i, item in enumerate(list(ids)[:k], start=1):
            if item in rel and item not in seen:
                hits += 1
                ap += hits / i
            seen.add(item)
        total += ap / min(len(rel), k)
    return 100.0 * total / len(ranked)


# ----------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class Metric:
    """A task-YAML metric: ``fn(**inputs)`` returns ``{column: score}`` for exactly ``columns``;
    ``columns[0]`` is the primary one (enters averages)."""

    fn: Callable[..., dict[str, float]]
    columns: tuple[str, ...]

    @property
    def primary(self) -> str:
        return self.columns[0]


def _accuracy(predictions, references):
    return {"accuracy": accuracy(predictions, references)}


def _squad(predictions, references):
    return squad_em_f1(predictions, references)


def _mlqa(predictions, references, language):
    return mlqa_em_f1(predictions, references, language)


def _tatoeba(src_embeddings, tgt_embeddings):
    return {"accuracy": tatoeba_accuracy(src_embeddings, tgt_embeddings)}


def _map_at_20(ranked, relevant):
    return {"map_at_20": mean_average_precision_at_k(ranked, relevant, k=20)}


# ----------------------------------------------------------------------------- XTREME score
# The official task / language / group lists live in xitt.schema (analysis reads them too).


def _task_metric(task: str, metrics: Mapping[str, float]) -> float:
    if task in XTREME_GROUPS["qa"]:
        return (metrics["exact_match"] + metrics["f1"]) / 2
    for name in ("f1", "accuracy", "map@20", "map_at_20"):
        if name in metrics:
            return metrics[name]
    raise KeyError(f"{task}: no f1, accuracy or map@20 among {sorted(metrics)}")


def _task_score(task: str, by_lang: Mapping[str, Mapping[str, float]], official: list[str]) -> float:
    languages = official or sorted(by_lang)  # lareqa: no official list (see XTREME_R_LANGUAGES)
    missing = [lg for lg in languages if lg not in by_lang]
    if missing or not languages:
        raise ValueError(
            f"{task} lacks official language(s) {missing or 'any'}; XTREME averages over all of them"
        )
    return sum(_task_metric(task, by_lang[lg]) for lg in languages) / len(languages)


def xtreme_score(
    results: Mapping[str, Mapping[str, Mapping[str, float]]], *, version: str = "xtreme"
) -> dict:
    """The XTREME (``version="xtreme"``) or XTREME-R (``"xtreme-r"``) scores as the official
    evaluate.py computes them with ``--xtreme_version``.

    ``results``: task (XTREME ids: pawsx, xnli, panx, udpos, bucc2018, tatoeba, xquad, mlqa,
    tydiqa; XTREME-R: xnli, xcopa, panx, udpos, xquad, mlqa, tydiqa, tatoeba, mewslix, lareqa) ->
    language -> {metric: value} (``exact_match`` and ``f1`` for QA, ``f1`` for tagging and BUCC,
    ``map@20`` (or xitt's ``map_at_20``) for Mewsli-X and LAReQA, ``accuracy`` otherwise; 0-100).
    Languages outside a task's official list are ignored; a missing official language is an error
    (the official script cannot score without it). Returns {"tasks": {task: score}, "groups":
    {group: score} (complete groups only), "all_task": mean of the task scores, or None unless
    every task of the version is present}.
    """
    if version not in XTREME_VERSIONS:
        raise ValueError(f"version must be one of {list(XTREME_VERSIONS)}; got {version!r}")
    languages, groups = XTREME_VERSIONS[version]
    tasks = {}
    for task, by_lang in results.items():
        if task not in languages:
            raise KeyError(f"unknown {version} task {task!r}; known: {list(languages)}")
        tasks[task] = _task_score(task, by_lang, languages[task])
    return {
        "tasks": tasks,
        "groups": {
            g: sum(tasks[t] for t in members) / len(members)
            for g, members in groups.items()
            if all(t in tasks for t in members)
        },
        "all_task": sum(tasks.values()) / len(tasks) if set(tasks) == set(languages) else None,
    }


# Named functions, not lambdas, so that the registry pickles (process pools, submitit).
METRICS: dict[str, Metric] = {
    "accuracy": Metric(_accuracy, ("accuracy",)),
    "f1_seqeval": Metric(seqeval_scores, ("f1", "precision", "recall")),
    "squad_em_f1": Metric(_squad, ("em_f1", "em", "f1")),
    "mlqa_em_f1": Metric(_mlqa, ("em_f1", "em", "f1")),
    "bucc_f1": Metric(bucc_tuned_f1, ("f1", "precision", "recall")),
    "tatoeba_accuracy": Metric(_tatoeba, ("accuracy",)),
    "map_at_20": Metric(_map_at_20, ("map_at_20",)),
}


def evaluate(metric: str, **inputs) -> dict[str, float]:
    """Score with the task-YAML metric ``metric``; ``inputs`` are that function's arguments:
    ``predictions, references`` (accuracy, f1_seqeval, squad_em_f1; mlqa_em_f1 also ``language``),
    ``sample_candidates, sample_gold, candidates, gold`` (bucc_f1), ``src_embeddings,
    tgt_embeddings`` (tatoeba_accuracy), ``ranked, relevant`` (map_at_20)."""
    if metric not in METRICS:
        raise KeyError(f"unknown metric {metric!r}; known: {list(METRICS)}.{did_you_mean(metric, METRICS)}")
    return METRICS[metric].fn(**inputs)
