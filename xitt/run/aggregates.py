"""The official XTREME / XTREME-R aggregate scores of a collected grid (``aggregates.csv``).

``xitt collect`` calls :func:`write_aggregates` beside scores.csv. A version is scored when the
grid's targets hold every task of it (xitt's target names are the XTREME ids: xnli, pawsx, udpos,
panx, xquad, mlqa, tydiqa, bucc2018, tatoeba; XTREME-R adds xcopa, mewslix, lareqa and drops pawsx
and bucc2018). Per (encoder, intermediate, seed) it writes one row for the overall score
(``group == "all"``) and one per group, computed by :func:`xitt.train.metrics.xtreme_score` from
the run's rows on the official languages (other languages are ignored, as evaluate.py does). A
task whose run lacks an official language, or a task with no run for that seed, makes its groups
and the overall score incomplete: score NaN, ``complete`` False, ``missing`` says which
("udpos:yo wo" or "tatoeba"). No version held: no file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from xitt.schema import AGGREGATE_COLUMNS, AGGREGATES_FILE, XTREME_VERSIONS, atomic_write_text
from xitt.train.metrics import xtreme_score

# scores.csv metric names -> the names evaluate.py reads (QA: exact_match and f1).
_METRIC_NAMES = {"em": "exact_match"}


def held_versions(targets) -> list[str]:
    """The versions (``xtreme``, ``xtreme-r``) whose every task is among ``targets``."""
    targets = set(map(str, targets))
    return [v for v, (languages, _) in XTREME_VERSIONS.items() if set(languages) <= targets]


def _task_results(runs: pd.DataFrame, version: str) -> tuple[dict, dict[str, str]]:
    """({task: {language: {metric: score}}} of the complete tasks, {task: what is missing})."""
    languages, _ = XTREME_VERSIONS[version]
    results, missing = {}, {}
    for task, official in languages.items():
        rows = runs[runs["target"] == task]
        if rows.empty:
            missing[task] = task
            continue
        lacking = [lg for lg in official if lg not in set(rows["language"])]
        if lacking:
            missing[task] = f"{task}:{' '.join(lacking)}"
            continue
        metric = rows["metric"].map(lambda m: _METRIC_NAMES.get(m, m))
        by_lang = rows.assign(metric=metric).groupby(["language", "metric"])["score"].first()
        results[task] = {lg: by_lang.loc[lg].to_dict() for lg in by_lang.index.get_level_values(0).unique()}
    return results, missing


def aggregate_frame(scores: pd.DataFrame) -> pd.DataFrame:
    """AGGREGATE_COLUMNS rows for every version the grid holds (see the module docstring).

    ``scores``: scores.csv rows (encoder, intermediate, target, language, seed, metric, score).
    """
    rows = []
    versions = held_versions(scores["target"].unique())
    for (encoder, intermediate, seed), runs in scores.groupby(["encoder", "intermediate", "seed"], sort=True):
        for version in versions:
            languages, groups = XTREME_VERSIONS[version]
            results, missing = _task_results(runs, version)
            out = xtreme_score(results, version=version)
            base = dict(encoder=encoder, intermediate=intermediate, seed=seed, version=version)
            n_tasks = int(runs.loc[runs["target"].isin(list(languages)), "target"].nunique())
            for group, members in [("all", tuple(languages)), *groups.items()]:
                score = out["all_task"] if group == "all" else out["groups"].get(group)
                rows.append(
                    {
                        **base,
                        "group": group,
                        "score": np.nan if score is None else float(score),
                        "complete": score is not None,
                        "n_tasks": n_tasks,
                        "missing": "; ".join(missing[t] for t in members if t in missing),
                    }
                )
    return pd.DataFrame(rows, columns=list(AGGREGATE_COLUMNS))


def write_aggregates(exp: str | Path, scores: pd.DataFrame) -> Path | None:
    """Write ``<exp>/aggregates.csv`` (:func:`aggregate_frame`); None (and no file) when the grid
    holds no full XTREME or XTREME-R target set."""
    frame = aggregate_frame(scores)
    if frame.empty:
        return None
    path = Path(exp) / AGGREGATES_FILE
    atomic_write_text(path, frame.to_csv(index=False))
    return path
