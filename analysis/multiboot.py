"""Example-level uncertainty: the paired multi-bootstrap over seeds x test examples.

The multi-bootstrap of the MultiBERTs (Sellam et al. 2022, "The MultiBERTs: BERT Reproductions for
Robustness Analysis", ICLR, §3; google-research/language, language/multiberts/multibootstrap.py):
each replicate draws the seeds with replacement (paired: one draw of seed numbers for both
conditions, since xitt pairs a condition's seed s with the baseline's seed s; unpaired: one draw
each) and one set of test examples with replacement, the *same* examples for both conditions
(and every seed); a condition's score is the mean over the drawn seeds of each run's score on the
drawn examples; the replicate's value is the difference. The percentile interval of the
differences then carries both the seed variance (training randomness) and the sampling variance
of the test set, which a t over seeds ignores (the test sets are fixed there).

xitt's targets have several test languages: each language's test set is resampled on its own (a
language is a stratum, its examples are the units) and a run's score is the mean over its
languages of ``100 * sum(numerator) / sum(denominator)`` (:data:`xitt.schema.EXAMPLE_COLUMNS`:
accuracy, per-question (EM + F1) / 2, tagging F1 as a ratio of chunk counts), so the full sample
gives back the target score of scores.csv.

Where the width comes from: in the same pass, a seeds-only bootstrap (examples fixed: the full
sample scores) and an examples-only bootstrap (seeds fixed: the mean over every seed) are drawn.
``share_seeds`` = var(seeds only) / (var(seeds only) + var(examples only)), ``share_examples`` its
complement (the two variances add up to the joint one up to a small interaction term). Speed: the
example draws of a chunk of replicates become a count matrix (``bincount``) multiplied by the
runs' numerators and denominators, one BLAS product per chunk (``make bench``: 10,000 replicates
of 5 seeds x 10,000 examples).

Few seeds: drawing seeds with replacement from a handful shrinks the seed variance by (S - 1) / S
and makes the percentile interval discrete, so with few seeds it under-covers where seed noise
matters (``xitt calibrate``, 500 grids, 500 examples, seed sd 0.6 on the logit scale: 3 seeds
0.80, 5 seeds 0.87, 10 seeds 0.93; seed sd 0.3: 3 seeds 0.90, 5 seeds 0.94). :func:`example_level_frame`
therefore prints its interval and p only with at least ``MIN_SEEDS`` paired seeds (MultiBERTs
used 25); below that the row keeps its estimate and the descriptive width decomposition, and
ci_low / ci_high / se / p_value are NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from xitt.schema import NONE

MULTIBOOT_COLUMNS = [
    "encoder",
    "target",
    "intermediate",
    "baseline",
    "estimate",
    "ci_low",
    "ci_high",
    "se",
    "p_value",
    "n",
    "n_examples",
    "width_seeds",
    "width_examples",
    "share_seeds",
    "share_examples",
]
MIN_SEEDS = 10  # paired seeds needed before the interval and p are printed (module docstring)
CHUNK = 500  # replicates per count matrix: 500 x 10,000 examples of int64 = 40 MB


@dataclass
class Condition:
    """One condition on one target: per language, a (seeds x examples) numerator and denominator
    array; the columns (examples) are the same for every condition compared with it."""

    numerator: list[np.ndarray]
    denominator: list[np.ndarray]

    @property
    def n_seeds(self) -> int:
        return self.numerator[0].shape[0]


def _run_scores(cond: Condition, counts: list[np.ndarray | None]) -> np.ndarray:
    """(replicates x seeds) target scores: the language mean of 100 * sum(w num) / sum(w den), where
    w are the example counts of the replicate (None: the full sample, one row)."""
    total = 0.0
    for num, den, w in zip(cond.numerator, cond.denominator, counts):
        if w is None:
            n, d = num.sum(axis=1)[None, :], den.sum(axis=1)[None, :]
        else:
            n, d = w @ num.T, w @ den.T
        with np.errstate(invalid="ignore", divide="ignore"):
            total = total + np.where(d > 0, 100.0 * n / np.where(d > 0, d, 1.0), 0.0)
    return total / len(cond.numerator)


def _example_counts(rng: np.random.Generator, n_rep: int, n_examples: int) -> np.ndarray:
    """(n_rep x n_examples) counts of a with-replacement draw of n_examples examples per replicate."""
    idx = rng.integers(0, n_examples, size=(n_rep, n_examples))
    idx += (np.arange(n_rep) * n_examples)[:, None]
    return np.bincount(idx.ravel(), minlength=n_rep * n_examples).reshape(n_rep, n_examples).astype(float)


def _seed_means(scores: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Mean over the drawn seeds: ``counts`` (replicates x seeds) weights the seeds' scores."""
    return (scores * counts).sum(axis=1) / counts.sum(axis=1)


