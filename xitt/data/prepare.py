"""``xitt prepare``: resolve, verify and cache every split a grid needs, before any training.

For each (task, split, language) the grid's pending stages and runs need (train and dev of every
task, test of every target language), in one pass:

1. a valid cache entry (xitt/data/cache.py) is kept as it is: no hub call;
2. otherwise the data is read from a local file (``<data_dir>/<task>/<split>-<lang>.<ext>``) or
   from its hub sources (xitt/data/sources.py; one ``load_dataset`` per dataset, config, split and
   revision for the whole grid, the revision resolved to a commit sha);
3. it is verified: declared columns present, labels in the task's label set (tags of a test
   language in the English training tags), not empty, QA answer spans inside their contexts,
   the row count equal to what the dataset itself declares;
4. the verified copy and its manifest entry are written.

Every problem is collected with its fix; ``prepare`` raises one DataError listing all of them
after the whole pass, and writes nothing for a split that has a problem.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xitt.data import cache, sources
from xitt.data.conditions import stage_needs
from xitt.data.loaders import EXTENSIONS, DataError, _hub_example, _label_names, local_path, read_local
from xitt.data.sources import PARQUET_EXPORT, HubClient, Source
from xitt.schema import did_you_mean
from xitt.tasks import Task

log = logging.getLogger("xitt")
SPAN_TOLERANCE = 0.01  # share of QA answers allowed off their context (XTREME's own data: 0)
SPLIT_ORDER = {"train": 0, "dev": 1, "test": 2}


@dataclass
class Line:
    """One row of the prepare table."""

    task: str
    language: str
    split: str
    rows: int | None = None
    source: str = ""
    status: str = ""


@dataclass
class Outcome:
    lines: list[Line] = field(default_factory=list)
    problems: list[tuple[str, str, str]] = field(default_factory=list)  # (task, "<split>-<lang>", problem)
    hub_calls: int = 0


def needs_of(stages: Iterable, runs: Iterable, reg) -> list[tuple[Task, str, str]]:
    """Unique (task, split, language) of the stages and runs, training splits first; a stage's
    MLM text and translated training data are needs too."""
    needs = []
    for stage in stages:
        for name in stage.intermediate_tasks:
            task = reg.get(name)
            needs += [
                (task, s, lang)
                for s, lang in sources.needed_splits(task, [task.train_language], as_target=False)
            ]
        needs += stage_needs(stage, reg)  # MLM text and translations (xitt/data/conditions.py)
    for run in runs:
        task = reg.get(run.target)
        splits = sources.needed_splits(task, run.languages, as_target=True)
        if getattr(run, "training", None) is not None:  # a shared training: its task's train + dev
            trained = reg.get(run.training.task)
            needs += [(trained, s, lang) for s, lang in sources.needed_splits(trained, [], as_target=False)]
            splits = [(s, lang) for s, lang in splits if s == "test"]
        needs += [(task, s, lang) for s, lang in splits]
        if run.target_train.train_first:  # e.g. SIQA before XCOPA: its English train + dev
            first = reg.get(run.target_train.train_first)
            needs += [(first, s, lang) for s, lang in sources.needed_splits(first, [], as_target=False)]
        if run.target_train.retrieval_training == "dual":  # the dual encoder's English pairs
            pairs = reg.get(task.dual_encoder["train"])
            needs.append((pairs, "train", pairs.train_language))
    unique = {(t.name, s, lang): (t, s, lang) for t, s, lang in needs}
    return sorted(unique.values(), key=lambda n: (n[0].name, SPLIT_ORDER[n[1]], n[2]))


class Preparer:
    """One pass over the needs; hub datasets and revision shas are fetched once and shared."""

    def __init__(self, data_dir: Path, *, offline: bool, client: HubClient | None = None):
        self.data_dir, self.offline, self.client = Path(data_dir), offline, client or HubClient()
        self.datasets: dict[tuple, Any] = {}
        self.shas: dict[tuple, str] = {}
        self.labels: dict[str, list[str]] = {}  # tagging task -> English training tags
        self.outcome = Outcome()

    def run(self, needs: Sequence[tuple[Task, str, str]]) -> Outcome:
        for task, split, lang in needs:
            line = Line(task.name, lang, split)
            self.outcome.lines.append(line)
            problem = self.one(task, split, lang, line)
            if problem:
                line.status = "PROBLEM"
                self.outcome.problems.append((task.name, f"{split}-{lang}", problem))
        return self.outcome

    def one(self, task: Task, split: str, lang: str, line: Line) -> str | None:
        declared = sources.declared(task, split, lang)
        state, detail = cache.inspect(self.data_dir, task, split, lang, declared)
        if state == "ok":
            line.rows, line.source, line.status = detail["rows"], _source_text(detail["sources"]), "cached"
            self._remember_labels(task, split, detail["labels"])
            return None
        if state in ("partial", "corrupt", "disagrees"):
            line.status = state
            folder = cache.copy_path(self.data_dir, task.name, split, lang).parent
            return f"{detail}. Fix: delete {folder} and run `xitt prepare` again."
        fetched = self.fetch(task, split, lang)
        if isinstance(fetched, str):
            return fetched
        examples, used = fetched
        problem = verify(task, split, examples, self.labels.get(task.name))
        if problem:
            return problem
        labels = sorted(label_set(task, examples))
        entry = cache.write_entry(
            self.data_dir, task, split, lang, examples, sources=used, declared=declared, labels=labels
        )
        self._remember_labels(task, split, entry["labels"])
        line.rows, line.source = entry["rows"], _source_text(used)
        line.status = "prepared" if state == "missing" else "prepared (was stale)"
        return None

    def _remember_labels(self, task: Task, split: str, labels: list[str]) -> None:
        if task.kind == "tagging" and not task.labels and split == "train":
            self.labels[task.name] = list(labels)

    def fetch(self, task: Task, split: str, lang: str) -> tuple[list[dict], list[dict]] | str:
        """(examples, source records) or a problem text."""
        path = local_path(task, split, lang, self.data_dir)
        if path is not None and path.is_file():
            try:
                examples = read_local(task, path)
            except (DataError, ValueError, KeyError) as err:
                return f"{err} Fix the file {path}."
            record = {
                "source": f"local:{task.name}/{path.name}",
                "revision": cache.fingerprint(path),
                "rows": len(examples),
            }
            return examples, [record]
        found = sources.resolve(task, split, lang)
        if not found:
            return _no_source(task, split, lang, path)
        if self.offline and any(s.key not in self.datasets for s in found):
            return (
                f"not prepared in {self.data_dir} and the hub is off (XITT_OFFLINE / HF_HUB_OFFLINE); "
                f"source: {'; '.join(s.describe() for s in found)}. "
                f"Fix: run `xitt prepare` once online with this --data-dir (or XITT_DATA_DIR), or put "
                f"{task.name}/<split>-<lang>.{EXTENSIONS[task.kind]} there."
            )
        examples, records = [], []
        for src in found:
            got = self._rows(task, src)
            if isinstance(got, str):
                return got
            examples += got
            records.append(
                {
                    "source": src.hub,
                    "config": src.config,
                    "split": src.split,
                    "revision": src.revision,
                    "sha": self._sha(src),
                    "rows": len(got),
                }
            )
        return examples, records

    def _sha(self, src: Source) -> str:
        key = (src.hub, src.revision)
        if key not in self.shas:
            try:
                self.shas[key] = self.client.sha(src.hub, src.revision)
            except Exception as err:  # provenance only: a failed lookup must not hide the data
                log.warning("could not resolve %s@%s: %s", src.hub, src.revision, err)
                self.shas[key] = "unresolved"
        return self.shas[key]

    def _load(self, src: Source):
        if src.key not in self.datasets:
            self.outcome.hub_calls += 1
            try:
                self.datasets[src.key] = self.client.load(src)
            except Exception as err:
                self.datasets[src.key] = err
        return self.datasets[src.key]

    def _rows(self, task: Task, src: Source) -> list[dict] | str:
        ds = self._load(src)
        if isinstance(ds, Exception):
            return hub_problem(src, ds)
        effective = _with_fields(task, src)
        missing = [c for c in needed_columns(effective) if c not in ds.column_names]
        if missing:
            return (
                f"{src.describe()} has no column(s) {missing}; its columns are {list(ds.column_names)}."
                f"{did_you_mean(missing[0], ds.column_names)} Fix: map the task's fields to the real "
                f"columns in {task.file} (fields: {{role: column}})."
            )
        declared_rows = _declared_rows(ds, src.split)
        if declared_rows is not None and declared_rows != len(ds):
            return (
                f"{src.describe()} has {len(ds)} rows but the dataset declares {declared_rows} (a partial "
                "download?). Fix: delete the datasets cache of that dataset and run `xitt prepare` again."
            )
        names = _label_names(ds, effective)
        if names and task.labels and task.kind != "tagging" and len(names) != len(task.labels):
            return (
                f"{src.describe()} has the label names {names}, but task '{task.name}' has "
                f"{len(task.labels)} labels {list(task.labels)}. Fix: use a source with the task's label "
                f"set, or correct `labels` in {task.file}."
            )
        out = []
        try:
            for row in ds:
                if not sources.keep_row(row, src.filter):
                    continue
                ex = _hub_example(effective, row, names)
                if ex is not None and src.drop_tags:
                    keep = [i for i, t in enumerate(ex["tags"]) if t not in src.drop_tags]
                    ex = {"tokens": [ex["tokens"][i] for i in keep], "tags": [ex["tags"][i] for i in keep]}
                if ex is not None:
                    out.append(ex)
        except (DataError, KeyError, TypeError, ValueError, IndexError) as err:
            return (
                f"{src.describe()}: a row cannot be read as a {task.kind} example ({type(err).__name__}: "
                f"{err}). Fix: check the fields and labels in {task.file}."
            )
        if not out:
            return (
                f"{src.describe()} gives no rows"
                + (f" with {dict(src.filter)}" if src.filter else "")
                + f". Fix: check the filter / config for this language in {task.file}."
            )
        return out


def _with_fields(task: Task, src: Source) -> Task:
    import dataclasses

    return dataclasses.replace(task, fields={**task.fields, **src.fields}) if src.fields else task


def _declared_rows(ds, split: str) -> int | None:
    splits = getattr(getattr(ds, "info", None), "splits", None) or {}
    info = splits.get(split) if hasattr(splits, "get") else None
    return getattr(info, "num_examples", None) or None


def needed_columns(task: Task) -> list[str]:
    """Top-level hub columns the task's kind reads (the first part of dotted names)."""
    f, kind = task.fields, task.kind
    if kind in ("classification", "pair_classification"):
        cols = [f.get("sentence1", f.get("sentence", "sentence")), f.get("label", "label")]
        cols += [f.get("sentence2", "sentence2")] if kind == "pair_classification" else []
    elif kind == "tagging":
        cols = [f.get("tokens", "tokens"), f.get("tags", "tags")]
    elif kind == "span_qa":
        cols = [f.get(k, k) for k in ("id", "context", "question", "answers")]
    elif kind == "multiple_choice":
        spec = f.get("choices", "choices")
        cols = (list(spec) if isinstance(spec, list) else [spec]) + [f.get("label", "label")]
    else:
        cols = [f.get("src", "source_sentence"), f.get("tgt", "target_sentence")]
    return sorted({str(c).split(".")[0] for c in cols})


