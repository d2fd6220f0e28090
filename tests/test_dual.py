"""Dual-encoder fine-tuning (xitt.train.dual) and Mewsli-X's shared entity pool (xitt.train.pool).

References, google-research/xtreme@838c13b69daafb9328785d16caae2711e4012123: third_party/bert.py
BertForRetrieval.forward (the in-batch softmax), third_party/utils_mewslix.py (preprocess_mention,
preprocess_entity_description, mean_reciprocal_rank, evaluate, evaluate_all) and
third_party/evaluate_retrieval.py task mewslix (one faiss IndexFlatIP of all entities, top 20),
processors/lareqa.py (answer sentence + paragraph). The replays below are written from reading
those functions; the fixtures are in their formats (tests/xtremer_files.py).
"""

import json
import math

import numpy as np
import pytest
import torch
import xtremer_files

from xitt.data.converters import convert_mewslix, entity_text, mention_text
from xitt.train.dual import answer_sentence_pairs, in_batch_loss, sentence_breaks
from xitt.train.pool import build_entity_pool, read_entity_pool, shared_pool_scores

LANGS = ["en", "de", "es"]


def test_in_batch_loss_on_a_3x3_batch_equals_the_hand_value():
    # identity queries and candidates, scale 1: each row is softmax(e, 1, 1) at the diagonal,
    # loss = -log(e / (e + 2)) = log(1 + 2/e)
    eye = torch.eye(3)
    assert in_batch_loss(eye, eye, torch.tensor(1.0)).item() == pytest.approx(
        math.log(1 + 2 / math.e), abs=1e-6
    )
    # a non-symmetric batch at the initial scale 100: rows of cos similarities written out
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    c = torch.tensor([[0.8, 0.6], [0.0, 1.0], [1.0, 0.0]])
    sims = [[0.8, 0.0, 1.0], [0.6, 1.0, 0.0], [0.96, 0.8, 0.6]]
    hand = np.mean(
        [-100 * row[i] + math.log(sum(math.exp(100 * s) for s in row)) for i, row in enumerate(sims)]
    )
    assert in_batch_loss(q, c, torch.tensor(100.0)).item() == pytest.approx(hand, rel=1e-5)


def test_mention_and_entity_texts_are_xtreme_r_s():
    # the example of utils_mewslix.preprocess_mention's docstring (one sentence of context), as its
    # code writes it: "{left} { {mention} } {right}" keeps a space before the comma that the
    # docstring's rendering drops
    first = "The verdict came back for Smith, who stepped down as AG of Fictitious County in February, 2012."
    text = f"{first} A {{braced}} aside."
    context = {"text": text, "sentence_spans": [(0, len(first)), (len(first) + 1, len(text))]}
    span = {"start": text.index("Smith"), "end": text.index("Smith") + 5, "text": "Smith"}
    assert mention_text(context, span) == (
        "Smith: The verdict came back for { Smith } , who stepped down as AG of Fictitious County in February, 2012."
    )
    second = {"start": text.index("aside"), "end": len(text) - 1, "text": "aside"}
    assert mention_text(context, second) == "aside: A (braced) { aside } ."  # braces escaped to parentheses
    entity = {
        "description": "One.\nTwo.  Three.",
        "sentence_spans": [{"start": 0, "end": 4}, {"start": 5, "end": 9}],
    }
    assert entity_text(entity) == "One. Two."  # only the annotated sentences, joined


def official_mewslix_mrr(entities, mentions, vectors, k=20):
    """evaluate_retrieval.py mewslix + utils_mewslix.evaluate_all: inner-product top k over all
    entities, MRR per language (0 when the gold entity is not in the top k), x100."""
    ids = [e for e, _ in entities]
    matrix = np.stack([vectors[t] for _, t in entities])
    out = {}
    for lang, rows in mentions.items():
        reciprocal = []
        for _, text, gold in rows:
            top = np.argsort(-(matrix @ vectors[text]), kind="stable")[:k]
            labels = [int(ids[j] == gold) for j in top]
            reciprocal.append(next((1.0 / r for r, hit in enumerate(labels, 1) if hit), 0.0))
        out[lang] = 100 * sum(reciprocal) / len(reciprocal)
    return out


