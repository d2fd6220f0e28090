"""Variance components and a seed / language / task planner for the family contrast.

The planner answers "how many seeds, languages or intermediate tasks do I need for a CI
half-width of h, or for power 0.8 against an effect d?" from the variance components of a
fitted crossed model (:func:`analysis.mixed.fit_crossed`).

In a complete grid every intermediate task sees every target, language and seed, so the
target, target:language and seed effects cancel in the family contrast (NLI minus QA) and

    var(contrast) = (1/m_a + 1/m_b) * (var_task + var_residual / (T * L * S))

with m_a, m_b tasks in the two families, T targets, L languages per target and S seeds. The
contrast is estimated at the task level, so its df are (number of tasks - number of
families), whatever T, L and S are (the Satterthwaite df of a balanced fit are exactly that).

**The task-level floor.** More seeds (or languages, or targets) only shrink the second term.
With 2 NLI and 4 QA tasks the first term, var_task * (1/2 + 1/4), usually dominates: no number
of seeds brings the CI below ``task_floor_half_width`` = t(df) * sqrt((1/m_a + 1/m_b) var_task),
and with df = 4 the t quantile (2.78) makes that floor wide. Only more intermediate tasks per
family move it. The returned frame shows the floor in its own column and says so in ``note``.

>>> import numpy as np
>>> from analysis.simulate import simulate_deltas
>>> from analysis.mixed import fit_crossed
>>> fit = fit_crossed(simulate_deltas(np.random.default_rng(0)))
>>> plan = plan_seeds(fit, seeds=(1, 3, 100))
>>> bool((plan["half_width"] >= plan["task_floor_half_width"]).all())
True
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import product

import numpy as np
import pandas as pd
from scipy import stats

TASK, RESIDUAL = "intermediate", "Residual"
PLAN_COLUMNS = (
    "design",
    "n_seeds",
    "n_languages",
    "n_intermediate_per_family",
    "n_targets",
    "se",
    "df",
    "half_width",
    "task_floor_half_width",
    "task_share",
    "power",
    "meets_goal",
    "note",
)


def variance_components(fit) -> pd.DataFrame:
    """The fitted variance components with their share of the total.

    Input: a :class:`analysis.mixed.MixedFit`. Returns columns component, variance, sd, share,
    n_levels (one row per random factor, then Residual; shares sum to 1).
    """
    var = fit.variance[["component", "variance", "sd", "n_levels"]].copy()
    total = float(var["variance"].sum())
    var["share"] = var["variance"] / total if total > 0 else np.nan
    return var[["component", "variance", "sd", "share", "n_levels"]].reset_index(drop=True)


def _pick_levels(fit, level_a: str | None, level_b: str | None) -> tuple[str, str]:
    levels = list(fit.levels)
    if len(levels) < 2:
        raise ValueError(
            "the seed plan needs a fit with a fixed factor of >= 2 levels "
            "(fit_crossed(frame, fixed='intermediate_family'))"
        )
    if level_a is None and level_b is None:
        if "nli" in levels and "qa" in levels:
            return "nli", "qa"
        if len(levels) == 2:
            return levels[1], levels[0]
        raise ValueError(
            f"say which families to compare: plan_seeds(fit, level_a=..., level_b=...); levels: {levels}"
        )
    for lv in (level_a, level_b):
        if lv not in levels:
            raise ValueError(f"{lv!r} is not a level of {fit.fixed!r}; levels: {levels}")
    return level_a, level_b


def _observed(fit) -> dict:
    comps = fit.variance.set_index("component")
    if RESIDUAL not in comps.index:
        raise ValueError("the fit has no Residual variance; pass a MixedFit from analysis.mixed.fit_crossed")
    n_targets = int(comps.loc["target", "n_levels"]) if "target" in comps.index else 1
    n_cells = int(comps.loc["target:language", "n_levels"]) if "target:language" in comps.index else n_targets
    tasks = dict(fit.nested_levels.get(TASK, {}))
    if not tasks:
        raise ValueError(
            f"the fit has no random factor {TASK!r} nested in {fit.fixed!r}; the planner needs "
            "intermediate tasks as the units of the family contrast"
        )
    return {
        "var_task": float(comps.loc[TASK, "variance"]) if TASK in comps.index else 0.0,
        "var_resid": float(comps.loc[RESIDUAL, "variance"]),
        "n_targets": n_targets,
        "n_languages": max(1, round(n_cells / n_targets)),
        "n_seeds": int(comps.loc["seed", "n_levels"]) if "seed" in comps.index else 1,
        "tasks": tasks,
    }


def _power(effect: float, se: float, df: float, alpha: float) -> float:
    if not np.isfinite(df) or df <= 0:
        return float("nan")
    crit = stats.t.ppf(1 - alpha / 2, df)
    ncp = effect / se
    return float(stats.nct.sf(crit, df, ncp) + stats.nct.cdf(-crit, df, ncp))


def _row(obs, m_a, m_b, n_fam_tasks, n_fam, seeds, langs, alpha, effect) -> dict:
    n_obs = obs["n_targets"] * langs * seeds
    weight = 1.0 / m_a + 1.0 / m_b
    var = weight * (obs["var_task"] + obs["var_resid"] / n_obs)
    df = float(n_fam_tasks - n_fam) if n_fam_tasks > n_fam else float("nan")
    crit = stats.t.ppf(1 - alpha / 2, df) if np.isfinite(df) else float("inf")
    se = float(np.sqrt(var))
    return {
        "n_seeds": seeds,
        "n_languages": langs,
        "n_targets": obs["n_targets"],
        "se": se,
        "df": df,
        "half_width": crit * se,
        "task_floor_half_width": crit * float(np.sqrt(weight * obs["var_task"])),
        "task_share": weight * obs["var_task"] / var if var > 0 else float("nan"),
        "power": _power(effect, se, df, alpha) if effect is not None else float("nan"),
    }


def plan_seeds(
    fit,
    *,
    half_width: float | None = None,
    effect: float | None = None,
    power: float = 0.8,
    alpha: float = 0.05,
    seeds: Sequence[int] = (1, 2, 3, 5, 10),
    languages: Sequence[int] | None = None,
    intermediates_per_family: Sequence[int] | None = None,
    level_a: str | None = None,
    level_b: str | None = None,
) -> pd.DataFrame:
    """Expected precision of the ``level_a - level_b`` family contrast for other grid designs.

    Input: a MixedFit of ``delta ~ intermediate_family + (1|intermediate) + ...``; its
    intermediate and residual variances are taken as the truth. Designs are all combinations of
    ``seeds`` x ``languages`` (default: the fitted number per target) x
    ``intermediates_per_family`` (default: the fitted task counts, e.g. 2 NLI and 4 QA, shown as
    design "observed"; an integer m means m tasks in every family, design "balanced"); the number
    of targets stays as fitted. Returns one row per design with columns design, n_seeds,
    n_languages, n_intermediate_per_family (the smaller of the two compared families), n_targets,
    se, df, half_width (t-based, 1 - alpha), task_floor_half_width (the limit for infinitely many
    seeds and languages: more seeds cannot go below it), task_share (share of the contrast
    variance due to the tasks), power (two-sided, for ``effect``; NaN without it), meets_goal
    (half-width <= ``half_width`` and power >= ``power``; NA without a goal), note.
    Analytic for complete balanced grids; missing cells make the real CI somewhat wider.
    """
    if half_width is not None and not half_width > 0:
        raise ValueError(f"half_width must be > 0 (in score points); got {half_width!r}")
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ValueError(f"alpha and power must be in (0, 1); got alpha={alpha!r}, power={power!r}")
    for name, values in (
        ("seeds", seeds),
        ("languages", languages),
        ("intermediates_per_family", intermediates_per_family),
    ):
        if values is not None and (len(values) == 0 or any(int(v) != v or v < 1 for v in values)):
            raise ValueError(f"{name} must be a non-empty list of positive integers; got {values!r}")
    a, b = _pick_levels(fit, level_a, level_b)
    obs = _observed(fit)
    n_fam = len(fit.levels)
    if intermediates_per_family is None:
        task_designs = [
            (
                "observed " + ", ".join(f"{k}={v}" for k, v in obs["tasks"].items()),
                obs["tasks"].get(a, 0),
                obs["tasks"].get(b, 0),
                sum(obs["tasks"].values()),
            )
        ]
    else:
        task_designs = [
            (f"balanced {int(m)} per family", int(m), int(m), int(m) * n_fam)
            for m in intermediates_per_family
        ]
    rows = []
    for (design, m_a, m_b, total), n_s, n_l in product(
        task_designs, seeds, languages or [obs["n_languages"]]
    ):
        if min(m_a, m_b) < 1:
            raise ValueError(f"family {a if m_a < 1 else b!r} has no intermediate task in the fit")
        row = {
            "design": design,
            "n_intermediate_per_family": min(m_a, m_b),
            **_row(obs, m_a, m_b, total, n_fam, int(n_s), int(n_l), alpha, effect),
        }
        rows.append(row)
    out = pd.DataFrame(rows)
    goal = pd.Series(True, index=out.index)
    if half_width is not None:
        goal &= out["half_width"] <= half_width
    if effect is not None:
        goal &= out["power"] >= power
    out["meets_goal"] = goal.astype("boolean") if (half_width is not None or effect is not None) else pd.NA
    out["meets_goal"] = out["meets_goal"].astype("boolean")
    out["note"] = [_note(r, half_width) for r in out.to_dict("records")]
    return out[list(PLAN_COLUMNS)]


def _note(row: dict, half_width: float | None) -> str:
    if not np.isfinite(row["df"]):
        return "one task per family: the family contrast has no df (add intermediate tasks)"
    if half_width is not None and row["task_floor_half_width"] > half_width:
        return (
            f"unreachable with {row['n_intermediate_per_family']} tasks per family: the task-level floor is "
            f"+-{row['task_floor_half_width']:.3g}; add intermediate tasks, not seeds"
        )
    if row["task_share"] > 0.8:
        return f"{row['task_share']:.0%} of the contrast variance is between tasks: more seeds barely help"
    return ""
