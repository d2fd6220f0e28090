"""The task registry: tasks are declared in YAML (one file per family), never coded.

Each ``xitt/tasks/<family>.yaml`` has ``family``, optional ``defaults`` and ``tasks: {name: entry}``;
an entry may override ``family`` (the synthetic benchmark keeps its tasks of several families in
one file). Extra folders of task files can be added with ``XITT_TASKS_PATH`` (``:``-separated).

Entry keys (``TASK_KEYS``): ``roles`` (intermediate and/or target), ``kind`` (one head each, see
``KINDS``), ``metric`` (``METRICS``), ``languages`` (ISO 639-1; XTREME's list),
``languages_xtreme_r`` (XTREME-R's list when it differs), ``train_language``, ``labels``,
``fields`` (hub column names), ``source`` (``hub`` + per-split ``{config, split, filter}``, or
``local_only``), ``version``, ``hparams`` (XTREME's per-task defaults), ``description``,
``display`` (the name reports show, e.g. ``SQuAD 1.1``), ``dual_encoder`` (a retrieval
target's fine-tuning data: ``{train: <task>, pairs: aligned | answer_sentence}``, xitt.train.dual)
and ``trains_on`` (a target whose English training is another task's: XQuAD and MLQA both train on
``squad_v1``, so a grid trains that once per encoder, intermediate and seed and evaluates both from
it; see ``xitt/grid/spec.py`` TrainSpec).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from xitt.schema import NONE, did_you_mean, name_problem

ROLES = ("intermediate", "target")
KINDS = ("classification", "pair_classification", "multiple_choice", "span_qa", "tagging", "retrieval")
METRICS = ("accuracy", "f1_seqeval", "squad_em_f1", "mlqa_em_f1", "bucc_f1", "tatoeba_accuracy", "map_at_20")
TASK_KEYS = (
    "roles",
    "kind",
    "metric",
    "languages",
    "languages_xtreme_r",
    "train_language",
    "labels",
    "fields",
    "source",
    "version",
    "hparams",
    "description",
    "display",
    "family",
    "dual_encoder",
    "trains_on",
)
FILE_KEYS = ("family", "defaults", "tasks", "description")
# XTREME's own suite names, so that a grid can say `targets: xtreme` or `targets: xtreme-r`.
# XTREME-R replaces PAWS-X and BUCC by XCOPA, Mewsli-X and LAReQA and extends some language lists.
SUITES: dict[str, tuple[str, ...]] = {
    "xtreme": ("xnli", "pawsx", "udpos", "panx", "xquad", "mlqa", "tydiqa", "bucc2018", "tatoeba"),
    "xtreme-r": ("xnli", "xcopa", "udpos", "panx", "xquad", "mlqa", "tydiqa", "mewslix", "lareqa", "tatoeba"),
}
# Placeholders a source config may use besides {lang}: UD-POS configs name the language in
# English ({language_name}: google/xtreme's udpos.<Name> configs, checked against its loading
# script huggingface/datasets datasets/xtreme/xtreme.py _UD_POS_LANG), TyDiQA ids start with the
# lower-case name ({language_lower}: google-research/xtreme utils_preprocess.py LANG2ISO), Tatoeba
# configs use ISO 639-3 codes ({iso3}: LASER's tatoeba.<iso3>-eng files).
LANGUAGE_NAMES = {
    "af": "Afrikaans",
    "ar": "Arabic",
    "bg": "Bulgarian",
    "bn": "Bengali",
    "de": "German",
    "el": "Greek",
    "en": "English",
    "es": "Spanish",
    "et": "Estonian",
    "eu": "Basque",
    "fa": "Persian",
    "fi": "Finnish",
    "fr": "French",
    "he": "Hebrew",
    "hi": "Hindi",
    "hu": "Hungarian",
    "id": "Indonesian",
    "it": "Italian",
    "ja": "Japanese",
    "kk": "Kazakh",
    "ko": "Korean",
    "mr": "Marathi",
    "nl": "Dutch",
    "pt": "Portuguese",
    "ru": "Russian",
    "sw": "Swahili",
    "ta": "Tamil",
    "te": "Telugu",
    "th": "Thai",
    "tl": "Tagalog",
    "tr": "Turkish",
    "ur": "Urdu",
    "vi": "Vietnamese",
    "yo": "Yoruba",
    "zh": "Chinese",
    "lt": "Lithuanian",
    "pl": "Polish",
    "ro": "Romanian",
    "uk": "Ukrainian",
    "wo": "Wolof",
}
ISO3 = {
    "af": "afr",
    "ar": "ara",
    "bg": "bul",
    "bn": "ben",
    "de": "deu",
    "el": "ell",
    "es": "spa",
    "et": "est",
    "eu": "eus",
    "fa": "pes",
    "fi": "fin",
    "fr": "fra",
    "he": "heb",
    "hi": "hin",
    "hu": "hun",
    "id": "ind",
    "it": "ita",
    "ja": "jpn",
    "jv": "jav",
    "ka": "kat",
    "kk": "kaz",
    "ko": "kor",
    "ml": "mal",
    "mr": "mar",
    "nl": "nld",
    "pt": "por",
    "ru": "rus",
    "sw": "swh",
    "ta": "tam",
    "te": "tel",
    "th": "tha",
    "tl": "tgl",
    "tr": "tur",
    "ur": "urd",
    "vi": "vie",
    "zh": "cmn",
    "az": "aze",
    "lt": "lit",
    "pl": "pol",
    "uk": "ukr",
    "ro": "ron",
}


class TaskError(ValueError):
    """A task file or a task reference is wrong; the message says how to fix it."""


@dataclass(frozen=True)
class Task:
    """One declared task. ``languages`` are the evaluation languages (targets) or ``(en,)``."""

    name: str
    family: str
    roles: tuple[str, ...]
    kind: str
    metric: str
    languages: tuple[str, ...]
    train_language: str = "en"
    languages_xtreme_r: tuple[str, ...] | None = None
    labels: tuple[str, ...] | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)
    source: Mapping[str, Any] = field(default_factory=dict)
    version: str = "0"
    hparams: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    display: str = ""  # the name shown in reports and tables (e.g. "SQuAD 1.1"); the id when empty
    trains_on: str = ""  # a target trained on another task's English data (XQuAD, MLQA: squad_v1)
    file: str = ""
    # retrieval targets XTREME-R fine-tunes as a dual encoder: {train: task, pairs: aligned |
    # answer_sentence} (xitt.train.dual); used when a run sets retrieval_training: dual
    dual_encoder: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_target(self) -> bool:
        return "target" in self.roles

    @property
    def is_intermediate(self) -> bool:
        return "intermediate" in self.roles

    @property
    def trains_on_target(self) -> bool:
        """Retrieval targets evaluate the encoder directly, without target training (XTREME)."""
        return self.kind != "retrieval"

    def languages_for(self, suite: str | None = None) -> tuple[str, ...]:
        if suite == "xtreme-r" and self.languages_xtreme_r:
            return self.languages_xtreme_r
        return self.languages

    @property
    def chance(self) -> float | None:
        """Chance-level score (0-100) for label-based tasks, used to flag degenerate runs."""
        if self.kind in ("classification", "pair_classification") and self.labels:
            return 100.0 / len(self.labels)
        choices = self.fields.get("choices") if self.kind == "multiple_choice" else None
        if isinstance(choices, list) and len(choices) > 1:
            return 100.0 / len(choices)
        return None


def _check_entry(name: str, entry: Mapping[str, Any], where: str) -> list[str]:
    problems = []
    if name_problem(name):
        problems.append(f"{where}: task name {name!r} cannot be used: {name_problem(name)}.")
    unknown = sorted(set(entry) - set(TASK_KEYS))
    for key in unknown:
        problems.append(f"{where}: task '{name}' has unknown key '{key}'.{did_you_mean(key, TASK_KEYS)}")
    roles = entry.get("roles") or []
    if not roles or any(r not in ROLES for r in roles):
        problems.append(f"{where}: task '{name}' needs roles from {list(ROLES)}, got {roles!r}.")
    if entry.get("kind") not in KINDS:
        problems.append(
            f"{where}: task '{name}' has unknown kind {entry.get('kind')!r}; use one of {list(KINDS)}."
            f"{did_you_mean(entry.get('kind'), KINDS)}"
        )
    if entry.get("metric") not in METRICS:
        problems.append(
            f"{where}: task '{name}' has unknown metric {entry.get('metric')!r}; use one of "
            f"{list(METRICS)}.{did_you_mean(entry.get('metric'), METRICS)}"
        )
    langs = entry.get("languages")
    if not langs or not isinstance(langs, list):
        problems.append(
            f"{where}: task '{name}' has no 'languages' list"
            + (" (a target needs its evaluation languages)." if "target" in roles else ".")
        )
    elif any(name_problem(lang) for lang in langs):
        bad = [lang for lang in langs if name_problem(lang)]
        problems.append(f"{where}: task '{name}' has language code(s) {bad} that cannot name files.")
    elif len(set(langs)) != len(langs):
        problems.append(
            f"{where}: task '{name}' lists a language twice: "
            f"{sorted(lang for lang in set(langs) if langs.count(lang) > 1)}."
        )
    if not entry.get("version"):
        problems.append(f"{where}: task '{name}' needs a 'version' (it goes into every result).")
    if not isinstance(entry.get("source"), Mapping):
        problems.append(f"{where}: task '{name}' needs a 'source' (hub id + splits, or local_only: true).")
    return problems


def _read_file(path: Path) -> tuple[list[Task], list[str]]:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        return [], [f"{path}: not valid YAML: {err}"]
    if not isinstance(doc, Mapping) or "tasks" not in doc:
        return [], [f"{path}: expected a mapping with 'family' and 'tasks'."]
    problems = [
        f"{path}: unknown top-level key '{k}'.{did_you_mean(k, FILE_KEYS)}" for k in doc if k not in FILE_KEYS
    ]
    defaults = doc.get("defaults") or {}
    problems += [
        f"{path}: unknown key '{k}' in defaults.{did_you_mean(k, TASK_KEYS)}"
        for k in defaults
        if k not in TASK_KEYS
    ]
    tasks = []
    for name, entry in (doc.get("tasks") or {}).items():
        merged = {**defaults, **(entry or {})}
        for key in ("hparams", "fields"):  # nested defaults merge key by key
            if isinstance(defaults.get(key), Mapping) and isinstance((entry or {}).get(key), Mapping):
                merged[key] = {**defaults[key], **entry[key]}
        merged.setdefault("family", doc.get("family"))
        found = _check_entry(name, merged, str(path))
        problems += found
        if found:
            continue
        tasks.append(
            Task(
                name=str(name),
                family=str(merged["family"]),
                roles=tuple(merged["roles"]),
                kind=merged["kind"],
                metric=merged["metric"],
                languages=tuple(merged["languages"]),
                train_language=merged.get("train_language", "en"),
                languages_xtreme_r=tuple(merged["languages_xtreme_r"])
                if merged.get("languages_xtreme_r")
                else None,
                labels=tuple(merged["labels"]) if merged.get("labels") else None,
                fields=dict(merged.get("fields") or {}),
                source=dict(merged["source"]),
                version=str(merged["version"]),
                hparams=dict(merged.get("hparams") or {}),
                description=str(merged.get("description", "")),
                display=str(merged.get("display", "")),
                trains_on=str(merged.get("trains_on") or ""),
                file=str(path),
                dual_encoder=dict(merged.get("dual_encoder") or {}),
            )
        )
    return tasks, problems


def task_dirs() -> list[Path]:
    dirs = [Path(__file__).parent]
    extra = os.environ.get("XITT_TASKS_PATH", "")
    dirs += [Path(p) for p in extra.split(os.pathsep) if p]
    return dirs


class Registry:
    """All declared tasks by name; ``get`` and ``targets`` raise TaskError with "did you mean"."""

    def __init__(self, tasks: Iterable[Task]):
        self.tasks: dict[str, Task] = {t.name: t for t in tasks}

    def get(self, name: str) -> Task:
        if name not in self.tasks:
            raise TaskError(
                f"unknown task '{name}'.{did_you_mean(name, list(self.tasks) + list(SUITES))} "
                "`xitt tasks` lists the declared tasks."
            )
        return self.tasks[name]

    def intermediate(self, name: str) -> Task:
        task = self.get(name)
        if not task.is_intermediate:
            raise TaskError(
                f"task '{name}' is a target, not an intermediate task; intermediate tasks are "
                f"{sorted(t.name for t in self.tasks.values() if t.is_intermediate)}."
            )
        return task

    def target(self, name: str) -> Task:
        task = self.get(name)
        if not task.is_target:
            raise TaskError(
                f"task '{name}' is intermediate-only and cannot be a target (it has no "
                f"evaluation languages); targets are "
                f"{sorted(t.name for t in self.tasks.values() if t.is_target)} or a suite {sorted(SUITES)}."
            )
        return task

    def expand_targets(self, names: str | Iterable[str]) -> list[str]:
        """Expand suite names (``xtreme``, ``xtreme-r``) and check every target."""
        names = [names] if isinstance(names, str) else list(names)
        out: list[str] = []
        for name in names:
            for target in SUITES.get(str(name).lower(), (name,)):
                self.target(target)
                if target not in out:
                    out.append(target)
        return out

    def by_family(self) -> dict[str, list[Task]]:
        families: dict[str, list[Task]] = {}
        for task in sorted(self.tasks.values(), key=lambda t: (t.family, t.name)):
            families.setdefault(task.family, []).append(task)
        return families


def scan(dirs: Iterable[Path] | None = None) -> tuple[Registry, list[str]]:
    """Read every task file; return the registry and the list of problems (empty when valid)."""
    tasks: list[Task] = []
    problems: list[str] = []
    seen: dict[str, str] = {}
    for folder in dirs or task_dirs():
        for path in sorted(Path(folder).glob("*.yaml")):
            found, errs = _read_file(path)
            problems += errs
            for task in found:
                if task.name in seen:
                    problems.append(f"{path}: task '{task.name}' is already declared in {seen[task.name]}.")
                    continue
                if task.name == NONE or task.name in SUITES:
                    problems.append(f"{path}: '{task.name}' is reserved and cannot name a task.")
                    continue
                seen[task.name] = str(path)
                tasks.append(task)
    problems += _check_trains_on(tasks)
    return Registry(tasks), problems


def _check_trains_on(tasks: list[Task]) -> list[str]:
    """``trains_on`` names a declared task of the same kind that trains on its own English data."""
    by_name = {t.name: t for t in tasks}
    problems = []
    for task in tasks:
        if not task.trains_on:
            continue
        other = by_name.get(task.trains_on)
        where = f"{task.file}: task '{task.name}' has trains_on: {task.trains_on}"
        if other is None:
            problems.append(
                f"{where}, which is not a declared task.{did_you_mean(task.trains_on, list(by_name))}"
            )
        elif not task.is_target or not task.trains_on_target:
            problems.append(f"{where}, but only a target that trains (not retrieval) can share a training.")
        elif other.kind != task.kind or other.trains_on or other.name == task.name:
            problems.append(
                f"{where}: it must name another {task.kind} task that trains on its own data "
                f"(that one is a {other.kind} task"
                + (f" trained on {other.trains_on}" if other.trains_on else "")
                + ")."
            )
    return problems


@functools.lru_cache(maxsize=1)
def _default_registry(dirs: tuple[str, ...]) -> Registry:
    registry, problems = scan([Path(d) for d in dirs])
    if problems:
        raise TaskError(
            "the task files have problems (run `xitt tasks --validate`):\n  " + "\n  ".join(problems)
        )
    return registry


def registry() -> Registry:
    """The validated registry of the built-in task files plus ``XITT_TASKS_PATH``."""
    return _default_registry(tuple(str(d) for d in task_dirs()))
