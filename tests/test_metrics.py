"""Metrics: hand-worked examples (expected numbers reasoned out in the comments) and seqeval itself."""

import pickle
import warnings

import numpy as np
import pytest

from xitt.train import metrics as m


def approx(x):
    return pytest.approx(x, abs=1e-9)


# ----------------------------------------------------------------------------- accuracy
def test_accuracy_hand_example():
    assert m.accuracy([1, 0, 2, 2], [1, 1, 2, 0]) == approx(50.0)
    assert m.accuracy(["entailment"], ["entailment"]) == approx(100.0)


@pytest.mark.parametrize("pred, ref", [([1, 2], [1]), ([], [])])
def test_accuracy_rejects_bad_lengths(pred, ref):
    with pytest.raises(ValueError, match="predictions|empty"):
        m.accuracy(pred, ref)


# ----------------------------------------------------------------------------- seqeval
def test_seqeval_two_entities_one_hit():
    # gold: PER (0-1) and LOC (3); prediction finds only PER -> P = 1/1, R = 1/2, F1 = 2/3.
    gold = [["B-PER", "I-PER", "O", "B-LOC"]]
    pred = [["B-PER", "I-PER", "O", "O"]]
    scores = m.seqeval_scores(pred, gold)
    assert scores == {"precision": approx(100.0), "recall": approx(50.0), "f1": approx(200 / 3)}
    assert m.seqeval_f1(pred, gold) == approx(200 / 3)


def test_seqeval_partial_span_is_a_miss():
    # A PER predicted over 1 of its 2 tokens does not count: F1 = 0.
    assert m.seqeval_f1([["B-PER", "O"]], [["B-PER", "I-PER"]]) == approx(0.0)


@pytest.mark.parametrize(
    "tags",
    [
        ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"],  # PAN-X
        ["NOUN", "VERB", "ADJ", "ADP", "DET", "PRON", "PROPN", "PUNCT", "SCONJ", "X"],  # UD-POS
    ],
)
def test_seqeval_matches_seqeval_library_on_random_tags(tags):
    from seqeval.metrics import f1_score, precision_score, recall_score

    warnings.simplefilter("ignore")  # seqeval warns on every UD-POS tag (pytest restores filters)
    rng = np.random.default_rng(0)
    gold = [list(rng.choice(tags, size=int(rng.integers(1, 12)))) for _ in range(60)]
    pred = [[t if rng.random() < 0.7 else str(rng.choice(tags)) for t in s] for s in gold]
    ours = m.seqeval_scores(pred, gold, scheme="seqeval")
    assert ours["f1"] == approx(100 * f1_score(gold, pred))
    assert ours["precision"] == approx(100 * precision_score(gold, pred))
    assert ours["recall"] == approx(100 * recall_score(gold, pred))


def test_seqeval_on_udpos_tags_mirrors_xtreme():
    # UD-POS tags have no B-/I- prefix: seqeval merges runs of equal tags into one chunk.
    # gold chunks NOUN[0-1], VERB[2]; pred chunks NOUN[0], VERB[1-2] -> no chunk matches, F1 = 0,
    # although 2 of 3 tokens are right. This is what XTREME's evaluate.py reports.
    from seqeval.metrics import f1_score

    gold, pred = [["NOUN", "NOUN", "VERB"]], [["NOUN", "VERB", "VERB"]]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert m.seqeval_f1(pred, gold) == approx(0.0)
    assert not caught  # seqeval's "not a NE tag" warnings are silenced
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert m.seqeval_scores(pred, gold, scheme="seqeval")["f1"] == approx(100 * f1_score(gold, pred))
    # Alternating tags are single-token chunks, so then it equals token accuracy.
    assert m.seqeval_f1([["DET", "NOUN", "VERB"]], [["DET", "NOUN", "ADJ"]]) == approx(200 / 3)


def test_seqeval_rejects_length_mismatch():
    with pytest.raises(ValueError, match="sentence 0 has 1 predicted tags but 2 gold"):
        m.seqeval_f1([["O"]], [["O", "O"]])


