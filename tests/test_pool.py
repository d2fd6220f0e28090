"""LAReQA mAP@20 on one shared multilingual pool equals XTREME-R's official computation.

Reference: google-research/xtreme@838c13b69daafb9328785d16caae2711e4012123
third_party/utils_lareqa.py (load_data, generate_examples, CandidateSet, average_precision_at_k,
mean_avg_prec_at_k), replayed below on a small XQuAD-R-shaped fixture (SQuAD JSON with
``sentence_breaks``; three languages, parallel question ids). The official encodings are
L2-normalised [CLS] vectors (third_party/bert.py BertForRetrieval.normalized_cls_token), so the
replay gets normalised vectors and takes plain dot products as the official code does.
"""

import collections
import json

import numpy as np
import pytest

from xitt.train.pool import build_shared_pool, read_xquad_r, shared_pool_scores

LANGS = ["en", "de", "es"]


def paragraph(lang, p, sentences, questions):
    text, breaks = "", []
    for s in sentences:
        breaks.append([len(text), len(text) + len(s)])
        text += s + " "
    qas = []
    for qid, sent, offset in questions:
        start = breaks[sent][0] + offset if sent is not None else len(text) - 1  # None: in no sentence
        qas.append(
            {
                "id": qid,
                "question": f"{lang} question {qid}",
                "answers": [{"text": "x", "answer_start": start}],
            }
        )
    return {"context": text, "sentence_breaks": breaks, "qas": qas}


def xquad_r(lang):
    p1 = paragraph(
        lang, 1, [f"{lang} one a.", f"{lang} one b.", f"{lang} one c."], [("q1", 0, 1), ("q2", 2, 0)]
    )
    p2 = paragraph(lang, 2, [f"{lang} two a.", f"{lang} two b."], [("q3", 1, 2), ("q4", None, 0)])
    return {"data": [{"title": "t", "paragraphs": [p1, p2]}]}


def official_map(data, vectors, languages, k=20):
    """utils_lareqa.load_data + mean_avg_prec_at_k, restricted to questions of ``languages``."""
    questions, cand_pos, cand_vecs = [], {}, []
    by_xling = collections.defaultdict(list)
    for lang, squad in data.items():
        num_paragraphs = 0
        for passage in squad["data"]:
            for para in passage["paragraphs"]:
                num_paragraphs += 1
                context_id = f"{lang}_{num_paragraphs}"
                context = para["context"]
                sentences = [context[s:e] for s, e in para["sentence_breaks"]]
                for qa in para["qas"]:
                    start = qa["answers"][0]["answer_start"]
                    sentence = next(
                        (context[s:e] for s, e in para["sentence_breaks"] if s <= start < e), None
                    )
                    if not sentence:
                        continue
                    questions.append((qa["question"], qa["id"], lang))
                    for pos, sent in enumerate(sentences):
                        uid = f"{context_id}_{pos}"
                        if uid not in cand_pos:
                            cand_pos[uid] = len(cand_vecs)
                            cand_vecs.append(vectors[sent + context])
                        if sent == sentence:
                            by_xling[qa["id"]].append(cand_pos[uid])
    matrix = np.stack(cand_vecs)
    aps = []
    for text, xling_id, lang in questions:
        if lang not in languages:
            continue
        scores = np.expand_dims(vectors[text], 0).dot(matrix.T)
        targets = np.array(sorted(set(by_xling[xling_id])))
        ranked = np.squeeze(scores).argsort()[::-1][:k]
        score, hits = 0.0, 0.0
        for i, pred in enumerate(ranked):
            if pred in targets and pred not in ranked[:i]:
                hits += 1.0
                score += hits / (i + 1.0)
        aps.append(score / min(len(targets), k))
    return 100 * float(np.mean(aps))


@pytest.fixture
def data_and_vectors():
    data = {lang: xquad_r(lang) for lang in LANGS}
    pool = build_shared_pool(data)
    rng = np.random.default_rng(7)
    vectors = {t: rng.normal(size=8) for t in pool.candidate_texts}
    for text, relevant in zip(pool.question_texts, pool.relevant):
        # a question lies near its answers, with noise: rankings are neither perfect nor random
        vectors[text] = np.mean([vectors[pool.candidate_texts[c]] for c in relevant], 0) + rng.normal(size=8)
    unit = {t: v / np.linalg.norm(v) for t, v in vectors.items()}
    return data, unit


def test_pool_holds_every_sentence_of_every_language_and_parallel_answers(data_and_vectors):
    data, _ = data_and_vectors
    pool = build_shared_pool(data)
    assert len(pool.candidate_texts) == 5 * len(LANGS)  # 3 + 2 sentences per language
    assert len(pool.question_texts) == 3 * len(LANGS)  # q4's answer lies in no sentence: skipped
    q1_en = pool.question_ids.index("q1")
    assert [pool.candidate_languages[c] for c in pool.relevant[q1_en]] == LANGS  # one answer per language


@pytest.mark.parametrize("k", [1, 2, 20])
def test_lareqa_map_on_a_shared_pool_equals_the_official_formula(data_and_vectors, k):
    data, vectors = data_and_vectors
    pool = build_shared_pool(data)
    ours = shared_pool_scores(pool, lambda texts: np.stack([vectors[t] for t in texts]), k=k)
    for lang in LANGS:
        assert ours[lang]["map_at_20"] == pytest.approx(official_map(data, vectors, [lang], k), abs=1e-9)
    overall = official_map(data, vectors, LANGS, k)  # the official single number
    assert np.mean([ours[lang]["map_at_20"] for lang in LANGS]) == pytest.approx(overall, abs=1e-9)
    # one pool per language with one relevant item (xitt's older protocol) gives another number
    if k == 20:
        per_language = official_map({"en": data["en"]}, vectors, ["en"], k)
        assert per_language != pytest.approx(ours["en"]["map_at_20"])


def test_missing_xquad_r_files_name_the_layout(tmp_path):
    (tmp_path / "lareqa" / "xquad-r").mkdir(parents=True)
    (tmp_path / "lareqa" / "xquad-r" / "en.json").write_text(json.dumps(xquad_r("en")))
    assert set(read_xquad_r(tmp_path, ["en"])) == {"en"}
    with pytest.raises(FileNotFoundError, match="lareqa/xquad-r/<lang>.json.*missing de"):
        read_xquad_r(tmp_path, ["en", "de"])


def test_a_lareqa_run_ranks_against_the_shared_pool(tiny_encoder, tmp_path):
    from xitt.grid.spec import expand_grid, parse_grid
    from xitt.train import chain

    (tmp_path / "lareqa" / "xquad-r").mkdir(parents=True)
    for lang in LANGS:
        (tmp_path / "lareqa" / "xquad-r" / f"{lang}.json").write_text(json.dumps(xquad_r(lang)))
    grid = parse_grid(
        {
            "encoders": [{"name": "tiny", "path": str(tiny_encoder)}],
            "intermediates": ["none"],
            "targets": ["lareqa"],
            "languages": {"lareqa": LANGS},
            "seeds": [1],
            "recipe": "xtreme-r",
            # the pool only, no dual-encoder training (tests/test_dual.py trains)
            "task_train": {"lareqa": {"retrieval_training": "none"}},
            "data_dir": str(tmp_path),
        }
    )
    run = expand_grid(grid)[1][0]
    assert run.target_train.candidate_pool == "shared"
    out = chain.run_target(run, str(tiny_encoder), progress=False)
    assert set(out.scores) == set(LANGS)
    assert all(0 < s["map_at_20"] <= 100 for s in out.scores.values())
