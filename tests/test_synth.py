"""xitt.synth / synth_lang / synth_tasks: languages, grammar, task files (formats, determinism)."""

import json
import random

import pytest

from xitt.data.loaders import read_local
from xitt.synth import benchmark as synth
from xitt.synth import generators as st
from xitt.synth.languages import (
    CONTENT_WORDS,
    FUNCTION_WORDS,
    NP,
    PROFILES,
    Clause,
    all_words,
    make_languages,
    realize,
    span_of,
    text_of,
)
from xitt.tasks import registry

ANNA = NP(("Anna",), ent="PER")
CAR = NP(("car",), ("big", "red"), "the")
OSLO = NP(("Oslo",), ent="LOC")
OWN = Clause(ANNA, "own", CAR, OSLO)


@pytest.fixture(scope="module")
def langs():
    return make_languages(seed=0, n_languages=5)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth") / "data"
    synth.write_data(root, seed=0, n_languages=2, size="small")
    return root


# -------------------------------------------------------------------------------------- languages


def test_languages_are_deterministic_and_bounded():
    a, b = make_languages(seed=3, n_languages=5), make_languages(seed=3, n_languages=5)
    assert {k: dict(v.lexicon) for k, v in a.items()} == {k: dict(v.lexicon) for k, v in b.items()}
    assert make_languages(seed=4)["qac"].lexicon != a["qac"].lexicon
    assert list(a) == ["en"] + [p.code for p in PROFILES]
    with pytest.raises(ValueError, match="n_languages must be between"):
        make_languages(n_languages=len(PROFILES) + 1)


def test_anchor_share_is_controlled_and_invented_words_are_not_shared(langs):
    for profile in PROFILES:
        lang = langs[profile.code]
        assert len(lang.anchors) == round(profile.anchor_share * len(CONTENT_WORDS))
        shared = [w for w in CONTENT_WORDS if lang.word(w) in (w, st.VERBS.get(w, ("",))[0])]
        assert sorted(shared) == sorted(lang.anchors)
        assert not set(lang.anchors) & set(FUNCTION_WORDS)
    none = make_languages(seed=0, anchor_scale=0.0)
    assert all(not lang.anchors for code, lang in none.items() if code != "en")
    invented = {}
    for code, lang in langs.items():
        for lemma, word in lang.lexicon.items():
            if lemma not in lang.anchors:
                assert invented.setdefault(word, code) == code, f"{word!r} is invented twice"
    # fewer anchors the farther the language: transfer should differ by language
    shares = [p.anchor_share for p in PROFILES]
    assert shares == sorted(shares, reverse=True)


def test_realisation_follows_each_languages_word_order(langs):
    assert text_of(realize(OWN, langs["en"])) == "Anna owns the big red car in Oslo ."
    assert text_of(realize(OWN, langs["en"], ask="obj")) == "what does Anna own in Oslo ?"
    assert text_of(realize(OWN, langs["en"], ask="adjunct")) == "where does Anna own the big red car ?"
    neg = Clause(ANNA, "live", OSLO, neg=True)
    assert text_of(realize(neg, langs["en"])) == "Anna does not live in Oslo ."
    w = langs["qac"].word  # SOV, postpositions, adjective first
    assert (
        text_of(realize(OWN, langs["qac"]))
        == f"Anna Oslo {w('in')} {w('the')} {w('big')} {w('red')} {w('car')} {w('own')} ."
    )
    w = langs["qad"].word  # VSO, noun-adjective
    assert (
        text_of(realize(OWN, langs["qad"]))
        == f"{w('own')} Anna {w('the')} {w('car')} {w('big')} {w('red')} {w('in')} Oslo ."
    )
    w = langs["qae"].word  # no articles, wh in situ + particle
    assert (
        text_of(realize(OWN, langs["qae"], ask="obj"))
        == f"Anna Oslo {w('in')} {w('what')} {w('own')} {w('question')} ?"
    )
    with pytest.raises(ValueError, match="ask must be"):
        realize(OWN, langs["en"], ask="verb")


def test_asked_spans_are_contiguous_and_names_are_shared(langs):
    rng = random.Random(0)
    for _ in range(200):
        c = st.fact(rng, p_place=0.5, p_neg=0.2)
        per_lang = {code: realize(c, lang) for code, lang in langs.items()}
        for code, toks in per_lang.items():
            for role in ("subj", "obj") + (("adjunct",) if c.adjunct else ()):
                first, last = span_of(toks, role)
                assert first <= last
            ents = sorted((t.text, t.tag) for t in toks if t.tag != "O")
            assert ents == sorted((t.text, t.tag) for t in per_lang["en"] if t.tag != "O"), code
    assert len(all_words(langs)) > 300