# ----------------------------------------------------------------------------- SQuAD v1.1
def test_squad_normalisation_cases():
    cases = {
        "q1": ("The Cat!", ["cat"]),  # case, article, punctuation -> EM
        "q2": ("U.S.A.", ["USA"]),  # dots removed -> EM
        "q3": ("  an   apple ", ["apple"]),
    }  # article + whitespace -> EM
    preds = {q: p for q, (p, _) in cases.items()}
    gold = {q: g for q, (_, g) in cases.items()}
    assert m.squad_em_f1(preds, gold) == {"em": approx(100), "f1": approx(100), "em_f1": approx(100)}


def test_squad_token_f1_and_max_over_gold():
    # q1: "big cat" vs "cat sat": 1 common token, P = R = 1/2 -> F1 0.5, EM 0.
    # q2: max over gold answers: "the cat" normalises to "cat" -> EM 1, F1 1.
    preds = {"q1": "the big cat", "q2": "cat"}
    gold = {"q1": ["a cat sat"], "q2": ["dog", "the cat"]}
    scores = m.squad_em_f1(preds, gold)
    assert scores["em"] == approx(50.0)
    assert scores["f1"] == approx(75.0)
    assert scores["em_f1"] == approx(62.5)


def test_squad_no_answer_and_missing_predictions():
    assert m.squad_em_f1({"q": ""}, {"q": []})["em"] == approx(100.0)
    assert m.squad_em_f1({"q": "x"}, {"q": []})["f1"] == approx(0.0)
    with pytest.raises(ValueError, match="1 questions have no prediction"):
        m.squad_em_f1({"a": "x"}, {"a": ["x"], "b": ["y"]})
    with pytest.raises(ValueError, match="no gold question"):
        m.squad_em_f1({"a": "x", "z": "y"}, {"a": ["x"]})


@pytest.mark.parametrize("scorer", ["squad", "mlqa"])
def test_qa_official_reading_of_outside_files(scorer, capsys):
    # The official scripts' evaluate(dataset, predictions) (google-research/xtreme
    # third_party/evaluate_squad.py = SQuAD v1.1 evaluate-v1.1.py, and third_party/evaluate_mlqa.py):
    # the loop runs over the gold qas only; `total += 1` for each, and a qa id not in predictions
    # prints "Unanswered question <id> will receive score 0." to stderr and `continue`s; a
    # prediction id that no qa has is never read. normalize_answer's white_space_fix
    # (' '.join(text.split())) makes surrounding whitespace irrelevant.
    # Gold q1 "Denver Broncos", q2 "1990", q3 "the cat"; predictions: q1 padded with
    # whitespace (exact), q3 wrong ("dog"), q2 unanswered, "zz" unknown.
    # EM = (1 + 0 + 0) / 3; F1 = (1 + 0 + 0) / 3 -> 33.33 each.
    gold = {"q1": ["Denver Broncos"], "q2": ["1990"], "q3": ["the cat"]}
    preds = {"q1": "  Denver   Broncos\n", "q3": "dog", "zz": "1990"}
    score = (
        m.squad_em_f1(preds, gold, official=True)
        if scorer == "squad"
        else m.mlqa_em_f1(preds, gold, "en", official=True)
    )
    assert score["em"] == approx(100 / 3) and score["f1"] == approx(100 / 3)
    assert capsys.readouterr().err == "Unanswered question q2 will receive score 0.\n"
    # The runner's reading (the default) stays strict: its own predictions cover every id.
    with pytest.raises(ValueError, match="have no gold question"):
        m.squad_em_f1(preds, gold)
    assert m.squad_em_f1({"q1": " denver broncos "}, {"q1": ["Denver Broncos"]})["em"] == approx(100.0)


def test_qa_score():
    assert m.qa_score(80.0, 90.0) == approx(85.0)


