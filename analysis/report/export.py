"""The analysis result as files.

* :func:`write_frames`: every frame as CSV (full precision), answer.json, caveats.txt,
  settings.json; ``xitt analyze`` and ``xitt report`` write them under ``runs/<exp>/analysis/``
  (``analysis/<a>-vs-<b>/`` for a contrast other than the default).
* :func:`write_tables`: the report's formatted tables as Markdown (for a README) and CSV (for a
  spreadsheet or a paper appendix), the same strings as in the HTML and LaTeX; in the CSV a
  cell's second line (Δ vs none) gets its own column and minus signs are ASCII, so that
  spreadsheets read numbers.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np

from analysis.report.answer import answer_sentence
from analysis.report.formatting import MINUS
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
        **(analysis.answer.to_dict() if analysis.answer is not None else {"descriptive_only": True}),
        "sentence": answer_sentence(analysis),
    }
    for name, payload in (("answer.json", answer), ("settings.json", analysis.settings)):
        atomic_write_text(outdir / name, json.dumps(_jsonable(payload), indent=2, sort_keys=True) + "\n")
        paths.append(outdir / name)
    atomic_write_text(outdir / "caveats.txt", "".join(f"- {c}\n" for c in analysis.caveats))
    paths.append(outdir / "caveats.txt")
    return paths


def _md_cell(cell) -> str:
    text = f"**{cell.text}**" if cell.bold else cell.text
    text = f"{text}<br>{cell.sub}" if cell.sub else text
    return text.replace("|", "\\|")


def table_markdown(table) -> str:
    """A table as GitHub-flavoured Markdown: caption in bold, then the table, then its notes."""
    align = ["---" if a == "l" else ":---:" if a == "c" else "---:" for a in table.align]
    lines = [
        f"**Table {table.number}.** {table.caption}" if table.number else f"**{table.caption}**",
        "",
        "| " + " | ".join(c.replace("|", "\\|") for c in table.columns) + " |",
        "|" + "|".join(align) + "|",
        *("| " + " | ".join(_md_cell(c) for c in row) + " |" for row in table.rows),
    ]
    if table.notes:
        lines += ["", table.notes]
    return "\n".join(lines) + "\n"


def table_csv(table) -> str:
    """A table as CSV: header row, one row per table row; columns with second lines get a
    '<column> (2nd line)' column after them; ASCII minus signs."""
    with_sub = [any(row[j].sub for row in table.rows) for j in range(len(table.columns))]
    header = []
    for j, name in enumerate(table.columns):
        header += [name, f"{name} (2nd line)"] if with_sub[j] else [name]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for row in table.rows:
        out = []
        for j, cell in enumerate(row):
            out += [cell.text, cell.sub] if with_sub[j] else [cell.text]
        writer.writerow([v.replace(MINUS, "-") for v in out])
    return buf.getvalue()


def write_tables(tables, folder: Path, formats) -> dict[str, Path]:
    """``<folder>/<key>.<fmt>`` for each table and each of ``formats`` ("md", "csv"); returns
    {"tables/<key>.<fmt>": path}."""
    writers = {"md": table_markdown, "csv": table_csv}
    written = {}
    for fmt_name in formats:
        for table in tables:
            path = Path(folder) / f"{table.key}.{fmt_name}"
            atomic_write_text(path, writers[fmt_name](table))
            written[f"tables/{table.key}.{fmt_name}"] = path
    return written
