"""jiant run folders (1.x and 2.x) -> the scores.csv contract (``xitt import --format jiant``).

What each jiant version writes (checked in nyu-mll/jiant; facts, not code):

* **jiant 2.x** (tag v2.2.0, commit daa5a258e3af5e7503288de8401429eaf3f58e13): each run's
  ``output_dir`` gets ``val_metrics.json`` (``jiant/proj/main/components/evaluate.py``,
  ``write_val_results``, called from ``jiant/proj/main/runscript.py``): ``{"aggregated": <float>,
  "<task_name>": {"loss": <float>, "metrics": {"major": <float>, "minor": {...}}}}``. Task names of
  XTREME tasks are ``<task>_<lang>`` (``mlqa_<lang>_<lang>``; ``jiant/scripts/download_data/
  dl_datasets/xtreme.py``). Classification, tagging and retrieval metrics are fractions
  (``jiant/tasks/evaluate/core.py``: ``acc = (preds == labels).mean()``); squad-style QA metrics
  (xquad, tydiqa, squad, mlqa) are percentages already (``jiant/tasks/lib/templates/squad_style/
  utils.py`` ``make_eval_dict``, ``jiant/tasks/lib/mlqa.py``: ``100.0 * ...``), and their minor
  metrics include counts (``total``) and thresholds, which are not scores and are skipped.
  2.x writes no ``val_metrics.p``: predictions go to ``val_preds.p``/``test_preds.p`` (a torch
  pickle of ``{task: {"preds", "guids"}}`` without labels), which cannot be scored without the
  task data, so they are not read.
* **jiant 1.x** (tag v1.3.2, commit 588aa288643224a1919cec889ede37d8c0196d35): ``results.tsv`` in
  the experiment folder, one line appended per evaluated run (``jiant/__main__.py``
  ``evaluate_and_write``; ``jiant/evaluate.py`` ``write_results``): ``<run_name>\\t<metric>:
  <%.3f>, ...`` with ``micro_avg``, ``macro_avg`` and ``<task>_<metric>`` (fractions, from
  ``jiant/evaluate.py`` ``evaluate``). A run's folder is ``<experiment>/<run_name>``. jiant 1.x
  tasks carry no language, so the language comes from a ``{language}`` field in ``--pattern``
  (``en`` when absent); the primary row is the target's registry metric (``<task>_accuracy`` is
  1.x's validation metric of classification tasks, ``jiant/tasks/tasks.py``). 1.x's prediction
  files (``<run_dir>/<task>_val.tsv`` / ``_test.tsv``, ``write_preds`` in ``jiant/evaluate.py``)
  hold predictions without labels and are not read.

Run folders (relative to the imported folder) are named by ``--pattern``, default
``{encoder}/{intermediate}/{target}/seed{seed}``. Returned rows: the scores.csv columns, with
2.x's metric names turned into the columns xitt's own runs write (``JIANT_COLUMNS``: ``acc`` ->
``accuracy``, ``exact`` -> ``em``), so imported and xitt-run cells compare. 2.x's ``major`` is
the mean of its minor metrics' definition per evaluation scheme (``jiant/tasks/evaluate/core.py``:
accuracy for classification, seqeval F1 for tagging, (F1 + exact) / 2 for squad-style QA); it
becomes xitt's primary column when that column is not among the minor metrics (``em_f1`` of QA,
``qa_score`` = (EM + F1) / 2, the same definition) and is dropped as a duplicate otherwise. The
primary row is the target's registry primary column (a target outside the registry is refused
by ``fill_from_registry``, which names the columns to add).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from xitt.importers.duplicates import resolve_duplicates
from xitt.importers.folders import pattern_regex, run_names
from xitt.importers.tidy import fill_from_registry
from xitt.schema import SchemaError, validate_scores
from xitt.tasks import registry
from xitt.train.metrics import METRICS

PERCENT_TARGETS = frozenset({"xquad", "mlqa", "tydiqa", "squad", "squad_v1", "squad_v2"})
# jiant 2.x minor metric names -> xitt's metric columns (jiant/tasks/evaluate/core.py,
# squad_style/utils.py make_eval_dict: "exact", "f1"; SimpleAccuracyEvaluationScheme: "acc").
JIANT_COLUMNS = {"acc": "accuracy", "exact": "em"}


def _v2_columns(target: str, values: dict) -> tuple[dict, str]:
    """jiant's {metric: value} of one task -> (xitt's {column: value}, the primary column)."""
    reg = registry()
    if target not in reg.tasks:
        return values, "major"
    primary = METRICS[reg.tasks[target].metric].primary
    out = {JIANT_COLUMNS.get(k, k): v for k, v in values.items() if k != "major"}
    if primary not in out and "major" in values:
        out[primary] = values["major"]
    return out, primary


def _number(value, where: str, metric: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise SchemaError(f"{where} {metric} is {value!r}, not a number.")
    return float(value)


def _v2_rows(file: Path, names: dict[str, str], metrics: dict) -> list[dict]:
    rows = []
    for key, entry in metrics.items():
        parts = key.split("_")
        if (
            key == "aggregated"
            or not isinstance(entry, dict)
            or len(parts) < 2
            or parts[0] != names["target"]
        ):
            continue
        block = entry.get("metrics") or {}
        minor = block.get("minor") or {} if isinstance(block, dict) else {}
        if not isinstance(block, dict) or not isinstance(minor, dict):
            raise SchemaError(f"{file}: '{key}' has metrics {block!r}; jiant writes a mapping with 'major'.")
        values = {"major": block.get("major")}
        values.update({k: v for k, v in minor.items() if "total" not in k and "thresh" not in k})
        values = {k: _number(v, f"{file}: '{key}'", k) for k, v in values.items() if v is not None}
        values, primary = _v2_columns(names["target"], values)
        for metric, score in values.items():
            rows.append(
                {
                    **names,
                    "language": parts[1],
                    "metric": metric,
                    "primary": metric == primary,
                    "score": score,
                    "origin": f"{file} ['{key}']",
                }
            )
    return rows


def _read_v2(folder: Path, regex: re.Pattern, pattern: str) -> list[dict]:
    rows = []
    for file in sorted(folder.rglob("val_metrics.json")):
        names = run_names(regex, file.parent.relative_to(folder).as_posix(), str(file), pattern)
        try:
            metrics = json.loads(file.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise SchemaError(f"{file} is not valid JSON: {err}") from err
        if not isinstance(metrics, dict):
            raise SchemaError(
                f"{file} holds a {type(metrics).__name__}, not jiant's mapping of '<target>_<language>' to "
                '{"metrics": {"major": ..., "minor": {...}}}; is it a jiant val_metrics.json?'
            )
        rows += [{**r, "version": 2} for r in _v2_rows(file, names, metrics)]
    return rows


def _v1_line(file: Path, number: int, line: str) -> tuple[str, dict[str, str]]:
    run_name, sep, rest = line.partition("\t")
    pairs = [p.partition(": ") for p in rest.split(", ")] if sep else []
    if not pairs or any(not colon for _, colon, _ in pairs):
        raise SchemaError(
            f"{file}:{number}: '{line[:80]}' is not a jiant 1.x results line "
            "('<run_name>\\t<metric>: <value>, ...')."
        )
    return run_name, {k.strip(): v.strip() for k, _, v in pairs}


def _read_v1(folder: Path, regex: re.Pattern, pattern: str) -> list[dict]:
    reg, rows = registry(), []
    for file in sorted(folder.rglob("results.tsv")):
        experiment = file.parent.relative_to(folder)
        for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            run_name, metrics = _v1_line(file, number, line)
            names = run_names(regex, (experiment / run_name).as_posix(), f"{file}:{number}", pattern)
            target, language = names["target"], names.pop("language", "en")
            wanted = reg.tasks[target].metric if target in reg.tasks else None
            found = [k[len(target) + 1 :] for k in metrics if k.startswith(f"{target}_")]
            if found and wanted not in found:
                raise SchemaError(
                    f"{file}:{number}: {target}'s metrics are {found}, none of them xitt's {wanted or 'metric'} "
                    "for it; convert these runs to a tidy CSV with a 'primary' column instead."
                )
            for key, value in metrics.items():
                if not key.startswith(f"{target}_"):
                    continue
                metric = key[len(target) + 1 :]
                try:
                    score = float(value)
                except ValueError:
                    raise SchemaError(f"{file}:{number}: {key} is {value!r}, not a number.") from None
                rows.append(
                    {
                        **names,
                        "language": language,
                        "metric": metric,
                        "primary": metric == wanted,
                        "score": score,
                        "origin": f"{file}:{number}",
                        "version": 1,
                    }
                )
    return rows


def import_jiant(
    folder: Path, *, pattern: str, scale: float | None = None, on_duplicate: str = "error"
) -> pd.DataFrame:
    """A folder of jiant 1.x and/or 2.x runs -> validated scores frame (see the module docstring)."""
    folder = Path(folder)
    regex = pattern_regex(pattern)
    rows = _read_v2(folder, regex, pattern) + _read_v1(folder, regex, pattern)
    if not rows:
        if not any(folder.rglob("val_metrics.json")) and not any(folder.rglob("results.tsv")):
            raise FileNotFoundError(
                f"no val_metrics.json (jiant 2.x) or results.tsv (jiant 1.x) under {folder}"
            )
        raise SchemaError(f"no '<target>_...' metrics matching the folder names found under {folder}.")
    frame = pd.DataFrame(rows)
    if scale is None:
        fractions = ~((frame["version"] == 2) & frame["target"].isin(PERCENT_TARGETS))
        if frame.loc[fractions, "score"].abs().max() > 1.0:
            worst = frame.loc[fractions].sort_values("score").iloc[-1]
            raise SchemaError(
                f"{worst['origin']}: {worst['metric']} is {worst['score']:g}, but jiant writes this metric "
                "as a fraction: these are percentages already; pass --scale 1."
            )
        frame["score"] = frame["score"].where(~fractions, frame["score"] * 100.0)
    else:
        frame["score"] = frame["score"] * scale
    frame = resolve_duplicates(
        fill_from_registry(frame.drop(columns="version")), on_duplicate, source=str(folder)
    )
    return validate_scores(frame.drop(columns="origin"), source=str(folder))