# ----------------------------------------------------------------------------- MLQA
@pytest.mark.parametrize(
    "language, pred, gold",
    [
        ("es", "el gato", "gato"),
        ("es", "«gato»", "gato"),  # Unicode punctuation (category Pi/Pf)
        ("de", "der Hund", "Hund"),
        ("vi", "những con mèo", "con mèo"),
        ("ar", "الكتاب", "كتاب"),
        ("en", "The Cat!", "cat"),
    ],
)
def test_mlqa_language_specific_exact_match(language, pred, gold):
    assert m.mlqa_em_f1({"q": pred}, {"q": [gold]}, language)["em"] == approx(100.0)


def test_mlqa_differs_from_squad_where_it_should():
    # SQuAD knows only English articles and ASCII punctuation.
    assert m.squad_em_f1({"q": "el gato"}, {"q": ["gato"]})["em"] == approx(0.0)
    assert m.squad_em_f1({"q": "«gato»"}, {"q": ["gato"]})["em"] == approx(0.0)
    # Hindi has no articles: "the" stays, "a b" vs "b" -> P 1/2, R 1 -> F1 2/3.
    assert m.mlqa_em_f1({"q": "the x"}, {"q": ["x"]}, "hi")["f1"] == approx(200 / 3)


def test_mlqa_chinese_character_f1():
    # zh: one token per character. "北京大学" vs "北京": 2 common of 4 predicted, 2 gold
    # -> P 1/2, R 1 -> F1 2/3; EM 0. SQuAD sees one token each -> F1 0.
    scores = m.mlqa_em_f1({"q": "北京大学"}, {"q": ["北京"]}, "zh")
    assert scores["em"] == approx(0.0)
    assert scores["f1"] == approx(200 / 3)
    assert m.squad_em_f1({"q": "北京大学"}, {"q": ["北京"]})["f1"] == approx(0.0)
    # Latin runs inside Chinese stay whitespace tokens; punctuation is dropped.
    assert m._mlqa_normalize("我爱 Python 3。", "zh") == "我 爱 python 3"


def test_mlqa_unknown_language():
    with pytest.raises(ValueError, match="squad_em_f1"):
        m.mlqa_em_f1({"q": "x"}, {"q": ["x"]}, "fr")


# ----------------------------------------------------------------------------- BUCC
CANDIDATES = {("s1", "t1"): 0.9, ("s2", "t9"): 0.8, ("s3", "t3"): 0.7, ("s4", "t4"): 0.6, ("s5", "t8"): 0.5}
GOLD = {("s1", "t1"), ("s3", "t3"), ("s4", "t4"), ("s6", "t6")}


def test_bucc_threshold_tuning_hand_example():
    # Sweep best-first (|gold| = 4): n=1 F1 .4; n=2 .333; n=3 4/7; n=4 P=R=3/4 -> F1 .75 (best);
    # n=5 .667. Threshold = midpoint of the 4th and 5th scores = (0.6 + 0.5) / 2.
    threshold = m.tune_bucc_threshold(CANDIDATES, GOLD)
    assert threshold == approx(0.55)
    assert m.bucc_f1(CANDIDATES, GOLD, threshold) == {
        "f1": approx(75),
        "precision": approx(75),
        "recall": approx(75),
    }


def test_bucc_threshold_applied_to_test_split():
    # Threshold 0.55 from the sample split keeps (a,b) and (e,f): 1 of 2 correct, 1 of 2 gold.
    test = {("a", "b"): 0.6, ("c", "d"): 0.5, ("e", "f"): 0.9}
    test_gold = {("a", "b"), ("c", "d")}
    expected = {"f1": approx(50), "precision": approx(50), "recall": approx(50)}
    assert m.bucc_tuned_f1(CANDIDATES, GOLD, test, test_gold) == expected
    assert (
        m.evaluate("bucc_f1", sample_candidates=CANDIDATES, sample_gold=GOLD, candidates=test, gold=test_gold)
        == expected
    )


