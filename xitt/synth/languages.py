"""Synthetic languages for the offline benchmark: a tiny grammar of facts and K languages derived
from English by a deterministic lexicon mapping and word-order rules.

The grammar has entities (people, places, organisations; their names are the same in every
language, like real named entities), objects with attributes (``the big red car``) and relations
(``Anna owns the red car in Oslo``, ``Anna lives in Oslo``, ``Anna works for Vega Labs``).

A language is English's lexicon mapped word by word to invented words (each language has its own
sound inventory, so languages share no invented word), plus word-order rules
(``LanguageProfile``: SVO / SOV / VSO, adjective before or after the noun, prepositions or
postpositions, articles or none, the position of negation, wh-words fronted or in situ). A share
of the content words (``anchor_share``) keeps its English form in each language: these anchor
tokens, names and punctuation are what the languages share, so zero-shot transfer is possible but
imperfect, and it differs by language (``PROFILES`` goes from close to English to far from it).

Everything is deterministic: ``Language`` is built from a seed with ``random.Random`` and sorted
word lists; nothing depends on ``hash()`` or dict order.

    langs = make_languages(seed=0, n_languages=5)         # {"en": ..., "qaa": ..., ...}
    clause = Clause(NP(("Anna",), ent="PER"), "own", NP(("car",), ("red",), "the"))
    " ".join(t.text for t in realize(clause, langs["qac"]))
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

# ----------------------------------------------------------------------------------- the lexicon

FIRST_NAMES = (
    "Anna",
    "Boris",
    "Clara",
    "David",
    "Elena",
    "Felix",
    "Greta",
    "Hugo",
    "Ines",
    "Jonas",
    "Karla",
    "Leon",
    "Mira",
    "Nils",
    "Olga",
    "Pavel",
    "Rosa",
    "Samir",
    "Tara",
    "Umar",
    "Vera",
    "Wim",
    "Yara",
    "Zoe",
)
LAST_NAMES = (
    "Berg",
    "Costa",
    "Dahl",
    "Ekman",
    "Frost",
    "Gomez",
    "Holm",
    "Ivanov",
    "Jensen",
    "Kato",
    "Lind",
    "Moreau",
    "Novak",
    "Okafor",
    "Park",
    "Quinn",
)
PLACES = (
    "Oslo",
    "Lima",
    "Porto",
    "Dakar",
    "Hanoi",
    "Quito",
    "Tunis",
    "Riga",
    "Perth",
    "Accra",
    "Bern",
    "Cork",
    "Kyoto",
    "Malmo",
    "Nantes",
    "Turin",
    "Vigo",
    "San Remo",
    "Port Louis",
    "Santa Fe",
    "Le Havre",
    "Abu Dhabi",
    "Buenos Aires",
)
ORG_STEMS = ("Acme", "Zenith", "Vega", "Orion", "Nordic", "Apex", "Helix", "Cobalt", "Delta", "Lumen")
ORG_SUFFIXES = ("Labs", "Bank", "Motors", "Group", "Media")
NOUNS = (
    "car",
    "book",
    "house",
    "dog",
    "cat",
    "lamp",
    "boat",
    "chair",
    "table",
    "bike",
    "clock",
    "coat",
    "hat",
    "ring",
    "phone",
    "box",
    "cup",
    "kite",
    "piano",
    "vase",
    "guitar",
    "map",
    "drum",
    "key",
)
SIZES = ("big", "small", "old", "new", "cheap", "heavy")
COLOURS = ("red", "blue", "green", "yellow", "black", "white", "brown", "pink")
# English verb forms: lemma -> (3rd person singular, base, past participle or "" when unused).
VERBS = {
    "own": ("owns", "own", "owned"),
    "see": ("sees", "see", "seen"),
    "like": ("likes", "like", "liked"),
    "buy": ("buys", "buy", "bought"),
    "sell": ("sells", "sell", "sold"),
    "paint": ("paints", "paint", "painted"),
    "find": ("finds", "find", "found"),
    "carry": ("carries", "carry", "carried"),
    "want": ("wants", "want", "wanted"),
    "fix": ("fixes", "fix", "fixed"),
    "know": ("knows", "know", "known"),
    "meet": ("meets", "meet", "met"),
    "help": ("helps", "help", "helped"),
    "call": ("calls", "call", "called"),
    "visit": ("visits", "visit", "visited"),
    "live": ("lives", "live", ""),
    "work": ("works", "work", ""),
}
OBJECT_VERBS = ("own", "see", "like", "buy", "sell", "paint", "find", "carry", "want", "fix")  # + a thing
PERSON_VERBS = ("know", "meet", "help", "call")  # + a person
PREP_VERBS = {"live": "in", "work": "for"}  # verbs whose object comes with an adposition
FUNCTION_WORDS = (
    "the",
    "a",
    "in",
    "for",
    "not",
    "who",
    "what",
    "where",
    "is",
    "by",
    "and",
    "that",
    "question",
)
PUNCTUATION = (".", "?")
CONTENT_WORDS = tuple(sorted(set(NOUNS) | set(SIZES) | set(COLOURS) | set(VERBS)))


@dataclass(frozen=True)
class LanguageProfile:
    """Word-order rules and the anchor share of one synthetic language."""

    code: str
    order: str = "SVO"  # SVO | SOV | VSO
    adjective: str = "pre"  # pre: "red car" | post: "car red"
    adposition: str = "pre"  # pre: "in Oslo" | post: "Oslo in"
    articles: bool = True  # realise the/a
    negation: str = "pre"  # pre: "not own" | post: "own not"
    wh: str = "front"  # front: "what Anna own ?" | situ: "Anna own what ?"
    question_particle: bool = False  # a particle before "?" (like Japanese "ka")
    anchor_share: float = 0.2  # share of content words that keep their English form
    consonants: str = "bdgklmnprst"
    vowels: str = "aeiou"
    description: str = ""


# From close to English to far from it. Codes qaa-qtz are reserved by ISO 639-2 for local use.
PROFILES: tuple[LanguageProfile, ...] = (
    LanguageProfile(
        "qaa",
        "SVO",
        "pre",
        "pre",
        True,
        "pre",
        "front",
        False,
        0.40,
        "bdfgklmnprstv",
        "aeiou",
        "SVO, adjective-noun, prepositions: English word order, 40% anchors",
    ),
    LanguageProfile(
        "qab",
        "SVO",
        "post",
        "pre",
        True,
        "pre",
        "front",
        False,
        0.25,
        "bcdfhlmnrstz",
        "aeiouy",
        "SVO, noun-adjective (Romance-like), 25% anchors",
    ),
    LanguageProfile(
        "qac",
        "SOV",
        "pre",
        "post",
        True,
        "post",
        "situ",
        True,
        0.15,
        "gkmnprshtw",
        "aeiou",
        "SOV, postpositions, wh in situ, question particle (Japanese-like), 15% anchors",
    ),
    LanguageProfile(
        "qad",
        "VSO",
        "post",
        "pre",
        True,
        "pre",
        "front",
        False,
        0.10,
        "bdfglmnrtvw",
        "aeio",
        "VSO, noun-adjective (Celtic-like), 10% anchors",
    ),
    LanguageProfile(
        "qae",
        "SOV",
        "post",
        "post",
        False,
        "post",
        "situ",
        True,
        0.05,
        "jkmnpstvz",
        "aeiu",
        "SOV, noun-adjective, postpositions, no articles, wh in situ, 5% anchors",
    ),
)
ENGLISH = LanguageProfile("en", anchor_share=1.0, description="English (the training language)")


@dataclass(frozen=True)
class Language:
    """A profile plus its lexicon: English lemma (or function word) -> surface word."""

    profile: LanguageProfile
    lexicon: Mapping[str, str] = field(default_factory=dict)
    anchors: tuple[str, ...] = ()  # lemmas whose surface is the English word

    @property
    def code(self) -> str:
        return self.profile.code

    def word(self, lemma: str) -> str:
        return self.lexicon.get(lemma, lemma)


def _pseudo_word(rng: random.Random, profile: LanguageProfile) -> str:
    syllables = rng.choice((2, 2, 3))
    return "".join(rng.choice(profile.consonants) + rng.choice(profile.vowels) for _ in range(syllables)) + (
        rng.choice(profile.consonants) if rng.random() < 0.4 else ""
    )


def _english_surface(lemma: str) -> str:
    return VERBS[lemma][0] if lemma in VERBS else lemma


def make_languages(seed: int = 0, n_languages: int = 5, *, anchor_scale: float = 1.0) -> dict[str, Language]:
    """English plus the first ``n_languages`` of ``PROFILES``, lexicons drawn from ``seed``.

    ``anchor_scale`` multiplies every profile's ``anchor_share`` (0 = no shared content words;
    names and punctuation are always shared). Raises ValueError for a count out of range.
    """
    if not 1 <= n_languages <= len(PROFILES):
        raise ValueError(
            f"n_languages must be between 1 and {len(PROFILES)} (the defined profiles), got {n_languages}."
        )
    if anchor_scale < 0:
        raise ValueError(f"anchor_scale must be >= 0, got {anchor_scale}.")
    rng = random.Random(f"xitt-synth-lexicon-{seed}")
    taken = {w.lower() for w in set(CONTENT_WORDS) | set(FUNCTION_WORDS) | {v[0] for v in VERBS.values()}}
    taken |= {
        w.lower()
        for name in FIRST_NAMES + LAST_NAMES + PLACES + ORG_STEMS + ORG_SUFFIXES
        for w in name.split()
    }
    out = {"en": Language(ENGLISH)}
    for profile in PROFILES[:n_languages]:
        share = min(1.0, profile.anchor_share * anchor_scale)
        anchors = tuple(sorted(rng.sample(CONTENT_WORDS, round(share * len(CONTENT_WORDS)))))
        lexicon = {}
        for lemma in sorted(set(CONTENT_WORDS) | set(FUNCTION_WORDS)):
            if lemma in anchors:
                lexicon[lemma] = _english_surface(lemma)
                continue
            word = _pseudo_word(rng, profile)
            while word in taken:
                word = _pseudo_word(rng, profile)
            taken.add(word)
            lexicon[lemma] = word
        out[profile.code] = Language(profile, lexicon, anchors)
    return out


# ------------------------------------------------------------------------------------ the grammar


@dataclass(frozen=True)
class NP:
    """A noun phrase: a name (``ent`` PER/LOC/ORG, ``head`` its tokens) or ``det adjs noun``."""

    head: tuple[str, ...]
    adjs: tuple[str, ...] = ()
    det: str | None = None
    ent: str = ""


@dataclass(frozen=True)
class Clause:
    """``subj verb [adposition] obj [in adjunct]``, optionally negated."""

    subj: NP
    verb: str
    obj: NP
    adjunct: NP | None = None  # a place: "in Oslo"
    neg: bool = False


@dataclass(frozen=True)
class Token:
    """One realised word: its text, BIO entity tag and the constituent it belongs to.

    ``role`` is subj / obj / adjunct for the content words of those noun phrases (the span a
    question asks for), and "" for verbs, articles, adpositions, negation and punctuation.
    """

    text: str
    tag: str = "O"
    role: str = ""


def _np_tokens(np_: NP, lang: Language, role: str, *, definite_ok: bool = True) -> list[Token]:
    if np_.ent:
        return [Token(w, ("B-" if i == 0 else "I-") + np_.ent, role) for i, w in enumerate(np_.head)]
    out = [Token(lang.word(np_.det))] if np_.det and lang.profile.articles and definite_ok else []
    adjs = [Token(lang.word(a), "O", role) for a in np_.adjs]
    noun = [Token(lang.word(w), "O", role) for w in np_.head]
    return out + (adjs + noun if lang.profile.adjective == "pre" else noun + adjs)


def phrase(np_: NP, lang: Language) -> list[Token]:
    """The content words of a noun phrase in ``lang`` (no article): a name, or adjectives + noun in order."""
    return [t for t in _np_tokens(np_, lang, "np") if t.role]


def _wh(np_: NP, verb: str, slot: str) -> str:
    if slot == "adjunct" or (np_.ent == "LOC" and verb == "live"):
        return "where"
    return "who" if np_.ent in ("PER", "ORG") else "what"


def _pp(adposition: str, body: list[Token], lang: Language) -> list[Token]:
    marker = [Token(lang.word(adposition))]
    return marker + body if lang.profile.adposition == "pre" else body + marker


def realize(clause: Clause, lang: Language, *, ask: str | None = None) -> list[Token]:
    """The tokens of ``clause`` in ``lang``; ``ask`` (subj | obj | adjunct) makes it a wh-question.

    A question replaces the asked noun phrase by who / what / where (``where`` replaces the whole
    place phrase, adposition included) and ends with "?"; statements end with ".".
    """
    if ask not in (None, "subj", "obj", "adjunct"):
        raise ValueError(f"ask must be None, 'subj', 'obj' or 'adjunct', got {ask!r}.")
    if ask == "adjunct" and clause.adjunct is None:
        raise ValueError("cannot ask for the place of a clause without one.")
    if lang.code == "en":
        return _realize_english(clause, ask)
    p = lang.profile
    parts: dict[str, list[Token]] = {}
    wh = {}
    for slot in ("subj", "obj", "adjunct"):
        np_ = getattr(clause, slot)
        if np_ is None:
            continue
        body = [Token(lang.word(_wh(np_, clause.verb, slot)))] if ask == slot else _np_tokens(np_, lang, slot)
        where_phrase = ask == slot and _wh(np_, clause.verb, slot) == "where"
        if slot == "obj" and clause.verb in PREP_VERBS and not where_phrase:
            body = _pp(PREP_VERBS[clause.verb], body, lang)
        elif slot == "adjunct" and not where_phrase:
            body = _pp("in", body, lang)
        parts[slot] = body
        wh[slot] = body
    verb = [Token(lang.word(clause.verb))]
    if clause.neg:
        verb = [Token(lang.word("not"))] + verb if p.negation == "pre" else verb + [Token(lang.word("not"))]
    x = parts.get("adjunct", [])
    order = {
        "SVO": [parts["subj"], verb, parts["obj"], x],
        "SOV": [parts["subj"], x, parts["obj"], verb],
        "VSO": [verb, parts["subj"], parts["obj"], x],
    }[p.order]
    if ask and p.wh == "front":
        order = [wh[ask]] + [c for c in order if c is not wh[ask]]
    tokens = [t for chunk in order for t in chunk]
    if ask:
        return tokens + ([Token(lang.word("question"))] if p.question_particle else []) + [Token("?")]
    return tokens + [Token(".")]


def _realize_english(clause: Clause, ask: str | None) -> list[Token]:
    en = Language(ENGLISH)
    third, base, _ = VERBS[clause.verb]
    prep = PREP_VERBS.get(clause.verb)
    subj = _np_tokens(clause.subj, en, "subj")
    obj = _np_tokens(clause.obj, en, "obj")
    place = [Token("in")] + _np_tokens(clause.adjunct, en, "adjunct") if clause.adjunct else []
    if ask is None:
        verb = [Token("does"), Token("not"), Token(base)] if clause.neg else [Token(third)]
        return subj + verb + ([Token(prep)] if prep else []) + obj + place + [Token(".")]
    if ask == "subj":
        verb = [Token("does"), Token("not"), Token(base)] if clause.neg else [Token(third)]
        return [Token("who")] + verb + ([Token(prep)] if prep else []) + obj + place + [Token("?")]
    wh = _wh(getattr(clause, ask), clause.verb, ask)
    aux = [Token("does")] + subj + ([Token("not")] if clause.neg else []) + [Token(base)]
    if ask == "obj":
        tail = [Token(prep)] if prep and wh != "where" else []
        return [Token(wh)] + aux + tail + place + [Token("?")]
    return [Token("where")] + aux + ([Token(prep)] if prep else []) + obj + [Token("?")]


def text_of(tokens: Sequence[Token]) -> str:
    return " ".join(t.text for t in tokens)


def span_of(tokens: Sequence[Token], role: str) -> tuple[int, int]:
    """(first, last) token index of the contiguous content words of ``role``; ValueError if absent."""
    idx = [i for i, t in enumerate(tokens) if t.role == role]
    if not idx or idx[-1] - idx[0] + 1 != len(idx):
        raise ValueError(f"role {role!r} is not one contiguous span in {text_of(tokens)!r}.")
    return idx[0], idx[-1]


def all_words(languages: Mapping[str, Language]) -> list[str]:
    """Every surface word any language can produce (for tokenizer coverage checks), sorted."""
    words = set(PUNCTUATION) | {"does"} | {f for v in VERBS.values() for f in v if f}
    for name in FIRST_NAMES + LAST_NAMES + PLACES + ORG_STEMS + ORG_SUFFIXES:
        words.update(name.split())
    for lang in languages.values():
        words.update(lang.word(w) for w in CONTENT_WORDS + FUNCTION_WORDS)
    return sorted(words)
