"""The headline in words: the quotable answer sentence and the answer block of the report.

Both read :class:`analysis.result.Answer` and format through :mod:`analysis.report.formatting`,
so the sentence, the terminal and the tables show the same digits.
"""

from __future__ import annotations

from analysis.report import formatting as fmt
from analysis.report.names import Names


def answer_sentence(analysis, names: Names | None = None) -> str:
    """'Averaged over T target task(s), the gain from NLI ... is +1.2 points (95% CI ...; method,
    df = ..., p = ...); NLI beats QA in k of N languages (...).' with '[Synthetic data] ' first
    for synthetic data. Decimals from the CI width, as in the tables."""
    names = names or Names()
    ans = analysis.answer
    if ans is None:
        return (
            f"{'[Synthetic data] ' if analysis.synthetic else ''}No answer: these scores have no 'none' "
            "baseline, so there are no gains to compare; the tables describe the scores only."
        )
    d = fmt.decimals_for_width(ans.ci_high - ans.ci_low)
    df_txt = f", df = {fmt.fmt_df(ans.df)}" if fmt.finite(ans.df) else ""
    p = fmt.fmt_p(ans.p_value)
    p_txt = "" if p == fmt.DASH else f", p {p}" if p.startswith("<") else f", p = {p}"
    a, b = names.family(ans.a), names.family(ans.b)
    sentence = (
        f"{'[Synthetic data] ' if analysis.synthetic else ''}Averaged over {ans.n_targets} target task(s) "
        "(equal weights, as the XTREME score), "
        f"the gain from {a} intermediate training ({ans.n_tasks_a} task(s)) minus the gain from {b} "
        f"({ans.n_tasks_b} task(s)) is {fmt.fmt_num(ans.estimate, d, sign=True)} points "
        + (
            f"({int(round(ans.level * 100))}% CI {fmt.fmt_num(ans.ci_low, d, sign=True)} to "
            f"{fmt.fmt_num(ans.ci_high, d, sign=True)}; {names(ans.method)}{df_txt}{p_txt})"
            if fmt.finite(ans.ci_low)
            else f"({names(ans.method)})"
        )
    )
    if ans.n_languages is not None:
        sentence += (
            f"; {a} beats {b} in {ans.k_hat} of {ans.n_languages} languages (partial conjunction, Bonferroni)"
        )
    return sentence + "."


def answer_block(analysis, names: Names | None = None) -> dict:
    """The headline for the report: labels, formatted estimate [CI], df, p, k-hat of N, method, sentence."""
    names = names or Names()
    ans = analysis.answer
    if ans is None:
        return {
            "a_label": names.family(analysis.a),
            "b_label": names.family(analysis.b),
            **dict.fromkeys(("estimate_ci", "df", "p", "languages"), fmt.DASH),
            "method": "",
            "sentence": answer_sentence(analysis, names),
        }
    return {
        "a_label": names.family(ans.a),
        "b_label": names.family(ans.b),
        "estimate_ci": fmt.fmt_estimate_ci(ans.estimate, ans.ci_low, ans.ci_high, sign=True),
        "df": fmt.fmt_df(ans.df),
        "p": fmt.fmt_p(ans.p_value),
        "languages": (f"{ans.k_hat} of {ans.n_languages}" if ans.n_languages is not None else fmt.DASH),
        "method": names(ans.method),
        "sentence": answer_sentence(analysis, names),
    }
