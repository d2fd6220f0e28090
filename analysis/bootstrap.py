"""Hierarchical bootstrap of the family contrast (e.g. NLI - QA) of delta-vs-none scores.

The contrast (the xitt estimand, see :mod:`analysis.effects`): seed mean per (task, encoder,
target, language); language mean per target; mean over encoders; mean over the tasks of a
family; family a minus family b per target; the overall contrast is the mean of the per-target
contrasts (XTREME weighting: every target counts once, every language once within its target).

Resampling follows the design's hierarchy: intermediate tasks within their family, languages
within target, seeds within (target, language) cell. Units both arms share are resampled once
and used by both (the same resampled languages and seeds enter the NLI and the QA mean), so the
comparison stays paired; encoders are a fixed stratum that shares the resampled units.

Everything is vectorised: per chunk of resamples the draws are index arrays of shape
(B, T, L) and (B, T, L, S) and the statistic is a matrix product plus one gather -- no Python
loop per resample. With a complete grid a linear shortcut is exact; with missing cells
(allow_incomplete) a NaN-aware path averages what is there at every level.

Small families: with 2 tasks in a family, task resampling produces only 3 distinct multisets
and the percentile interval undercovers the population contrast (it treats the few tasks as
a sample but cannot see their spread well). The mixed model with Satterthwaite df is the
primary answer for that reason; the bootstrap is a robustness row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

CHUNK = 500  # resamples per vectorised block; fixed so that a seed gives the same draws everywhere


@dataclass
class Design:
    """Deltas of the two families as a padded array.

    values: (I, E, T, L, S) float, NaN where a cell is missing or padding (L = most languages of
    any target; target t uses positions < n_lang[t]). is_a: (I,) bool, True for family a tasks.
    """

    values: np.ndarray
    tasks: list
    is_a: np.ndarray
    encoders: list
    targets: list
    languages: list  # per target, the language names in position order
    seeds: list
    n_lang: np.ndarray
    complete: bool
    n_rows: int


def design(delta: pd.DataFrame, a: str = "nli", b: str = "qa") -> Design:
    """Arrange a :func:`analysis.effects.deltas` frame (rows of families a and b) as a :class:`Design`."""
    fams = set(delta["intermediate_family"])
    for fam in (a, b):
        if fam not in fams:
            raise ValueError(f"family '{fam}' has no delta rows; families present: {sorted(fams)}.")
    d = delta[delta["intermediate_family"].isin([a, b])]
    tasks = d[["intermediate", "intermediate_family"]].drop_duplicates()
    tasks = tasks.assign(_b=tasks["intermediate_family"] != a).sort_values(["_b", "intermediate"])
    task_names = list(tasks["intermediate"])
    is_a = (tasks["intermediate_family"] == a).to_numpy()
    encoders = sorted(d["encoder"].unique())
    targets = sorted(d["target"].unique())
    seeds = sorted(d["seed"].unique())
    langs = [sorted(d.loc[d["target"] == t, "language"].unique()) for t in targets]
    n_lang = np.array([len(x) for x in langs])
    shape = (len(task_names), len(encoders), len(targets), int(n_lang.max()), len(seeds))
    values = np.full(shape, np.nan)
    ii = pd.Index(task_names).get_indexer(d["intermediate"])
    ee = pd.Index(encoders).get_indexer(d["encoder"])
    tt = pd.Index(targets).get_indexer(d["target"])
    pos = {(t, lang): k for t, names in zip(targets, langs) for k, lang in enumerate(names)}
    ll = np.array([pos[k] for k in zip(d["target"], d["language"])])
    ss = pd.Index(seeds).get_indexer(d["seed"])
    values[ii, ee, tt, ll, ss] = d["delta"].to_numpy(float)
    valid = np.arange(shape[3])[None, :] < n_lang[:, None]  # (T, L)
    complete = bool(np.isfinite(values[:, :, valid, :]).all())
    return Design(values, task_names, is_a, encoders, targets, langs, seeds, n_lang, complete, len(d))


def _draws(rng: np.random.Generator, des: Design, size: int):
    """One block of resampling indices (tasks of a, tasks of b, languages, seeds)."""
    i_a, i_b = np.flatnonzero(des.is_a), np.flatnonzero(~des.is_a)
    _, _, n_t, n_l, n_s = des.values.shape
    ta = i_a[rng.integers(0, len(i_a), size=(size, len(i_a)))]
    tb = i_b[rng.integers(0, len(i_b), size=(size, len(i_b)))]
    lidx = np.floor(rng.random((size, n_t, n_l)) * des.n_lang[None, :, None]).astype(np.intp)
    sidx = rng.integers(0, n_s, size=(size, n_t, n_l, n_s))
    return ta, tb, lidx, sidx


def _identity(des: Design):
    i_a, i_b = np.flatnonzero(des.is_a), np.flatnonzero(~des.is_a)
    _, _, n_t, n_l, n_s = des.values.shape
    lidx = np.broadcast_to(np.arange(n_l), (1, n_t, n_l))
    sidx = np.broadcast_to(np.arange(n_s), (1, n_t, n_l, n_s))
    return i_a[None, :], i_b[None, :], lidx, sidx


def _flat_index(des: Design, lidx, sidx):
    _, _, n_t, n_l, n_s = des.values.shape
    t_off = (np.arange(n_t) * n_l * n_s)[None, :, None, None]
    return (t_off + lidx[..., None] * n_s + sidx).reshape(len(lidx), -1)


def _contrast_linear(des: Design, ta, tb, lidx, sidx) -> np.ndarray:
    """Per-target contrasts (B, T) for a complete design: weights @ values, one gather."""
    n_i, n_e, n_t, n_l, n_s = des.values.shape
    size = len(ta)
    w = np.zeros((size, n_i))
    rows = np.arange(size)[:, None]
    np.add.at(w, (rows, ta), 1.0 / ta.shape[1])
    np.add.at(w, (rows, tb), -1.0 / tb.shape[1])
    v = np.nan_to_num(des.values).reshape(n_i, -1)
    x = (w @ v).reshape(size, n_e, -1)
    g = np.take_along_axis(x, _flat_index(des, lidx, sidx)[:, None, :], axis=2)
    g = g.reshape(size, n_e, n_t, n_l, n_s).mean(axis=4)
    mask = (np.arange(n_l)[None, :] < des.n_lang[:, None]) / des.n_lang[:, None]  # (T, L)
    return (g * mask).sum(axis=3).mean(axis=1)


def _contrast_nan(des: Design, ta, tb, lidx, sidx) -> np.ndarray:
    """Per-target contrasts (B, T) averaging only the cells that exist, level by level."""
    n_i, n_e, n_t, n_l, n_s = des.values.shape
    size = len(ta)
    g = des.values.reshape(n_i, n_e, -1)[:, :, _flat_index(des, lidx, sidx)]  # (I, E, B, T*L*S)
    g = g.reshape(n_i, n_e, size, n_t, n_l, n_s)
    with np.errstate(invalid="ignore"), _quiet():
        cell = np.nanmean(g, axis=5)
        valid = np.arange(n_l)[None, :] < des.n_lang[:, None]
        cell = np.where(valid, cell, np.nan)
        per = np.nanmean(np.nanmean(cell, axis=4), axis=1)  # (I, B, T)
        rows = np.arange(size)[:, None]
        fa = np.nanmean(per[ta, rows, :], axis=1)
        fb = np.nanmean(per[tb, rows, :], axis=1)
    return fa - fb


class _quiet:
    """Silence numpy's 'mean of empty slice' warnings inside the NaN-aware path."""

    def __enter__(self):
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)


