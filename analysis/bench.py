"""Timings of the analysis layer on a simulated paper-sized grid (``xitt bench``).

The grid: 6 intermediate tasks (2 NLI, 4 QA) x 9 targets x 30 languages x 5 seeds = 8,100
delta rows (plus the ``none`` arm). Goals: the design model's fit at most lme4's time on the same
model and rows, in the same run (analysis.calibration.bench_mixed; the ratio is printed),
10,000 hierarchical bootstrap resamples <= 1 s, ASO 5 vs 5 seeds <= 10 ms, the multi-bootstrap
(analysis.multiboot: 10,000 replicates of 5 seeds x 10,000 examples, one core) <= 2 s, the whole
:func:`analysis.pipeline.analyze` <= 15 s.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from analysis.calibration import bench_mixed
from analysis.simulate import simulate_scores


def _grid(rng: np.random.Generator) -> pd.DataFrame:
    """The paper-sized grid, labelled synthetic: 2 NLI + 4 QA tasks x 9 targets x 30 languages x 5 seeds."""
    return simulate_scores(
        rng, families={"nli": 2, "qa": 4}, n_targets=9, n_languages=30, n_seeds=5, encoder="synth-encoder"
    )


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
    res = bench_mixed(rng)
    threads = ", ".join(f"{n} BLAS thread(s) {t:.2f} s" for n, t in res["seconds_by_threads"].items())
    r_times = (
        "; no Rscript with lme4: ratio not measured"
        if np.isnan(res["lme4_seconds"])
        else (
            f"; lme4 {res['lme4_seconds']:.2f} s (ratio {res['ratio']:.2f}, goal <= 1), "
            f"lmerTest + Satterthwaite {res['lmertest_seconds']:.2f} s"
        )
    )
    out = {
        "mixed model fit": {
            "seconds": res["seconds"],
            "goal": None if np.isnan(res["lme4_seconds"]) else res["lme4_seconds"],
            "detail": f"design model, {res['rows']} intermediate rows, {res['levels']} levels, REML + "
            f"Satterthwaite; {threads}{r_times}",
        }
    }
    des = bootstrap.design(delta)
    secs = _time(lambda: bootstrap.bootstrap_draws(des, np.random.default_rng(1), 10_000), repeat=2)
    out["hierarchical bootstrap"] = {
        "seconds": secs,
        "goal": 1.0,
        "detail": f"10,000 resamples of {len(delta)} rows",
    }
    a, b = rng.normal(1, 1, 5), rng.normal(0, 1, 5)
    secs = _time(lambda: significance.aso(a, b, rng=np.random.default_rng(2)), repeat=5)
    out["ASO"] = {"seconds": secs, "goal": 0.010, "detail": "5 vs 5 seeds, 1000 bootstrap samples"}
    out["multi-bootstrap"] = _bench_multiboot(rng)
    secs = _time(lambda: analyze(scores, rng=np.random.default_rng(3), n_boot=2000))
    out["analyze()"] = {"seconds": secs, "goal": 15.0, "detail": f"{len(scores)} score rows, n_boot=2000"}
    return out


def _bench_multiboot(rng: np.random.Generator) -> dict:
    """10,000 paired multi-bootstrap replicates (joint, seeds-only and examples-only in one pass) of
    5 seeds x 10,000 accuracy examples per condition, with one BLAS thread."""
    from threadpoolctl import threadpool_limits

    from analysis.multiboot import Condition, multiboot

    a, b = (
        Condition([rng.binomial(1, p, (5, 10_000)).astype(float)], [np.ones((5, 10_000))]) for p in (0.7, 0.6)
    )
    with threadpool_limits(1):
        secs = _time(lambda: multiboot(a, b, rng=np.random.default_rng(4), n_boot=10_000), repeat=2)
    return {"seconds": secs, "goal": 2.0, "detail": "10,000 replicates, 5 seeds x 10,000 examples, 1 thread"}


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
        table.add_row(
            name, f"{r['seconds']:.4f}", "" if r["goal"] is None else f"{r['goal']:g}", ok, r["detail"]
        )
    Console().print(table)


if __name__ == "__main__":
    main()
