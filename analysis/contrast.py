"""The a - b family contrast by every method, per target, and the headline chosen among them.

* :func:`mixed_row` -- the headline rule (analysis.headline): the mixed model of the design's
  replication units, or the task-bounded t-test, or no inference.
* :func:`robustness_rows` -- hierarchical bootstrap (percentile, BCa), sign flip and Wilcoxon over
  languages (tasks fixed), exact family-label permutation over tasks.
* :func:`per_target_frame` -- the contrast per target task (t over seeds: CI and p from one
  method), Holm- and BH-adjusted across targets.
* :func:`calibration_methods` -- the robustness methods as plug-ins for analysis.calibration.
* :func:`headline` -- the :class:`analysis.result.Answer`: "no_inference" when the rule says so,
  else the first of mixed, task_bounded, BCa, percentile with a finite estimate and interval,
  and k_hat of N languages.

Every row has the result-frame columns ``CONTRAST_COLUMNS``; a method that does not give a value
(a p-value for the bootstrap, an interval for a permutation test) leaves it NaN.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from analysis import bootstrap, effects, significance
from analysis import headline as headline_rule
from analysis.result import Answer

# The headline's columns (method ... n, note) with the bootstrap's Monte-Carlo errors before the note
# and the row's scope after it.
CONTRAST_COLUMNS = [
    *(c for c in headline_rule.HEADLINE_COLUMNS if c != "note"),
    "mc_error_low",
    "mc_error_high",
    "note",
    "scope",
]
FAMILY, THESE_TASKS, NOT_CALIBRATED = "family", "these tasks", "not calibrated"
MIN_TASKS_BOOTSTRAP = 5  # the task bootstrap covered 75-80 % with 2 vs 4 tasks (issue 12)
HEADLINE_ORDER = ("no_inference", "mixed", "task_bounded", "bootstrap_bca", "bootstrap_percentile")


def _row(method: str, scope: str = FAMILY, **values) -> dict:
    row = {c: np.nan for c in CONTRAST_COLUMNS}
    row.update({"method": method, "note": "", "scope": scope, **values})
    return row


def mixed_row(scores: pd.DataFrame, a: str, b: str, level: float, caveats: list[str]):
    """(contrast rows, fit or None): the headline rule of :mod:`analysis.headline` on the primary
    score rows (the design model of the replication units; "mixed", "task_bounded" or
    "no_inference"), followed, when the headline is the mixed model, by the task-bounded t-test
    ("task_t_test", another valid test of the family question); a NaN "mixed" row + caveat when
    the model cannot be fitted. The rule's note and the fit's diagnostics go to ``caveats``."""
    try:
        result, fit = headline_rule.headline(scores, a=a, b=b, level=level)
    except (ValueError, KeyError, np.linalg.LinAlgError, RuntimeError) as err:
        caveats.append(
            f"The mixed model could not be fitted ({err}); the answer falls back to the bootstrap."
        )
        return [_row("mixed", note=f"failed: {err}")], None
    keys = ("estimate", "ci_low", "ci_high", "se", "df", "statistic", "p_value", "n")
    rows = [_row(result["method"], note=result["note"], **{k: float(result[k]) for k in keys})]
    if result["method"] == "mixed":
        other = headline_rule.task_bounded_test(headline_rule.task_means(scores, a, b), a, b, level=level)
        note = "pooled two-sample t over per-task means, df = tasks - 2"
        rows.append(_row("task_t_test", note=note, **{k: float(other[k]) for k in keys}))
    else:
        caveats.append(f"Headline: {result['note']}.")
    if fit is not None:
        caveats.extend(f"Mixed model: {msg}" for msg in fit.diagnostics)
    return rows, fit


def robustness_rows(
    delta: pd.DataFrame, boot: pd.DataFrame, a: str, b: str, rng: np.random.Generator
) -> tuple[list[dict], dict]:
    """The bootstrap rows (from ``boot``, the hierarchical bootstrap's target "all") and the sign
    flip, Wilcoxon and family-permutation rows. Returns (rows, {"family_permutation": its result})."""
    task = effects.task_effects(delta)
    fewest = int(task["intermediate_family"].value_counts().reindex([a, b]).fillna(0).min())
    boot_scope = FAMILY if fewest >= MIN_TASKS_BOOTSTRAP else NOT_CALIBRATED
    rows = [
        _row(
            r["method"],
            boot_scope,
            **{
                k: r[k] for k in ("estimate", "ci_low", "ci_high", "se", "n", "mc_error_low", "mc_error_high")
            },
            note="tasks, languages, seeds resampled"
            + (
                ""
                if boot_scope == FAMILY
                else f"; too few tasks ({fewest}) for the bootstrap to hold its level"
            ),
        )
        for _, r in boot[boot["target"] == "all"].iterrows()
    ]
    weights = effects.language_weights(delta, a, b)["estimate"]
    flip = significance.sign_flip_test(weights * len(weights), rng=rng)
    rows.append(
        _row(
            "sign_flip",
            THESE_TASKS,
            **{k: flip[k] for k in ("estimate", "statistic", "p_value", "n")},
            note=f"{flip['method']}; languages as units, tasks fixed",
        )
    )
    signed_rank = significance.wilcoxon_test(weights)
    rows.append(
        _row(
            "wilcoxon",
            THESE_TASKS,
            estimate=float(weights.sum()),
            **{k: signed_rank[k] for k in ("statistic", "p_value", "n")},
            note="languages as units, tasks fixed",
        )
    )
    perm = significance.family_permutation_test(task["estimate"], task["intermediate_family"], a, b)
    rows.append(
        _row(
            "family_permutation",
            **{k: perm[k] for k in ("estimate", "statistic", "p_value", "n")},
            note=f"exact over {int(perm['n_permutations'])} label splits; smallest attainable p = "
            f"{perm['min_p']:.4g}",
        )
    )
    return rows, {"family_permutation": perm}


PER_TARGET_METHOD = "t over seeds"


def per_target_frame(delta: pd.DataFrame, a: str, b: str, level: float = 0.95) -> pd.DataFrame:
    """Per target: the a - b contrast with its CI and p from one method, a one-sample t over seeds
    of the per-seed contrast (each seed's contrast averaged over the target's languages and the
    family's tasks), two-sided; p adjusted across targets by Holm and BH.

    The seed is the unit, as in the main table's marks: a seed's stage, run and baseline run are
    shared by all languages of the target, so languages are not independent (a t over languages
    rejected far more than alpha under run-level seed noise). The intermediate tasks are fixed: the
    row is about these tasks on this target. One method for CI and p, so a CI that contains 0 always
    goes with p >= 1 - level. A target with fewer than 2 seeds gets NaN CI and p. Returns target,
    estimate, ci_low, ci_high, se, df, statistic, p_value, p_adj (Holm), p_adj_bh, n (seeds), wins
    ("k/n" languages whose seed-mean contrast is positive), method.
    """
    per_seed = effects.contrast_by(delta, ["target", "seed"], a, b).dropna(subset=["estimate"])
    per_language = effects.contrast_by(delta, ["target", "language"], a, b).dropna(subset=["estimate"])
    rows = []
    for target, sub in per_seed.groupby("target", sort=True):
        langs = per_language.loc[per_language["target"] == target, "estimate"].to_numpy(float)
        x = sub["estimate"].to_numpy(float)
        n = x.size
        se = x.std(ddof=1) / np.sqrt(n) if n > 1 else np.nan
        df = n - 1.0 if n > 1 else np.nan
        with np.errstate(divide="ignore", invalid="ignore"):
            t = x.mean() / se if n > 1 else np.nan
        half = stats.t.ppf(0.5 + level / 2, df) * se if n > 1 else np.nan
        p = 2 * stats.t.sf(abs(t), df) if np.isfinite(t) else np.nan
        rows.append(
            {
                "target": target,
                "estimate": float(x.mean()),
                "ci_low": float(x.mean() - half),
                "ci_high": float(x.mean() + half),
                "se": float(se),
                "df": float(df),
                "statistic": float(t),
                "p_value": float(p),
                "n": float(n),
                "wins": f"{int((langs > 0).sum())}/{langs.size}",
                "method": PER_TARGET_METHOD,
            }
        )
    out = pd.DataFrame(rows)
    out.insert(out.columns.get_loc("n"), "p_adj", significance.holm(out["p_value"]))
    out.insert(out.columns.get_loc("n"), "p_adj_bh", significance.benjamini_hochberg(out["p_value"]))
    return out


def headline(
    contrast: pd.DataFrame,
    wins: pd.DataFrame,
    *,
    a: str,
    b: str,
    level: float,
    n_tasks: tuple[int, int],
    n_targets: int,
) -> Answer:
    """The answer: the first method of HEADLINE_ORDER whose estimate and ci_low are finite (the
    percentile bootstrap otherwise), and k_hat / n from the Bonferroni row of ``wins``
    (partial_conjunction: method, k_hat, n)."""
    by = contrast.set_index("method")
    method = next(
        (
            m
            for m in HEADLINE_ORDER
            if m in by.index
            and np.isfinite(by.loc[m, "estimate"])
            and (m == "no_inference" or np.isfinite(by.loc[m, "ci_low"]))
        ),
        "bootstrap_percentile",
    )
    r = by.loc[method]
    bonf = wins[wins["method"] == "bonferroni"]
    return Answer(
        a=a,
        b=b,
        level=level,
        method=method,
        estimate=float(r["estimate"]),
        ci_low=float(r["ci_low"]),
        ci_high=float(r["ci_high"]),
        df=float(r["df"]),
        p_value=float(r["p_value"]),
        k_hat=int(bonf["k_hat"].iloc[0]) if len(bonf) else None,
        n_languages=int(bonf["n"].iloc[0]) if len(bonf) else None,
        n_tasks_a=n_tasks[0],
        n_tasks_b=n_tasks[1],
        n_targets=n_targets,
    )


def calibration_methods(a: str = "nli", b: str = "qa", *, n_boot: int = 1000, level: float = 0.95) -> dict:
    """Robustness methods as plug-ins for analysis.calibration: name -> f(delta, rng) -> (ci_low, ci_high, p_value).

    bootstrap_percentile / bootstrap_bca give an interval (p NaN); sign_flip and
    family_permutation give a p-value (interval NaN).
    """

    def boot(method):
        def run(delta, rng):
            r = bootstrap.hierarchical_bootstrap(delta, rng=rng, a=a, b=b, n_boot=n_boot, level=level)
            row = r[r["method"] == method].iloc[0]
            return float(row["ci_low"]), float(row["ci_high"]), np.nan

        return run

    def sign_flip(delta, rng):
        g = effects.language_weights(delta, a, b)["estimate"]
        return np.nan, np.nan, significance.sign_flip_test(g, rng=rng)["p_value"]

    def family_permutation(delta, rng):
        t = effects.task_effects(delta)
        return (
            np.nan,
            np.nan,
            significance.family_permutation_test(t["estimate"], t["intermediate_family"], a, b)["p_value"],
        )

    return {
        "bootstrap_percentile": boot("bootstrap_percentile"),
        "bootstrap_bca": boot("bootstrap_bca"),
        "sign_flip": sign_flip,
        "family_permutation": family_permutation,
    }
