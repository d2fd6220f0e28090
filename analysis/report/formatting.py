"""Every number shown by xitt (terminal, HTML, LaTeX, Markdown, CSV exports) is formatted here.

The rules, applied everywhere:

1. **Decimals from the uncertainty.** A number with a CI gets the decimals that show the CI's
   width with two significant digits (width 3.2 -> 1 decimal, 0.045 -> 3, 25 -> 0); 'mean ± sd'
   cells those of the sd, between 1 and 2 (the main table uses its median sd for every cell, so
   scores and their Δ line up across the table). Bounded to [0, MAX_DECIMALS].
2. **One precision per column.** All numbers in a column share its decimals: those of the
   narrowest uncertainty in the column (:func:`column_decimals`), so no row shows fewer digits
   than its CI justifies and the column lines up. Rows without a CI in that column (a
   permutation test's estimate) use the column's decimals too.
3. **Signs.** Differences (contrasts, Δ vs none, their CI bounds) always carry a sign: '+' for
   positives and the typographic minus U+2212 for negatives, in tables and in the sentence
   alike; a value that rounds to zero is shown unsigned ('0.0'). Levels (scores, sds, variances,
   df, p) never get a '+'.
4. **df**: an integer when within 0.05 of one or at least 100 (Satterthwaite df of 4.0000002 ->
   '4', 250.3 -> '250'), otherwise one decimal ('2.3').
5. **p**: two significant digits, at most three decimals ('0.031', '0.50'), '< 0.001' below.
   **α** in its shortest form ('0.05').
6. **Plain numbers** without an uncertainty (variances, seed-plan entries): per column, two
   significant digits of the column's smallest non-zero magnitude, at most 4 decimals
   (:func:`plain_column_decimals`); whole-number columns as integers.
7. **Ties**: "best in column" marks every cell whose *displayed* value equals the best displayed
   value (:func:`best_cells`), never one of two cells that read the same.
8. A missing value is an en dash. Plus-minus is U+00B1; :func:`latex_escape` turns the
   symbols into LaTeX, so one formatted string serves every output.

>>> decimals_for_width(3.2)
1
>>> fmt_estimate_ci(2.345, 0.61, 3.87, sign=True)
'+2.3 [+0.6, +3.9]'
>>> latex_escape("squad_v2 & a#b")
'squad\\\\_v2 \\\\& a\\\\#b'
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from collections.abc import Iterable
from typing import Any

MINUS = "\u2212"
PLUS_MINUS = "\u00b1"
DASH = "\u2013"  # shown for a missing value
DEFAULT_DECIMALS = 2
MAX_DECIMALS = 6
MAX_PLAIN_DECIMALS = 4


def finite(x: Any) -> bool:
    """True for a number that is neither NaN nor infinite (and not None or text)."""
    if isinstance(x, (str, bool)):
        return False
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


def column_decimals(widths: Iterable, *, digits: int = 2) -> int:
    """Rule 2: one number of decimals for a column, that of its narrowest finite positive width
    (CI widths, sds or half-widths); DEFAULT_DECIMALS when none is usable.

    >>> column_decimals([17.0, 8.1, None])
    1
    """
    usable = [float(w) for w in widths if finite(w) and float(w) > 0]
    return decimals_for_width(min(usable), digits=digits) if usable else DEFAULT_DECIMALS


def ci_widths(lows: Iterable, highs: Iterable) -> list[float]:
    """ci_high - ci_low per row (NaN where a bound is missing), for :func:`column_decimals`."""
    return [float(h) - float(lo) if finite(lo) and finite(h) else math.nan for lo, h in zip(lows, highs)]


def fmt_num(x: Any, decimals: int = DEFAULT_DECIMALS, *, sign: bool = False) -> str:
    """``x`` with ``decimals`` decimals and a typographic minus; ``sign`` adds '+' to positives
    (rule 3); a value that rounds to zero has no sign; NaN -> en dash."""
    if not finite(x):
        return DASH
    value = round(float(x), decimals)
    if value == 0:
        value = 0.0  # no "-0.0" and no "+0.0"
    text = f"{abs(value):.{decimals}f}"
    if value < 0:
        return MINUS + text
    return ("+" + text) if sign and value > 0 else text


def fmt_estimate_ci(
    estimate: Any, ci_low: Any, ci_high: Any, *, sign: bool = False, decimals: int | None = None
) -> str:
    """'+2.3 [+0.6, +3.9]': ``decimals`` (a column's, rule 2) or those of this CI's width (rule 1);
    ``sign`` for differences (rule 3) signs the bounds too; without a CI just the estimate."""
    has_ci = finite(ci_low) and finite(ci_high)
    if decimals is None:
        decimals = decimals_for_width(float(ci_high) - float(ci_low) if has_ci else None)
    text = fmt_num(estimate, decimals, sign=sign)
    if not has_ci:
        return text
    return f"{text} [{fmt_num(ci_low, decimals, sign=sign)}, {fmt_num(ci_high, decimals, sign=sign)}]"


def estimate_ci_column(
    estimates: Iterable, lows: Iterable, highs: Iterable, *, sign: bool = False
) -> list[str]:
    """Rules 1-3 for a column of 'estimate [CI]' cells: one precision, from the narrowest CI."""
    estimates, lows, highs = list(estimates), list(lows), list(highs)
    d = column_decimals(ci_widths(lows, highs))
    return [fmt_estimate_ci(e, lo, hi, sign=sign, decimals=d) for e, lo, hi in zip(estimates, lows, highs)]


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
    """Rule 5: two significant digits, at most three decimals, '< 0.001' below 0.001, en dash when missing."""
    if not finite(p):
        return DASH
    p = float(p)
    if p < 0.001:
        return "< 0.001"
    return f"{p:.2f}" if p >= 0.1 else f"{p:.2g}" if p >= 0.01 else f"{p:.3f}"


def fmt_df(df: Any) -> str:
    """Rule 4: degrees of freedom as an integer when within 0.05 of one or >= 100, else one decimal."""
    if not finite(df):
        return DASH
    df = float(df)
    if df >= 100 or abs(df - round(df)) < 0.05:
        return f"{round(df):d}"
    return f"{df:.1f}"


def fmt_alpha(alpha: Any) -> str:
    """Rule 5: a significance level as written in papers: 0.05, 0.01, 0.001 (no trailing zeros)."""
    if not finite(alpha):
        return DASH
    return f"{float(alpha):.6f}".rstrip("0").rstrip(".")


def fmt_int(x: Any) -> str:
    return str(int(x)) if finite(x) else DASH


def plain_column_decimals(values: Iterable, *, digits: int = 2) -> int:
    """Rule 6: decimals for a column of numbers without uncertainty: 0 when all are whole numbers,
    else ``digits`` significant digits of the smallest non-zero magnitude, in [0, MAX_PLAIN_DECIMALS].

    >>> plain_column_decimals([5.11, 3.62, 0.0])
    1
    >>> plain_column_decimals([3, 5])
    0
    """
    nums = [abs(float(v)) for v in values if finite(v)]
    if all(float(v).is_integer() for v in nums):
        return 0
    smallest = min(v for v in nums if v > 0)
    return int(min(max(digits - 1 - math.floor(math.log10(smallest)), 0), MAX_PLAIN_DECIMALS))


def fmt_plain(x: Any, decimals: int | None = None) -> str:
    """A number without a CI with ``decimals`` (a column's, :func:`plain_column_decimals`; default:
    that of this value alone); text and booleans as they are; NaN -> en dash."""
    if isinstance(x, (str, bool)):
        return str(x)
    if not finite(x):
        return DASH
    return fmt_num(x, plain_column_decimals([x]) if decimals is None else decimals)


def fmt_plain_column(values: Iterable) -> list[str]:
    """Rule 6 for a whole column: numbers share the column's decimals; text passes through."""
    values = list(values)
    decimals = plain_column_decimals(values) if any(finite(v) for v in values) else 0
    return [fmt_plain(v, decimals) for v in values]


def best_cells(texts: list[str]) -> set[int]:
    """Rule 7: the indices of every cell whose displayed number equals the largest displayed number
    (ties all bold; missing cells never).

    >>> sorted(best_cells(["61.2", "61.2", "60.9", "\u2013"]))
    [0, 1]
    """
    values = {i: float(t.replace(MINUS, "-")) for i, t in enumerate(texts) if t not in ("", DASH)}
    if not values:
        return set()
    top = max(values.values())
    return {i for i, v in values.items() if v == top}


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


def _romanize(ch: str) -> str:
    """A letter's Latin reading from its Unicode name ('DEVANAGARI LETTER HA' -> 'ha', 'TAMIL VOWEL
    SIGN I' -> 'i', 'HANGUL SYLLABLE HAN' -> 'han'); '' for a sign without one (virama), '?' for a
    character whose name gives no reading (CJK ideographs)."""
    name = unicodedata.name(ch, "")
    match = re.search(r"\b(?:LETTER|SYLLABLE|VOWEL SIGN|CHARACTER) (.+)$", name)
    if match:
        word = match.group(1).split()[-1].lower()
        return word.capitalize() if "CAPITAL" in name else word
    return "" if unicodedata.category(ch).startswith("M") else "?"


def _latin_run(run: str) -> str:
    """A run of characters beyond Latin-1, which pdflatex's T1/utf8 set-up cannot typeset: accented
    letters lose their accent ('\u0151' -> 'o'); other scripts are read from their Unicode names and get
    a stable 4-hex suffix of the original run (a BLAKE2s hash), so that two names in scripts the PDF
    cannot show stay distinct there (Hindi 'hindii(aa80)', Tamil 'tamilll(b9f7)', CJK '??(94d8)').
    A vowel sign or virama after a consonant replaces the consonant's inherent 'a' (Brahmic
    scripts: 'ha' + 'i' -> 'hi'). The HTML report keeps the real characters."""
    out, lost = [], False
    for ch in run:
        base = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()
        if not base:
            lost, base = True, _romanize(ch)
            name = unicodedata.name(ch, "")
            if ("VOWEL SIGN" in name or "VIRAMA" in name) and out and len(out[-1]) > 1:
                out[-1] = out[-1].removesuffix("a")
        out.append(base)
    if not lost:
        return "".join(out)
    return "".join(out) + "(" + hashlib.blake2s(run.encode(), digest_size=2).hexdigest() + ")"


def _latex_typeable(ch: str) -> bool:
    """Latin-1 (T1 + utf8) or a symbol of _LATEX_SPECIALS."""
    return ord(ch) < 256 or ch in _LATEX_SPECIALS


# Control and format characters (NUL, ESC, bidi overrides, zero-width joiners...): removed, never typeset.
_INVISIBLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")


def strip_controls(text: str) -> str:
    """``text`` with tabs and line breaks as spaces and other control and format characters removed."""
    return _INVISIBLE.sub("", re.sub(r"[\t\n\r]", " ", text))


def transliterate(text: str, typeable) -> str:
    """``text`` with each run of characters for which ``typeable(ch)`` is False read in Latin
    (:func:`_latin_run`): for an output (a PDF, a figure font) that cannot show them."""
    out, run = [], []
    for ch in text:
        if typeable(ch):
            out.append(_latin_run("".join(run)) if run else "")
            run = []
            out.append(ch)
        else:
            run.append(ch)
    return "".join(out) + (_latin_run("".join(run)) if run else "")


MAX_NAME = 60  # characters of a name in a table cell (method names run to 54)


def shorten(text: Any, limit: int = MAX_NAME) -> str:
    """A name cut to ``limit`` characters with an ellipsis and a stable 4-hex hash of the whole
    name, so that two long names with one prefix stay distinct; shorter text as it is. The
    provenance section keeps the full names (a 5000-character task name overflowed the heatmap).

    >>> shorten("a" * 50, 12)
    'aaaaa…(17a9)'
    """
    text = "" if text is None else str(text)
    if len(text) <= limit:
        return text
    suffix = "(" + hashlib.blake2s(text.encode(), digest_size=2).hexdigest() + ")"
    return text[: max(limit - len(suffix) - 1, 1)].rstrip() + "…" + suffix


def drop_invisible(value: Any) -> Any:
    """A string without control and format characters (tabs and line breaks kept); other values
    as they are. The HTML report's finalize: an ESC or NUL in a task name is not valid HTML."""
    return _INVISIBLE.sub("", value) if isinstance(value, str) else value


def _protect_start(text: str) -> str:
    """'{}' before a leading '[' or '*' (after optional spaces): after a table row's ``\\\\`` they
    would be read as its optional argument or star ('[5pt]hidden' printed 'hidden'; '[/bold]' stopped
    pdflatex)."""
    return "{}" + text if text.lstrip()[:1] in ("[", "*") else text


def latex_escape(value: Any) -> str:
    """Escape a user string for LaTeX text mode: ``_ % & # $ { } ~ ^ \\`` (and < > |) plus the symbols
    this module emits (−, ±, –, Δ, ×, ...). Control characters are removed (line breaks become
    spaces); a leading '[' or '*' is protected (:func:`_protect_start`); characters beyond Latin-1
    that pdflatex cannot typeset are transliterated (:func:`_latin_run`), so a task name never
    breaks the build and distinct names stay distinct. A span in backticks (a command in a
    message, `xitt synth --out D`) is set as code (:func:`latex_code` in ``\\texttt``), so that it
    copies back from the PDF as typed.
    """
    parts = _CODE_SPAN.split(strip_controls("" if value is None else str(value)))
    return _protect_start(
        "".join(r"\texttt{" + latex_code(p) + "}" if i % 2 else _breakable(p) for i, p in enumerate(parts))
    )


_CODE_SPAN = re.compile(r"`([^`\n]+)`")


_LONG_WORD = re.compile(r"(\S{40,})")


def _breakable(text: str) -> str:
    """:func:`_escape_text` with an ``\\allowbreak`` every 20 characters of a word of 40 or more
    (a long name quoted in a caveat ran off the page: TeX breaks lines only at spaces)."""
    parts = _LONG_WORD.split(text)
    return "".join(
        r"\allowbreak{}".join(_escape_text(p[i : i + 20]) for i in range(0, len(p), 20))
        if k % 2
        else _escape_text(p)
        for k, p in enumerate(parts)
    )


def _escape_text(text: str) -> str:
    text = _LATEX_RE.sub(lambda m: _LATEX_SPECIALS[m.group(0)], text)
    return transliterate(text, _latex_typeable)


# Characters that text mode typesets as something else: '--' becomes an en dash, quotes curl.
# Code (grid files, commands) keeps them as typed, so that it can be copied from the PDF.
_LATEX_CODE = {"-": "-{}", "'": r"\textquotesingle{}", "`": r"\textasciigrave{}", '"': r"\textquotedbl{}"}


def latex_code(text: Any) -> str:
    """One line of code for a typewriter block: escaped, hyphens kept apart, straight quotes and
    backticks, spaces kept as control spaces."""
    line = strip_controls("" if text is None else str(text))
    line = transliterate(line, _latex_typeable)
    return _protect_start(
        "".join(_LATEX_CODE.get(ch) or ("\\ " if ch == " " else _escape_text(ch)) for ch in line)
    )


def latex_lines(text: Any) -> str:
    """A multi-line user text (e.g. grid.yaml) for a typewriter block: every line through
    :func:`latex_code`, lines joined with ``\\\\``; empty lines become an empty box."""
    lines = ("" if text is None else str(text)).expandtabs(2).splitlines()
    return "\\\\\n".join(latex_code(line) or "\\mbox{}" for line in lines)
