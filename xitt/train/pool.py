"""LAReQA's shared multilingual candidate pool and its mAP@20 (``candidate_pool: shared``).

XTREME-R ranks every question, in every language, against ONE pool that holds the candidate
answers of all languages; the relevant items of a question are the answer sentences of its
parallel versions in every language (google-research/xtreme third_party/utils_lareqa.py
load_data and mean_avg_prec_at_k, third_party/evaluate_retrieval.py task lareqa):

* data: XQuAD-R, one SQuAD-format JSON per language with ``sentence_breaks`` per paragraph,
  read from ``<data_dir>/lareqa/xquad-r/<lang>.json`` (``xitt convert lareqa`` keeps them there;
  they are not among the manifest-checked prepared copies);
* a candidate is a sentence of a paragraph, identified by (language, paragraph number, sentence
  position) and encoded as sentence + paragraph text; every sentence of every paragraph is a
  candidate, not only the answers;
* a question's relevant candidates are those whose sentence is the answer sentence of a question
  with the same id (``xling_id``) in any language; a question whose answer start lies in no
  sentence is skipped, as the official loader does;
* scores are dot products of L2-normalised encodings; AP@20 divides by min(|relevant|, 20).

xitt reports mAP@20 per question language (the official single number is their mean: XQuAD-R
has the same questions in every language). The pool holds the run's languages: restricting a
grid's LAReQA languages shrinks the pool, and the score is then not XTREME-R's.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xitt.train.metrics import mean_average_precision_at_k


@dataclass
class SharedPool:
    """Questions and candidates of all languages; ``relevant[q]`` indexes ``candidate_texts``."""

    question_texts: list[str] = field(default_factory=list)
    question_languages: list[str] = field(default_factory=list)
    question_ids: list[str] = field(default_factory=list)  # xling ids
    candidate_texts: list[str] = field(default_factory=list)
    candidate_languages: list[str] = field(default_factory=list)
    relevant: list[list[int]] = field(default_factory=list)


def _paragraph_candidates(
    pool: SharedPool, seen: dict, lang: str, para_no: int, paragraph: dict
) -> list[int]:
    context = paragraph["context"]
    indices = []
    for pos, (start, end) in enumerate(paragraph["sentence_breaks"]):
        uid = (lang, para_no, pos)
        if uid not in seen:
            seen[uid] = len(pool.candidate_texts)
            pool.candidate_texts.append(context[start:end] + context)
            pool.candidate_languages.append(lang)
        indices.append(seen[uid])
    return indices


def build_shared_pool(squad_per_language: Mapping[str, dict]) -> SharedPool:
    """The pool of XQuAD-R files (language -> parsed SQuAD JSON with ``sentence_breaks``)."""
    pool, seen = SharedPool(), {}
    answer_candidates: dict[str, list[int]] = {}
    for lang, data in squad_per_language.items():
        para_no = 0
        for passage in data["data"]:
            for paragraph in passage["paragraphs"]:
                para_no += 1
                cands = _paragraph_candidates(pool, seen, lang, para_no, paragraph)
                breaks = paragraph["sentence_breaks"]
                for qa in paragraph["qas"]:
                    start = qa["answers"][0]["answer_start"]
                    pos = next((i for i, (s, e) in enumerate(breaks) if s <= start < e), None)
                    if pos is None:  # no sentence holds the answer: skipped (official loader)
                        continue
                    pool.question_texts.append(qa["question"])
                    pool.question_languages.append(lang)
                    pool.question_ids.append(qa["id"])
                    relevant = answer_candidates.setdefault(qa["id"], [])
                    if cands[pos] not in relevant:  # one entry per candidate (the official set())
                        relevant.append(cands[pos])
    pool.relevant = [answer_candidates[q] for q in pool.question_ids]
    return pool


def read_xquad_r(data_dir: Path, languages: Sequence[str], task: str = "lareqa") -> dict[str, dict]:
    folder = Path(data_dir) / task / "xquad-r"
    missing = [lang for lang in languages if not (folder / f"{lang}.json").is_file()]
    if missing:
        raise FileNotFoundError(
            f"{task}: candidate_pool 'shared' reads XQuAD-R from {folder}/<lang>.json; missing "
            f"{', '.join(missing)}. Run `xitt convert lareqa <download>/lareqa --data-dir <data_dir>` (it "
            f"keeps the XQuAD-R files there), or set task_train.{task}.candidate_pool: language."
        )
    return {lang: json.loads((folder / f"{lang}.json").read_text(encoding="utf-8")) for lang in languages}


def _unit(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)


def shared_pool_scores(
    pool: SharedPool, encode: Callable[[Sequence[str]], np.ndarray], k: int = 20
) -> dict[str, dict[str, float]]:
    """{question language: {"map_at_20": mAP@k}} of every question against the whole pool.

    ``encode(texts) -> (n, d)`` embeds questions and candidates (one encoder, as XTREME-R's
    inference uses the first tower for both).
    """
    questions = _unit(encode(pool.question_texts))
    candidates = _unit(encode(pool.candidate_texts))
    scores = questions @ candidates.T
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    out = {}
    for lang in dict.fromkeys(pool.question_languages):
        rows = [q for q, ql in enumerate(pool.question_languages) if ql == lang]
        value = mean_average_precision_at_k(
            [top[q].tolist() for q in rows], [pool.relevant[q] for q in rows], k=k
        )
        out[lang] = {"map_at_20": value}
    return out
