"""Task generators of the synthetic benchmark: facts in, examples in the XTREME data formats out.

Every generator takes a ``random.Random`` and returns plain examples whose text is realised in a
given ``Language`` (``xitt.synth_lang``); ``xitt.synth`` writes them to disk. A target task's test
examples are the same facts realised in every language (parallel, like XNLI and XQuAD).

Conventions of the synthetic world (they define the labels):

* NLI: the premise tells everything about the (subject, verb) pairs it mentions. A hypothesis
  restating a premise fact (possibly with fewer adjectives or without the place) is
  *entailment*; the same subject and verb with another object, or the fact negated, is
  *contradiction*; a (subject, verb) pair the premise does not mention is *neutral*.
* QA: a context is a few facts with distinct (subject, verb) pairs; a question asks for the
  object, the subject or the place of one positive fact and has one answer in the context.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from dataclasses import dataclass

from xitt.synth.languages import (
    COLOURS,
    FIRST_NAMES,
    LAST_NAMES,
    NOUNS,
    NP,
    OBJECT_VERBS,
    ORG_STEMS,
    ORG_SUFFIXES,
    PERSON_VERBS,
    PLACES,
    SIZES,
    VERBS,
    Clause,
    Language,
    Token,
    phrase,
    realize,
    span_of,
    text_of,
)

NLI_LABELS = ("entailment", "neutral", "contradiction")
PARAPHRASE_LABELS = ("not_paraphrase", "paraphrase")


# ------------------------------------------------------------------------------------- sampling


def person(rng: random.Random) -> NP:
    first = rng.choice(FIRST_NAMES)
    return NP((first, rng.choice(LAST_NAMES)) if rng.random() < 0.5 else (first,), ent="PER")


def place(rng: random.Random) -> NP:
    return NP(tuple(rng.choice(PLACES).split()), ent="LOC")


def org(rng: random.Random) -> NP:
    stem = rng.choice(ORG_STEMS)
    return NP((stem, rng.choice(ORG_SUFFIXES)) if rng.random() < 0.7 else (stem,), ent="ORG")


def thing(rng: random.Random) -> NP:
    adjs = tuple(a for a, p in ((rng.choice(SIZES), 0.35), (rng.choice(COLOURS), 0.6)) if rng.random() < p)
    return NP((rng.choice(NOUNS),), adjs, "the")


def fact(
    rng: random.Random,
    subj: NP | None = None,
    verb: str | None = None,
    *,
    p_place: float = 0.3,
    p_neg: float = 0.0,
) -> Clause:
    """A random fact; the verb decides the kind of object (thing, person, place, organisation)."""
    subj = subj or person(rng)
    verb = verb or rng.choices(("thing", "person", "live", "work", "visit"), (50, 15, 15, 15, 5))[0]
    verb = {"thing": None, "person": None}.get(verb, verb) or rng.choice(
        OBJECT_VERBS if verb == "thing" else PERSON_VERBS
    )
    if verb in OBJECT_VERBS:
        obj = thing(rng)
    elif verb in PERSON_VERBS:
        obj = person(rng)
        while obj.head[0] == subj.head[0]:
            obj = person(rng)
    else:
        obj = {"live": place, "work": org, "visit": place}[verb](rng)
    adjunct = place(rng) if verb in OBJECT_VERBS + PERSON_VERBS and rng.random() < p_place else None
    return Clause(subj, verb, obj, adjunct, rng.random() < p_neg)


def other_object(rng: random.Random, clause: Clause) -> Clause:
    """The same subject and verb with a different object (a contradiction under the closed world)."""
    while True:
        new = fact(rng, clause.subj, clause.verb, p_place=0.0)
        obj = new.obj
        if obj.adjs and clause.obj.adjs and rng.random() < 0.5:  # change just one attribute
            obj = dataclasses.replace(clause.obj, adjs=obj.adjs)
        same = (
            obj.head[0] == clause.obj.head[0]
            if obj.ent
            else (obj.head, obj.adjs) == (clause.obj.head, clause.obj.adjs)
        )
        if not same:
            return dataclasses.replace(clause, obj=obj)


def distinct_facts(
    rng: random.Random, people: Sequence[NP], n: int, *, p_place: float = 0.3, p_neg: float = 0.0
) -> list[Clause]:
    """``n`` facts about ``people`` with distinct (subject, verb) pairs."""
    out, seen = [], set()
    while len(out) < n:
        c = fact(rng, rng.choice(people), p_place=p_place, p_neg=p_neg)
        key = (c.subj, c.verb)
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out


def cast(rng: random.Random, n: int) -> list[NP]:
    """``n`` people with distinct first names."""
    names = rng.sample(FIRST_NAMES, n)
    return [NP((f, rng.choice(LAST_NAMES)) if rng.random() < 0.5 else (f,), ent="PER") for f in names]


# ------------------------------------------------------------------------------------------ NLI


@dataclass(frozen=True)
class NLIItem:
    premise: tuple[Clause, ...]
    hypothesis: Clause
    label: str


def nli_item(rng: random.Random, *, n_premise: int = 1, n_people: int = 1, p_neg: float = 0.0) -> NLIItem:
    people = cast(rng, n_people)
    premise = distinct_facts(rng, people, n_premise, p_neg=p_neg)
    label = rng.choice(NLI_LABELS)
    c = rng.choice(premise)
    if label == "entailment":
        hyp = c
        if not c.neg:  # fewer modifiers still follow (not under negation)
            if c.obj.adjs and rng.random() < 0.5:
                hyp = dataclasses.replace(hyp, obj=dataclasses.replace(c.obj, adjs=c.obj.adjs[1:]))
            if c.adjunct and rng.random() < 0.5:
                hyp = dataclasses.replace(hyp, adjunct=None)
    elif label == "contradiction":
        # a negated fact is contradicted only by its positive form
        hyp = dataclasses.replace(c, neg=not c.neg) if c.neg or rng.random() < 0.4 else other_object(rng, c)
    else:
        used = {(p.subj, p.verb) for p in premise}
        while True:
            subj = rng.choice(people + [person(rng)])
            hyp = fact(rng, subj, p_place=0.2, p_neg=p_neg)
            if (hyp.subj, hyp.verb) not in used:
                break
    return NLIItem(tuple(rng.sample(premise, len(premise))), hyp, label)


def nli_row(item: NLIItem, lang: Language) -> tuple[str, str, str]:
    premise = " ".join(text_of(realize(c, lang)) for c in item.premise)
    return premise, text_of(realize(item.hypothesis, lang)), item.label


# ------------------------------------------------------------------------------------------- QA


@dataclass(frozen=True)
class QAItem:
    context: tuple[Clause, ...]
    answer: int  # index of the clause asked about
    ask: str  # subj | obj | adjunct


def qa_item(rng: random.Random, *, n_facts: int = 4, n_people: int = 2, p_neg: float = 0.0) -> QAItem:
    """A context of facts and one question with a unique answer (see the module docstring)."""
    while True:
        facts = distinct_facts(rng, cast(rng, n_people), n_facts, p_place=0.35, p_neg=p_neg)
        positive = [i for i, c in enumerate(facts) if not c.neg]
        if not positive:
            continue
        i = rng.choice(positive)
        c = facts[i]
        asks = ["obj", "obj", "subj"] + (["adjunct"] if c.adjunct else [])
        ask = rng.choice(asks)
        if ask == "subj" and sum((f.verb, f.obj, f.neg) == (c.verb, c.obj, False) for f in facts) > 1:
            continue
        return QAItem(tuple(facts), i, ask)


def qa_example(item: QAItem, lang: Language, qid: str) -> dict:
    """``{id, context, question, answers: [{text, answer_start}]}`` realised in ``lang``."""
    sentences = [realize(c, lang) for c in item.context]
    start = sum(len(text_of(s)) + 1 for s in sentences[: item.answer])
    toks = sentences[item.answer]
    first, last = span_of(toks, item.ask)
    start += sum(len(t.text) + 1 for t in toks[:first])
    answer = text_of(toks[first : last + 1])
    context = " ".join(text_of(s) for s in sentences)
    question = text_of(realize(item.context[item.answer], lang, ask=item.ask))
    if context[start : start + len(answer)] != answer:  # offsets are the contract of the format
        raise RuntimeError(f"answer offset mismatch in {qid}: {answer!r} at {start} in {context!r}")
    return {
        "id": qid,
        "context": context,
        "question": question,
        "answers": [{"text": answer, "answer_start": start}],
    }


def mc_example(rng: random.Random, item: QAItem, lang: Language, n_choices: int = 4) -> dict:
    """``{context, question, choices, label}``: distractors of the answer's type, context ones first."""
    ex = qa_example(item, lang, "")
    c = item.context[item.answer]
    gold = getattr(c, item.ask)
    pool = [getattr(f, item.ask) for f in item.context if getattr(f, item.ask, None) is not None]
    make = {"PER": person, "LOC": place, "ORG": org}.get(gold.ent, thing)
    choices = [gold]
    for cand in [p for p in pool if p.ent == gold.ent] + [make(rng) for _ in range(30)]:
        if len(choices) == n_choices:
            break
        if cand not in choices and cand.head + cand.adjs != gold.head + gold.adjs:
            choices.append(cand)
    rng.shuffle(choices)
    texts = [text_of(phrase(ch, lang)) for ch in choices]
    return {
        "context": ex["context"],
        "question": ex["question"],
        "choices": texts,
        "label": choices.index(gold),
    }


