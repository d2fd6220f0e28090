"""Every number and string in the report is formatted here, and only here.

Numbers get as many decimals as their uncertainty justifies: the number of decimals is chosen
from the width of the confidence interval so that the width shows about two significant digits
(a CI of width 3.2 points -> 1 decimal; width 0.045 -> 3 decimals; width 25 -> 0 decimals).
Minus signs are the typographic U+2212, plus-minus is U+00B1; :func:`latex_escape` turns both
(and the other symbols used here) into LaTeX, so the same formatted string serves HTML and LaTeX.

>>> decimals_for_width(3.2)
1
>>> fmt_estimate_ci(2.345, 0.61, 3.87)
'2.3 [0.6, 3.9]'
>>> latex_escape("squad_v2 & a#b")
'squad\\\\_v2 \\\\& a\\\\#b'
"""

from __future__ import annotations

import math
import re
import unicodedata
from typing import Any

MINUS = "\u2212"
PLUS_MINUS = "\u00b1"
DASH = "\u2013"  # shown for a missing value
DEFAULT_DECIMALS = 2
MAX_DECIMALS = 6


def finite(x: Any) -> bool:
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def decimals_for_width(width: float | None, *, digits: int = 2) -> int:
    """Decimals that show ``width`` (a CI width, same unit as the estimate) with ``digits`` significant digits.

    A missing, zero or non-finite width gives DEFAULT_DECIMALS. The result lies in [0, MAX_DECIMALS].
    """
    if not finite(width) or float(width) <= 0:
        return DEFAULT_DECIMALS
    decimals = digits - 1 - math.floor(math.log10(abs(float(width))))
    return int(min(max(decimals, 0), MAX_DECIMALS))


def fmt_num(x: Any, decimals: int = DEFAULT_DECIMALS, *, sign: bool = False) -> str:
    """``x`` with ``decimals`` decimals and a typographic minus; ``sign`` adds '+' to positives; NaN -> en dash."""
    if not finite(x):
        return DASH
    value = round(float(x), decimals)
    if value == 0:
        value = 0.0  # no "-0.0"
    text = f"{abs(value):.{decimals}f}"
    if value < 0:
        return MINUS + text
    return ("+" + text) if sign else text


def fmt_estimate_ci(estimate: Any, ci_low: Any, ci_high: Any, *, sign: bool = False) -> str:
    """'2.3 [0.6, 3.9]' with decimals chosen from the CI width; without a CI just the estimate."""
    width = float(ci_high) - float(ci_low) if finite(ci_low) and finite(ci_high) else None
    d = decimals_for_width(width)
    if width is None:
        return fmt_num(estimate, d, sign=sign)
    return f"{fmt_num(estimate, d, sign=sign)} [{fmt_num(ci_low, d)}, {fmt_num(ci_high, d)}]"


def column_decimals(widths, *, digits: int = 2) -> int:
    """One number of decimals for a whole column: that of its narrowest finite positive width (CI
    widths, sds or half-widths), so every row shows at least ``digits`` significant digits of its
    uncertainty and the column lines up; DEFAULT_DECIMALS when none is usable."""
    usable = [float(w) for w in widths if finite(w) and float(w) > 0]
    return decimals_for_width(min(usable), digits=digits) if usable else DEFAULT_DECIMALS


def decimals_for_sd(sd: Any) -> int:
    """Decimals for 'mean ± sd' cells: two significant digits of the sd, between 1 and 2 decimals
    (a table passes its median sd so that all its cells line up)."""
    return min(max(decimals_for_width(sd), 1), 2)


def fmt_mean_sd(mean: Any, sd: Any, decimals: int | None = None) -> str:
    """'45.2 ± 1.3' with ``decimals`` (default: :func:`decimals_for_sd` of this sd)."""
    if not finite(mean):
        return DASH
    d = decimals_for_sd(sd) if decimals is None else decimals
    if not finite(sd):
        return fmt_num(mean, d)
    return f"{fmt_num(mean, d)} {PLUS_MINUS} {fmt_num(sd, d)}"


