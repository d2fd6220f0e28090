"""Significance tests and effect sizes for the family contrast, and multiplicity corrections.

* :func:`sign_flip_test` -- paired sign-flip permutation test (exact enumeration when
  2^n <= 100,000, Monte-Carlo with the +1 correction otherwise).
* :func:`wilcoxon_test` -- Wilcoxon signed-rank (scipy).
* :func:`family_permutation_test` -- exact permutation of family labels over intermediate
  tasks; reports the smallest attainable p (2 vs 4 tasks: 1/15).
* :func:`aso` -- Almost Stochastic Order (del Barrio et al. 2018; Dror et al. 2019), vectorised.
* :func:`holm`, :func:`benjamini_hochberg` -- adjusted p-values in the input's order.
* :func:`delta_vs_none` -- per table cell, is an intermediate task's delta vs ``none`` non-zero
  (seeds, i.e. runs, as the units).
* :func:`partial_conjunction` -- Dror et al. (2017): in how many of N languages does a beat b
  (Bonferroni; valid when the languages share runs).
* :func:`cohens_dz`, :func:`cliffs_delta`, :func:`rank_biserial` -- effect sizes.

The sign-flip and Wilcoxon tests take languages as the random units and the intermediate tasks
as fixed: they answer "do these NLI tasks beat these QA tasks across languages". Only the
family permutation (and the mixed model) generalise over intermediate tasks.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

EXACT_LIMIT = 100_000


def _as_1d(x, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=float).ravel()
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        raise ValueError(f"{name} has no finite values; nothing to test.")
    return arr


def sign_flip_test(
    diffs, *, rng: np.random.Generator, n_resamples: int = 20_000, alternative: str = "two-sided"
) -> dict:
    """Paired sign-flip permutation test of mean(diffs) = 0.

    Exact over all 2^n sign vectors when 2^n <= 100,000; otherwise ``n_resamples`` random sign
    vectors and p = (1 + #{|T*| >= |T|}) / (1 + n_resamples). Returns estimate (mean), statistic
    (mean), p_value, n, method ("exact"/"monte-carlo").

    >>> import numpy as np
    >>> sign_flip_test([1.0, 2.0, 3.0], rng=np.random.default_rng(0))["p_value"]
    0.25
    """
    d = _as_1d(diffs, "diffs")
    n = d.size
    obs = d.mean()
    if 2**n <= EXACT_LIMIT:
        signs = 1 - 2 * ((np.arange(2**n)[:, None] >> np.arange(n)[None, :]) & 1)
        null = signs @ d / n
        exact = True
    else:
        signs = rng.choice(np.array([-1.0, 1.0]), size=(n_resamples, n))
        null = signs @ d / n
        exact = False
    tol = 1e-12 * max(1.0, abs(obs))
    if alternative == "two-sided":
        hits = np.abs(null) >= abs(obs) - tol
    elif alternative == "greater":
        hits = null >= obs - tol
    elif alternative == "less":
        hits = null <= obs + tol
    else:
        raise ValueError(f"alternative must be 'two-sided', 'greater' or 'less', got {alternative!r}.")
    p = hits.mean() if exact else (1 + hits.sum()) / (1 + n_resamples)
    return {
        "estimate": obs,
        "statistic": obs,
        "p_value": float(p),
        "n": float(n),
        "method": "exact" if exact else "monte-carlo",
    }


def wilcoxon_test(diffs, alternative: str = "two-sided") -> dict:
    """Wilcoxon signed-rank test (scipy.stats.wilcoxon) with the rank-biserial effect size.

    Returns estimate (median), statistic, p_value, n, rank_biserial.
    """
    d = _as_1d(diffs, "diffs")
    if np.all(d == 0):
        return {
            "estimate": 0.0,
            "statistic": np.nan,
            "p_value": 1.0,
            "n": float(d.size),
            "rank_biserial": 0.0,
        }
    res = stats.wilcoxon(d, alternative=alternative)
    return {
        "estimate": float(np.median(d)),
        "statistic": float(res.statistic),
        "p_value": float(res.pvalue),
        "n": float(d.size),
        "rank_biserial": rank_biserial(d),
    }


def family_permutation_test(
    task_effects: pd.Series, families: pd.Series, a: str = "nli", b: str = "qa"
) -> dict:
    """Exact permutation of family labels over intermediate tasks (two-sided).

    ``task_effects``: one value per task (its mean delta); ``families``: its family (same index).
    Every way to choose which n_a of the n_a + n_b tasks are "a" is enumerated; the statistic is
    mean(a) - mean(b). Returns estimate, statistic, p_value, n (tasks), n_permutations, min_p
    (1 / number of distinct splits: the smallest p this design can reach).

    >>> import pandas as pd
    >>> r = family_permutation_test(pd.Series([3., 4, 0, 1, 0.5, 1.5]), pd.Series(["nli"] * 2 + ["qa"] * 4))
    >>> round(r["p_value"], 4), round(r["min_p"], 4)
    (0.0667, 0.0667)
    """
    keep = families.isin([a, b]).to_numpy()
    x = task_effects.to_numpy(float)[keep]
    is_a = families.to_numpy()[keep] == a
    n_a, n = int(is_a.sum()), len(x)
    if n_a == 0 or n_a == n:
        raise ValueError(f"need tasks of both families '{a}' and '{b}'; got {n_a} and {n - n_a}.")
    obs = x[is_a].mean() - x[~is_a].mean()
    splits = np.array(list(combinations(range(n), n_a)))
    mask = np.zeros((len(splits), n), dtype=bool)
    mask[np.arange(len(splits))[:, None], splits] = True
    null = (mask @ x) / n_a - ((~mask) @ x) / (n - n_a)
    p = float(np.mean(np.abs(null) >= abs(obs) - 1e-12 * max(1.0, abs(obs))))
    return {
        "estimate": obs,
        "statistic": obs,
        "p_value": p,
        "n": float(n),
        "n_permutations": float(len(splits)),
        "min_p": 1.0 / len(splits),
    }


def _violation_ratio(qa: np.ndarray, qb: np.ndarray) -> np.ndarray:
    """epsilon_W2 for quantile functions on a common grid (last axis): share of W2^2 where b > a."""
    diff = qb - qa
    total = (diff**2).sum(axis=-1)
    viol = (np.clip(diff, 0, None) ** 2).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, viol / np.where(total > 0, total, 1), 0.0)


def _quantiles(sorted_atoms: np.ndarray, counts: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Quantile functions at ``grid`` of resamples given as counts over the sorted atoms."""
    cum = np.cumsum(counts, axis=-1)  # (B, n)
    need = np.maximum(np.ceil(cum[:, -1:] * grid[None, :]), 1)  # (B, G)
    idx = (cum[:, :, None] < need[:, None, :]).sum(axis=1)  # first atom whose cum count reaches need
    return sorted_atoms[np.minimum(idx, len(sorted_atoms) - 1)]


def aso(
    scores_a,
    scores_b,
    *,
    rng: np.random.Generator,
    confidence: float = 0.95,
    n_boot: int = 1000,
    n_samples: int = 1000,
    dt: float = 0.005,
) -> dict:
    """Almost Stochastic Order of a over b (Dror et al. 2019; del Barrio et al. 2018).

    epsilon_W2 = integral of (Q_b - Q_a)_+^2 / W2(a, b)^2 over quantile levels; eps_min is its
    upper confidence bound from ``n_boot`` bootstrap samples of size ``n_samples`` (the deepsig
    recipe): eps_min = eps + sqrt((n_a + n_b) / (n_a n_b)) * sigma * z_confidence, clipped to [0, 1].
    eps_min < 0.5 means a is almost stochastically better than b; 0 is stochastic dominance.
    Returns epsilon, eps_min, n_a, n_b, warning (non-empty when a side has <= 5 seeds).

    >>> import numpy as np
    >>> aso([3.0, 4.0, 5.0], [0.0, 1.0, 2.0], rng=np.random.default_rng(0))["eps_min"]
    0.0
    """
    a = np.sort(_as_1d(scores_a, "scores_a"))
    b = np.sort(_as_1d(scores_b, "scores_b"))
    grid = np.arange(0, 1, dt)
    eps = float(
        _violation_ratio(
            _quantiles(a, np.ones((1, a.size)), grid), _quantiles(b, np.ones((1, b.size)), grid)
        )[0]
    )
    ca = rng.multinomial(n_samples, np.full(a.size, 1.0 / a.size), size=n_boot)
    cb = rng.multinomial(n_samples, np.full(b.size, 1.0 / b.size), size=n_boot)
    boot = _violation_ratio(_quantiles(a, ca, grid), _quantiles(b, cb, grid))
    sigma = float(np.std(np.sqrt(n_samples / 2.0) * (boot - eps)))
    const = np.sqrt((a.size + b.size) / (a.size * b.size))
    eps_min = float(np.clip(eps + const * sigma * stats.norm.ppf(confidence), 0.0, 1.0))
    few = min(a.size, b.size) <= 5
    warning = (
        f"ASO with {a.size} vs {b.size} seeds: eps_min is unreliable with 5 or fewer seeds per side."
        if few
        else ""
    )
    return {
        "epsilon": eps,
        "eps_min": eps_min,
        "n_a": float(a.size),
        "n_b": float(b.size),
        "warning": warning,
    }


def _multipletests(p_values, method: str) -> np.ndarray:
    """statsmodels' multipletests on the finite p-values; NaN stays NaN, input order kept."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method=method)[1]
    return out


def holm(p_values) -> np.ndarray:
    """Holm step-down adjusted p-values (statsmodels ``holm``), in the input order (NaN stays NaN).

    >>> holm([0.04, 0.01, 0.03]).round(3).tolist()
    [0.06, 0.03, 0.06]
    """
    return _multipletests(p_values, "holm")


def benjamini_hochberg(p_values) -> np.ndarray:
    """Benjamini-Hochberg step-up adjusted p-values (statsmodels ``fdr_bh``), in the input order
    (NaN stays NaN).

    >>> benjamini_hochberg([0.04, 0.01, 0.03]).round(3).tolist()
    [0.04, 0.03, 0.04]
    """
    return _multipletests(p_values, "fdr_bh")


def delta_vs_none(delta: pd.DataFrame) -> pd.DataFrame:
    """The main table's marks: per encoder x intermediate x target, a two-sided one-sample t-test
    over seeds of the run-level delta (the language mean of a run's scores minus that of its
    paired ``none`` run), Holm-corrected across each encoder's cells.

    The run is the unit: a run's seed noise (its intermediate stage, its target run and the
    ``none`` run it is paired with) is shared by all its languages, so languages are not
    independent replicates of a cell; the seeds are (each seed is a fresh stage, run and baseline
    run). With the per-language noise alone a t-test over languages would be fine, with run-level
    seed noise it rejected a true null in 37 % of cells (issue 12); over seeds it holds alpha.
    The price: df = seeds - 1, so one seed gives no mark and 3 seeds give 2 df. Cells share
    stages and baseline runs, so their p-values are dependent; Holm is valid under any dependence.
    A cell whose run deltas are all equal has no p (no mark).
    Input columns: encoder, intermediate, target, language, seed, delta. Returns encoder,
    intermediate, target, estimate, se, df, statistic, p_value, p_adj, n (seeds).

    >>> import pandas as pd
    >>> d = pd.DataFrame(dict(encoder="e", intermediate="mnli", target="xnli", language="de",
    ...                       seed=[1, 2, 3, 4], delta=[1.0, 2.0, 3.0, 2.0]))
    >>> round(float(delta_vs_none(d)["p_value"].iloc[0]), 4)
    0.0163
    """
    run = delta.groupby(["encoder", "intermediate", "target", "seed"], sort=True)["delta"].mean()
    out = (
        run.groupby(["encoder", "intermediate", "target"], sort=True)
        .agg(estimate="mean", sd="std", n="size")
        .reset_index()
    )
    out["se"] = out["sd"] / np.sqrt(out["n"])
    out["df"] = (out["n"] - 1).astype(float)
    testable = (out["n"] > 1) & (out["se"] > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["statistic"] = np.where(testable, out["estimate"] / out["se"], np.nan)
    out["p_value"] = np.where(testable, 2 * stats.t.sf(np.abs(out["statistic"]), out["df"]), np.nan)
    out["p_adj"] = out.groupby("encoder")["p_value"].transform(lambda p: holm(p.to_numpy()))
    out["n"] = out["n"].astype(float)
    return out[
        ["encoder", "intermediate", "target", "estimate", "se", "df", "statistic", "p_value", "p_adj", "n"]
    ]


def partial_conjunction(p_values, *, alpha: float = 0.05) -> pd.DataFrame:
    """Dror et al. (2017) replicability analysis: for how many of N languages does the effect hold.

    ``p_values``: one one-sided p-value per language (H0: a is not better than b there). For
    u = 1..N the partial-conjunction p-value (H0: fewer than u languages have an effect) is the
    Bonferroni combination (N - u + 1) p_(u), made monotone in u (running maximum); k_hat = the
    largest u with p <= alpha. Bonferroni only: the languages of a grid share its runs (stage,
    run and baseline-run seed noise), so their p-values are dependent, and Fisher's combination,
    which assumes independence, claimed 27 of 28 languages where Bonferroni found 7 (issue 12).
    Returns method ("bonferroni"), k_hat, n (languages), alpha.

    >>> partial_conjunction([0.001, 0.002, 0.5])["k_hat"].tolist()
    [2]
    """
    p = np.sort(_as_1d(p_values, "p_values"))
    n = p.size
    u = np.arange(1, n + 1)
    pu = np.maximum.accumulate(np.minimum((n - u + 1) * p, 1.0))
    sig = np.flatnonzero(pu <= alpha)
    k_hat = int(sig[-1] + 1) if sig.size else 0
    return pd.DataFrame([{"method": "bonferroni", "k_hat": k_hat, "n": n, "alpha": alpha}])


def cohens_dz(diffs) -> float:
    """Cohen's d for paired differences: mean / sd (ddof=1)."""
    d = _as_1d(diffs, "diffs")
    sd = d.std(ddof=1) if d.size > 1 else np.nan
    return float(d.mean() / sd) if sd and np.isfinite(sd) and sd > 0 else np.nan


