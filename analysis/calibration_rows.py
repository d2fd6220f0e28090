"""Calibration of the report's rows beyond the family contrast, by simulation with run-level seed
noise (stage, run and baseline run; :mod:`analysis.simulate`).

* :func:`marks_calibration` -- the main table's marks (:func:`analysis.significance.delta_vs_none`):
  per-cell rejection, the per-cell rate at alpha / m (the only threshold Holm uses when every
  cell is null), the uniformity of a cell's p-value, Holm's family-wise error.
* :func:`language_wins_calibration` -- "a beats b in k of N languages"
  (:func:`analysis.significance.partial_conjunction` on the one-sided per-language p-values of
  :func:`analysis.significance.per_language_frame`): how often k >= 1 is claimed, and k / N.
* :func:`interaction_calibration` -- the encoder x family interaction row of
  :func:`analysis.headline.encoder_answers` with two encoders: coverage, null rejection, power.
* :func:`rows_table` -- all of them as rows of the calibration table (``xitt calibrate``).

Why the marks are exact under this noise: a cell's run-level delta at seed s is its stage, run and
baseline-run noise plus the language mean of the residuals, all drawn afresh for every seed, so the
seeds give i.i.d. normal values and the t over seeds has exactly uniform p under the null; cells
share stages and baseline runs (dependent p-values) and Holm, which rejects anything under the
global null only if min p < alpha / m, is then bounded by the union bound: FWER <= alpha under any
dependence. A measured excess over alpha is Monte-Carlo noise unless the per-cell p is not uniform,
which is what the extra columns check.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats

from analysis.simulate import simulate_deltas, simulate_encoders

# Every cell's (and language's) true delta 0: no task, target or language gain.
ALL_NULL = dict(sd_intermediate=0.0, sd_target=0.0, sd_language=0.0, family_effects={"nli": 0.0, "qa": 0.0})


def marks_calibration(rng: np.random.Generator, *, n_grids: int = 2000, alpha: float = 0.05) -> dict:
    """The main table's marks under the null (every cell's true delta 0; stage, run and baseline-run
    seed noise sd 1; 3 targets x 8 languages x 3 seeds; 2 + 4 tasks: m = 18 cells).

    Returns {"cell_rejection" (share of cells with p < alpha), "cell_rejection_bonferroni" (share
    with p < alpha / m), "uniformity_p" (Kolmogorov-Smirnov p of the first cell's p-value of each
    grid against U(0, 1): one cell per grid, so the values are independent), "holm_fwer" (share of
    grids with any Holm-adjusted p < alpha), "n_cells", "m" (cells per grid), "n_grids"}.
    """
    from analysis.significance import delta_vs_none

    p_values, fwer = [], 0
    for _ in range(n_grids):
        d = simulate_deltas(rng, n_languages=8, sd_stage=1.0, sd_run=1.0, sd_baseline_run=1.0, **ALL_NULL)
        out = delta_vs_none(d)
        p_values.append(out["p_value"].to_numpy(float))
        fwer += bool((out["p_adj"] < alpha).any())
    p = np.vstack(p_values)
    m = p.shape[1]
    return {
        "cell_rejection": float(np.mean(p < alpha)),
        "cell_rejection_bonferroni": float(np.mean(p < alpha / m)),
        "uniformity_p": float(stats.kstest(p[:, 0], "uniform").pvalue),
        "holm_fwer": fwer / n_grids,
        "n_cells": int(p.size),
        "m": int(m),
        "n_grids": n_grids,
    }


def language_wins_calibration(
    rng: np.random.Generator,
    *,
    n_grids: int = 500,
    alpha: float = 0.05,
    effect: float = 0.0,
    sd_intermediate: float = 0.0,
    n_languages: int = 8,
) -> dict:
    """ "a beats b in k of N languages" over simulated grids (3 vs 3 tasks, 3 targets x
    ``n_languages`` x 3 seeds, stage / run / baseline-run seed noise sd 0.5 shared by the
    languages; no target or language gain; family effect a - b = ``effect``, task sd
    ``sd_intermediate``). Returns {"any_claim" (share of grids with k_hat >= 1), "claims_per_language"
    (mean k_hat / N), "language_rejection" (share of languages with their own one-sided p < alpha,
    uncorrected), "n_grids", "n_languages"}."""
    from analysis.significance import partial_conjunction, per_language_frame

    knobs = {**ALL_NULL, "sd_intermediate": sd_intermediate, "family_effects": {"nli": effect, "qa": 0.0}}
    k_hat, rejected, n = [], [], 0
    for _ in range(n_grids):
        d = simulate_deltas(rng, families={"nli": 3, "qa": 3}, n_languages=n_languages, **knobs)
        per_language = per_language_frame(d, "nli", "qa")
        pooled = per_language.loc[per_language["target"] == "all", "p_value"].dropna().to_numpy(float)
        k_hat.append(int(partial_conjunction(pooled, alpha=alpha)["k_hat"].iloc[0]))
        rejected.append(float(np.mean(pooled < alpha)))
        n = len(pooled)
    return {
        "any_claim": float(np.mean(np.array(k_hat) >= 1)),
        "claims_per_language": float(np.mean(k_hat) / n),
        "language_rejection": float(np.mean(rejected)),
        "n_grids": n_grids,
        "n_languages": n,
    }


def interaction_calibration(
    rng: np.random.Generator,
    *,
    n_grids: int = 500,
    alpha: float = 0.05,
    effect: float = 0.0,
    families: Mapping[str, int] = {"nli": 3, "qa": 3},
) -> dict:
    """The encoder x family interaction ("enc_b - enc_a": (a - b) on enc_b minus on enc_a) of
    :func:`analysis.headline.encoder_answers` over simulated two-encoder grids
    (:func:`analysis.simulate.simulate_encoders`: shared task sd 0.5, encoder x task sd 0.3,
    3 targets x 8 languages x 3 seeds, run-level seed noise sd 0.5; enc_a's a - b = 1, enc_b's
    1 + ``effect``). Returns {"values": array (n_grids, 3) of ci_low, ci_high, p_value (NaN where
    the row is missing), "effect"}."""
    from analysis.headline import encoder_answers

    values = np.full((n_grids, 3), np.nan)
    encoders = {"enc_a": {"nli": 1.0, "qa": 0.0}, "enc_b": {"nli": 1.0 + effect, "qa": 0.0}}
    for g in range(n_grids):
        scores = simulate_encoders(
            rng, encoder_effects=encoders, families=families, sd_intermediate=0.3, n_languages=8
        )
        try:
            rows = encoder_answers(scores, a="nli", b="qa", level=1 - alpha).set_index("encoder")
        except (ValueError, np.linalg.LinAlgError, ArithmeticError):
            continue
        if "enc_b - enc_a" in rows.index:
            values[g] = rows.loc["enc_b - enc_a", ["ci_low", "ci_high", "p_value"]].to_numpy(float)
    return {"values": values, "effect": float(effect)}


def _rate_row(method: str, stratum: str, rate: float, n: int, alpha: float) -> dict:
    from analysis.calibration import _summarise

    row = _summarise(method, stratum, np.array([[np.nan, np.nan, np.nan]]), 0.0, alpha)
    row.update(
        rejection_rate=rate, rejection_mc_se=float(np.sqrt(rate * (1 - rate) / n)), n_grids=n, n_failed=0
    )
    return row


RUN_NOISE = "3 targets x 8 languages x 3 seeds"


def rows_table(rng: np.random.Generator, *, n_grids: int = 500, alpha: float = 0.05) -> pd.DataFrame:
    """The marks (on 4 x ``n_grids`` grids: they are cheap and their FWER was the noisiest row),
    the k-of-N line (all deltas 0; family null with task sd 0.5; a +2 family effect) and the
    interaction (null and +2). Returns scenario + CALIBRATION_COLUMNS; in the rate-only rows
    n_grids is the number of units the rate is over (cells for "per cell", grids otherwise) and
    rejection_mc_se the binomial se over them (over grids for "k / N" and "one language": those
    are means of per-grid shares, so that se is an upper bound)."""
    from analysis.calibration import CALIBRATION_COLUMNS, _summarise

    rows = []
    marks = marks_calibration(rng, n_grids=4 * n_grids, alpha=alpha)
    null = f"null, run-level seed noise sd 1 ({RUN_NOISE}; {marks['m']} cells)"
    for stratum, rate, n in (
        ("per cell", marks["cell_rejection"], marks["n_cells"]),
        (
            f"per cell at alpha / {marks['m']} (Holm's first step)",
            marks["cell_rejection_bonferroni"],
            marks["n_cells"],
        ),
        ("Holm family-wise", marks["holm_fwer"], marks["n_grids"]),
    ):
        rows.append({"scenario": null, **_rate_row("main-table marks", stratum, rate, n, alpha)})
    for scenario, knobs in (
        (f"all deltas 0, run-level seed noise sd 0.5 ({RUN_NOISE})", {}),
        ("family null, task sd 0.5 (these tasks differ)", {"sd_intermediate": 0.5}),
        ("effect +2, task sd 0.5", {"sd_intermediate": 0.5, "effect": 2.0}),
    ):
        wins = language_wins_calibration(rng, n_grids=n_grids, alpha=alpha, **knobs)
        for stratum, key in (
            ("k >= 1 claimed", "any_claim"),
            ("k / N", "claims_per_language"),
            ("one language, uncorrected", "language_rejection"),
        ):
            row = _rate_row("k of N languages", stratum, wins[key], n_grids, alpha)
            rows.append({"scenario": scenario, **row})
    for effect in (0.0, 2.0):
        res = interaction_calibration(rng, n_grids=n_grids, alpha=alpha, effect=effect)
        name = "null" if effect == 0 else f"effect +{effect:g}"
        row = _summarise("encoder x family interaction", "all", res["values"], effect, alpha)
        rows.append({"scenario": f"{name}, 2 encoders, 3 vs 3 tasks ({RUN_NOISE})", **row})
    return pd.DataFrame(rows)[["scenario", *CALIBRATION_COLUMNS]]