def contrast(des: Design, ta, tb, lidx, sidx) -> np.ndarray:
    """Per-target contrasts (B, T) for given index arrays; the fast path when the grid is complete."""
    fn = _contrast_linear if des.complete else _contrast_nan
    return fn(des, ta, tb, lidx, sidx)


def point_estimate(des: Design) -> np.ndarray:
    """Per-target contrasts (T,) of the data as observed."""
    return contrast(des, *_identity(des))[0]


def overall(per_target: np.ndarray) -> np.ndarray:
    """The overall contrast: mean of the per-target contrasts (last axis), ignoring NaN targets."""
    with _quiet():
        return np.nanmean(per_target, axis=-1)


def bootstrap_draws(des: Design, rng: np.random.Generator, n_boot: int) -> np.ndarray:
    """(n_boot, T) per-target contrasts of hierarchical resamples, drawn in fixed-size blocks."""
    out = np.empty((n_boot, len(des.targets)))
    for start in range(0, n_boot, CHUNK):
        size = min(CHUNK, n_boot - start)
        out[start : start + size] = contrast(des, *_draws(rng, des, size))
    return out


def jackknife(des: Design) -> np.ndarray:
    """(J, T) per-target contrasts leaving out one intermediate task at a time (families with >= 2 tasks)."""
    ta0, tb0, lidx, sidx = _identity(des)
    rows = []
    for ta, tb in ([ta0[:, ta0[0] != k], tb0] for k in ta0[0]) if ta0.shape[1] > 1 else []:
        rows.append(contrast(des, ta, tb, lidx, sidx)[0])
    for ta, tb in ([ta0, tb0[:, tb0[0] != k]] for k in tb0[0]) if tb0.shape[1] > 1 else []:
        rows.append(contrast(des, ta, tb, lidx, sidx)[0])
    return np.array(rows).reshape(len(rows), len(des.targets))


def _mc_error(sorted_draws: np.ndarray, q: float) -> float:
    """Monte-Carlo standard error of the q-quantile from the order statistics around it."""
    n = len(sorted_draws)
    if n < 2 or not np.isfinite(q):
        return np.nan
    half = 1.959964 * np.sqrt(n * q * (1 - q))
    lo = int(np.clip(np.floor(n * q - half), 0, n - 1))
    hi = int(np.clip(np.ceil(n * q + half), 0, n - 1))
    return float((sorted_draws[hi] - sorted_draws[lo]) / (2 * 1.959964))