def cliffs_delta(x, y) -> float:
    """Cliff's delta: P(x > y) - P(x < y) over all pairs, in [-1, 1].

    >>> cliffs_delta([3, 4], [1, 2])
    1.0
    """
    x, y = _as_1d(x, "x"), _as_1d(y, "y")
    diff = x[:, None] - y[None, :]
    return float(np.mean(np.sign(diff)))


def rank_biserial(diffs) -> float:
    """Matched-pairs rank-biserial correlation (W+ - W-) / (W+ + W-), zeros dropped."""
    d = _as_1d(diffs, "diffs")
    d = d[d != 0]
    if d.size == 0:
        return 0.0
    ranks = stats.rankdata(np.abs(d))
    return float((ranks[d > 0].sum() - ranks[d < 0].sum()) / ranks.sum())


def per_language_frame(delta: pd.DataFrame, a: str, b: str) -> pd.DataFrame:
    """Per (target, language) and per language pooled over targets (target "all"): the seed-mean
    a - b contrast, its se over seeds and a one-sided t-test (a > b) over seeds.

    Input: the delta frame (analysis.effects.deltas). Returns target, language, estimate, se, df,
    statistic, p_value, n (seeds).
    """
    from analysis.effects import contrast_by

    parts = []
    for by in (["target", "language"], ["language"]):
        per_seed = contrast_by(delta, [*by, "seed"], a, b).dropna(subset=["estimate"])
        grp = per_seed.groupby(by, sort=True)["estimate"]
        out = grp.agg(estimate="mean", sd="std", n="size").reset_index()
        out["se"] = out["sd"] / np.sqrt(out["n"])
        out["df"] = out["n"] - 1
        with np.errstate(divide="ignore", invalid="ignore"):
            out["statistic"] = out["estimate"] / out["se"]
        out["p_value"] = np.where(out["n"] > 1, stats.t.sf(out["statistic"], out["df"]), np.nan)
        if "target" not in by:
            out.insert(0, "target", "all")
        parts.append(out.drop(columns="sd"))
    res = pd.concat(parts, ignore_index=True)
    res["n"] = res["n"].astype(float)
    return res[["target", "language", "estimate", "se", "df", "statistic", "p_value", "n"]]