def label_set(task: Task, examples: Sequence[dict]) -> set[str]:
    if task.kind == "tagging":
        return {t for ex in examples for t in ex["tags"]}
    if task.kind in ("classification", "pair_classification"):
        return {str(ex["label"]) for ex in examples}
    return set()


def verify(task: Task, split: str, examples: Sequence[dict], train_tags: Sequence[str] | None) -> str | None:
    """The checks that need the converted examples; a problem text or None."""
    if not examples:
        return "the split is empty. Fix: check the source's split name and filter in " + task.file
    if task.kind == "tagging" and train_tags is not None and split != "train":
        extra = sorted(label_set(task, examples) - set(train_tags))
        if extra:
            return (
                f"tags {extra[:8]} do not occur in the English training data ({len(train_tags)} tags). "
                f"Fix: map or drop them (drop_tags in the source entry of {task.file})."
            )
    if task.kind == "multiple_choice":
        bad = sum(not 0 <= ex["label"] < len(ex["choices"]) for ex in examples)
        if bad:
            return (
                f"{bad} rows have a label outside their choices. Fix: check the label field in {task.file}."
            )
    if task.kind == "span_qa":
        answers = [(ex["context"], a) for ex in examples for a in ex["answers"]]
        off = sum(c[a["answer_start"] : a["answer_start"] + len(a["text"])] != a["text"] for c, a in answers)
        if answers and off / len(answers) > SPAN_TOLERANCE:
            return (
                f"{off} of {len(answers)} answer spans are not at their answer_start in the context. "
                "Fix: the source's answers do not index its contexts; use another source or config."
            )
    return None


