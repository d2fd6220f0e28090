"""The analysis result as files: every frame as CSV, answer.json, caveats.txt, settings.json.

``xitt analyze`` and ``xitt report`` write these under ``runs/<exp>/analysis/``; they are the raw
frames (full precision), unlike the formatted tables of the report.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from analysis.report.answer import answer_sentence
from xitt.schema import atomic_write_text


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not math.isfinite(float(value)) else float(value)
    return value


def write_frames(analysis, outdir: Path) -> list[Path]:
    """Write every frame of ``analysis`` (an analysis.result.Analysis) as ``<name>.csv``, plus
    answer.json (the Answer fields, experiment, synthetic and the sentence), caveats.txt and
    settings.json. Returns the written paths."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, frame in analysis.frames.items():
        path = outdir / f"{name}.csv"
        atomic_write_text(path, frame.to_csv(index=False, lineterminator="\n"))
        paths.append(path)
    answer = {
        "experiment": analysis.experiment,
        "synthetic": analysis.synthetic,
        **analysis.answer.to_dict(),
        "sentence": answer_sentence(analysis),
    }
    for name, payload in (("answer.json", answer), ("settings.json", analysis.settings)):
        atomic_write_text(outdir / name, json.dumps(_jsonable(payload), indent=2, sort_keys=True) + "\n")
        paths.append(outdir / name)
    atomic_write_text(outdir / "caveats.txt", "".join(f"- {c}\n" for c in analysis.caveats))
    paths.append(outdir / "caveats.txt")
    return paths
