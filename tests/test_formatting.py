"""Number formatting (decimals from the CI width) and LaTeX escaping."""

import math

import pytest

from analysis.report import formatting as fmt


@pytest.mark.parametrize(
    "width, decimals",
    [
        (25.0, 0),
        (10.0, 0),
        (9.9, 1),
        (3.2, 1),
        (1.0, 1),
        (0.99, 2),
        (0.45, 2),
        (0.045, 3),
        (1e-9, fmt.MAX_DECIMALS),
    ],
)
def test_decimals_follow_ci_width(width, decimals):
    assert fmt.decimals_for_width(width) == decimals


@pytest.mark.parametrize("width", [None, float("nan"), 0.0, -1.0, math.inf])
def test_decimals_default_without_a_usable_width(width):
    assert fmt.decimals_for_width(width) == fmt.DEFAULT_DECIMALS


def test_estimate_ci_uses_one_precision_for_all_three_numbers():
    assert fmt.fmt_estimate_ci(2.345, 0.61, 3.87) == "2.3 [0.6, 3.9]"
    assert fmt.fmt_estimate_ci(2.345, 2.31, 2.38) == "2.345 [2.310, 2.380]"
    assert fmt.fmt_estimate_ci(12.3, -4.0, 28.0) == "12 [\u22124, 28]"
    assert fmt.fmt_estimate_ci(1.5, float("nan"), 2.5) == "1.50"


def test_differences_are_signed_in_estimate_and_bounds():
    # issue 13: '+1.2' in the sentence but '1.2' in the table
    assert fmt.fmt_estimate_ci(1.5, 0.5, 2.5, sign=True) == "+1.5 [+0.5, +2.5]"
    assert fmt.fmt_estimate_ci(-0.2, -1.5, 1.2, sign=True) == "\u22120.2 [\u22121.5, +1.2]"
    assert fmt.fmt_num(0.04, 1, sign=True) == "0.0"  # rounds to zero: no sign


def test_one_precision_per_column():
    # issue 13: '-2 [-9, 6]' beside '-0.5 [-4.5, 3.6]', and '-0.18' beside '-0.2 [-1.5, 1.2]'
    lows, highs = [-9.4, -4.5, None], [6.1, 3.6, None]
    d = fmt.column_decimals(fmt.ci_widths(lows, highs))
    assert d == 1
    cells = [
        fmt.fmt_estimate_ci(e, lo, hi, sign=True, decimals=d)
        for e, lo, hi in zip([-2.0, -0.5, -0.18], lows, highs)
    ]
    assert cells == ["\u22122.0 [\u22129.4, +6.1]", "\u22120.5 [\u22124.5, +3.6]", "\u22120.2"]
    assert fmt.column_decimals([float("nan"), None]) == fmt.DEFAULT_DECIMALS


def test_numbers_use_typographic_minus_and_no_negative_zero():
    assert fmt.fmt_num(-1.26, 1) == "\u22121.3"
    assert fmt.fmt_num(2, 1, sign=True) == "+2.0"
    assert fmt.fmt_num(-0.001, 1) == "0.0"
    assert fmt.fmt_num(float("nan")) == fmt.DASH
    assert fmt.fmt_num(None) == fmt.DASH


def test_p_values_df_marks():
    assert fmt.fmt_p(0.0004) == "< 0.001"
    assert fmt.fmt_p(0.0342) == "0.034"
    assert fmt.fmt_p(0.5) == "0.50"
    assert fmt.fmt_p(float("nan")) == fmt.DASH
    assert fmt.fmt_p(0.0042) == "0.004" and fmt.fmt_p(1.0) == "1.00"
    assert fmt.fmt_df(2.314) == "2.3" and fmt.fmt_df(412.2) == "412"
    # issue 13: df shown as 250, 40.0 or 4.0
    assert [fmt.fmt_df(x) for x in (250.0, 40.0, 4.000000002, 3.96)] == ["250", "40", "4", "4"]
    assert fmt.fmt_alpha(0.05) == "0.05" and fmt.fmt_alpha(0.001) == "0.001"  # not '0.0500'
    assert [fmt.sig_marks(p) for p in (0.0001, 0.004, 0.04, 0.2, float("nan"))] == ["***", "**", "*", "", ""]


def test_mean_sd_decimals_from_sd():
    assert fmt.fmt_mean_sd(62.813, 1.72) == "62.8 \u00b1 1.7"
    assert fmt.fmt_mean_sd(62.813, 0.31) == "62.81 \u00b1 0.31"
    assert fmt.fmt_mean_sd(62.813, 0.31, 1) == "62.8 \u00b1 0.3"
    assert fmt.fmt_mean_sd(62.813, float("nan")) == "62.81"