def aso_frame(
    delta: pd.DataFrame, a: str, b: str, *, rng: np.random.Generator, min_seeds: int = 6
) -> pd.DataFrame:
    """ASO of the per-seed family scores (XTREME-weighted mean delta of each family at each seed),
    both ways. Returns comparison ("a over b", "b over a"), epsilon, eps_min, n_a, n_b, warning.

    Scope: these particular tasks, seeds as the units. It answers "with these tasks, are the
    family's seed scores almost stochastically better", never the family question: with the
    tasks fixed it declared a family better in 88.5 % of grids with no family difference
    (issue 12), because the tasks differ. It is left out (empty frame, same columns) when a family
    has fewer than ``min_seeds`` seeds, where :func:`aso` itself warns that eps_min is unreliable.
    """
    columns = ["comparison", "epsilon", "eps_min", "n_a", "n_b", "warning"]
    cell = delta.groupby(["intermediate_family", "intermediate", "seed", "encoder", "target"])["delta"].mean()
    fam_seed = (
        cell.groupby(["intermediate_family", "intermediate", "seed"])
        .mean()
        .groupby(["intermediate_family", "seed"])
        .mean()
    )
    sa, sb = fam_seed.get(a, pd.Series(dtype=float)), fam_seed.get(b, pd.Series(dtype=float))
    if min(len(sa), len(sb)) < min_seeds:
        return pd.DataFrame(columns=columns)
    rows = []
    for x, y, label in ((sa, sb, f"{a} over {b}"), (sb, sa, f"{b} over {a}")):
        r = aso(x.to_numpy(), y.to_numpy(), rng=rng)
        rows.append({"comparison": label, **{k: r[k] for k in columns[1:]}})
    return pd.DataFrame(rows, columns=columns)


def effect_size_frame(delta: pd.DataFrame, a: str, b: str) -> pd.DataFrame:
    """Cohen's d_z and rank-biserial over languages (overall as target "all", and per target) and
    Cliff's delta over the tasks' effects. Returns target, measure, estimate."""
    from analysis.effects import contrast_by, language_weights, task_effects

    g = language_weights(delta, a, b)["estimate"]
    task = task_effects(delta)
    rows = [
        ("all", "cohens_dz (languages)", cohens_dz(g)),
        ("all", "rank_biserial (languages)", rank_biserial(g)),
        (
            "all",
            "cliffs_delta (tasks)",
            cliffs_delta(
                task.loc[task.intermediate_family == a, "estimate"],
                task.loc[task.intermediate_family == b, "estimate"],
            ),
        ),
    ]
    tl = contrast_by(delta, ["target", "language"], a, b).dropna(subset=["estimate"])
    for target, sub in tl.groupby("target", sort=True):
        rows.append((target, "cohens_dz (languages)", cohens_dz(sub["estimate"])))
        rows.append((target, "rank_biserial (languages)", rank_biserial(sub["estimate"])))
    return pd.DataFrame(rows, columns=["target", "measure", "estimate"])
