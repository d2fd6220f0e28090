"""The grid's ``intermediates:`` list: plain tasks, multi-task mixtures and the paper's alternatives.

One entry per intermediate condition::

    intermediates:
      - none                                   # the no-intermediate baseline
      - mnli                                   # one task
      - {name: nli+qa, tasks: [mnli, squad_v1]}   # multi-task (one head per task, shared encoder)
      - {name: all9, tasks: all}               # every task of the grid's other intermediates, multi-task
      - {name: mnli+mlm, tasks: [mnli],        # MLM on unlabelled text mixed in (Phang et al. 2020)
         mlm: {source: wiki_text, languages: [de, sw], ratio: 0.5}}
      - {name: mnli-translated, tasks: [mnli], # machine-translated training data (XTREME translate-train)
         translated: {languages: [de, sw], mode: union}}

``tasks: all`` is the one-line multi-task intermediate: the union, in order of appearance, of the
tasks of every other (non-``none``) entry of the grid.

``mlm``: ``source`` names a text corpus: a bare name is the folder ``<data_dir>/<source>/`` with one
file ``train-<lang>.txt`` per language (one text per line, like jiant's MLM task files); a path
(with a ``/``) is such a folder anywhere. ``xitt prepare`` verifies and caches it like a task
split. ``ratio`` is the share of the stage's batches that are MLM batches (0 < ratio < 1; 0.5 = as
many MLM batches as task batches). ``languages`` are the languages whose text is used.

``translated``: the intermediate tasks' training data in other ``languages``: ``mode: union``
trains on English + translations, ``mode: only`` on the translations alone (the English dev set
still selects the checkpoint). ``source`` (optional) is a folder of translations; without it they
are ``<data_dir>/<task>/train-<lang>.<ext>``. XTREME's translate-train file names are read too
(xitt/data/loaders.py ``translation_path``).

Families: a plain or multi-task entry keeps its task family (``multi`` when families differ); an
entry with ``mlm`` is family ``<family>+mlm`` and one with ``translated`` ``<family>+translated``,
so that the NLI-vs-QA comparison of the analysis never mixes the alternatives into NLI or QA.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from xitt.schema import NONE, name_problem, unknown_key
from xitt.tasks import Registry

ENTRY_KEYS = ("name", "tasks", "mlm", "translated")
MLM_KEYS = ("source", "languages", "ratio")
TRANSLATED_KEYS = ("languages", "mode", "source")
MODES = ("union", "only")
ALL = "all"


class IntermediateError(ValueError):
    """An intermediate entry is wrong; xitt.grid.spec turns it into a SpecError."""


@dataclass(frozen=True)
class MlmMix:
    """Masked-LM batches on unlabelled text in ``languages``, ``ratio`` of all batches."""

    source: str
    languages: tuple[str, ...]
    ratio: float = 0.5

    def key(self) -> dict:
        return {"source": self.source, "languages": list(self.languages), "ratio": self.ratio}


@dataclass(frozen=True)
class Translated:
    """The intermediate tasks' training data translated into ``languages`` (union with English or only)."""

    languages: tuple[str, ...]
    mode: str = "union"
    source: str = ""  # a folder of translations; "" = the data dir

    def key(self) -> dict:
        out = {"languages": list(self.languages), "mode": self.mode}
        return {**out, "source": self.source} if self.source else out


@dataclass(frozen=True)
class Intermediate:
    name: str
    tasks: tuple[str, ...]
    family: str
    mlm: MlmMix | None = None
    translated: Translated | None = None


def _check_name(value: Any, where: str) -> str:
    problem = name_problem(value)
    if problem:
        raise IntermediateError(f"{where} {value!r} cannot name folders: {problem}. Give it another 'name:'.")
    return value


def _languages(raw: Any, where: str) -> tuple[str, ...]:
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise IntermediateError(f"{where}.languages must be a non-empty list of language codes, got {raw!r}.")
    for lang in raw:
        _check_name(lang, f"{where}.languages: the language")
    if len(set(raw)) != len(raw):
        raise IntermediateError(f"{where}.languages lists a language twice: {raw}.")
    return tuple(raw)


def _keys(raw: Any, allowed: tuple[str, ...], where: str) -> Mapping:
    if not isinstance(raw, Mapping):
        raise IntermediateError(f"{where} must be a mapping with keys {', '.join(allowed)}; got {raw!r}.")
    if problem := unknown_key(raw, allowed, where):
        raise IntermediateError(problem)
    return raw


def parse_mlm(raw: Any, where: str) -> MlmMix:
    raw = _keys(raw, MLM_KEYS, where)
    source = raw.get("source")
    if not isinstance(source, str) or not source.strip():
        raise IntermediateError(
            f"{where}.source must name the unlabelled text: a corpus folder under the data dir "
            "(<data_dir>/<source>/train-<lang>.txt) or a path to such a folder."
        )
    if "/" not in source:
        _check_name(source, f"{where}.source: the corpus name")
    ratio = raw.get("ratio", 0.5)
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio < 1:
        raise IntermediateError(
            f"{where}.ratio = {ratio!r}: the share of MLM batches must be a number strictly between 0 and 1 "
            "(0.5 = as many MLM batches as task batches)."
        )
    return MlmMix(source, _languages(raw.get("languages"), where), float(ratio))