def hub_problem(src: Source, err: Exception) -> str:
    """One line for a failed ``load_dataset``: what happened and the fix."""
    text = (str(err).splitlines() or [""])[0]
    if "Dataset scripts are no longer supported" in text:
        if src.revision == PARQUET_EXPORT:
            return (
                f"{src.describe()}: the repository ships only a loading script and has no Parquet export. "
                "Fix: find another source with the same data and cite it in the task YAML."
            )
        return (
            f"{src.hub} ships only a loading script, which `datasets` no longer runs ({text}). Fix: add "
            f"`revision: {PARQUET_EXPORT}` to the source entry to read the hub's Parquet export."
        )
    if "BuilderConfig" in text or "config" in text.lower() and "not found" in text:
        return f"{src.describe()}: configuration not found ({text}). Fix: correct the config name in the task YAML."
    if "Unknown split" in text:
        return f"{src.describe()}: split not found ({text}). Fix: correct the split name in the task YAML."
    if src.revision == PARQUET_EXPORT:
        return (
            f"{src.describe()}: no Parquet export for this configuration ({type(err).__name__}: {text}). "
            "Fix: find another source and cite it in the task YAML."
        )
    return (
        f"{src.describe()} could not be loaded ({type(err).__name__}: {text}). "
        "Fix: check the hub id and your network, or run where the hub is reachable."
    )


