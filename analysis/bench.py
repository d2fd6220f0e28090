"""Timings of the analysis layer on a simulated paper-sized grid (``xitt bench``).

The grid: 6 intermediate tasks (2 NLI, 4 QA) x 9 targets x 30 languages x 5 seeds = 8,100
delta rows (plus the ``none`` arm). Goals: mixed-model fit (analysis.calibration.bench_mixed),
10,000 hierarchical bootstrap resamples <= 1 s, ASO 5 vs 5 seeds <= 10 ms, the whole
:func:`analysis.pipeline.analyze` <= 15 s.
"""

from __future__ import annotations

import importlib.util
import time
from typing import Mapping

import numpy as np
import pandas as pd

from xitt.schema import NONE


def synthetic_grid(rng: np.random.Generator, *, families: Mapping[str, int] | None = None, n_targets: int = 9,
                   n_languages: int = 30, n_seeds: int = 5, family_effects: Mapping[str, float] | None = None,
                   sd_task: float = 1.0, sd_target_language: float = 1.0, sd_seed: float = 0.3,
                   sd_noise: float = 1.0, encoder: str = "synth-encoder") -> pd.DataFrame:
    """A schema-valid scores frame (with the ``none`` arm) from a crossed random-effects model.

    score(i, t, l, s) = 60 + base(t, l) + [i != none] (family_effect(i) + u_i + v_tl + w_s) + noise,
    so delta(i) = family_effect + u_i + v_tl + w_s + noise difference. Targets are named
    ``synth_t<k>`` and languages ``l<k>`` (labelled synthetic). Returns the SCORE_COLUMNS frame.

    >>> import numpy as np
    >>> len(synthetic_grid(np.random.default_rng(0), n_targets=2, n_languages=3, n_seeds=2))
    84
    """
    families = dict(families or {"nli": 2, "qa": 4})
    effects = dict(family_effects or {})
    tasks = [(NONE, NONE, 0.0)] + [(f"{fam}{k + 1}", fam, effects.get(fam, 0.0) + sd_task * rng.standard_normal())
                                   for fam, n in families.items() for k in range(n)]
    t_idx, l_idx, s_idx = np.meshgrid(np.arange(n_targets), np.arange(n_languages), np.arange(n_seeds),
                                      indexing="ij")
    base = 10 * rng.standard_normal((n_targets, n_languages))
    v = sd_target_language * rng.standard_normal((n_targets, n_languages))
    w = sd_seed * rng.standard_normal(n_seeds)
    parts = []
    for name, fam, eff in tasks:
        shift = 0.0 if name == NONE else eff + v[t_idx, l_idx] + w[s_idx]
        score = 60 + base[t_idx, l_idx] + shift + sd_noise * rng.standard_normal(t_idx.shape)
        parts.append(pd.DataFrame({
            "run_id": [f"{encoder}__{name}__synth_t{t}__s{s}" for t, s in zip(t_idx.ravel(), s_idx.ravel())],
            "encoder": encoder, "intermediate": name, "intermediate_family": fam,
            "target": [f"synth_t{t}" for t in t_idx.ravel()], "target_family": "synthetic",
            "language": [f"l{k}" for k in l_idx.ravel()], "seed": s_idx.ravel() + 1, "metric": "accuracy",
            "score": np.clip(score.ravel(), 0.5, 100), "primary": True, "task_version": "synthetic-1"}))
    return pd.concat(parts, ignore_index=True)


def _grid(rng: np.random.Generator) -> pd.DataFrame:
    if importlib.util.find_spec("analysis.simulate") is not None:
        from analysis.simulate import simulate_scores

        try:
            return simulate_scores(rng, families={"nli": 2, "qa": 4}, n_targets=9, n_languages=30, n_seeds=5)
        except TypeError:
            pass
    return synthetic_grid(rng)


def _time(fn, repeat: int = 1) -> float:
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def run_bench(rng: np.random.Generator) -> dict:
    """Time the analysis pieces; returns {name: {"seconds": s, "goal": s or None, "detail": str}}."""
    from analysis import bootstrap, effects, significance
    from analysis.pipeline import analyze

    scores = _grid(rng)
    delta = effects.deltas(scores)
    out = {}
    if importlib.util.find_spec("analysis.calibration") is not None:
        from analysis.calibration import bench_mixed

        res = bench_mixed(rng)
        secs = np.nan
        if isinstance(res, dict):  # take the first entry that names seconds
            secs = next((float(v) for k, v in res.items() if "second" in str(k) and np.isscalar(v)), np.nan)
        out["mixed model fit"] = {"seconds": float(secs), "goal": None, "detail": f"{len(delta)} delta rows"}
    des = bootstrap.design(delta)
    secs = _time(lambda: bootstrap.bootstrap_draws(des, np.random.default_rng(1), 10_000), repeat=2)
    out["hierarchical bootstrap"] = {"seconds": secs, "goal": 1.0, "detail": f"10,000 resamples of {len(delta)} rows"}
    a, b = rng.normal(1, 1, 5), rng.normal(0, 1, 5)
    secs = _time(lambda: significance.aso(a, b, rng=np.random.default_rng(2)), repeat=5)
    out["ASO"] = {"seconds": secs, "goal": 0.010, "detail": "5 vs 5 seeds, 1000 bootstrap samples"}
    secs = _time(lambda: analyze(scores, rng=np.random.default_rng(3), n_boot=2000))
    out["analyze()"] = {"seconds": secs, "goal": 15.0, "detail": f"{len(scores)} score rows, n_boot=2000"}
    return out


def main() -> None:
    """Print the benchmark table (rich when available)."""
    res = run_bench(np.random.default_rng(0))
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # pragma: no cover
        for name, r in res.items():
            print(f"{name:28s} {r['seconds']:.4f} s  goal {r['goal']}  {r['detail']}")
        return
    table = Table(title="xitt analysis benchmark (simulated 8,100-row grid)")
    for col in ("step", "seconds", "goal", "ok", "detail"):
        table.add_column(col)
    for name, r in res.items():
        ok = "" if r["goal"] is None else ("yes" if r["seconds"] <= r["goal"] else "NO")
        table.add_row(name, f"{r['seconds']:.4f}", "" if r["goal"] is None else f"{r['goal']:g}", ok, r["detail"])
    Console().print(table)


if __name__ == "__main__":
    main()