def multiboot_draws(
    a: Condition, b: Condition, *, rng: np.random.Generator, n_boot: int = 2000, paired_seeds: bool = True
) -> dict[str, np.ndarray]:
    """Bootstrap distributions of mean(a) - mean(b): {"joint", "seeds", "examples"}, each (n_boot,).

    ``joint`` resamples seeds and examples (the multi-bootstrap), ``seeds`` the seeds only (full
    test sets), ``examples`` the examples only (every seed). Paired seeds need equal seed counts
    (row i of a and of b is seed i).
    """
    if paired_seeds and a.n_seeds != b.n_seeds:
        raise ValueError(f"paired seeds need as many seeds on both sides; got {a.n_seeds} and {b.n_seeds}.")
    shapes = [x.shape[1] for x in a.numerator], [x.shape[1] for x in b.numerator]
    if shapes[0] != shapes[1]:
        raise ValueError(f"the two conditions have different test sets (examples per language {shapes}).")
    full_a, full_b = _run_scores(a, [None] * len(a.numerator)), _run_scores(b, [None] * len(b.numerator))
    out = {k: np.empty(n_boot) for k in ("joint", "seeds", "examples")}
    uniform_a, uniform_b = np.full(a.n_seeds, 1.0 / a.n_seeds), np.full(b.n_seeds, 1.0 / b.n_seeds)
    for start in range(0, n_boot, CHUNK):
        m = min(CHUNK, n_boot - start)
        counts = [_example_counts(rng, m, num.shape[1]) for num in a.numerator]
        sa, sb = _run_scores(a, counts), _run_scores(b, counts)
        ca = rng.multinomial(a.n_seeds, uniform_a, size=m).astype(float)
        cb = ca if paired_seeds else rng.multinomial(b.n_seeds, uniform_b, size=m).astype(float)
        sl = slice(start, start + m)
        out["joint"][sl] = _seed_means(sa, ca) - _seed_means(sb, cb)
        out["examples"][sl] = sa.mean(axis=1) - sb.mean(axis=1)
        out["seeds"][sl] = _seed_means(np.broadcast_to(full_a, ca.shape), ca) - _seed_means(
            np.broadcast_to(full_b, cb.shape), cb
        )
    return out


def multiboot(
    a: Condition,
    b: Condition,
    *,
    rng: np.random.Generator,
    n_boot: int = 2000,
    level: float = 0.95,
    paired_seeds: bool = True,
) -> dict[str, float]:
    """The multi-bootstrap of mean(a) - mean(b) with where its width comes from.

    Returns estimate (full sample, every seed), ci_low, ci_high (percentile of the joint draws),
    se (their sd), p_value (two-sided: twice the smaller tail share of the joint draws at 0, with
    the +1 correction), width_seeds and width_examples (the percentile widths of the seeds-only and
    examples-only bootstraps), share_seeds and share_examples (variance shares), n (seeds of a),
    n_examples (summed over languages).

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> a = Condition([rng.binomial(1, 0.7, (3, 500)).astype(float)], [np.ones((3, 500))])
    >>> b = Condition([rng.binomial(1, 0.6, (3, 500)).astype(float)], [np.ones((3, 500))])
    >>> r = multiboot(a, b, rng=np.random.default_rng(1), n_boot=500)
    >>> r["ci_low"] < r["estimate"] < r["ci_high"] and 0.9 < r["share_seeds"] + r["share_examples"] < 1.1
    True
    """
    draws = multiboot_draws(a, b, rng=rng, n_boot=n_boot, paired_seeds=paired_seeds)
    q = [(1 - level) / 2, (1 + level) / 2]
    est = float(
        _run_scores(a, [None] * len(a.numerator)).mean() - _run_scores(b, [None] * len(b.numerator)).mean()
    )
    joint = draws["joint"]
    tail = min((joint <= 0).sum(), (joint >= 0).sum())
    var_s, var_e = float(draws["seeds"].var()), float(draws["examples"].var())
    total = var_s + var_e
    lo, hi = np.quantile(joint, q)
    return {
        "estimate": est,
        "ci_low": float(lo),
        "ci_high": float(hi),
        "se": float(joint.std(ddof=1)),
        "p_value": float(min(1.0, 2 * (tail + 1) / (n_boot + 1))),
        "width_seeds": float(np.diff(np.quantile(draws["seeds"], q))[0]),
        "width_examples": float(np.diff(np.quantile(draws["examples"], q))[0]),
        "share_seeds": var_s / total if total > 0 else np.nan,
        "share_examples": var_e / total if total > 0 else np.nan,
        "n": float(a.n_seeds),
        "n_examples": float(sum(num.shape[1] for num in a.numerator)),
    }