def test_bucc_edge_cases():
    assert m.tune_bucc_threshold({(1, 1): 0.9}, {(1, 1)}) == approx(0.9)  # best at the last item
    assert m.tune_bucc_threshold({(1, 2): 0.9}, {(1, 1)}) == 0.0  # nothing right: XTREME's 0
    assert m.bucc_f1([(1, 1), (2, 3)], {(1, 1)})["precision"] == approx(50.0)
    assert m.bucc_f1([(2, 3)], {(1, 1)}) == {"f1": 0.0, "precision": 0.0, "recall": 0.0}
    with pytest.raises(ValueError, match="need a threshold"):
        m.bucc_f1(CANDIDATES, GOLD)
    with pytest.raises(ValueError, match="gold is empty"):
        m.tune_bucc_threshold(CANDIDATES, set())


def test_bucc_mining_recovers_a_permutation():
    # One-hot vectors: each source has cosine 1 with its partner, 0 with the rest. With k = 2,
    # mean of the 2 nearest = 0.5 on both sides, so the ratio margin is 1 / 0.5 = 2.
    x = np.eye(3)
    y = np.eye(3)[[2, 0, 1]]  # target j is source perm[j]
    mined = m.mine_bucc_candidates(x, y, ["x0", "x1", "x2"], ["y0", "y1", "y2"], k=2)
    assert mined == {("x2", "y0"): approx(2.0), ("x0", "y1"): approx(2.0), ("x1", "y2"): approx(2.0)}
    plain = m.mine_bucc_candidates(x, y, ["x0", "x1", "x2"], ["y0", "y1", "y2"], k=2, margin="absolute")
    assert list(plain.values()) == [approx(1.0)] * 3


def test_bucc_margin_penalises_a_hub():
    # t_hub is close to every source; plain cosine pairs s1 with it, the ratio margin does not.
    x = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    y = np.array([[0.95, 0.0, 0.31], [0.7, 0.7, 0.14], [0.0, 0.69, 0.72]])
    ids_x, ids_y = ["s0", "s1"], ["t0", "t_hub", "t1"]
    plain = m.mine_bucc_candidates(x, y, ids_x, ids_y, k=3, margin="absolute")
    assert ("s1", "t_hub") in plain
    margin = m.mine_bucc_candidates(x, y, ids_x, ids_y, k=3, margin="ratio")
    assert ("s1", "t1") in margin and ("s1", "t_hub") not in margin


def test_bucc_mining_drops_non_positive_scores_like_xtreme():
    x, y = np.array([[1.0, 0.0]]), np.array([[-1.0, 0.0]])  # cosine -1
    assert m.mine_bucc_candidates(x, y, ["s"], ["t"], margin="absolute") == {}
    assert m.mine_bucc_candidates(x, y, ["s"], ["t"], margin="absolute", min_score=-2) == {
        ("s", "t"): approx(-1.0)
    }


def test_knn_blocks_do_not_change_the_result():
    rng = np.random.default_rng(3)
    x, y = m._unit_rows(rng.normal(size=(50, 8)), "x"), m._unit_rows(rng.normal(size=(40, 8)), "y")
    small, whole = m._knn(x, y, 4, block_elems=100), m._knn(x, y, 4)
    np.testing.assert_allclose(small[0], whole[0])
    np.testing.assert_array_equal(small[1], whole[1])
    brute = np.sort(x @ y.T, axis=1)[:, ::-1][:, :4]
    np.testing.assert_allclose(whole[0], brute)


def test_bucc_mining_rejects_bad_ids():
    with pytest.raises(ValueError, match="one id per embedding row"):
        m.mine_bucc_candidates(np.eye(2), np.eye(2), ["a"], ["b", "c"])
    with pytest.raises(ValueError, match="margin must be one of"):
        m.mine_bucc_candidates(np.eye(2), np.eye(2), ["a", "b"], ["c", "d"], margin="cosine")


# ----------------------------------------------------------------------------- Tatoeba
def test_tatoeba_on_orthogonal_vectors():
    assert m.tatoeba_accuracy(np.eye(3), 5.0 * np.eye(3)) == approx(100.0)  # cosine: scale-free
    assert m.tatoeba_accuracy(np.eye(3), np.eye(3)[[1, 0, 2]]) == approx(100 / 3)


