"""The prepared-data cache: one verified copy per (task, split, language) and its manifest.

Layout under the data dir (``--data-dir``, ``XITT_DATA_DIR``, the grid's ``data_dir``, default
``~/.cache/xitt``)::

    <data_dir>/<task>/<split>-<lang>.<ext>                  local inputs (XTREME file formats)
    <data_dir>/prepared/<task>/<split>-<lang>.jsonl         the prepared copy: one example per line,
                                                            in the loaders' plain-dict form
    <data_dir>/prepared/<task>/<split>-<lang>.manifest.json its manifest entry

The copy is written first and the manifest last (both atomically), so a copy without a manifest
is a partial entry. A manifest entry holds: task, version, split, language, rows, fingerprint
(sha256 of the copy), labels (the label / tag names seen), sources (each: source id, config,
split, revision asked for, resolved revision sha, rows) and ``declared`` (the task's source
entries when it was prepared: a changed source makes the entry stale, so it is prepared again).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from xitt.schema import atomic_write_text
from xitt.tasks import Task

PREPARED = "prepared"


def copy_path(data_dir: Path, task: str, split: str, lang: str) -> Path:
    return Path(data_dir) / PREPARED / task / f"{split}-{lang}.jsonl"


def manifest_path(data_dir: Path, task: str, split: str, lang: str) -> Path:
    return Path(data_dir) / PREPARED / task / f"{split}-{lang}.manifest.json"


def fingerprint(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def write_entry(
    data_dir: Path,
    task: Task,
    split: str,
    lang: str,
    examples: Sequence[Mapping[str, Any]],
    *,
    sources: Sequence[Mapping[str, Any]],
    declared: Sequence[Mapping[str, Any]],
    labels: Sequence[str],
) -> dict:
    """Write the copy, then its manifest; returns the manifest entry."""
    copy = copy_path(data_dir, task.name, split, lang)
    atomic_write_text(copy, "".join(json.dumps(ex, ensure_ascii=False) + "\n" for ex in examples))
    entry = {
        "task": task.name,
        "version": task.version,
        "split": split,
        "language": lang,
        "rows": len(examples),
        "bytes": copy.stat().st_size,
        "fingerprint": fingerprint(copy),
        "labels": list(labels),
        "sources": [dict(s) for s in sources],
        "declared": [dict(d) for d in declared],
    }
    atomic_write_text(
        manifest_path(data_dir, task.name, split, lang), json.dumps(entry, indent=1, sort_keys=True) + "\n"
    )
    return entry


def inspect(
    data_dir: Path, task: Task, split: str, lang: str, declared: Sequence[Mapping], *, deep: bool = True
) -> tuple[str, Any]:
    """(state, detail) of one cache entry, checking the files against the manifest (``deep``: the
    fingerprint and rows; otherwise only the size, which is what `xitt plan` can afford).

    state: ``ok`` (detail = entry), ``missing``, ``stale`` (other version or sources: prepare
    again), ``partial``, ``corrupt`` or ``disagrees`` (detail = what is wrong).
    """
    copy, manifest = (
        copy_path(data_dir, task.name, split, lang),
        manifest_path(data_dir, task.name, split, lang),
    )
    if not manifest.exists():
        return (
            ("partial", f"{copy} has no manifest (preparing it was interrupted)")
            if copy.exists()
            else (
                "missing",
                None,
            )
        )
    try:
        entry = json.loads(manifest.read_text(encoding="utf-8"))
        rows, expected = int(entry["rows"]), str(entry["fingerprint"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        return "corrupt", f"{manifest} cannot be read ({type(err).__name__}: {err})"
    if entry.get("version") != task.version or entry.get("declared") != [dict(d) for d in declared]:
        return "stale", entry
    if not copy.exists():
        return "partial", f"{manifest} names {copy}, which is missing"
    if entry.get("bytes") is not None and copy.stat().st_size != entry["bytes"]:
        return "disagrees", f"{copy} has {copy.stat().st_size} bytes, its manifest says {entry['bytes']}"
    if not deep:
        return "ok", entry
    actual = fingerprint(copy)
    if actual != expected:
        return "disagrees", f"{copy} has fingerprint {actual}, its manifest says {expected}"
    with open(copy, "rb") as fh:
        lines = sum(1 for _ in fh)
    if lines != rows:
        return "disagrees", f"{copy} has {lines} rows, its manifest says {rows}"
    return "ok", entry


def read_copy(data_dir: Path, task: Task, split: str, lang: str) -> tuple[list[dict], dict] | None:
    """(examples, manifest entry) of a prepared copy; None if there is none. Raises ValueError
    when the copy does not match its manifest (a run must never read unverified data)."""
    manifest = manifest_path(data_dir, task.name, split, lang)
    if not manifest.exists():
        return None
    entry = json.loads(manifest.read_text(encoding="utf-8"))
    copy = copy_path(data_dir, task.name, split, lang)
    if not copy.exists() or fingerprint(copy) != entry.get("fingerprint"):
        raise ValueError(
            f"the prepared copy {copy} does not match its manifest; run `xitt prepare` again to rebuild it."
        )
    with open(copy, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh], entry


def entries(data_dir: Path | None, keys: Iterable[str]) -> dict[str, dict]:
    """Manifest entries of the "<task>/<split>-<lang>" keys that have one (for result.json)."""
    out = {}
    for key in keys:
        if data_dir is None or "/" not in key:
            continue
        task, rest = key.split("/", 1)
        split, _, lang = rest.partition("-")
        path = manifest_path(data_dir, task, split, lang)
        if path.exists():
            entry = json.loads(path.read_text(encoding="utf-8"))
            out[key] = {k: entry[k] for k in ("rows", "fingerprint", "sources", "version") if k in entry}
    return out