def parse_translated(raw: Any, where: str) -> Translated:
    raw = _keys(raw, TRANSLATED_KEYS, where)
    mode = raw.get("mode", "union")
    if mode not in MODES:
        raise IntermediateError(
            f"{where}.mode = {mode!r}: use 'union' (English + translations) or 'only' (translations alone)."
        )
    source = raw.get("source", "")
    if not isinstance(source, str):
        raise IntermediateError(f"{where}.source must be a folder of translations, got {source!r}.")
    languages = _languages(raw.get("languages"), where)
    if "en" in languages:
        raise IntermediateError(
            f"{where}.languages holds 'en': English is the original, list translations only."
        )
    return Translated(languages, mode, source)


def _family(tasks: tuple[str, ...], reg: Registry) -> str:
    families = {reg.intermediate(t).family for t in tasks}
    return families.pop() if len(families) == 1 else "multi"


def _tasks(item: Mapping, grid_tasks: list[str], where: str) -> tuple[str, ...]:
    tasks = item.get("tasks")
    if tasks == ALL:
        if len(grid_tasks) < 2:
            raise IntermediateError(
                f"{where}: 'tasks: all' mixes the tasks of the grid's other intermediates, and the grid has "
                f"{len(grid_tasks)} ({grid_tasks}). List at least two task intermediates."
            )
        return tuple(grid_tasks)
    alternative = "mlm" in item or "translated" in item
    if not isinstance(tasks, list) or not all(isinstance(t, str) for t in tasks) or not tasks:
        raise IntermediateError(f"{where}: 'tasks' must be a list of task names or 'all', got {tasks!r}.")
    if len(tasks) < 2 and not alternative:
        raise IntermediateError(
            f"{where}: a multi-task mapping needs at least two tasks; write a single task as a plain name, "
            "or add mlm: / translated: to it."
        )
    if len(set(tasks)) != len(tasks):
        raise IntermediateError(f"{where}: 'tasks' lists a task twice: {tasks}.")
    return tuple(tasks)


def parse_entry(item: Any, grid_tasks: list[str], reg: Registry) -> Intermediate:
    """One entry of ``intermediates:`` (see the module docstring)."""
    if item == NONE:
        return Intermediate(NONE, (), NONE)
    if isinstance(item, str):
        return Intermediate(item, (item,), reg.intermediate(item).family)
    if not isinstance(item, Mapping) or "tasks" not in item:
        raise IntermediateError(
            f"intermediate entry {item!r}: write a task name, 'none', or a mapping {{name: ..., tasks: "
            "[a, b, ...] or all}, optionally with mlm: {...} or translated: {...}."
        )
    where = f"intermediate {item.get('name') or item.get('tasks')!r}"
    _keys(item, ENTRY_KEYS, where)
    tasks = _tasks(item, grid_tasks, where)
    family = _family(tasks, reg)
    mlm = parse_mlm(item["mlm"], f"{where} mlm") if "mlm" in item else None
    if mlm and "/" not in mlm.source and mlm.source in reg.tasks:
        raise IntermediateError(
            f"{where} mlm.source '{mlm.source}' is the name of a task; name the text corpus otherwise."
        )
    translated = parse_translated(item["translated"], f"{where} translated") if "translated" in item else None
    if mlm and translated:
        raise IntermediateError(f"{where}: use mlm or translated, not both, in one intermediate.")
    if mlm:
        family += "+mlm"
    if translated:
        family += "+translated"
    name = item.get("name")
    if not name and (mlm or translated or item["tasks"] == ALL):
        raise IntermediateError(
            f"{where}: give it a 'name:' (it names its stages and runs), e.g. 'mnli+mlm'."
        )
    name = _check_name(name or "multi_" + "+".join(tasks), f"{where}: the name")
    return Intermediate(name, tasks, family, mlm, translated)


def parse_intermediates(raw: Any, reg: Registry) -> tuple[Intermediate, ...]:
    """The grid's ``intermediates:`` list; raises IntermediateError naming the entry and the fix."""
    if not raw or not isinstance(raw, list):
        raise IntermediateError(
            "'intermediates' must be a non-empty list (use 'none' for the no-intermediate baseline)."
        )
    grid_tasks: list[str] = []
    for item in raw:
        if isinstance(item, Mapping) and isinstance(item.get("tasks"), list):
            grid_tasks += [t for t in item["tasks"] if isinstance(t, str)]
        elif isinstance(item, str) and item != NONE:
            grid_tasks.append(item)
    grid_tasks = list(dict.fromkeys(grid_tasks))
    out = [parse_entry(item, grid_tasks, reg) for item in raw]
    names = [i.name for i in out]
    if len(set(names)) != len(names):
        raise IntermediateError(f"an intermediate is listed twice in {names}.")
    return tuple(out)