def test_tatoeba_direction_is_target_queries_source_index():
    # XTREME indexes the source side and queries with the target side. Here target row 0
    # ([.6, .8]) is nearer source row 1 -> miss; target row 1 -> hit: 50. Reversed roles: 100.
    src = np.array([[1.0, 0.0], [0.0, 1.0]])
    tgt = np.array([[0.6, 0.8], [0.0, 1.0]])
    assert m.tatoeba_accuracy(src, tgt) == approx(50.0)
    assert m.tatoeba_accuracy(tgt, src) == approx(100.0)


def test_tatoeba_rejects_shape_mismatch():
    with pytest.raises(ValueError, match="same shape"):
        m.tatoeba_accuracy(np.eye(3), np.eye(2))


# ----------------------------------------------------------------------------- mAP@20
def test_map_at_20_hand_example():
    # q1: hits at ranks 2 and 4 -> (1/2 + 2/4) / 2 = 0.5; q2: hit at rank 1 -> 1;
    # q3: its only relevant id is at rank 21, outside the top 20 -> 0. Mean = 0.5.
    ranked = [["a", "b", "c", "d"], ["x", "y"], [f"n{i}" for i in range(20)] + ["hit"]]
    relevant = [{"b", "d"}, {"x"}, {"hit"}]
    assert m.mean_average_precision_at_k(ranked, relevant, k=20) == approx(50.0)
    assert m.evaluate("map_at_20", ranked=ranked, relevant=relevant) == {"map_at_20": approx(50.0)}


@pytest.mark.parametrize(
    "relevant, ranked, k, expected",
    [
        (range(1, 6), [6, 4, 7, 1, 2], 2, 0.25),  # hit at rank 2 -> (1/2) / min(5, 2)
        ([1, 3], range(1, 6), 3, 5 / 6),  # hits at 1 and 3 -> (1 + 2/3) / 2
        ([1, 2, 3], [1, 1, 1], 3, 1 / 3),  # repeated ids count once
        (["e"], ["a", "b", "e"], 20, 1 / 3),  # one relevant id: reciprocal rank (Mewsli-X)
    ],
)
def test_average_precision_at_k_reference_cases(relevant, ranked, k, expected):
    assert m.mean_average_precision_at_k([list(ranked)], [relevant], k=k) == approx(100 * expected)


def test_map_rejects_query_without_relevant_ids():
    with pytest.raises(ValueError, match="query 0 has no relevant id"):
        m.mean_average_precision_at_k([["a"]], [set()])


# ----------------------------------------------------------------------------- registry
def test_registry_covers_the_task_yaml_metric_names():
    from xitt.tasks import METRICS as TASK_METRICS

    assert set(m.METRICS) == set(TASK_METRICS)
    assert m.METRICS["squad_em_f1"].primary == "em_f1"
    assert m.METRICS["f1_seqeval"].primary == "f1"
    pickle.loads(pickle.dumps(m.METRICS))  # travels to worker processes


def test_evaluate_returns_exactly_the_declared_columns():
    inputs = {
        "accuracy": dict(predictions=[1, 0], references=[1, 1]),
        "f1_seqeval": dict(predictions=[["B-PER"]], references=[["B-PER"]]),
        "squad_em_f1": dict(predictions={"q": "a"}, references={"q": ["a"]}),
        "mlqa_em_f1": dict(predictions={"q": "a"}, references={"q": ["a"]}, language="de"),
        "bucc_f1": dict(sample_candidates=CANDIDATES, sample_gold=GOLD, candidates=CANDIDATES, gold=GOLD),
        "tatoeba_accuracy": dict(src_embeddings=np.eye(2), tgt_embeddings=np.eye(2)),
        "map_at_20": dict(ranked=[["a"]], relevant=[{"a"}]),
    }
    assert set(inputs) == set(m.METRICS)
    for name, kwargs in inputs.items():
        out = m.evaluate(name, **kwargs)
        assert set(out) == set(m.METRICS[name].columns), name
        assert all(isinstance(v, float) and 0.0 <= v <= 100.0 for v in out.values()), name