def test_plain_numbers():
    assert fmt.fmt_plain(3) == "3"
    assert fmt.fmt_plain(0.04567) == "0.046"
    assert fmt.fmt_plain_column([5.113, 3.62, 12]) == ["5.1", "3.6", "12.0"]
    assert fmt.fmt_plain_column([0.03, 0.65, 0.32]) == ["0.030", "0.650", "0.320"]
    assert fmt.fmt_plain_column([3, 5, "x"]) == ["3", "5", "x"]
    assert fmt.fmt_plain("text") == "text"
    assert fmt.fmt_plain(True) == "True"
    assert fmt.fmt_plain(float("nan")) == fmt.DASH


def test_ties_in_best_are_all_marked():
    # issue 13: 'best in column' bolded one of two cells that display identically
    assert fmt.best_cells(["61.2", "61.2", "60.9"]) == {0, 1}
    assert fmt.best_cells(["\u22121.0", "\u22120.5", fmt.DASH]) == {1}
    assert fmt.best_cells([fmt.DASH]) == set()


@pytest.mark.parametrize(
    "raw, escaped",
    [
        ("_", r"\_"),
        ("%", r"\%"),
        ("&", r"\&"),
        ("#", r"\#"),
        ("$", r"\$"),
        ("{", r"\{"),
        ("}", r"\}"),
        ("~", r"\textasciitilde{}"),
        ("^", r"\textasciicircum{}"),
        ("\\", r"\textbackslash{}"),
        ("<", r"\textless{}"),
        (">", r"\textgreater{}"),
    ],
)
def test_latex_escape_every_special(raw, escaped):
    assert fmt.latex_escape(f"a{raw}b") == f"a{escaped}b"


def test_latex_escape_is_single_pass_and_handles_symbols():
    # the braces produced for the backslash must not be escaped again
    assert fmt.latex_escape("\\{}") == r"\textbackslash{}\{\}"
    assert fmt.latex_escape("squad_v2 & a#b 100%") == r"squad\_v2 \& a\#b 100\%"
    assert fmt.latex_escape("\u22121.2 \u00b1 0.3") == r"\ensuremath{-}1.2 \ensuremath{\pm} 0.3"
    assert fmt.latex_escape("caf\u00e9") == "caf\u00e9"  # Latin-1 is typeset by T1 + utf8
    # pdflatex cannot typeset CJK: replaced with a stable suffix of the original, never a crash
    assert fmt.latex_escape("\u4e2d\u6587") == "??(94d8)"
    assert fmt.latex_escape(None) == ""


def test_latex_lines_keeps_layout():
    out = fmt.latex_lines("a:\n  b_c: 1\n\nd")
    assert out.split("\\\\\n") == ["a:", r"\ \ b\_c:\ 1", r"\mbox{}", "d"]


def test_code_spans_in_messages_are_set_as_typed():
    # issue 13: `--out` came out as an en dash and backticks as curly quotes, so commands failed
    assert fmt.latex_escape("run `xitt synth --out D` now") == r"run \texttt{xitt\ synth\ -{}-{}out\ D} now"
    assert (
        fmt.latex_code("a 'b' \"c\"")
        == r"a\ \textquotesingle{}b\textquotesingle{}\ \textquotedbl{}c\textquotedbl{}"
    )
    assert fmt.latex_escape("lone ` tick") == r"lone ` tick"


def test_leading_bracket_or_star_is_not_an_argument_of_the_previous_row_end():
    # issue 16: '[5pt]hidden' printed 'hidden' (read as \\[5pt]); '[/bold]' stopped pdflatex
    assert fmt.latex_escape("[5pt]hidden") == "{}[5pt]hidden"
    assert fmt.latex_escape(" *x") == "{} *x"
    assert fmt.latex_escape("a[1]") == "a[1]"
    assert fmt.latex_lines("[a, b]\nc").split("\\\\\n")[0] == "{}[a,\\ b]"


def test_control_characters_are_removed():
    assert fmt.latex_escape("a\x1b[2Jb\x00c\nd\u202ee") == "a[2Jbc de"
    assert fmt.latex_code("x\x07y") == "xy"


def test_non_latin_names_stay_distinct_and_stable():
    hindi, tamil = "\u0939\u093f\u0928\u094d\u0926\u0940", "\u0ba4\u0bae\u0bbf\u0bb4\u0bcd"
    out = {fmt.latex_escape(n) for n in (hindi, tamil, "\u4e2d\u6587", "\u65e5\u672c")}
    assert len(out) == 4 and all(o.isascii() for o in out)
    assert fmt.latex_escape(hindi) == "hindii(aa80)"  # read from the Unicode names, hash suffix
    assert fmt.latex_escape("\u0151 \u2212") == r"o \ensuremath{-}"  # accents dropped, symbols still mapped


def test_long_words_may_break_across_lines():
    out = fmt.latex_escape("cells of " + "a_b" * 20 + " are missing")
    assert out.count(r"\allowbreak{}") == 2 and out.startswith("cells of a\\_b")
    assert out.replace(r"\allowbreak{}", "") == fmt.latex_escape("cells of ") + r"a\_b" * 20 + " are missing"
    assert r"\allowbreak" not in fmt.latex_escape("short words only")