def fmt_p(p: Any) -> str:
    """Two significant digits, '< 0.001' below 0.001, en dash when missing."""
    if not finite(p):
        return DASH
    p = float(p)
    if p < 0.001:
        return "< 0.001"
    return f"{p:.2f}" if p >= 0.1 else f"{p:.2g}"


def fmt_df(df: Any) -> str:
    """Degrees of freedom: one decimal below 100 (Satterthwaite df are fractional), none above."""
    if not finite(df):
        return DASH
    return f"{float(df):.1f}" if float(df) < 100 else f"{float(df):.0f}"


def fmt_alpha(alpha: Any) -> str:
    """A significance level as written in papers: 0.05, 0.01, 0.001 (no trailing zeros)."""
    if not finite(alpha):
        return DASH
    return f"{float(alpha):.6f}".rstrip("0").rstrip(".")


def fmt_int(x: Any) -> str:
    return str(int(x)) if finite(x) else DASH


def fmt_plain(x: Any, digits: int = 3) -> str:
    """A number without a CI (variance, count, seed plan entry): ``digits`` significant digits."""
    if isinstance(x, (str, bool)):
        return str(x)
    if not finite(x):
        return DASH
    x = float(x)
    if x.is_integer() and abs(x) < 1e6:
        return fmt_num(x, 0)
    d = digits - 1 - math.floor(math.log10(abs(x)))
    return fmt_num(x, int(min(max(d, 0), MAX_DECIMALS)))


def sig_marks(p_adj: Any) -> str:
    """Significance marks after correction: *** < 0.001, ** < 0.01, * < 0.05, nothing otherwise."""
    if not finite(p_adj):
        return ""
    p = float(p_adj)
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else ""


# --- LaTeX -----------------------------------------------------------------------------------
_LATEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "_": r"\_",
    "%": r"\%",
    "&": r"\&",
    "#": r"\#",
    "$": r"\$",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
    MINUS: r"\ensuremath{-}",
    PLUS_MINUS: r"\ensuremath{\pm}",
    DASH: "--",
    "\u2014": "---",
    "\u0394": r"\ensuremath{\Delta}",
    "\u00d7": r"\ensuremath{\times}",
    "\u2265": r"\ensuremath{\geq}",
    "\u2264": r"\ensuremath{\leq}",
    "\u2026": r"\dots{}",
    "\u00b7": r"\ensuremath{\cdot}",
    "\u03b1": r"\ensuremath{\alpha}",
    "\u03c3": r"\ensuremath{\sigma}",
    "\u2192": r"\ensuremath{\to}",
    "\u2018": "`",
    "\u2019": "'",
    "\u201c": "``",
    "\u201d": "''",
    "\u0302": "",
}
_LATEX_RE = re.compile("|".join(re.escape(k) for k in sorted(_LATEX_SPECIALS, key=len, reverse=True)))


def _latin(ch: str) -> str:
    """Keep characters pdflatex's T1/utf8 set-up can print (Latin-1); transliterate or replace the rest."""
    if ord(ch) < 256:
        return ch
    base = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()
    return base or "?"


def latex_escape(value: Any) -> str:
    """Escape a user string for LaTeX text mode: ``_ % & # $ { } ~ ^ \\`` (and < > |) plus the symbols
    this module emits (−, ±, –, Δ, ×, ...). Characters beyond Latin-1 that pdflatex cannot typeset
    (e.g. CJK) are transliterated when possible, else replaced by '?', so a task name never breaks
    the build.
    """
    text = "" if value is None else str(value)
    text = _LATEX_RE.sub(lambda m: _LATEX_SPECIALS[m.group(0)], text)
    return "".join(_latin(ch) for ch in text)


def latex_lines(text: Any) -> str:
    """A multi-line user text (e.g. grid.yaml) for a typewriter block: every line escaped, spaces kept
    as control spaces, lines joined with ``\\\\``; empty lines become an empty box."""
    lines = ("" if text is None else str(text)).expandtabs(2).splitlines()
    out = [latex_escape(line).replace(" ", "\\ ") or "\\mbox{}" for line in lines]
    return "\\\\\n".join(out)