def test_evaluate_unknown_metric_suggests():
    with pytest.raises(KeyError, match="Did you mean 'accuracy'"):
        m.evaluate("acuracy", predictions=[1], references=[1])


# Fixtures from seqeval 0.0.12, the version XTREME's evaluate.py ran (chakki-works/seqeval, tag
# v0.0.12, seqeval/metrics/sequence_labeling.py: f1_score / precision_score / recall_score of
# (gold, pred), times 100): the numbers below are what that file returns on these inputs.
XTREME_2020 = {
    "udpos": (
        [
            ["PRON", "VERB", "SCONJ", "DET", "NOUN", "NOUN", "PUNCT"],
            ["CCONJ", "ADJ", "NOUN", "SYM", "NUM", "X"],
        ],
        [
            ["PRON", "VERB", "CCONJ", "DET", "NOUN", "PROPN", "PUNCT"],
            ["SCONJ", "ADJ", "NOUN", "SYM", "NUM", "NOUN"],
        ],
        (64.0, 61.538461538, 66.666666667),
    ),
    "udpos_runs": (
        [["ADP", "DET", "NOUN", "ADV", "AUX", "VERB", "INTJ", "INTJ", "PUNCT"]],
        [["ADP", "DET", "NOUN", "ADV", "VERB", "VERB", "INTJ", "PART", "PUNCT"]],
        (62.5, 62.5, 62.5),
    ),
    "panx": (
        [["B-PER", "I-PER", "O", "B-LOC", "O"], ["B-ORG", "I-ORG", "I-ORG", "O"]],
        [["B-PER", "I-PER", "O", "B-ORG", "O"], ["B-ORG", "I-ORG", "O", "O"]],
        (100 / 3, 100 / 3, 100 / 3),
    ),
}


@pytest.mark.parametrize("name", list(XTREME_2020))
def test_default_scoring_is_the_official_scorers_seqeval_0_0_12(name):
    gold, pred, (f1, precision, recall) = XTREME_2020[name]
    out = m.seqeval_scores(pred, gold)
    assert (
        out["f1"] == approx(f1) and out["precision"] == approx(precision) and out["recall"] == approx(recall)
    )
    assert m.evaluate("f1_seqeval", predictions=pred, references=gold)["f1"] == approx(f1)


def test_newer_seqeval_is_selectable_and_differs_on_udpos():
    gold, pred, (f1, _, _) = XTREME_2020["udpos"]
    newer = m.seqeval_scores(pred, gold, scheme="seqeval")["f1"]
    # seqeval >= 1.2 reads SCONJ and CCONJ as one type CONJ: the swapped conjunctions "match"
    assert newer == approx(250 / 3) and newer != approx(f1)
    with pytest.raises(ValueError, match="scheme must be one of"):
        m.seqeval_scores(pred, gold, scheme="conll")


def test_xtreme_chunks_rules():
    # S-initial tags are one-token chunks; runs of another tag merge; sentences never share a chunk
    assert m.xtreme_chunks([["SYM", "SYM", "NOUN", "NOUN"], ["NOUN"]]) == {
        ("SYM", 0, 0),
        ("SYM", 1, 1),
        ("NOUN", 2, 3),
        ("NOUN", 5, 5),
    }


def _xtreme_results(value_of):
    out = {}
    for task, langs in m.XTREME_LANGUAGES.items():
        out[task] = {lg: value_of(task, i) for i, lg in enumerate(langs)}
    return out


