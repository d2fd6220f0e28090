"""`xitt import`: other people's results into the scores.csv contract.

* A tidy CSV with at least ``encoder, intermediate, target, language, seed, score``. Missing
  ``intermediate_family``/``target_family``/``task_version``/``metric`` are filled from the task
  registry (unknown tasks need the columns); ``primary`` defaults to True when each cell has one
  metric; ``run_id`` is generated as ``<encoder>__<intermediate>__<target>__s<seed>__imported``.
* A folder of jiant runs, one ``val_metrics.json`` per (encoder, intermediate, target, seed)
  folder named by ``--pattern`` (default ``{encoder}/{intermediate}/{target}/seed{seed}``). jiant
  keys look like ``xnli_de`` or ``mlqa_de_de`` (target, then language); its ``major`` metric
  becomes the primary row, each numeric ``minor`` metric a secondary row. jiant stores fractions,
  so the default scale is 100.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from xitt.schema import NONE, SchemaError, read_csv_lines, validate_scores
from xitt.tasks import registry

REQUIRED = ("encoder", "intermediate", "target", "language", "seed", "score")


def _fill_from_registry(frame: pd.DataFrame) -> pd.DataFrame:
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


def import_csv(path: Path, *, scale: float | None = None) -> pd.DataFrame:
    """A tidy CSV -> validated scores frame (see the module docstring for the columns)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"no CSV at {path}")
    frame = read_csv_lines(path)  # indexed by file line, so errors name the line an editor shows
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise SchemaError(
            f"{path}: missing column(s) {missing}; a tidy results CSV needs at least {', '.join(REQUIRED)}."
        )
    if scale:  # validate first so that a bad value is reported as written, then rescale and re-check
        frame = _fill_from_registry(frame)
        frame["score"] = validate_scores(frame, source=str(path), where="lines")["score"].to_numpy() * scale
    return validate_scores(_fill_from_registry(frame), source=str(path), where="lines")


def _pattern_regex(pattern: str) -> re.Pattern:
    parts = re.split(r"(\{\w+\})", pattern.strip("/"))
    regex = "".join(f"(?P<{p[1:-1]}>[^/]+?)" if p.startswith("{") else re.escape(p) for p in parts)
    for field in ("encoder", "intermediate", "target", "seed"):
        if f"(?P<{field}>" not in regex:
            raise SchemaError(f"--pattern {pattern!r} must contain {{{field}}}.")
    return re.compile(f"^{regex}$")


def import_jiant(folder: Path, *, pattern: str, scale: float | None = None) -> pd.DataFrame:
    """A folder of jiant runs (val_metrics.json) -> validated scores frame."""
    folder = Path(folder)
    files = sorted(folder.rglob("val_metrics.json"))
    if not files:
        raise FileNotFoundError(f"no val_metrics.json under {folder}")
    regex = _pattern_regex(pattern)
    rows = []
    for file in files:
        rel = file.parent.relative_to(folder).as_posix()
        match = regex.match(rel)
        if not match:
            raise SchemaError(f"{file}: folder '{rel}' does not match --pattern {pattern!r}.")
        names = match.groupdict()
        try:
            metrics = json.loads(file.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise SchemaError(f"{file} is not valid JSON: {err}") from err
        if not isinstance(metrics, dict):
            raise SchemaError(
                f"{file} holds a {type(metrics).__name__}, not jiant's mapping of '<target>_<language>' to "
                '{"metrics": {"major": ..., "minor": {...}}}; is it a jiant val_metrics.json?'
            )
        for key, entry in metrics.items():
            if key == "aggregated" or not isinstance(entry, dict) or "_" not in key:
                continue
            target, language = key.split("_")[0], key.split("_")[1]
            if target != names["target"]:
                continue
            block = entry.get("metrics") or {}
            minor = block.get("minor") or {} if isinstance(block, dict) else {}
            if not isinstance(block, dict) or not isinstance(minor, dict):
                raise SchemaError(
                    f"{file}: '{key}' has metrics {block!r}; jiant writes a mapping with 'major'."
                )
            values = {"major": block.get("major")}
            values.update({k: v for k, v in minor.items() if isinstance(v, (int, float))})
            for metric, value in values.items():
                if value is None:
                    continue
                if not isinstance(value, (int, float)) or isinstance(value, bool):
                    raise SchemaError(f"{file}: '{key}' {metric} is {value!r}, not a number.")
                rows.append(
                    {
                        **{k: names[k] for k in ("encoder", "intermediate", "target", "seed")},
                        "language": language,
                        "metric": metric,
                        "primary": metric == "major",
                        "score": float(value) * (scale if scale else 100.0),
                    }
                )
    if not rows:
        raise SchemaError(f"no '<target>_<language>' metrics matching the folder names found under {folder}.")
    frame = pd.DataFrame(rows)
    if scale is None and frame["score"].max() > 100.0:
        raise SchemaError(
            f"the metrics under {folder} reach {frame['score'].max() / 100:g}: they are percentages already, "
            "not jiant's fractions; pass --scale 1."
        )
    return validate_scores(_fill_from_registry(frame), source=str(folder))
