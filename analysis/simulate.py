"""Simulated grids with the design's real replication units, for tests, calibration, planning, the demo.

A grid is simulated at the level of scores, run by run, as the runner produces them. For encoder e,
intermediate task i of family f (or the baseline ``none``), target t, language l and seed s:

    score = baseline + T_t + L_tl                                   level of target and language
            + [i != none] (effect_f + a_i + b_t + c_tl + stage_is)  the intermediate stage's gain
            + run_its                                               one target run (i = none: the
                                                                    baseline run (e, t, s))
            + e_itls                                                per-language noise of a run

with independent normal effects: a_i task (``sd_intermediate``), b_t target gain (``sd_target``),
c_tl language gain (``sd_language``), stage_is the seed noise of the intermediate stage
(encoder, intermediate, seed), which every target reuses (``sd_stage``), run_its the seed noise
of a target run, shared by all its languages (``sd_run``; the ``none`` run: ``sd_baseline_run``,
shared by every intermediate's delta of that target and seed), e per run x language
(``sd_residual``); T_t and L_tl (sds ``sd_target_level``, ``sd_language_level``) set the levels
and cancel in the delta. The delta = score - score(none), paired on (encoder, target, language,
seed), therefore carries stage, run and baseline-run noise that is shared across languages,
targets and intermediates: richer than a model with independent per-language noise, and what
:mod:`analysis.mixed` must survive. Singular designs: ``sd_intermediate=0`` (no task variance)
or a family with one task.

>>> import numpy as np
>>> d = simulate_deltas(np.random.default_rng(0))
>>> d.shape
(270, 7)
>>> s = simulate_scores(np.random.default_rng(0))
>>> sorted(s["intermediate"].unique())[:3]
['nli_1', 'nli_2', 'none']
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import numpy as np
import pandas as pd

from xitt.schema import NONE, validate_scores

DELTA_COLUMNS = ("encoder", "intermediate", "intermediate_family", "target", "language", "seed", "delta")
PAIR = ["encoder", "target", "language", "seed"]


def _check(
    families: Mapping[str, int], family_effects: Mapping[str, float], sizes: dict, sds: dict, shares: dict
) -> None:
    if not families:
        raise ValueError("families is empty; give e.g. {'nli': 2, 'qa': 4} (family -> number of tasks)")
    for fam, k in families.items():
        if int(k) != k or k < 1:
            raise ValueError(f"families[{fam!r}] must be a positive integer number of tasks; got {k!r}")
        if fam not in family_effects:
            raise ValueError(f"family_effects has no entry for {fam!r}; give one, e.g. {{{fam!r}: 0.0}}")
        if fam == NONE:
            raise ValueError(f"{NONE!r} is reserved for the no-intermediate baseline; rename that family")
    for name, value in sizes.items():
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer; got {value!r}")
    for name, value in sds.items():
        if not value >= 0:
            raise ValueError(f"{name} must be >= 0; got {value!r}")
    for name, value in shares.items():
        if not 0 <= value < 1:
            raise ValueError(f"{name} is the share of cells (or runs) dropped, in [0, 1); got {value!r}")


def _run_id(encoder: str, intermediate: str, target: str, seed: int) -> str:
    readable = f"{encoder}__{intermediate}__{target}__s{seed}"
    return f"{readable}__{hashlib.sha1(readable.encode()).hexdigest()[:6]}"


def _score_array(rng, fam_eff, n_t, n_l, n_s, baseline, sd) -> np.ndarray:
    """Scores of shape (1 + tasks, targets, languages, seeds); arm 0 is ``none``."""
    n_i = len(fam_eff)
    gain = (
        (fam_eff + sd["sd_intermediate"] * rng.standard_normal(n_i))[:, None, None, None]
        + sd["sd_target"] * rng.standard_normal(n_t)[None, :, None, None]
        + sd["sd_language"] * rng.standard_normal((n_t, n_l))[None, :, :, None]
        + sd["sd_stage"] * rng.standard_normal((n_i, n_s))[:, None, None, :]
        + sd["sd_run"] * rng.standard_normal((n_i, n_t, n_s))[:, :, None, :]
    )
    base_run = np.broadcast_to(
        sd["sd_baseline_run"] * rng.standard_normal((1, n_t, 1, n_s)), (1, n_t, n_l, n_s)
    )
    level = (
        baseline
        + sd["sd_target_level"] * rng.standard_normal(n_t)[None, :, None, None]
        + sd["sd_language_level"] * rng.standard_normal((n_t, n_l))[None, :, :, None]
    )
    arms = np.concatenate([base_run, gain], axis=0)
    return level + arms + sd["sd_residual"] * rng.standard_normal((n_i + 1, n_t, n_l, n_s))


def simulate_scores(
    rng: np.random.Generator,
    *,
    families: Mapping[str, int] = {"nli": 2, "qa": 4},
    n_targets: int = 3,
    n_languages: int = 5,
    n_seeds: int = 3,
    encoder: str = "sim-encoder",
    family_effects: Mapping[str, float] = {"nli": 2.0, "qa": 0.0},
    baseline: float = 60.0,
    sd_intermediate: float = 1.0,
    sd_target: float = 1.0,
    sd_language: float = 1.0,
    sd_stage: float = 0.5,
    sd_run: float = 0.5,
    sd_baseline_run: float = 0.5,
    sd_residual: float = 1.0,
    sd_target_level: float = 2.0,
    sd_language_level: float = 3.0,
    missing: float = 0.0,
    missing_runs: float = 0.0,
) -> pd.DataFrame:
    """A simulated scores.csv frame (it passes ``xitt.schema.validate_scores``); the model is in
    the module docstring.

    One ``accuracy`` row (primary) per run x language, the ``none`` arm included. Intermediates are
    named ``<family>_<k>``, targets ``target_<k>``, languages ``l01``..., seeds 1..n_seeds.
    ``missing`` drops that share of intermediate-arm (run, language) rows at random,
    ``missing_runs`` that share of whole intermediate runs; the ``none`` arm stays complete, so
    every remaining row pairs with a baseline.
    """
    sizes = {"n_targets": n_targets, "n_languages": n_languages, "n_seeds": n_seeds}
    sds = {
        "sd_intermediate": sd_intermediate,
        "sd_target": sd_target,
        "sd_language": sd_language,
        "sd_stage": sd_stage,
        "sd_run": sd_run,
        "sd_baseline_run": sd_baseline_run,
        "sd_residual": sd_residual,
        "sd_target_level": sd_target_level,
        "sd_language_level": sd_language_level,
    }
    _check(families, family_effects, sizes, sds, {"missing": missing, "missing_runs": missing_runs})
    inter = [(NONE, NONE)] + [(f"{fam}_{k + 1}", fam) for fam, n in families.items() for k in range(int(n))]
    n_t, n_l, n_s = int(n_targets), int(n_languages), int(n_seeds)
    fam_eff = np.array([float(family_effects[fam]) for _, fam in inter[1:]])
    score = _score_array(rng, fam_eff, n_t, n_l, n_s, baseline, sds)
    idx = np.indices(score.shape).reshape(4, -1)
    width = max(2, len(str(n_l)))
    frame = pd.DataFrame(
        {
            "encoder": encoder,
            "intermediate": np.array([name for name, _ in inter])[idx[0]],
            "intermediate_family": np.array([fam for _, fam in inter])[idx[0]],
            "target": np.array([f"target_{k + 1}" for k in range(n_t)])[idx[1]],
            "language": np.array([f"l{k + 1:0{width}d}" for k in range(n_l)])[idx[2]],
            "seed": (idx[3] + 1).astype(np.int64),
            "score": score.reshape(-1),
        }
    )
    arm = (idx[0] > 0).astype(bool)
    drop = arm & (rng.random(len(frame)) < missing)
    if missing_runs > 0:
        run_drop = rng.random(score.shape[:2] + (1, n_s)) < missing_runs
        drop |= arm & np.broadcast_to(run_drop, score.shape).reshape(-1)
    frame = frame.loc[~drop].reset_index(drop=True)
    if frame["score"].min() < 0 or frame["score"].max() > 100:
        raise ValueError(
            "simulated scores leave the 0-100 scale; lower the sds or move `baseline` towards 50"
        )
    frame["run_id"] = [
        _run_id(encoder, i, t, s) for i, t, s in zip(frame["intermediate"], frame["target"], frame["seed"])
    ]
    frame["target_family"] = "sim"
    frame["metric"] = "accuracy"
    frame["primary"] = True
    frame["task_version"] = "sim-1"
    return validate_scores(frame, source="simulate_scores")


def simulate_deltas(rng: np.random.Generator, **knobs) -> pd.DataFrame:
    """The delta frame of a grid from :func:`simulate_scores` (same knobs, same Generator state
    gives the same grid): one row per (intermediate, target, language, seed) with
    delta = score - score(none) paired on (encoder, target, language, seed).

    Returns columns encoder, intermediate, intermediate_family, target, language, seed, delta.
    """
    scores = simulate_scores(rng, **knobs)
    base = scores.loc[scores["intermediate"] == NONE, PAIR + ["score"]].rename(columns={"score": "_base"})
    arms = scores[scores["intermediate"] != NONE].merge(base, on=PAIR, how="inner")
    arms["delta"] = arms["score"] - arms["_base"]
    return arms[list(DELTA_COLUMNS)].reset_index(drop=True)


def simulate_encoders(
    rng: np.random.Generator,
    *,
    encoder_effects: Mapping[str, Mapping[str, float]] = {"enc_a": {"nli": 2.0, "qa": 0.0}},
    sd_shared_task: float = 0.5,
    **knobs,
) -> pd.DataFrame:
    """Scores of several encoders on the same intermediate tasks: :func:`simulate_scores` per
    encoder (its ``sd_intermediate`` is then the encoder x task deviation) plus a task effect
    a_i ~ N(0, ``sd_shared_task``) shared by every encoder's rows of task i. ``encoder_effects``:
    encoder -> family_effects; the encoder x family interaction is the difference of two
    encoders' a - b effects. Returns the scores.csv frame of all encoders (validated).
    """
    if not encoder_effects:
        raise ValueError("encoder_effects is empty; give e.g. {'enc_a': {'nli': 0.0, 'qa': 0.0}}")
    if not sd_shared_task >= 0:
        raise ValueError(f"sd_shared_task must be >= 0; got {sd_shared_task!r}")
    parts = [
        simulate_scores(rng, encoder=enc, family_effects=effects, **knobs)
        for enc, effects in encoder_effects.items()
    ]
    frame = pd.concat(parts, ignore_index=True)
    arm = frame["intermediate"] != NONE
    names = np.sort(frame.loc[arm, "intermediate"].unique())
    shared = dict(zip(names, sd_shared_task * rng.standard_normal(len(names))))
    frame.loc[arm, "score"] += frame.loc[arm, "intermediate"].map(shared)
    return validate_scores(frame, source="simulate_encoders")