# ----------------------------------------------------------------------------- paraphrase (English)


def english_variant(c: Clause, template: str) -> str:
    """English surface forms beyond ``realize``: active, passive (``is owned by``), relative
    (``the car that is red``). Only for English-only intermediate tasks."""

    def words(np_) -> str:
        return " ".join(np_.head) if np_.ent else " ".join((np_.det or "the",) + np_.adjs + np_.head)

    third, base, participle = VERBS[c.verb]
    place_ = f" in {' '.join(c.adjunct.head)}" if c.adjunct else ""
    if template == "passive" and participle:
        return f"{words(c.obj)} is {'not ' if c.neg else ''}{participle} by {words(c.subj)}{place_} ."
    if template == "relative" and c.obj.adjs and not c.obj.ent:
        obj = f"the {' '.join(c.obj.head)} that is {' and '.join(c.obj.adjs)}"
        verb = f"does not {base}" if c.neg else third
        return f"{words(c.subj)} {verb} {obj}{place_} ."
    from xitt.synth.languages import ENGLISH

    return text_of(realize(c, Language(ENGLISH)))


def paraphrase_row(rng: random.Random) -> tuple[str, str, str]:
    """``(sentence1, sentence2, label)``; both kinds share most words (QQP/PAWS-like overlap)."""
    c = fact(rng, verb=rng.choice(OBJECT_VERBS + PERSON_VERBS), p_place=0.3)
    label = rng.choice(PARAPHRASE_LABELS)
    other = c
    if label == "not_paraphrase":
        change = rng.choice(
            ("object", "subject", "swap") if c.verb in PERSON_VERBS else ("object", "subject")
        )
        if change == "object":
            other = other_object(rng, c)
        elif change == "subject":
            subj = person(rng)
            while subj.head == c.subj.head:
                subj = person(rng)
            other = dataclasses.replace(c, subj=subj)
        else:
            other = dataclasses.replace(c, subj=c.obj, obj=c.subj)
    t1, t2 = rng.sample(("active", "passive", "relative"), 2)
    return english_variant(c, t1), english_variant(other, t2), label


# --------------------------------------------------------------------------------- tagging, text


def ner_tokens(rng: random.Random, lang: Language, clause: Clause | None = None) -> list[Token]:
    """One entity-rich sentence as tokens with BIO tags (PER, LOC, ORG)."""
    clause = clause or fact(
        rng, verb=rng.choice(("thing", "person", "live", "work", "visit")), p_place=0.5, p_neg=0.15
    )
    return realize(clause, lang)


def plain_sentence(rng: random.Random, lang: Language) -> str:
    """Unlabelled text for pretraining: statements, some negated, and a share of questions."""
    c = fact(rng, p_place=0.3, p_neg=0.15)
    if rng.random() < 0.15 and not c.neg:
        return text_of(realize(c, lang, ask=rng.choice(["subj", "obj"] + (["adjunct"] if c.adjunct else []))))
    return text_of(realize(c, lang))
