"""A tidy results CSV -> the scores.csv contract (``xitt import --format csv``).

The CSV needs at least ``encoder, intermediate, target, language, seed, score``. Missing
``intermediate_family``/``target_family``/``task_version``/``metric`` are filled from the task
registry (unknown tasks need the columns); ``primary`` defaults to True when each cell has one
metric; ``run_id`` is generated as ``<encoder>__<intermediate>__<target>__s<seed>__imported``.
Repeated cells are resolved by ``on_duplicate`` (see ``xitt.importers.duplicates``).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from xitt.importers.duplicates import resolve_duplicates
from xitt.schema import NONE, SchemaError, read_csv_lines, validate_scores
from xitt.tasks import registry

REQUIRED = ("encoder", "intermediate", "target", "language", "seed", "score")


def fill_from_registry(frame: pd.DataFrame) -> pd.DataFrame:
    reg = registry()
    frame = frame.copy()

    def lookup(name: str, attr: str, column: str):
        if name == NONE and attr == "family":
            return NONE
        if name in reg.tasks:
            return getattr(reg.tasks[name], attr)
        raise SchemaError(
            f"task '{name}' is not in the registry, so its {column} is unknown; add a '{column}' "
            "column to the CSV (or declare the task in a YAML under XITT_TASKS_PATH)."
        )

    if "intermediate_family" not in frame:
        frame["intermediate_family"] = [
            lookup(n, "family", "intermediate_family") for n in frame["intermediate"]
        ]
    if "target_family" not in frame:
        frame["target_family"] = [lookup(n, "family", "target_family") for n in frame["target"]]
    if "task_version" not in frame:
        frame["task_version"] = [
            reg.tasks[n].version if n in reg.tasks else "imported" for n in frame["target"]
        ]
    if "metric" not in frame:
        frame["metric"] = [lookup(n, "metric", "metric") for n in frame["target"]]
    if "primary" not in frame:
        keys = ["encoder", "intermediate", "target", "language", "seed"]
        if frame.drop_duplicates(keys + ["metric"]).duplicated(keys).any():
            raise SchemaError(
                "some cells have several metrics; add a 'primary' column (True for the metric "
                "that enters averages)."
            )
        frame["primary"] = True
    if "run_id" not in frame:
        frame["run_id"] = (
            frame["encoder"].astype(str)
            + "__"
            + frame["intermediate"].astype(str)
            + "__"
            + frame["target"].astype(str)
            + "__s"
            + frame["seed"].astype(str)
            + "__imported"
        )
    return frame


def import_csv(path: Path, *, scale: float | None = None, on_duplicate: str = "error") -> pd.DataFrame:
    """A tidy CSV -> validated scores frame (see the module docstring for the columns)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"no CSV at {path}")
    frame = read_csv_lines(path)  # indexed by file line, so errors name the line an editor shows
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise SchemaError(
            f"{path}: missing column(s) {missing}; a tidy results CSV needs at least {', '.join(REQUIRED)}."
        )
    frame = fill_from_registry(frame)
    frame["origin"] = [f"{path}:{line}" for line in frame.index]
    frame = resolve_duplicates(frame, on_duplicate, source=str(path)).drop(columns="origin")
    if scale:  # validate first so that a bad value is reported as written, then rescale and re-check
        frame = frame.assign(
            score=validate_scores(frame, source=str(path), where="lines")["score"].to_numpy() * scale
        )
    return validate_scores(frame, source=str(path), where="lines")