@pytest.mark.parametrize("k", [1, 3, 20])
def test_mewslix_shared_pool_scores_like_the_official_formula(k):
    rng = np.random.default_rng(3)
    entities = [(f"Q{i}", f"entity {i}") for i in range(30)]
    mentions = {
        lang: [(f"{lang}-{m}", f"{lang} mention {m}", f"Q{(m * 7 + li) % 30}") for m in range(12)]
        for li, lang in enumerate(LANGS)
    }
    vectors = {t: rng.normal(size=6) for _, t in entities}
    for rows in mentions.values():  # near the gold entity, with noise: ranks spread over 1..30
        for _, text, gold in rows:
            vectors[text] = vectors[f"entity {gold[1:]}"] + rng.normal(scale=1.2, size=6)
    vectors = {t: v / np.linalg.norm(v) for t, v in vectors.items()}
    pool = build_entity_pool(entities, mentions)
    ours = shared_pool_scores(pool, lambda texts: np.stack([vectors[t] for t in texts]), k=k)
    official = official_mewslix_mrr(entities, mentions, vectors, k=k)
    for lang in LANGS:
        assert ours[lang]["map_at_20"] == pytest.approx(official[lang], abs=1e-9)
    assert 0 < min(official.values()) < 100  # neither perfect nor empty: the comparison can fail


def test_the_converter_writes_one_entity_pool_for_every_language(tmp_path):
    src = xtremer_files.mewslix(tmp_path / "download", LANGS)
    convert_mewslix(src, tmp_path / "data", LANGS)
    pool = read_entity_pool(tmp_path / "data", LANGS)
    assert len(pool.candidate_texts) == 4 * len(LANGS)  # every entity of the candidate set, once
    assert pool.question_languages.count("de") == 3
    first = pool.question_texts[0]
    assert first == "north: river city went to the { north } ."
    assert pool.candidate_texts[pool.relevant[0][0]] == "north is a place"
    train = (tmp_path / "data" / "mewslix" / "train-en.tsv").read_text().splitlines()
    assert train[0] == "river: The { river } was city.\triver is a place" and len(train) == 4
    with pytest.raises(FileNotFoundError, match="mentions-fr.tsv"):
        read_entity_pool(tmp_path / "data", ["fr"])


def test_sentence_breaks_follow_the_first_rule_and_its_exceptions():
    text = 'Dr. Smith met Mr. J. Brown in Jan. 1990. "Then" he left! 3 days passed. it stays.'
    spans = sentence_breaks(text)
    assert [text[b:e] for b, e in spans] == [
        "Dr. Smith met Mr. J. Brown in Jan. 1990.",
        '"Then" he left!',
        "3 days passed. it stays.",  # no break before a lower-case word
    ]


def sb_sed_subset(text):
    """processors/sb_sed.py's infer_sentence_breaks with its first rule and the abbreviation and
    initials rules (newlines inserted by substitution, then taken back), written from reading it."""
    import re

    txt = re.sub(r"""([.?!][)'" \u201d]*)\s(\s*[\['"(\u201c]?[A-Z0-9])""", r"\1\n\2", text)
    for words in (
        r"Mrs?|Ms|Dr|Prof|Fr|Rev|Msgr|Sta?",
        r"Lt|Gen|Col|Maj|Adm|Capt|Sgt|Rep|Gov|Sen|Pres",
        r"e\.g|i\.?e|vs?|pp?|cf|a\.k\.a|approx|app|es[pt]|tr",
        r"Jan|Aug|Oct|Nov|Dec",
        r"Mt|Ft",
    ):
        txt = re.sub(rf"\b({words})\.\n", r"\1. ", txt)
    txt = re.sub(r"\b([A-Z]\.)[ \n]([A-Z]\.)[ \n]([A-Z]\.)[ \n](\"?[A-Z][a-z])", r"\1 \2 \3 \4", txt)
    txt = re.sub(r"\b([A-Z]\.)[ \n]([A-Z]\.)[ \n](\"?[A-Z][a-z])", r"\1 \2 \3", txt)
    txt = re.sub(r"\b([A-Z]\.[A-Z]\.)\n(\"?[A-Z][a-z])", r"\1 \2", txt)
    txt = re.sub(r"\b([A-Z]\.)\n(\"?[A-Z][a-z])", r"\1 \2", txt)
    starts = [m.end() for m in re.finditer(r"^\s*", txt, re.M)]
    return [(b, b + len(sent.strip())) for b, sent in zip(starts, txt.split("\n"))]


@pytest.mark.parametrize(
    "text",
    [
        'Dr. Smith met Mr. J. Brown in Jan. 1990. "Then" he left! 3 days passed. it stays.',
        "The U.S. Army arrived (e.g. in Mt. Hood). It left in 1850. The F. Scott prize? Yes.",
        "Beyonce was born in 1981. She grew up in Houston, Texas.  In 2003, she went solo. 1 B. 2.",
        "Normans came. (They stayed.) Later 'Vikings' left. Rollo v. Charles, approx. 911. End",
    ],
)
def test_sentence_breaks_equal_a_replay_of_sb_sed_s_rules(text):
    assert sentence_breaks(text) == sb_sed_subset(text)


