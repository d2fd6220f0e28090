"""A seed / language / task planner for the family contrast, built on the replication units.

Input: the variance components of the design model (:func:`analysis.headline.fit_design`:
intermediate task, stage seed, run seed, per-language noise; with several encoders the task x
encoder term) and the observed design. In a complete grid the baseline runs, the language levels
and the language gains are shared by every intermediate task and cancel in the family contrast
a - b, so with m_a, m_b tasks, T targets, L languages per target, S seeds and E encoders

    var(task mean) = var_task + var_task_encoder / E
                     + (var_stage / S + var_run / (T S) + var_residual / (T L S)) / E
    var(contrast)  = (1/m_a + 1/m_b) var(task mean),   df = m_a + m_b - 2

(the headline never claims more df, :mod:`analysis.headline`). **Half-widths are medians** of
the realised half-width under the headline rule. The within-family sum of squares of the task
means is SS ~ var(task mean) chi2_df. Where SS / df >= the noise part of var(task mean) (a
regular fit; a balanced REML fit is singular exactly below it) the half-width is
t(df) sqrt(w max(SS / df, noise)), w = 1/m_a + 1/m_b; below it (a singular fit) the rule's
z sqrt(w max(SS / chi2_df(1 - SINGULAR_BOUND), noise)). ``half_width`` is the median of that
function of SS, over 4001 equally likely quantiles of chi2_df (deterministic).
**Uncertainty:** the observed var(task mean) is estimated from the tasks
(df = m_a + m_b - 2), so its 95 % chi-square interval, carried to each design with the noise
terms held at their (well estimated) values, gives ``half_width_low`` / ``half_width_high``.

**The task-level floor.** More seeds, languages or targets only shrink the noise terms; no number
of seeds brings the half-width below ``task_floor_half_width`` (S, L -> infinity). With stage-level
seed noise the noise term var_stage / S is not small, and then seeds do help: the note says which.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import product

import numpy as np
import pandas as pd
from scipy import stats

from analysis.headline import SINGULAR_BOUND

_QUANTILES = (np.arange(4001) + 0.5) / 4001  # equally likely points of SS / var(task mean) ~ chi2_df

PLAN_COLUMNS = (
    "design",
    "n_seeds",
    "n_languages",
    "n_intermediate_per_family",
    "n_targets",
    "se",
    "df",
    "half_width",
    "half_width_low",
    "half_width_high",
    "task_floor_half_width",
    "task_share",
    "power",
    "meets_goal",
    "note",
)


def observed_design(scores: pd.DataFrame, a: str = "nli", b: str = "qa") -> dict:
    """Tasks per family, targets, mean languages per target, seeds and encoders of the a / b runs.

    Returns {"tasks": {a: m_a, b: m_b}, "n_targets", "n_languages", "n_seeds", "n_encoders"}.
    """
    rows = scores[scores["intermediate_family"].isin([a, b])]
    if rows.empty:
        raise ValueError(f"no scores of families '{a}' or '{b}'; the planner needs both")
    tasks = rows.groupby("intermediate_family")["intermediate"].nunique()
    return {
        "tasks": {a: int(tasks.get(a, 0)), b: int(tasks.get(b, 0))},
        "n_targets": int(rows["target"].nunique()),
        "n_languages": float(rows.groupby("target")["language"].nunique().mean()),
        "n_seeds": int(rows["seed"].nunique()),
        "n_encoders": int(rows["encoder"].nunique()),
    }


def _components(variance: pd.DataFrame) -> dict:
    comps = variance.set_index("component")["variance"].astype(float)
    if "Residual" not in comps.index:
        raise ValueError("the variance components lack 'Residual'; pass headline.variance_components(fit)")
    get = lambda name: float(comps.get(name, 0.0))  # noqa: E731
    return {
        "task": get("intermediate"),
        "task_encoder": get("encoder_intermediate"),
        "stage": get("stage"),
        "run": get("run"),
        "residual": get("Residual"),
    }


def _noise(c: dict, seeds: float, langs: float, targets: int, encoders: int) -> float:
    return (
        c["stage"] / seeds + c["run"] / (targets * seeds) + c["residual"] / (targets * langs * seeds)
    ) / encoders


def _power(effect: float, se: float, df: float, alpha: float) -> float:
    if not np.isfinite(df) or df <= 0 or se <= 0:
        return float("nan")
    crit = stats.t.ppf(1 - alpha / 2, df)
    return float(stats.nct.sf(crit, df, effect / se) + stats.nct.cdf(-crit, df, effect / se))


def _median_half_width(weight: float, total: float, noise: float, df: float, alpha: float) -> float:
    """Median realised half-width of the headline rule when var(task mean) = ``total``, of which
    ``noise`` is seed and language noise (module docstring)."""
    ss = total * stats.chi2.ppf(_QUANTILES, df)
    regular = stats.t.ppf(1 - alpha / 2, df) * np.sqrt(weight * np.maximum(ss / df, noise))
    bound = ss / stats.chi2.ppf(1 - SINGULAR_BOUND, df)
    singular = stats.norm.ppf(1 - alpha / 2) * np.sqrt(weight * np.maximum(bound, noise))
    return float(np.median(np.where(ss / df >= noise, regular, singular)))


def _row(c, obs, m_a, m_b, seeds, langs, alpha, effect) -> dict:
    weight = 1.0 / m_a + 1.0 / m_b
    T, E = obs["n_targets"], obs["n_encoders"]
    task = c["task"] + c["task_encoder"] / E
    noise = _noise(c, seeds, langs, T, E)
    obs_noise = _noise(c, obs["n_seeds"], obs["n_languages"], T, E)
    df = float(m_a + m_b - 2)
    if df < 1:
        v_low = v_high = float("nan")
    else:
        obs_df = float(sum(obs["tasks"].values()) - 2)
        v_obs = task + obs_noise
        v_low = max(obs_df * v_obs / stats.chi2.ppf(0.975, obs_df) - obs_noise, 0.0) + noise
        v_high = max(obs_df * v_obs / stats.chi2.ppf(0.025, obs_df) - obs_noise, 0.0) + noise
    var = weight * (task + noise)
    se = float(np.sqrt(var))

    def half(total: float, noise_part: float) -> float:
        ok = df >= 1 and np.isfinite(total)
        return _median_half_width(weight, total, noise_part, df, alpha) if ok else float("nan")

    return {
        "n_seeds": seeds,
        "n_languages": langs,
        "n_targets": T,
        "se": se,
        "df": df,
        "half_width": half(task + noise, noise),
        "half_width_low": half(v_low, noise),
        "half_width_high": half(v_high, noise),
        "task_floor_half_width": half(task, 0.0),  # no noise: never singular
        "task_share": weight * task / var if var > 0 else float("nan"),
        "power": _power(effect, se, df, alpha) if effect is not None else float("nan"),
    }


def _check(half_width, alpha, power, lists) -> None:
    if half_width is not None and not half_width > 0:
        raise ValueError(f"half_width must be > 0 (in score points); got {half_width!r}")
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ValueError(f"alpha and power must be in (0, 1); got alpha={alpha!r}, power={power!r}")
    for name, values in lists.items():
        if values is not None and (len(values) == 0 or any(int(v) != v or v < 1 for v in values)):
            raise ValueError(f"{name} must be a non-empty list of positive integers; got {values!r}")


def plan_seeds(
    variance: pd.DataFrame,
    design: dict,
    *,
    a: str = "nli",
    b: str = "qa",
    half_width: float | None = None,
    effect: float | None = None,
    power: float = 0.8,
    alpha: float = 0.05,
    seeds: Sequence[int] = (1, 2, 3, 5, 10),
    languages: Sequence[int] | None = None,
    intermediates_per_family: Sequence[int] | None = None,
) -> pd.DataFrame:
    """Expected precision of the a - b family contrast for other grid designs.

    ``variance``: :func:`analysis.headline.variance_components` (component, variance), taken as
    the truth; ``design``: :func:`observed_design`. Designs are all combinations of ``seeds`` x
    ``languages`` (default: the observed mean per target) x ``intermediates_per_family``
    (default: the observed task counts, design "observed"; m means m tasks in each family,
    design "balanced"); targets and encoders stay as observed. Returns PLAN_COLUMNS: design,
    n_seeds, n_languages, n_intermediate_per_family (the smaller family), n_targets, se, df,
    half_width (median realised t half-width at 1 - alpha), half_width_low / half_width_high
    (its 95 % range from the uncertainty of the task-level variance), task_floor_half_width,
    task_share, power (two-sided, for ``effect``), meets_goal (NA without a goal), note.
    """
    _check(
        half_width,
        alpha,
        power,
        {"seeds": seeds, "languages": languages, "intermediates_per_family": intermediates_per_family},
    )
    c = _components(variance)
    m_obs = (design["tasks"].get(a, 0), design["tasks"].get(b, 0))
    if min(m_obs) < 1:
        raise ValueError(f"family {a if m_obs[0] < 1 else b!r} has no intermediate task in the design")
    if intermediates_per_family is None:
        task_designs = [(f"observed {a}={m_obs[0]}, {b}={m_obs[1]}", *m_obs)]
    else:
        task_designs = [(f"balanced {int(m)} per family", int(m), int(m)) for m in intermediates_per_family]
    langs = languages or [design["n_languages"]]
    rows = []
    for (name, m_a, m_b), n_s, n_l in product(task_designs, seeds, langs):
        row = _row(c, design, m_a, m_b, int(n_s), float(n_l), alpha, effect)
        rows.append({"design": name, "n_intermediate_per_family": min(m_a, m_b), **row})
    out = pd.DataFrame(rows)
    goal = pd.Series(True, index=out.index)
    if half_width is not None:
        goal &= out["half_width"] <= half_width
    if effect is not None:
        goal &= out["power"] >= power
    has_goal = half_width is not None or effect is not None
    out["meets_goal"] = (goal if has_goal else pd.Series(pd.NA, index=out.index)).astype("boolean")
    out["note"] = [_note(r, half_width) for r in out.to_dict("records")]
    return out[list(PLAN_COLUMNS)]


def _note(row: dict, half_width: float | None) -> str:
    if not np.isfinite(row["df"]) or row["df"] < 1:
        return "one task per family: the family contrast has no df (add intermediate tasks)"
    if row["task_share"] == 0:
        return (
            "task variance estimated at 0 (singular fit): the plan is optimistic; half_width_high "
            "allows for the task variance the data cannot rule out"
        )
    if half_width is not None and row["task_floor_half_width"] > half_width:
        return (
            f"unreachable with {row['n_intermediate_per_family']} tasks per family: the task-level floor is "
            f"+-{row['task_floor_half_width']:.3g}; add intermediate tasks, not seeds"
        )
    if row["task_share"] > 0.8:
        return f"{row['task_share']:.0%} of the contrast variance is between tasks: more seeds barely help"
    if row["task_share"] < 0.5:
        return f"{1 - row['task_share']:.0%} of the contrast variance is seed and language noise: seeds help"
    return ""