# ------------------------------------------------------------------------------------ task files


def test_every_task_file_parses_with_the_runner_loaders(data):
    reg = registry()
    for name in synth.BUILDERS:
        task = reg.get(name)
        files = sorted((data / name).iterdir())
        assert files, name
        for path in files:
            rows = read_local(task, path)
            assert rows, path
            if task.kind == "span_qa":
                for ex in rows:
                    a = ex["answers"][0]
                    assert ex["context"][a["answer_start"] : a["answer_start"] + len(a["text"])] == a["text"]
            if task.kind == "tagging":
                tags = {t for ex in rows for t in ex["tags"]}
                assert tags <= {"O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"} and len(tags) == 7
            if task.kind == "multiple_choice":
                assert all(len(ex["choices"]) == 4 and 0 <= ex["label"] < 4 for ex in rows)
    # a target: English train/dev, a test file per language, the same number of items in each
    names = sorted(p.name for p in (data / "synth_xnli").iterdir())
    assert names == ["dev-en.tsv", "test-en.tsv", "test-qaa.tsv", "test-qab.tsv", "train-en.tsv"]
    counts = {len(read_local(reg.get("synth_xquad"), p)) for p in (data / "synth_xquad").glob("test-*.json")}
    assert counts == {synth.SIZES["small"]["test"]}
    assert sorted(p.name for p in (data / "synth_tatoeba").iterdir()) == ["test-qaa.tsv", "test-qab.tsv"]


def test_nli_labels_are_balanced_and_follow_the_conventions(data):
    rows = [line.split("\t") for line in (data / "synth_nli" / "train-en.tsv").read_text().splitlines()]
    labels = [r[2] for r in rows]
    assert min(labels.count(label) for label in st.NLI_LABELS) > len(rows) / 5
    entail = [r for r in rows if r[2] == "entailment"]
    assert all(r[1].split()[0] == r[0].split()[0] for r in entail)  # about the same person
    squad = json.loads((data / "synth_xquad" / "test-qab.json").read_text())
    assert squad["version"] == "1.1" and squad["data"][0]["paragraphs"][0]["qas"][0]["answers"]


def test_files_are_byte_identical_for_a_seed_and_differ_across_seeds(data, tmp_path):
    synth.write_data(tmp_path / "a", seed=0, n_languages=2, size="small")
    synth.write_data(tmp_path / "b", seed=1, n_languages=2, size="small", tasks=("synth_xnli",))
    for path in sorted(data.rglob("*.*")):
        assert (tmp_path / "a" / path.relative_to(data)).read_bytes() == path.read_bytes(), path
    assert (tmp_path / "b/synth_xnli/test-qaa.tsv").read_bytes() != (
        data / "synth_xnli/test-qaa.tsv"
    ).read_bytes()
    with pytest.raises(ValueError, match="unknown synthetic task"):
        synth.write_data(tmp_path / "c", tasks=("synth_nope",))
    with pytest.raises(ValueError, match="size must be one of"):
        synth.write_data(tmp_path / "c", size="huge")


def test_main_synth_without_pretraining_writes_a_manifest_and_skips_when_up_to_date(tmp_path):
    lines = []
    m = synth.main_synth(tmp_path, n_languages=1, size="small", pretrain=False, log=lines.append)
    assert m["synthetic"] and set(m["languages"]) == {"en", "qaa"} and not (tmp_path / "encoder").exists()
    again = synth.main_synth(tmp_path, n_languages=1, size="small", pretrain=False, log=lines.append)
    assert again == m and "up to date" in lines[-1]


def test_cli_arguments():
    import argparse

    parser = argparse.ArgumentParser()
    synth.add_arguments(parser)
    args = parser.parse_args(["--out", "x", "--languages", "2", "--size", "small", "--no-pretrain"])
    assert (args.out, args.n_languages, args.size, args.no_pretrain, args.seed) == ("x", 2, "small", True, 0)


def test_task_registry_declares_the_synthetic_tasks():
    reg = registry()
    for name in synth.INTERMEDIATES:
        assert reg.get(name).is_intermediate and reg.get(name).source["local_only"] is True
    families = {reg.get(n).family for n in synth.INTERMEDIATES}
    assert families == {"nli", "qa", "paraphrase"}
    for name in synth.TARGETS:
        assert reg.get(name).is_target
    assert reg.get("synth_xnli").languages == ("en",) + tuple(p.code for p in PROFILES)