def condition_arrays(examples: pd.DataFrame, runs: pd.DataFrame) -> Condition:
    """The :class:`Condition` of ``runs`` (columns run_id, seed; one run per seed, sorted by seed)
    from example rows (EXAMPLE_COLUMNS). Raises ValueError when the runs do not share their
    languages and example indices (different test sets cannot be paired)."""
    runs = runs.sort_values("seed")
    sub = examples[examples["run_id"].isin(runs["run_id"])]
    nums, dens = [], []
    for language, rows in sub.groupby("language", sort=True):
        num = rows.pivot(index="run_id", columns="example", values="numerator")
        den = rows.pivot(index="run_id", columns="example", values="denominator")
        if num.isna().any().any() or len(num) != len(runs):
            raise ValueError(
                f"language {language!r}: the runs {list(runs['run_id'])} do not all have the same test "
                "examples; the multi-bootstrap pairs examples across runs. Re-run `xitt collect`."
            )
        nums.append(num.loc[runs["run_id"]].to_numpy(float))
        dens.append(den.loc[runs["run_id"]].to_numpy(float))
    return Condition(nums, dens)


def example_level_frame(
    examples: pd.DataFrame,
    scores: pd.DataFrame,
    *,
    rng: np.random.Generator,
    n_boot: int = 2000,
    level: float = 0.95,
) -> pd.DataFrame:
    """Every intermediate vs ``none`` on every (encoder, target) whose runs all have example rows.

    ``examples``: EXAMPLE_COLUMNS; ``scores``: primary score rows (run_id, encoder, intermediate,
    target, language, seed). Seeds are paired (the seeds both sides have). Returns MULTIBOOT_COLUMNS,
    one row per (encoder, target, intermediate); empty when no target has examples for ``none``.
    With fewer than ``MIN_SEEDS`` paired seeds, ci_low, ci_high, se and p_value are NaN.
    """
    runs = scores[["run_id", "encoder", "intermediate", "target", "seed"]].drop_duplicates("run_id")
    runs = runs[runs["run_id"].isin(set(examples["run_id"]))]
    rows = []
    for (encoder, target), cell in runs.groupby(["encoder", "target"], sort=True):
        base = cell[cell["intermediate"] == NONE]
        for inter, arm in cell[cell["intermediate"] != NONE].groupby("intermediate", sort=True):
            seeds = sorted(set(arm["seed"]) & set(base["seed"]))
            if not seeds:
                continue
            a = condition_arrays(examples, arm[arm["seed"].isin(seeds)])
            b = condition_arrays(examples, base[base["seed"].isin(seeds)])
            res = multiboot(a, b, rng=rng, n_boot=n_boot, level=level)
            if len(seeds) < MIN_SEEDS:  # not calibrated with so few seeds: no interval, no p
                res.update(ci_low=np.nan, ci_high=np.nan, se=np.nan, p_value=np.nan)
            rows.append(
                {"encoder": encoder, "target": target, "intermediate": inter, "baseline": NONE, **res}
            )
    return pd.DataFrame(rows, columns=MULTIBOOT_COLUMNS)
