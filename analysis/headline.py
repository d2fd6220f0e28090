"""The headline answer: the family contrast from a mixed model of the design's replication units,
and the rule that never claims more degrees of freedom than there are intermediate tasks.

**The model (scores, with ``none`` as a level).** xitt fits the scores, not the deltas:

    score ~ 0 + arm + (0 + inter | intermediate) + (1 | language) + (0 + inter | language_gain)
            + (0 + inter | stage) + (0 + inter | run) + (0 + base | baseline_run)

``arm`` is the fixed cell encoder | family | target (``none`` included, so every target's level
and every family's mean gain on it are fixed effects); ``inter`` marks intermediate-arm rows and
``base`` the ``none`` rows. Random intercepts, one per replication unit of the runner:
``intermediate`` (the task), ``language`` (encoder, target, language: the score level of a test
language), ``language_gain`` (target, language: how much intermediate training helps that
language), ``stage`` (encoder, intermediate, seed: the intermediate stage every target reuses),
``run`` (encoder, intermediate, target, seed: one target run, shared by its languages) and
``baseline_run`` (encoder, target, seed: the ``none`` run); the residual is per run x language.
With several encoders ``(0 + inter | encoder_intermediate)`` lets a task's gain differ by encoder,
so that the encoder x family interaction is judged against that variation, not against seeds.
Why scores and not deltas: a delta = score - score(none) carries the baseline run's noise *and*
the baseline's per-language noise, both shared by every intermediate's delta of that target and
seed; modelling that on deltas needs a term per (target, language, seed) (1,350 levels on the
bench grid), while on scores it is simply the residual of the ``none`` rows. ``simulate_scores``
draws exactly these units (and the tests check the fit recovers them).

**The estimand (one everywhere).** The XTREME equal-target weighting: for each target the mean
gain of family a minus that of b (languages within a target weighted equally), then the plain
mean over targets, then over encoders. Targets are fixed effects, so the GLS fit cannot re-weight
them by their language counts.

**The headline rule** (:func:`headline`), for families with m_a and m_b tasks:

1. m_a + m_b - 2 < 1 (one task in each family): no inference; the estimate is the difference of
   the two tasks' means and no CI or p-value is printed.
2. A family with a single task, a task variance at the boundary (singular fit: estimated at 0)
   or a fit that did not converge: the *task-bounded* test. The estimate is the difference of
   the families' mean per-task deltas (XTREME-weighted). Its se is the larger of the pooled
   two-sample se over per-task means and the mixed model's se (the noise of the stages, runs and
   languages alone), with df = m_a + m_b - 2; after a singular fit the pooled part takes the
   variance of a task mean at its one-sided 95 % upper bound, SS / chi2_df(0.05) (SS: the
   within-family sum of squares of the task means), with a normal quantile.
3. Otherwise the mixed-model contrast with Satterthwaite df (lmerTest's) capped at m_a + m_b - 2.

Why the upper bound after a singular fit. The estimate D is independent of SS, and a balanced
REML fit is singular exactly when SS / df falls below the noise variance v of a task mean. So,
given a singular fit, D keeps its whole variance (s_task^2 + v)(1/m_a + 1/m_b) while SS is small
by selection: a t with the pooled se, or the model's se (v alone), under-covers. An exact model of
this selection (SS / (s_task^2 + v) ~ chi2_df truncated at df, df = 4; in the calibration
scenarios v = 0.125, so task sd 0.5 is r = s_task^2 / v = 2; it predicts 0.59 and 0.14 singular
fits at r = 0 and 2, ``xitt calibrate`` measured 0.58 and 0.15-0.17) gives the coverage given a
singular fit at r = 0 / 1 / 2 / 4: the larger-se t (the rule before) 0.995 / 0.950 / 0.891 /
0.786; pooled^2 + model^2 with t_df 0.999 / 0.985 / 0.956 / 0.885; the 95 % upper bound with z
(this rule) 0.992 / 0.970 / 0.941 / 0.878 (a 75 % bound: 0.967 / 0.886 / 0.810 / 0.697).
No rule holds 93-97 % given a singular fit for every task variance. An interval that moves with
the scores (location-equivariant) has a width that is a function of SS and v, bounded on the
singular event SS <= df v, while the sd of D grows with s_task: its coverage given a singular
fit goes to 0 as r grows (P(singular) goes to 0 too, which is why the overall coverage holds).
Even for the two calibrated values alone, r = 0 and 2, a width that covers 93-97 % for a
given SS is 1.81-2.17 model se's at r = 0 and 3.14-3.76 at r = 2: disjoint. Only widths that
swing with SS from 0 to very wide reach the band on the singular event as a whole (a linear
program finds one), and those never cover on identifiable subsets; no such rule is used. The
rule errs on the conservative side. Measured with the full design (``xitt calibrate``, 500 grids
per scenario, README calibration table): given a singular fit it covered 0.966 and 0.935 with
task sd 0.5 (3 vs 3, 2 vs 4 tasks; the rule before 0.908 and 0.909) and 0.983 with no task
variance; overall 0.95-0.99. The price: with a true +1 and no task variance it found the effect
in 50 % of grids, the rule before in 62 %.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from analysis import effects, mixed
from xitt.schema import NONE

RANDOM = ("intermediate", "language", "language_gain", "stage", "run", "baseline_run")
ENCODER_TERM = "encoder_intermediate"  # added with several encoders: a task's gain differs by encoder
UNITS = {
    "intermediate": "intermediate task",
    ENCODER_TERM: "intermediate task x encoder",
    "language": "test language level (encoder, target, language)",
    "language_gain": "language gain (target, language)",
    "stage": "stage seed (encoder, intermediate, seed)",
    "run": "run seed (encoder, intermediate, target, seed)",
    "baseline_run": "baseline run (encoder, target, seed)",
    "Residual": "per-language noise of a run",
}
# One-sided confidence of the task-variance upper bound after a singular fit (rule 2): 0.95 gives
# 0.94 coverage given a singular fit for a task variance twice the noise variance of a task mean
# (task sd 0.5 in the calibration), where the larger-se t gave 0.89 (module docstring).
SINGULAR_BOUND = 0.95
HEADLINE_COLUMNS = (
    "method",
    "estimate",
    "ci_low",
    "ci_high",
    "se",
    "df",
    "statistic",
    "p_value",
    "n",
    "note",
)


def _key(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    out = frame[columns[0]].astype(str)
    for col in columns[1:]:
        out = out + "/" + frame[col].astype(str)
    return out


def design_frame(scores: pd.DataFrame, a: str = "nli", b: str = "qa") -> pd.DataFrame:
    """Primary score rows of families a, b and ``none`` on the targets where all three exist, with
    the model's columns: score, arm (encoder|family|target), inter (1.0 / 0.0) and one column per
    term of ``RANDOM`` (NaN on the rows the term does not apply to). Input: the scores.csv columns
    (encoder, intermediate, intermediate_family, target, language, seed, score)."""
    rows = scores[scores["intermediate_family"].isin([a, b, NONE])]
    arms = rows.groupby("target")["intermediate_family"].nunique()
    rows = rows[rows["target"].isin(arms.index[arms == 3])].reset_index(drop=True)
    if rows.empty:
        raise ValueError(
            f"no target has scores of '{a}', '{b}' and '{NONE}' runs; the family contrast needs all three"
        )
    inter = (rows["intermediate"] != NONE).to_numpy()
    out = pd.DataFrame({"score": rows["score"].astype(float)})
    out["arm"] = _key(rows, ["encoder", "intermediate_family", "target"]).str.replace("/", "|")
    out["inter"] = inter.astype(float)
    out["intermediate"] = rows["intermediate"].where(inter)
    out["language"] = _key(rows, ["encoder", "target", "language"])
    out["language_gain"] = _key(rows, ["target", "language"]).where(inter)
    out["stage"] = _key(rows, ["encoder", "intermediate", "seed"]).where(inter)
    out["run"] = _key(rows, ["encoder", "intermediate", "target", "seed"]).where(inter)
    out["baseline_run"] = _key(rows, ["encoder", "target", "seed"]).where(~inter)
    if rows["encoder"].nunique() > 1:
        out[ENCODER_TERM] = _key(rows, ["encoder", "intermediate"]).where(inter)
    return out


def fit_design(scores: pd.DataFrame, a: str = "nli", b: str = "qa", **kwargs) -> mixed.MixedFit:
    """The model of the module docstring fitted by :func:`analysis.mixed.fit_crossed` (REML and
    Satterthwaite by default; ``ddf="kenward-roger"``, ``reml=False`` pass through)."""
    frame = design_frame(scores, a, b)
    random = [*RANDOM, ENCODER_TERM] if ENCODER_TERM in frame else list(RANDOM)
    return mixed.fit_crossed(frame, response="score", fixed="arm", random=random, nested=(), **kwargs)


def contrast_weights(fit: mixed.MixedFit, a: str = "nli", b: str = "qa", encoder: str | None = None) -> dict:
    """Weights on the ``arm`` levels of the XTREME equal-target contrast a - b (mean over targets,
    then over encoders; one encoder with ``encoder``)."""
    cells = [lv.split("|") for lv in fit.levels]
    encoders = sorted({e for e, _, _ in cells if encoder is None or e == encoder})
    if not encoders:
        raise ValueError(f"encoder {encoder!r} is not in the fit; encoders: {sorted({c[0] for c in cells})}")
    weights: dict[str, float] = {}
    for enc in encoders:
        targets = sorted(
            {t for e, f, t in cells if e == enc and f == a} & {t for e, f, t in cells if e == enc and f == b}
        )
        for t in targets:
            for fam, sign in ((a, 1.0), (b, -1.0)):
                weights[f"{enc}|{fam}|{t}"] = sign / (len(targets) * len(encoders))
    return weights


def variance_components(fit: mixed.MixedFit) -> pd.DataFrame:
    """Per replication unit: component, unit (in words), variance, sd, n_levels, share (of the sum)."""
    out = fit.variance.copy()
    out.insert(1, "unit", out["component"].map(UNITS).fillna(out["component"]))
    total = out["variance"].sum()
    out["share"] = out["variance"] / total if total > 0 else np.nan
    return out


def task_means(scores: pd.DataFrame, a: str = "nli", b: str = "qa") -> pd.DataFrame:
    """Per intermediate task of a or b: its XTREME mean delta (seed, language, target, encoder
    means). Returns intermediate, intermediate_family, estimate."""
    pair = ["encoder", "target", "language", "seed"]
    base = scores.loc[scores["intermediate"] == NONE, pair + ["score"]].rename(columns={"score": "_base"})
    delta = scores[scores["intermediate_family"].isin([a, b])].merge(base, on=pair)
    delta["delta"] = delta["score"] - delta["_base"]
    return effects.task_effects(delta)


def task_bounded_test(
    tasks: pd.DataFrame,
    a: str,
    b: str,
    *,
    se_floor: float = 0.0,
    level: float = 0.95,
    singular: bool = False,
) -> dict:
    """Pooled two-sample t-test of the mean per-task effect, a minus b, df = m_a + m_b - 2; the se
    is max(pooled se, ``se_floor``). ``singular=True`` (the fit put the task variance at 0): the
    variance of a task mean is taken at its one-sided ``SINGULAR_BOUND`` upper confidence bound,
    SS / chi2_{df}(1 - SINGULAR_BOUND) with SS the within-family sum of squares of the task
    means, the se is max(that se, ``se_floor``) and the quantile normal (df reported as inf): the
    bound has already paid for the few tasks. Input: :func:`task_means`. Returns the
    HEADLINE_COLUMNS."""
    xa = tasks.loc[tasks["intermediate_family"] == a, "estimate"].to_numpy(float)
    xb = tasks.loc[tasks["intermediate_family"] == b, "estimate"].to_numpy(float)
    m_a, m_b = len(xa), len(xb)
    estimate = float(xa.mean() - xb.mean())
    df = m_a + m_b - 2
    if df < 1:
        return _result("no_inference", estimate, n=m_a + m_b, note=f"one {a} and one {b} task: no df")
    ss = ((xa - xa.mean()) ** 2).sum() + ((xb - xb.mean()) ** 2).sum()
    if singular:
        bound = ss / stats.chi2.ppf(1 - SINGULAR_BOUND, df)
        se = max(float(np.sqrt(bound * (1 / m_a + 1 / m_b))), float(se_floor))
        return _t_result("task_bounded", estimate, se, np.inf, level, n=m_a + m_b)
    se = max(float(np.sqrt(ss / df * (1 / m_a + 1 / m_b))), float(se_floor))
    return _t_result("task_bounded", estimate, se, float(df), level, n=m_a + m_b)


def _result(method: str, estimate: float, **values) -> dict:
    row = {c: np.nan for c in HEADLINE_COLUMNS}
    row.update({"method": method, "estimate": estimate, "note": "", **values})
    return row


def _t_result(method: str, estimate: float, se: float, df: float, level: float, **values) -> dict:
    stat = estimate / se if se > 0 else np.nan
    crit = stats.t.ppf(0.5 + level / 2, df)
    p = float(2 * stats.t.sf(abs(stat), df)) if np.isfinite(stat) else np.nan
    return _result(
        method,
        estimate,
        se=se,
        df=df,
        statistic=stat,
        p_value=p,
        ci_low=estimate - crit * se,
        ci_high=estimate + crit * se,
        **values,
    )


def headline(
    scores: pd.DataFrame, *, a: str = "nli", b: str = "qa", level: float = 0.95
) -> tuple[dict, mixed.MixedFit | None]:
    """The headline row by the rule of the module docstring, and the fit (None when not fitted).

    Input: primary score rows (scores.csv columns). Returns ({method ("mixed", "task_bounded" or
    "no_inference"), estimate, ci_low, ci_high, se, df, statistic, p_value, n (tasks), note}, fit).
    """
    tasks = task_means(scores, a, b)
    counts = tasks["intermediate_family"].value_counts()
    m_a, m_b = int(counts.get(a, 0)), int(counts.get(b, 0))
    if min(m_a, m_b) < 1:
        raise ValueError(
            f"need intermediate tasks of both '{a}' and '{b}' paired with '{NONE}'; got {m_a} and {m_b}"
        )
    if m_a + m_b - 2 < 1:
        row = task_bounded_test(tasks, a, b, level=level)
        row["note"] = f"one {a} task and one {b} task: their difference is not a family comparison"
        return row, None
    fit = fit_design(scores, a, b)
    comp = fit.compare_levels(contrast_weights(fit, a, b), level=level)
    theta = dict(zip(fit.variance["component"], fit.theta))
    singular = max(theta.get("intermediate", 0.0), theta.get(ENCODER_TERM, 0.0)) < mixed.SINGULAR_TOL
    reasons = [
        f"a family has a single task ({a}: {m_a}, {b}: {m_b})" if min(m_a, m_b) < 2 else "",
        "the task variance is estimated at 0 (singular fit)" if singular else "",
        "the mixed model did not converge" if not fit.converged else "",
    ]
    reasons = [r for r in reasons if r]
    if reasons:
        row = task_bounded_test(tasks, a, b, se_floor=float(comp["se"]), level=level, singular=singular)
        how = (
            f"task-bounded test, se from the {SINGULAR_BOUND:.0%} upper bound of the task variance "
            f"({m_a + m_b - 2} df), normal quantile"
            if singular
            else f"task-bounded t-test, df = {m_a + m_b - 2}"
        )
        row["note"] = "; ".join(reasons) + f": {how}"
        return row, fit
    df = min(float(comp["df"]), float(m_a + m_b - 2))
    row = _t_result("mixed", float(comp["estimate"]), float(comp["se"]), df, level, n=m_a + m_b)
    row["note"] = (
        f"mixed model, Satterthwaite df {float(comp['df']):.3g} capped at {m_a + m_b - 2} (tasks - 2)"
    )
    return row, fit


def encoder_answers(
    scores: pd.DataFrame, *, a: str = "nli", b: str = "qa", level: float = 0.95
) -> pd.DataFrame:
    """Per-encoder answers and the encoder x family interaction.

    One row per encoder (the headline rule on that encoder's rows), then, with several encoders,
    "all" (the headline on every encoder, equal weights) and one row "<enc> - <first>" per other
    encoder: the difference of their a - b contrasts from the joint fit, df capped at the tasks
    like the headline. Returns encoder, then the HEADLINE_COLUMNS.
    """
    encoders = sorted(scores["encoder"].astype(str).unique())
    rows = [
        {"encoder": enc, **headline(scores[scores["encoder"] == enc], a=a, b=b, level=level)[0]}
        for enc in encoders
    ]
    if len(encoders) > 1:
        row, fit = headline(scores, a=a, b=b, level=level)
        rows.append({"encoder": "all", **row})
        if fit is not None:
            tasks = task_means(scores, a, b)["intermediate_family"].value_counts()
            cap = float(tasks.get(a, 0) + tasks.get(b, 0) - 2)
            first = contrast_weights(fit, a, b, encoder=encoders[0])
            for enc in encoders[1:]:
                w = contrast_weights(fit, a, b, encoder=enc)
                weights = {k: w.get(k, 0.0) - first.get(k, 0.0) for k in set(w) | set(first)}
                comp = fit.compare_levels(weights, level=level)
                out = _t_result(
                    "interaction",
                    float(comp["estimate"]),
                    float(comp["se"]),
                    min(float(comp["df"]), cap),
                    level,
                    n=cap + 2,
                )
                out["note"] = (
                    f"({a} - {b}) on {enc} minus on {encoders[0]}; Satterthwaite df capped at tasks - 2"
                )
                rows.append({"encoder": f"{enc} - {encoders[0]}", **out})
    return pd.DataFrame(rows, columns=["encoder", *HEADLINE_COLUMNS])