def _no_source(task: Task, split: str, lang: str, path: Path | None) -> str:
    folder = path.parent if path else f"<data_dir>/{task.name}"
    local = f"{folder}/<split>-<lang>.{EXTENSIONS[task.kind]}"
    how = task.source.get("obtain") or "put the files there in the XTREME format (xitt/data/loaders.py)"
    return f"no local copy at {local} and no hub source (local data only). Fix: {how}."


def problem_report(problems: Sequence[tuple[str, str, str]]) -> str:
    """Every problem once per task: the splits that share one problem (and so one fix) on one line."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for task, split, problem in problems:
        grouped.setdefault((task, problem), []).append(split)
    lines = [f"task '{task}' {', '.join(splits)}: {problem}" for (task, problem), splits in grouped.items()]
    return (
        f"{len(problems)} data split(s) of {len({p[0] for p in problems})} task(s) cannot be prepared "
        "(nothing was trained):\n  " + "\n  ".join(lines)
    )


def _source_text(records: Sequence[dict]) -> str:
    parts = []
    for r in records:
        if str(r.get("source", "")).startswith("local:"):
            parts.append(f"{r['source']}@{str(r.get('revision', ''))[:8]}")
        else:
            config = f"/{r['config']}" if r.get("config") else ""
            branch = "parquet:" if r.get("revision") == PARQUET_EXPORT else ""
            parts.append(f"{r['source']}{config}:{r['split']}@{branch}{str(r.get('sha', ''))[:8]}")
    return parts[0] + (f" (+{len(parts) - 1})" if len(parts) > 1 else "") if parts else ""


def table(lines: Sequence[Line]) -> str:
    """The prepare table: task, language, split, rows, source@revision, status."""
    head = f"{'task':<14} {'lang':<5} {'split':<5} {'rows':>8}  {'source@revision':<58} status"
    body = [
        f"{ln.task:<14} {ln.language:<5} {ln.split:<5} {'' if ln.rows is None else ln.rows:>8}  "
        f"{ln.source:<58} {ln.status}"
        for ln in lines
    ]
    return "\n".join([head, *body])


def prepare(
    needs: Sequence[tuple[Task, str, str]],
    data_dir: Path,
    *,
    offline: bool = False,
    client: HubClient | None = None,
    echo: Callable[[str], None] | None = None,
) -> Outcome:
    """Prepare every need into ``data_dir``; prints the table with ``echo``; raises DataError
    listing every problem (with its fix) after the whole pass."""
    outcome = Preparer(data_dir, offline=offline, client=client).run(needs)
    if echo:
        echo(table(outcome.lines))
    if outcome.problems:
        raise DataError(problem_report(outcome.problems))
    return outcome


def status(needs: Sequence[tuple[Task, str, str]], data_dir: Path) -> dict[str, int]:
    """Counts of cache states of the needs, for `xitt plan` (reads only manifests and copies)."""
    counts: dict[str, int] = {}
    for task, split, lang in needs:
        state, _ = cache.inspect(data_dir, task, split, lang, sources.declared(task, split, lang), deep=False)
        counts[state] = counts.get(state, 0) + 1
    return counts
