"""Calibration of the family-contrast intervals and tests by simulation, and the mixed-model bench.

:func:`calibrate` simulates many grids with the design's replication units
(:func:`analysis.simulate.simulate_scores`: stage, run and baseline-run seed noise), runs every
method on each grid's scores and reports how often the (1 - alpha) interval covers the true
a - b difference and how often the test rejects, overall and per stratum (e.g. the grids where the
task variance is estimated at 0). A method is any callable ``(scores, rng) -> (ci_low, ci_high,
p_value)`` or ``(ci_low, ci_high, p_value, stratum)``; :func:`on_deltas` adapts one that takes
the delta frame. Built-in (one design fit per grid shared by all three):

* ``headline``: :func:`analysis.headline.headline`, the rule the report prints (stratum
  "singular" / "regular" by the fitted task variance);
* ``headline_larger_se_t``: the same rule with the previous test after a singular fit (see
  :func:`default_methods`);
* ``mixed_design``: the design model's contrast with its uncapped Satterthwaite df;
* ``mixed_z``: the same estimate and se with a normal quantile (what statsmodels would report),
  kept to show how anti-conservative a z test is with few tasks per family.

>>> import numpy as np
>>> table = calibrate(np.random.default_rng(0), n_grids=5, families={"nli": 3, "qa": 3})
>>> list(table.columns)[:6]
['method', 'stratum', 'coverage', 'rejection_rate', 'n_grids', 'mc_se']
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from analysis import headline as H
from analysis.mixed import SINGULAR_TOL
from analysis.simulate import PAIR, simulate_scores
from xitt.schema import NONE

Method = Callable[[pd.DataFrame, np.random.Generator], tuple]
CALIBRATION_COLUMNS = (
    "method",
    "stratum",
    "coverage",
    "rejection_rate",
    "n_grids",
    "mc_se",
    "rejection_mc_se",
    "mean_width",
    "n_failed",
    "effect",
    "alpha",
)


def on_deltas(method: Callable[[pd.DataFrame, np.random.Generator], tuple]) -> Method:
    """Adapt a method of the delta frame (delta = score - score(none), paired) to take scores."""

    def run(scores: pd.DataFrame, rng: np.random.Generator) -> tuple:
        base = scores.loc[scores["intermediate"] == NONE, PAIR + ["score"]].rename(columns={"score": "_b"})
        delta = scores[scores["intermediate"] != NONE].merge(base, on=PAIR)
        delta["delta"] = delta["score"] - delta["_b"]
        return method(delta.drop(columns=["score", "_b"]), rng)

    return run


def default_methods(level_a: str = "nli", level_b: str = "qa", *, alpha: float = 0.05) -> dict[str, Method]:
    """{"headline", "headline_larger_se_t", "mixed_design", "mixed_z"}: one design fit per grid
    shared by all four. ``headline_larger_se_t`` is the rule before issue 12's last round, kept to
    compare: after a singular fit the t over task means with se max(pooled, model) and
    df = tasks - 2, where the headline now takes the task variance at its 95 % upper bound."""
    cache: dict = {}

    def fitted(scores):
        if cache.get("scores") is not scores:
            row, fit = H.headline(scores, a=level_a, b=level_b, level=1 - alpha)
            comp = (
                fit.compare_levels(H.contrast_weights(fit, level_a, level_b), level=1 - alpha)
                if fit
                else None
            )
            theta = dict(zip(fit.variance["component"], fit.theta)) if fit else {}
            singular = max(theta.get("intermediate", 0.0), theta.get(H.ENCODER_TERM, 0.0)) < SINGULAR_TOL
            old = row
            if row["method"] == "task_bounded" and singular:
                tasks = H.task_means(scores, level_a, level_b)
                old = H.task_bounded_test(tasks, level_a, level_b, se_floor=comp["se"], level=1 - alpha)
            cache.update(
                scores=scores, row=row, comp=comp, old=old, stratum="singular" if singular else "regular"
            )
        return cache

    def headline(scores, rng):
        c = fitted(scores)
        return c["row"]["ci_low"], c["row"]["ci_high"], c["row"]["p_value"], c["stratum"]

    def headline_larger_se_t(scores, rng):
        c = fitted(scores)
        return c["old"]["ci_low"], c["old"]["ci_high"], c["old"]["p_value"], c["stratum"]

    def mixed_design(scores, rng):
        c = fitted(scores)
        out = c["comp"]
        if out is None:
            return np.nan, np.nan, np.nan, c["stratum"]
        return out["ci_low"], out["ci_high"], out["p_value"], c["stratum"]

    def mixed_z(scores, rng):
        c = fitted(scores)
        out = c["comp"]
        if out is None:
            return np.nan, np.nan, np.nan, c["stratum"]
        half = stats.norm.ppf(1 - alpha / 2) * out["se"]
        p = 2 * stats.norm.sf(abs(out["statistic"]))
        return out["estimate"] - half, out["estimate"] + half, p, c["stratum"]

    return {
        "headline": headline,
        "headline_larger_se_t": headline_larger_se_t,
        "mixed_design": mixed_design,
        "mixed_z": mixed_z,
    }


def calibrate(
    rng: np.random.Generator,
    *,
    n_grids: int = 500,
    effect: float = 0.0,
    families: Mapping[str, int] = {"nli": 4, "qa": 4},
    alpha: float = 0.05,
    level_a: str = "nli",
    level_b: str = "qa",
    methods: Mapping[str, Method] | None = None,
    **grid,
) -> pd.DataFrame:
    """Coverage and rejection rate of each method over ``n_grids`` simulated grids.

    The truth is ``level_a - level_b = effect`` (other families, if any, get effect 0); ``grid``
    holds the other knobs of :func:`analysis.simulate.simulate_scores` (sizes, sds, missing;
    default 3 targets x 4 languages x 3 seeds with run-level seed noise). Returns one row per
    method and stratum ("all" first, then each stratum label a method returned) with columns
    method, stratum, coverage (share of (1 - alpha) intervals holding ``effect``),
    rejection_rate (share of p < alpha: the type-I error when effect = 0, the power otherwise),
    n_grids (grids the method ran on), mc_se and rejection_mc_se (Monte-Carlo standard errors,
    sqrt(r (1 - r) / n)), mean_width, n_failed (grids where the method raised or returned neither
    an interval nor a p-value; left out of the rates), effect, alpha. A method that returns only
    an interval (p NaN) gets a coverage and no rejection rate, one that returns only a p-value
    the other way round. Each method gets its own child Generator per grid, so adding a method
    does not change the others' results.
    """
    if n_grids < 1:
        raise ValueError(f"n_grids must be >= 1; got {n_grids!r}")
    if level_a not in families or level_b not in families:
        raise ValueError(f"families must include {level_a!r} and {level_b!r}; got {list(families)}")
    methods = dict(methods) if methods is not None else default_methods(level_a, level_b, alpha=alpha)
    if not methods:
        raise ValueError("methods is empty; pass e.g. analysis.calibration.default_methods()")
    effects = {fam: 0.0 for fam in families}
    effects[level_a] = float(effect)
    results: dict[str, list] = {name: [] for name in methods}
    for _ in range(n_grids):
        scores = simulate_scores(rng, families=families, family_effects=effects, **{"n_languages": 4, **grid})
        children = rng.spawn(len(methods))
        for (name, method), child in zip(methods.items(), children):
            try:
                out = tuple(method(scores, child))
                results[name].append((*(float(v) for v in out[:3]), str(out[3]) if len(out) > 3 else ""))
            except (ValueError, np.linalg.LinAlgError, ArithmeticError):
                results[name].append((np.nan, np.nan, np.nan, ""))
    rows = []
    for name, res in results.items():
        values = np.array([r[:3] for r in res], dtype=float)
        labels = np.array([r[3] for r in res])
        rows.append(_summarise(name, "all", values, effect, alpha))
        for label in sorted(set(labels) - {""}):
            rows.append(_summarise(name, label, values[labels == label], effect, alpha))
    return pd.DataFrame(rows, columns=list(CALIBRATION_COLUMNS))


def _summarise(name: str, stratum: str, res: np.ndarray, effect: float, alpha: float) -> dict:
    # A method may give only an interval (a bootstrap) or only a p-value (a permutation test):
    # each rate is over the grids where that part is finite; a grid with neither counts as failed.
    has_ci = np.isfinite(res[:, :2]).all(axis=1)
    has_p = np.isfinite(res[:, 2])
    low, high = res[has_ci, 0], res[has_ci, 1]
    n_ci, n_p = int(has_ci.sum()), int(has_p.sum())
    cover = float(np.mean((low <= effect) & (effect <= high))) if n_ci else np.nan
    reject = float(np.mean(res[has_p, 2] < alpha)) if n_p else np.nan
    return {
        "method": name,
        "stratum": stratum,
        "coverage": cover,
        "rejection_rate": reject,
        "n_grids": int((has_ci | has_p).sum()),
        "mc_se": float(np.sqrt(cover * (1 - cover) / n_ci)) if n_ci else np.nan,
        "rejection_mc_se": float(np.sqrt(reject * (1 - reject) / n_p)) if n_p else np.nan,
        "mean_width": float(np.mean(high - low)) if n_ci else np.nan,
        "n_failed": int((~(has_ci | has_p)).sum()),
        "effect": float(effect),
        "alpha": alpha,
    }


# The README's calibration table (`xitt calibrate` / `make calibrate`): every scenario has
# stage, run and baseline-run seed noise (sd 0.5 each) besides the per-language noise.
# 8 languages, so that the sign flip and Wilcoxon over languages can reach p < 0.05 at all.
SCENARIOS = {
    "null, 3 vs 3 tasks": dict(families={"nli": 3, "qa": 3}, sd_intermediate=0.5, n_languages=8),
    "null, 2 vs 4 tasks": dict(families={"nli": 2, "qa": 4}, sd_intermediate=0.5, n_languages=8),
    "null, singular design (no task variance), 2 vs 4": dict(
        families={"nli": 2, "qa": 4}, sd_intermediate=0.0, n_languages=8
    ),
    "effect +1, singular design (no task variance), 2 vs 4": dict(
        families={"nli": 2, "qa": 4}, sd_intermediate=0.0, effect=1.0, n_languages=8
    ),
    "effect +2, 4 vs 4 tasks, 10 % cells missing": dict(
        families={"nli": 4, "qa": 4}, sd_intermediate=1.0, effect=2.0, missing=0.1, n_languages=8
    ),
}


def report_methods(level_a: str = "nli", level_b: str = "qa", *, alpha: float = 0.05) -> dict[str, Method]:
    """Every row of the report's contrast table as a calibration method: the headline, the
    task-bounded t-test, the family permutation (family question), sign flip and Wilcoxon (these
    tasks: their null is the tasks' own contrast, so only the singular design tests it), and the
    design model with its uncapped Satterthwaite df and with z, for comparison."""
    from analysis import contrast, effects, significance

    plug = contrast.calibration_methods(level_a, level_b, level=1 - alpha)

    def task_t(scores, rng):
        row = H.task_bounded_test(H.task_means(scores, level_a, level_b), level_a, level_b, level=1 - alpha)
        return row["ci_low"], row["ci_high"], row["p_value"]

    def wilcoxon(delta, rng):
        weights = effects.language_weights(delta, level_a, level_b)["estimate"]
        return np.nan, np.nan, significance.wilcoxon_test(weights)["p_value"]

    return {
        **default_methods(level_a, level_b, alpha=alpha),
        "task_t_test": task_t,
        "family_permutation": on_deltas(plug["family_permutation"]),
        "sign_flip": on_deltas(plug["sign_flip"]),
        "wilcoxon": on_deltas(wilcoxon),
    }


def calibration_table(rng: np.random.Generator, *, n_grids: int = 500, alpha: float = 0.05) -> pd.DataFrame:
    """:func:`calibrate` with :func:`report_methods` on every scenario of SCENARIOS, then the
    rows beyond the family contrast (:func:`analysis.calibration_rows.rows_table`: the main-table
    marks, "k of N languages", the encoder x family interaction) and
    :func:`analysis.calibration_paper.paper_calibration` (oracle, multi-bootstrap; the only rows
    with a ``bias``). Returns scenario + CALIBRATION_COLUMNS + bias."""
    parts = []
    for name, knobs in SCENARIOS.items():
        knobs = dict(knobs)
        effect = knobs.pop("effect", 0.0)
        table = calibrate(
            rng, n_grids=n_grids, effect=effect, alpha=alpha, methods=report_methods(alpha=alpha), **knobs
        )
        parts.append(table.assign(scenario=name))
    from analysis.calibration_paper import paper_calibration  # oracle and multi-bootstrap rows, with bias
    from analysis.calibration_rows import rows_table

    parts.append(rows_table(rng, n_grids=n_grids, alpha=alpha))
    parts.append(paper_calibration(rng, n_grids=n_grids, alpha=alpha))
    out = pd.concat(parts, ignore_index=True)
    return out[["scenario", *CALIBRATION_COLUMNS, "bias"]]


_R_BENCH = """
suppressMessages({library(lme4); library(lmerTest)})
d <- read.csv(commandArgs(TRUE)[1])
d$inter <- as.numeric(d$intermediate != "none"); d$base <- 1 - d$inter
d$arm <- factor(paste(d$encoder, d$intermediate_family, d$target, sep = "|"))
d$language_gain <- paste(d$target, d$language, sep = "/")
d$language <- paste(d$encoder, d$target, d$language, sep = "/")
d$stage <- paste(d$encoder, d$intermediate, d$seed, sep = "/")
d$run <- paste(d$encoder, d$intermediate, d$target, d$seed, sep = "/")
f <- score ~ arm + (0 + inter | intermediate) + (1 | language) + (0 + inter | language_gain) +
  (0 + inter | stage) + (0 + inter | run) + (0 + base | run)
ctrl <- lmerControl(check.nobs.vs.nlev = "ignore", check.nobs.vs.nRE = "ignore")
best <- function(expr) min(replicate(3, system.time(eval(expr))[["elapsed"]]))
cat(best(quote(lme4::lmer(f, data = d, REML = TRUE, control = ctrl))), "\\n")
cat(best(quote(summary(lmerTest::lmer(f, data = d, REML = TRUE, control = ctrl), ddf = "Satterthwaite"))), "\\n")
"""


def _r_times(frame: pd.DataFrame) -> tuple[float, float]:
    """lme4's fit time and lmerTest's fit + Satterthwaite summary time (best of 3), or NaNs."""
    if shutil.which("Rscript") is None:
        return float("nan"), float("nan")
    with tempfile.TemporaryDirectory() as tmp:
        csv, script = Path(tmp) / "grid.csv", Path(tmp) / "bench.R"
        frame.to_csv(csv, index=False)
        script.write_text(_R_BENCH)
        try:
            done = subprocess.run(
                ["Rscript", str(script), str(csv)], capture_output=True, text=True, timeout=600
            )
            lme4_s, lmertest_s = (float(line) for line in done.stdout.split())
        except (subprocess.SubprocessError, ValueError, OSError):
            return float("nan"), float("nan")
    return lme4_s, lmertest_s


def bench_mixed(
    rng: np.random.Generator, *, repeat: int = 3, with_r: bool = True, threads: tuple[int, ...] = (1, 2)
) -> dict:
    """Time the design model (:func:`analysis.headline.fit_design`: REML + Satterthwaite
    derivatives) on the 8,100-row reference grid, and lme4 / lmerTest on the same model and rows.

    The grid: 6 intermediate tasks in 2 families x 9 targets x 30 languages x 5 seeds (8,100
    intermediate rows + 1,350 ``none`` rows). Returns {"rows", "levels", "seconds" (best of
    ``repeat`` with the default BLAS_THREADS), "seconds_by_threads" ({n: seconds}),
    "lme4_seconds", "lmertest_seconds" (Rscript in the same run, NaN without R), "ratio"
    (seconds / lme4_seconds; the goal is <= 1)}.
    """
    from analysis import mixed

    scores = simulate_scores(rng, families={"nli": 3, "qa": 3}, n_targets=9, n_languages=30, n_seeds=5)
    by_threads, default = {}, mixed.BLAS_THREADS
    try:
        for n in dict.fromkeys((default, *threads)):
            mixed.BLAS_THREADS = n
            best = float("inf")
            for _ in range(max(1, repeat)):
                start = time.perf_counter()
                fit = H.fit_design(scores)
                best = min(best, time.perf_counter() - start)
            by_threads[n] = best
    finally:
        mixed.BLAS_THREADS = default
    lme4_s, lmertest_s = _r_times(scores) if with_r else (float("nan"), float("nan"))
    return {
        "rows": int((scores["intermediate"] != NONE).sum()),
        "levels": int(fit.variance["n_levels"].iloc[:-1].sum()),
        "seconds": by_threads[default],
        "seconds_by_threads": by_threads,
        "lme4_seconds": lme4_s,
        "lmertest_seconds": lmertest_s,
        "ratio": by_threads[default] / lme4_s,
    }
