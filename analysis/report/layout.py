"""How a table is set in a paper: one float per table, never scaled, split when too wide.

``xitt report --layout one`` (default) targets a one-column paper, ``--layout two`` a two-column
one (ACL, EMNLP, NeurIPS-style two-column classes). Every table is typeset at ``\\small`` (the
body size minus 1 pt in a 10 pt paper) and never shrunk. Its width is estimated from its cells;
then, per layout:

* one column: a ``table`` when it fits the text width, else its data columns are split into
  parts that do (the row-label columns repeat in every part, all parts in the same float);
* two columns: a ``table`` when it fits one column, a ``table*`` (across both columns) when it
  fits the text width, else a ``table*`` split into parts as above.

:func:`place_html` splits the HTML tables the same way for a 1280 px screen.

The widths are those of the standard classes: ``article`` 10 pt (345 pt text width) and the ACL
style (16 cm text width, 7.7 cm columns); ``tests/test_latex_paper.py`` compiles the tables in
both and measures the result.
"""

from __future__ import annotations

LAYOUTS = {
    # name: (column width, text width) in TeX points
    "one": (345.0, 345.0),
    "two": (219.1, 455.2),
}
# Advance widths at \\small (9 pt Latin Modern) in pt, measured from pdflatex: digits 4.5, the
# average lower-case letter about 4.6, upper case 6.5, math signs (+, \u2212, \u00b1, \u0394) 7.0,
# punctuation 2.5, an interword space 3.0; bold about 15 % wider. Estimates from these stay
# within a few percent of the measured table widths (tests/test_latex_paper.py compiles them).
NARROW = set(".,:;[]()|'!")
WIDE = set("+\u2212\u00b1\u0394=<>")
COLUMN_PAD_PT = 12.0  # 2 \tabcolsep
BOLD = 1.15
# Without this margin a table that barely fits by the estimate could still be overfull.
SAFETY = 0.97


def _char_pt(ch: str) -> float:
    if ch.isdigit():
        return 4.5
    if ch == " ":
        return 3.0
    if ch in NARROW:
        return 2.5
    if ch in WIDE:
        return 7.0
    if ch.isupper():
        return 6.5
    return 4.6 if ch.isalpha() else 5.0


def cell_width(text: str, bold: bool = False) -> float:
    """Estimated width in pt of ``text`` set at \\small."""
    return sum(_char_pt(ch) for ch in text) * (BOLD if bold else 1.0)


def column_widths(table) -> list[float]:
    """Estimated width in pt of each column: its widest header, cell or second line, plus padding."""
    widths = []
    for j, header in enumerate(table.columns):
        cells = [cell_width(header)] + [
            max(cell_width(row[j].text, row[j].bold), cell_width(row[j].sub)) for row in table.rows
        ]
        widths.append(max(cells) + COLUMN_PAD_PT)
    return widths


def split_columns(widths: list[float], stub: int, limit: float) -> list[list[int]]:
    """Column indices of each part: the first ``stub`` columns in every part, then as many of the
    remaining columns, in order, as fit within ``limit`` pt (at least one per part)."""
    head = list(range(stub))
    head_width = sum(widths[:stub])
    parts, current, used = [], [], head_width
    for j in range(stub, len(widths)):
        if current and used + widths[j] > limit:
            parts.append(head + current)
            current, used = [], head_width
        current.append(j)
        used += widths[j]
    if current or not parts:
        parts.append(head + current)
    return parts


def place(table, layout: str) -> None:
    """Set ``table.env`` ("table" or "table*") and ``table.parts`` for ``layout`` ("one" or "two")."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; choose one of {sorted(LAYOUTS)}")
    column, text = (w * SAFETY for w in LAYOUTS[layout])
    widths = column_widths(table)
    total = sum(widths)
    if total <= column:
        table.env, limit = "table", column
    else:
        table.env = "table*" if layout == "two" else "table"
        limit = text
    table.parts = split_columns(widths, table.stub, limit) if total > limit else [list(range(len(widths)))]


# The HTML report: body text 16 px, tables at 0.88em (14 px) with 0.7em cell padding, in a
# 1040 px column with 2em padding; a table wider than HTML_WIDTH_PX is split like a LaTeX one,
# so that the page needs no horizontal scrolling at 1280 px.
HTML_PX_PER_PT = 14 / 9
HTML_PAD_PX = 20.0
HTML_WIDTH_PX = 960.0


def place_html(table) -> None:
    """Set ``table.html_parts``: the column parts of the HTML table (one part when it fits)."""
    widths = [(w - COLUMN_PAD_PT) * HTML_PX_PER_PT + HTML_PAD_PX for w in column_widths(table)]
    fits = sum(widths) <= HTML_WIDTH_PX
    table.html_parts = (
        [list(range(len(widths)))] if fits else split_columns(widths, table.stub, HTML_WIDTH_PX)
    )
