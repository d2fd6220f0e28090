"""The report's provenance section: what was run, how, and what is missing or excluded.

Pure: a provenance mapping (from ``xitt.run.plan.experiment_provenance``: grid text, run counts,
failures, package versions, git sha, ...) and the analysis settings become tables and verbatim
blocks, as given.
"""

from __future__ import annotations

import pandas as pd

from analysis.report import formatting as fmt
from analysis.report.tables import Cell, Options, Table, Text, caption, opt, slug


def generic_table(f: pd.DataFrame, key: str, text: str, max_rows: int = 60) -> Table:
    """Any frame as a table: p-value columns through fmt_p, other columns by the plain-number
    rule (one precision per column)."""
    shown = f.head(max_rows)
    columns = {
        c: [fmt.fmt_p(x) for x in shown[c]] if str(c).startswith("p_") else fmt.fmt_plain_column(shown[c])
        for c in shown.columns
    }
    rows = [[Cell(columns[c][i]) for c in shown.columns] for i in range(len(shown))]
    notes = f"First {max_rows} of {len(f)} rows." if len(f) > max_rows else ""
    return Table(key, text, [str(c).replace("_", " ") for c in f.columns], rows, notes=notes)


def frame_table(analysis, name: str, text: str, opts: Options) -> Table | None:
    """A result frame shown as is (``coverage``, ``degenerate``); None when empty."""
    f = getattr(analysis.frames, name)
    return None if f.empty else generic_table(f, name, caption(text, opts))


def _kv_rows(items) -> list[list[Cell]]:
    return [
        [Cell(str(k)), Cell(", ".join(map(str, v)) if isinstance(v, (list, tuple)) else fmt.fmt_plain(v))]
        for k, v in items
    ]


def provenance_blocks(analysis, provenance: dict, opts: Options) -> list:
    """Scalars -> one key/value table; dicts -> their own tables; lists of dicts (failures) -> tables;
    multi-line strings (the grid spec) -> verbatim blocks. Analysis settings are appended."""
    settings = {f"analysis {k}": v for k, v in analysis.settings.items() if not isinstance(v, dict)}
    nested = {f"analysis {k}": v for k, v in analysis.settings.items() if isinstance(v, dict)}
    scalars, blocks = [], []
    for key, value in {**provenance, **settings, **nested}.items():
        if isinstance(value, str) and "\n" in value:
            blocks.append(Text(str(key).replace("_", " "), value.rstrip("\n"), pre=True))
        elif isinstance(value, dict):
            if value:
                blocks.append(
                    Table(
                        f"prov_{slug(key)}",
                        caption(f"Provenance: {key}.", opts),
                        [str(key).replace("_", " "), "value"],
                        _kv_rows(value.items()),
                    )
                )
        elif isinstance(value, (list, tuple)) and value and all(isinstance(v, dict) for v in value):
            text = caption(f"Provenance: {key}.", opts)
            blocks.append(generic_table(pd.DataFrame(list(value)), f"prov_{slug(key)}", text))
        elif isinstance(value, (list, tuple)) and not value and key == "failures":
            scalars.append((key, "none"))
        else:
            scalars.append((key, value))
    head = Table(
        "provenance", caption("Provenance of this report.", opts), ["item", "value"], _kv_rows(scalars), "ll"
    )
    data = [
        *opt(frame_table(analysis, "coverage", "Coverage: expected and present cells.", opts)),
        *opt(
            frame_table(
                analysis,
                "degenerate",
                "Degenerate runs (score 0 or at chance), excluded from the analysis.",
                opts,
            )
        ),
    ]
    return [head, *blocks, *data]
