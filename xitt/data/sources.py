"""Where each split of a task comes from: the task YAML's ``source`` resolved to concrete entries.

A task's ``source`` maps a split (train, dev, test) to one entry or a list of entries (their rows
are concatenated). An entry names a hub dataset and, optionally::

    hub:       the repository (default: the source's ``hub``)
    config:    the configuration ({lang}, {language_name}, {language_lower}, {iso3} are filled in)
    split:     the hub split (default: the xitt split's name)
    revision:  a branch, tag or commit; ``refs/convert/parquet`` reads the hub's Parquet export
               of a repository that ships only a loading script (``datasets`` >= 4 refuses those)
    filter:    {column: value} keeps equal rows; {column: {prefix: text}} keeps rows whose value
               starts with text (TyDiQA names the language only in its id: ``english-...``)
    fields:    column names that differ from the task's ``fields`` (XNLI trains on MNLI columns)
    drop_tags: tags whose tokens are removed (UD's ``_`` marks multi-word token ranges)

``by_language: {lang: {split: entries}}`` replaces the entries of one language (XTREME-R languages
that ``google/xtreme`` lacks come from other datasets). ``local_only: true`` means no hub source.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from xitt.schema import did_you_mean
from xitt.tasks import ISO3, LANGUAGE_NAMES, Task, TaskError

PARQUET_EXPORT = "refs/convert/parquet"
ENTRY_KEYS = ("hub", "config", "split", "revision", "filter", "fields", "drop_tags")


@dataclass(frozen=True)
class Source:
    """One hub dataset split that feeds one (task, split, language)."""

    hub: str
    config: str | None
    split: str
    revision: str | None = None
    filter: Mapping[str, Any] = field(default_factory=dict)
    fields: Mapping[str, Any] = field(default_factory=dict)
    drop_tags: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, str | None, str, str | None]:
        """What one ``load_dataset`` call fetches: filters and fields are applied afterwards."""
        return (self.hub, self.config, self.split, self.revision)

    def describe(self) -> str:
        config = f" config {self.config}" if self.config else ""
        revision = f" @{self.revision}" if self.revision else ""
        return f"{self.hub}{config} split {self.split}{revision}"


def fill(value: Any, lang: str) -> Any:
    """Fill the language placeholders of a source value (strings inside mappings and lists too)."""
    if isinstance(value, str):
        name = LANGUAGE_NAMES.get(lang, lang)
        return value.format(
            lang=lang, language_name=name, language_lower=name.lower(), iso3=ISO3.get(lang, lang)
        )
    if isinstance(value, Mapping):
        return {k: fill(v, lang) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, lang) for v in value]
    return value


def _entries(task: Task, split: str, lang: str) -> list[Mapping[str, Any]]:
    source = task.source
    override = (source.get("by_language") or {}).get(lang) or {}
    entries = override.get(split, source.get(split))
    if entries is None:
        return []
    return entries if isinstance(entries, list) else [entries]


def resolve(task: Task, split: str, lang: str) -> list[Source]:
    """The hub sources of one split of one language, placeholders filled; [] for local-only tasks."""
    if task.source.get("local_only"):
        return []
    out = []
    for entry in _entries(task, split, lang):
        unknown = [k for k in entry if k not in ENTRY_KEYS]
        if unknown:
            raise TaskError(
                f"{task.file}: task '{task.name}' source entry for {split} has unknown key '{unknown[0]}'."
                f"{did_you_mean(unknown[0], ENTRY_KEYS)} Known keys: {', '.join(ENTRY_KEYS)}."
            )
        entry = fill(dict(entry), lang)
        out.append(
            Source(
                hub=entry.get("hub", task.source.get("hub")),
                config=entry.get("config"),
                split=entry.get("split", split),
                revision=entry.get("revision"),
                filter=entry.get("filter") or {},
                fields=entry.get("fields") or {},
                drop_tags=tuple(entry.get("drop_tags") or ()),
            )
        )
    return out


def declared(task: Task, split: str, lang: str) -> list[dict]:
    """The resolved sources as plain data: what a prepared copy was built from (stale if it changes)."""
    return [
        {
            "hub": s.hub,
            "config": s.config,
            "split": s.split,
            "revision": s.revision,
            "filter": dict(s.filter),
            "fields": dict(s.fields),
            "drop_tags": list(s.drop_tags),
        }
        for s in resolve(task, split, lang)
    ]


def needed_splits(task: Task, languages: Sequence[str], *, as_target: bool) -> list[tuple[str, str]]:
    """(split, language) pairs a stage needs: intermediates train+dev; targets also test per language."""
    lang = task.train_language
    if task.kind == "retrieval":
        pairs = [("test", lang) for lang in languages]
        return ([("dev", lang) for lang in languages] if task.metric == "bucc_f1" else []) + pairs
    pairs = [("train", lang), ("dev", lang)]
    return pairs + ([("test", lang) for lang in languages] if as_target else [])


def keep_row(row: Mapping[str, Any], filters: Mapping[str, Any]) -> bool:
    """A row passes a source's filter: equality, or {prefix: text} on a string column."""
    for column, want in filters.items():
        value = row.get(column)
        if isinstance(want, Mapping):
            if not str(value).startswith(str(want.get("prefix", ""))):
                return False
        elif value != want:
            return False
    return True


class HubClient:
    """The two hub calls xitt makes, in one place: ``load`` a split and resolve a ``revision`` to a sha.

    A Parquet export is read with ``data_dir=<config>`` (the export's folder per configuration).
    Tests replace ``datasets.load_dataset`` and ``huggingface_hub.HfApi.dataset_info`` underneath.
    """

    def load(self, source: Source):
        import datasets

        if source.revision == PARQUET_EXPORT:
            return datasets.load_dataset(
                source.hub, data_dir=source.config or "default", split=source.split, revision=source.revision
            )
        return datasets.load_dataset(source.hub, source.config, split=source.split, revision=source.revision)

    def sha(self, hub: str, revision: str | None) -> str:
        from huggingface_hub import HfApi

        return str(HfApi().dataset_info(hub, revision=revision).sha)
