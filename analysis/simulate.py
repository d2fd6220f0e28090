"""Simulated grids from a known crossed model, for tests, calibration, planning and the demo.

The truth is ``delta = family_effect[family] + a[intermediate] + b[target] + c[target, language]
+ d[seed] + e`` with independent normal effects (sds ``sd_intermediate``, ``sd_target``,
``sd_language`` (for target:language), ``sd_seed``, ``sd_residual``), i.e. exactly the model that
:func:`analysis.mixed.fit_crossed` fits. :func:`simulate_scores` wraps the deltas into a
scores.csv-shaped frame with the ``none`` baseline arm, so that delta = score - score(none),
paired on (encoder, target, language, seed), recovers them.

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


def _check(
    families: Mapping[str, int], family_effects: Mapping[str, float], sizes: dict, sds: dict, missing: float
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
    if not 0 <= missing < 1:
        raise ValueError(f"missing is the share of cells dropped, in [0, 1); got {missing!r}")


def simulate_deltas(
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
    sd_seed: float = 0.5,
    sd_residual: float = 1.0,
    missing: float = 0.0,
) -> pd.DataFrame:
    """The delta frame of a simulated grid: one row per (intermediate, target, language, seed).

    Returns columns encoder, intermediate, intermediate_family, target, language, seed, delta.
    Intermediates are named ``<family>_<k>``, targets ``target_<k>``, languages ``l01``...,
    seeds 1..n_seeds. ``missing`` drops that share of rows at random. ``baseline`` is unused
    here (it is the level of the ``none`` arm in :func:`simulate_scores`) and kept so that both
    functions take the same knobs.
    """
    sizes = {"n_targets": n_targets, "n_languages": n_languages, "n_seeds": n_seeds}
    sds = {
        "sd_intermediate": sd_intermediate,
        "sd_target": sd_target,
        "sd_language": sd_language,
        "sd_seed": sd_seed,
        "sd_residual": sd_residual,
    }
    _check(families, family_effects, sizes, sds, missing)
    inter = [(f"{fam}_{k + 1}", fam) for fam, n in families.items() for k in range(int(n))]
    n_i, n_t, n_l, n_s = len(inter), int(n_targets), int(n_languages), int(n_seeds)
    shape = (n_i, n_t, n_l, n_s)
    fam_eff = np.array([float(family_effects[fam]) for _, fam in inter])
    delta = (
        (fam_eff + sd_intermediate * rng.standard_normal(n_i))[:, None, None, None]
        + sd_target * rng.standard_normal(n_t)[None, :, None, None]
        + sd_language * rng.standard_normal((n_t, n_l))[None, :, :, None]
        + sd_seed * rng.standard_normal(n_s)[None, None, None, :]
        + sd_residual * rng.standard_normal(shape)
    )
    idx = np.indices(shape).reshape(4, -1)
    width = max(2, len(str(n_l)))
    frame = pd.DataFrame(
        {
            "encoder": encoder,
            "intermediate": np.array([name for name, _ in inter])[idx[0]],
            "intermediate_family": np.array([fam for _, fam in inter])[idx[0]],
            "target": np.array([f"target_{k + 1}" for k in range(n_t)])[idx[1]],
            "language": np.array([f"l{k + 1:0{width}d}" for k in range(n_l)])[idx[2]],
            "seed": (idx[3] + 1).astype(np.int64),
            "delta": delta.reshape(-1),
        }
    )
    if missing > 0:
        keep = rng.random(len(frame)) >= missing
        frame = frame.loc[keep].reset_index(drop=True)
    return frame


def _run_id(encoder: str, intermediate: str, target: str, seed: int) -> str:
    readable = f"{encoder}__{intermediate}__{target}__s{seed}"
    return f"{readable}__{hashlib.sha1(readable.encode()).hexdigest()[:6]}"


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
    sd_seed: float = 0.5,
    sd_residual: float = 1.0,
    missing: float = 0.0,
) -> pd.DataFrame:
    """A simulated scores.csv frame (it passes ``xitt.schema.validate_scores``).

    One ``accuracy`` row (primary) per run x language, the ``none`` arm included. The ``none``
    score is ``baseline`` plus target, language and seed noise (sd 2, 3, 0.5; it cancels in
    the delta); every other score is score(none) + the delta of :func:`simulate_deltas` drawn
    with the same knobs (the same Generator state gives the same deltas). Missing cells are
    dropped from the intermediate arms only, so every delta stays computable.
    """
    deltas = simulate_deltas(
        rng,
        families=families,
        n_targets=n_targets,
        n_languages=n_languages,
        n_seeds=n_seeds,
        encoder=encoder,
        family_effects=family_effects,
        baseline=baseline,
        sd_intermediate=sd_intermediate,
        sd_target=sd_target,
        sd_language=sd_language,
        sd_seed=sd_seed,
        sd_residual=sd_residual,
        missing=missing,
    )
    n_t, n_l, n_s = int(n_targets), int(n_languages), int(n_seeds)
    base = (
        baseline
        + 2.0 * rng.standard_normal(n_t)[:, None, None]
        + 3.0 * rng.standard_normal((n_t, n_l))[:, :, None]
        + 0.5 * rng.standard_normal((n_t, n_l, n_s))
    )
    width = max(2, len(str(n_l)))
    idx = np.indices(base.shape).reshape(3, -1)
    none = pd.DataFrame(
        {
            "encoder": encoder,
            "intermediate": NONE,
            "intermediate_family": NONE,
            "target": np.array([f"target_{k + 1}" for k in range(n_t)])[idx[0]],
            "language": np.array([f"l{k + 1:0{width}d}" for k in range(n_l)])[idx[1]],
            "seed": (idx[2] + 1).astype(np.int64),
            "score": base.reshape(-1),
        }
    )
    arms = deltas.merge(none[["target", "language", "seed", "score"]], on=["target", "language", "seed"])
    arms["score"] = arms["score"] + arms.pop("delta")
    frame = pd.concat([none, arms], ignore_index=True)
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