def test_answer_sentence_pairs_are_sentence_plus_paragraph():
    context = "The river is long. The city\nis old."
    examples = [
        {"question": "What is old?", "context": context, "answers": [{"text": "city", "answer_start": 23}]},
        {"question": "Nothing?", "context": context, "answers": []},
    ]
    assert answer_sentence_pairs(examples) == [
        ("What is old?", "The cityis old.The river is long. The cityis old.")
    ]


def _toy_data(folder, n=12):
    """Mewsli-X-shaped local files: n entities "e<i> thing", one English mention "w<i>" each (no
    word shared with its entity: the association is learnt only from the training pairs)."""
    shared = folder / "mewslix" / "shared"
    shared.mkdir(parents=True)
    (shared / "entities.tsv").write_text("".join(f"Q{i}\te{i} thing\n" for i in range(n)))
    (shared / "mentions-en.tsv").write_text("".join(f"m{i}\tw{i}\tQ{i}\n" for i in range(n)))
    (folder / "mewslix" / "train-en.tsv").write_text("".join(f"w{i}\te{i} thing\n" for i in range(n)))
    return [f"w{i} e{i} thing" for i in range(n)]


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_a_dual_encoder_run_trains_and_beats_no_fine_tuning(tmp_path):
    """End to end on a learnable toy pool: run_target trains the dual encoder (steps recorded)
    and its mAP@20 on the shared pool is above the same encoder's before fine-tuning."""
    from xitt.grid.spec import expand_grid, parse_grid
    from xitt.synth.tiny import build_encoder, build_tokenizer
    from xitt.tasks import registry
    from xitt.train import chain
    from xitt.train.dual import encode_texts
    from xitt.train.retrieval import evaluate_retrieval

    torch.set_num_threads(1)
    tokenizer = build_tokenizer(_toy_data(tmp_path / "data"))
    encoder_dir = build_encoder(
        tokenizer, tmp_path / "enc", hidden=32, layers=1, heads=2, intermediate=64, max_position=32, seed=0
    )
    # without dropout: at hidden size 32 its noise, times the scale of 100, drowns the signal and
    # training collapses every encoding onto one point (loss stuck at log 12)
    config = json.loads((encoder_dir / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (encoder_dir / "config.json").write_text(json.dumps(config))
    grid = parse_grid(
        {
            "encoders": [{"name": "toy", "path": str(encoder_dir)}],
            "intermediates": ["none"],
            "targets": ["mewslix"],
            "languages": {"mewslix": ["en"]},
            "seeds": [1],
            "recipe": "xtreme-r",
            "task_train": {"mewslix": {"batch_size": 12, "grad_accum": 1, "lr": 1e-3, "epochs": 40}},
            "train": {"num_threads": 1, "precision": "fp32"},
            "data_dir": str(tmp_path / "data"),
        }
    )
    run = expand_grid(grid)[1][0]
    cfg = run.target_train
    assert (cfg.retrieval_training, cfg.candidate_pool, cfg.max_length) == ("dual", "shared", 64)
    encoder, tok = chain.load_encoder(str(encoder_dir))
    device = torch.device("cpu")
    encode = (lambda texts: encode_texts(encoder, tok, texts, 64, cfg, device),) * 2
    before, _ = evaluate_retrieval(
        encoder, tok, registry().get("mewslix"), ["en"], cfg, tmp_path / "data", device, encode
    )
    out = chain.run_target(run, str(encoder_dir), progress=False)
    assert out.extra["steps"] == 40  # 12 pairs, batch 12, 40 epochs
    assert "mewslix/train-en" in out.data_fingerprints and "mewslix/shared-en" in out.data_fingerprints
    print(f"mAP@20 before {before['en']['map_at_20']:.2f}, after {out.scores['en']['map_at_20']:.2f}")
    assert out.scores["en"]["map_at_20"] > before["en"]["map_at_20"] + 20
    assert out.scores["en"]["map_at_20"] > 80


def test_dual_training_needs_a_task_that_declares_its_pairs():
    from xitt.grid.spec import SpecError, parse_grid

    with pytest.raises(SpecError, match="tatoeba.*declares no dual_encoder.*lareqa, mewslix"):
        parse_grid(
            {
                "encoders": ["bert-base-multilingual-cased"],
                "intermediates": ["none"],
                "targets": ["tatoeba"],
                "seeds": [1],
                "task_train": {"tatoeba": {"retrieval_training": "dual"}},
            }
        )


def test_a_lareqa_dual_run_trains_on_squad_and_ranks_the_shared_pool(tiny_encoder, tmp_path):
    """LAReQA with the xtreme-r recipe: SQuAD v1.1 pairs (a local squad_v1/train-en.json in the
    SQuAD format), the shared XQuAD-R pool of three languages (tests/test_pool.py's fixture)."""
    from test_pool import xquad_r

    from xitt.grid.spec import expand_grid, parse_grid
    from xitt.train import chain

    (tmp_path / "lareqa" / "xquad-r").mkdir(parents=True)
    for lang in LANGS:
        (tmp_path / "lareqa" / "xquad-r" / f"{lang}.json").write_text(json.dumps(xquad_r(lang)))
    (tmp_path / "squad_v1").mkdir()
    (tmp_path / "squad_v1" / "train-en.json").write_text(json.dumps(xquad_r("en")))  # SQuAD JSON
    grid = parse_grid(
        {
            "encoders": [{"name": "tiny", "path": str(tiny_encoder)}],
            "intermediates": ["none"],
            "targets": ["lareqa"],
            "languages": {"lareqa": LANGS},
            "seeds": [1],
            "recipe": "xtreme-r",
            "train": {"num_threads": 1, "precision": "fp32", "max_length": 32, "max_query_length": 16},
            "data_dir": str(tmp_path),
        }
    )
    run = expand_grid(grid)[1][0]
    assert (run.target_train.retrieval_training, run.target_train.batch_size) == ("dual", 4)
    out = chain.run_target(run, str(tiny_encoder), progress=False)
    # 3 of the 4 questions have an answer sentence (q4's lies in none): one micro-batch of 3 per
    # epoch, grad_accum 4, 3 epochs -> max(1, ceil(3 * 1 / 4)) = 1 optimiser step
    assert out.extra["steps"] == 1 and "squad_v1/train-en" in out.data_fingerprints
    assert set(out.scores) == set(LANGS) and all(0 < s["map_at_20"] <= 100 for s in out.scores.values())


@pytest.mark.parametrize(
    ("recipe", "training", "pool"), [("xtreme-r", "dual", "shared"), ("phang2020", "none", "language")]
)
def test_recipes_decide_the_protocol_and_plan_shows_it(recipe, training, pool):
    """xtreme-r fine-tunes and ranks against the shared pools; phang2020 (jiant has neither task)
    evaluates the encoder as it is, one pool per language; `xitt plan` prints the choice."""
    from xitt.grid.settings import describe_settings
    from xitt.grid.spec import parse_grid
    from xitt.tasks import registry

    reg = registry()
    grid = parse_grid(
        {
            "encoders": ["bert-base-multilingual-cased", "xlm-roberta-large"],
            "intermediates": ["none"],
            "targets": ["mewslix", "lareqa"],
            "seeds": [1],
            "recipe": recipe,
        }
    )
    for task in ("mewslix", "lareqa"):
        cfg = grid.train_config(task, reg, "bert-base-multilingual-cased")
        assert (cfg.retrieval_training, cfg.candidate_pool) == (training, pool)
    text = describe_settings(grid, reg)
    assert (f"retrieval_training={training}[R]" in text) == (recipe == "xtreme-r")
    if recipe == "xtreme-r":  # train_mewslix.sh / train_lareqa.sh values, per encoder
        mewslix = grid.train_config("mewslix", reg, "xlm-roberta-large")
        assert (mewslix.lr, mewslix.batch_size, mewslix.grad_accum, mewslix.epochs) == (1e-5, 8, 4, 2)
        lareqa = grid.train_config("lareqa", reg, "bert-base-multilingual-cased")
        assert (lareqa.max_length, lareqa.max_query_length, lareqa.batch_size, lareqa.lr) == (
            256,
            96,
            4,
            2e-5,
        )


def test_a_missing_shared_pool_fails_before_training(tiny_encoder, tmp_path, monkeypatch):
    from xitt.grid.spec import expand_grid, parse_grid
    from xitt.train import chain, dual

    (tmp_path / "mewslix").mkdir()
    (tmp_path / "mewslix" / "train-en.tsv").write_text("w0\te0 thing\n")
    monkeypatch.setattr(dual, "fit", lambda *a, **k: pytest.fail("trained before reading the pool"))
    grid = parse_grid(
        {
            "encoders": [{"name": "tiny", "path": str(tiny_encoder)}],
            "intermediates": ["none"],
            "targets": ["mewslix"],
            "languages": {"mewslix": ["en"]},
            "seeds": [1],
            "recipe": "xtreme-r",
            "data_dir": str(tmp_path),
        }
    )
    with pytest.raises(FileNotFoundError, match="entities.tsv, mentions-en.tsv. Run `xitt convert mewslix"):
        chain.run_target(expand_grid(grid)[1][0], str(tiny_encoder), progress=False)