def _bca_levels(draws: np.ndarray, est: float, jack: np.ndarray, alpha: float) -> tuple[float, float]:
    """BCa quantile levels from the bias (share of draws below the estimate) and jackknife acceleration."""
    below = np.mean(draws < est) + 0.5 * np.mean(draws == est)
    if not 0 < below < 1:
        return np.nan, np.nan
    z0 = stats.norm.ppf(below)
    jack = jack[np.isfinite(jack)]
    acc = 0.0
    if len(jack) > 1:
        dev = jack.mean() - jack
        denom = 6.0 * (dev**2).sum() ** 1.5
        acc = float((dev**3).sum() / denom) if denom > 0 else 0.0
    levels = []
    for z in (stats.norm.ppf(alpha / 2), stats.norm.ppf(1 - alpha / 2)):
        levels.append(float(stats.norm.cdf(z0 + (z0 + z) / (1 - acc * (z0 + z)))))
    return levels[0], levels[1]


def summarize(draws: np.ndarray, est: float, jack: np.ndarray, level: float, n: int) -> list[dict]:
    """Percentile and BCa rows (estimate, ci_low, ci_high, se, n, method, mc_error_low, mc_error_high)."""
    alpha = 1 - level
    draws = np.sort(draws[np.isfinite(draws)])
    se = float(draws.std(ddof=1)) if len(draws) > 1 else np.nan
    rows = []
    for method, (q_lo, q_hi) in (
        ("bootstrap_percentile", (alpha / 2, 1 - alpha / 2)),
        ("bootstrap_bca", _bca_levels(draws, est, jack, alpha)),
    ):
        ok = len(draws) > 1 and np.isfinite(q_lo)
        rows.append(
            {
                "method": method,
                "estimate": est,
                "ci_low": float(np.quantile(draws, q_lo)) if ok else np.nan,
                "ci_high": float(np.quantile(draws, q_hi)) if ok else np.nan,
                "se": se,
                "n": float(n),
                "mc_error_low": _mc_error(draws, q_lo) if ok else np.nan,
                "mc_error_high": _mc_error(draws, q_hi) if ok else np.nan,
            }
        )
    return rows


def hierarchical_bootstrap(
    delta: pd.DataFrame,
    *,
    rng: np.random.Generator,
    a: str = "nli",
    b: str = "qa",
    n_boot: int = 2000,
    level: float = 0.95,
    per_target: bool = False,
) -> pd.DataFrame:
    """Percentile and BCa intervals for the family contrast a - b of the delta.

    Input: a :func:`analysis.effects.deltas` frame (encoder, intermediate, intermediate_family,
    target, language, seed, delta). Returns one row per (target, method): target ("all" for the
    overall contrast, then each target when ``per_target``), method (bootstrap_percentile,
    bootstrap_bca), estimate, ci_low, ci_high, se (sd of the draws), n (delta rows used),
    mc_error_low, mc_error_high (Monte-Carlo standard errors of the interval endpoints).
    The same Generator state gives the same interval.

    >>> import numpy as np, pandas as pd
    >>> d = pd.DataFrame([dict(encoder="e", intermediate=i, intermediate_family=f, target="t", target_family="x",
    ...                        language=l, seed=s, delta=v + s)
    ...                   for i, f, v in [("m", "nli", 2.0), ("a", "nli", 3.0), ("s", "qa", 1.0), ("c", "qa", 0.0)]
    ...                   for l in ("de", "fr") for s in (1, 2)])
    >>> r = hierarchical_bootstrap(d, rng=np.random.default_rng(0), n_boot=200)
    >>> r.loc[0, "method"], float(r.loc[0, "estimate"])
    ('bootstrap_percentile', 2.0)
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1 (e.g. 0.95), got {level}.")
    if n_boot < 2:
        raise ValueError(f"n_boot must be at least 2 (use 2000 or more for a report), got {n_boot}.")
    des = design(delta, a, b)
    est_t = point_estimate(des)
    draws_t = bootstrap_draws(des, rng, n_boot)
    jack_t = jackknife(des)
    rows = [
        {"target": "all", **r}
        for r in summarize(
            overall(draws_t),
            float(overall(est_t)),
            overall(jack_t) if len(jack_t) else np.array([]),
            level,
            des.n_rows,
        )
    ]
    if per_target:
        for k, t in enumerate(des.targets):
            n_t = int(np.isfinite(des.values[:, :, k]).sum())
            rows += [
                {"target": t, **r}
                for r in summarize(
                    draws_t[:, k], float(est_t[k]), jack_t[:, k] if len(jack_t) else np.array([]), level, n_t
                )
            ]
    return pd.DataFrame(rows)