def test_xtreme_score_as_the_official_evaluate_py():
    # google-research/xtreme evaluate.py: task = mean over its official languages of its metric
    # ((EM + F1) / 2 for QA); groups = mean of their tasks; all_task only with all nine tasks.
    def value(task, i):
        if task in ("xquad", "mlqa", "tydiqa"):
            return {"exact_match": 50.0, "f1": 70.0}
        if task in ("panx", "udpos", "bucc2018"):
            return {"f1": 80.0 + (i % 2), "precision": 0.0, "recall": 0.0}
        return {"accuracy": 90.0}

    res = _xtreme_results(value)
    res["xnli"]["xx"] = {"accuracy": 0.0}  # not an official language: ignored
    out = m.xtreme_score(res)
    n = len(m.XTREME_LANGUAGES["udpos"])  # 33: 17 even (80) + 16 odd (81)
    assert out["tasks"]["udpos"] == approx((17 * 80 + 16 * 81) / n)
    assert out["tasks"]["xquad"] == approx(60.0) and out["tasks"]["xnli"] == approx(90.0)
    assert out["groups"]["qa"] == approx(60.0) and out["groups"]["classification"] == approx(90.0)
    assert out["all_task"] == approx(sum(out["tasks"].values()) / 9)
    del res["tatoeba"]
    partial = m.xtreme_score(res)
    assert partial["all_task"] is None and "retrieval" not in partial["groups"] and "qa" in partial["groups"]
    del res["xnli"]["sw"]
    with pytest.raises(ValueError, match="xnli lacks official language"):
        m.xtreme_score(res)


def test_xtreme_r_score_as_the_official_evaluate_py_with_xtreme_r():
    # google-research/xtreme 838c13b6 evaluate.py, --xtreme_version xtreme-r: XTREME_R_TASK2LANGS
    # (10 tasks; panx 48, udpos 38, tatoeba 41, xquad 12 languages, lareqa none listed),
    # XTREME_R_GROUP2TASK (xcopa in "classification" and "multi_choice"), avg_metric = (EM+F1)/2
    # for QA, else f1, else accuracy, else map@20; all_task = mean of the ten task scores.
    assert [len(m.XTREME_R_LANGUAGES[t]) for t in ("panx", "udpos", "tatoeba", "xquad")] == [48, 38, 41, 12]
    values = {
        "xnli": {"accuracy": 80.0},
        "xcopa": {"accuracy": 60.0},
        "panx": {"f1": 70.0, "precision": 0.0},
        "udpos": {"f1": 74.0},
        "xquad": {"exact_match": 60.0, "f1": 76.0},  # 68
        "mlqa": {"exact_match": 50.0, "f1": 70.0},  # 60
        "tydiqa": {"exact_match": 40.0, "f1": 56.0},  # 48
        "tatoeba": {"accuracy": 66.0},
        "mewslix": {"map@20": 30.0},
    }
    res = {t: {lg: v for lg in m.XTREME_R_LANGUAGES[t]} for t, v in values.items()}
    res["mewslix"]["ar"] = {"map@20": 41.0}  # 11 languages: (10 * 30 + 41) / 11 = 31
    res["lareqa"] = {"de": {"map_at_20": 20.0}, "en": {"map_at_20": 30.0}}  # given languages: 25
    out = m.xtreme_score(res, version="xtreme-r")
    assert out["tasks"]["mewslix"] == approx(31.0) and out["tasks"]["lareqa"] == approx(25.0)
    # Hand-computed: classification (80 + 60) / 2 = 70; tagging 72; qa (68 + 60 + 48) / 3 = 58.667;
    # retrieval (66 + 31) / 2 = 48.5; multi_choice 60; all_task = (80 + 60 + 70 + 74 + 68 + 60 + 48
    # + 66 + 31 + 25) / 10 = 58.2.
    assert out["groups"] == approx(
        {"classification": 70.0, "tagging": 72.0, "qa": 176 / 3, "retrieval": 48.5, "multi_choice": 60.0}
    )
    assert out["all_task"] == approx(58.2)
    del res["lareqa"]
    assert m.xtreme_score(res, version="xtreme-r")["all_task"] is None
    with pytest.raises(KeyError, match="unknown xtreme-r task 'pawsx'"):
        m.xtreme_score({"pawsx": {}}, version="xtreme-r")
    del res["xquad"]["ro"]  # an XTREME-R language XTREME did not have
    with pytest.raises(ValueError, match=r"xquad lacks official language\(s\) \['ro'\]"):
        m.xtreme_score(res, version="xtreme-r")
    with pytest.raises(ValueError, match="version must be one of"):
        m.xtreme_score(res, version="xtreme-x")
