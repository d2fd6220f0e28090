"""The whole analysis of one experiment: scores in, an :class:`analysis.result.Analysis` out.

This module only orchestrates: it validates the scores, calls the statistics modules in order
and collects their frames into the typed contract (:mod:`analysis.result`). It computes nothing
itself and formats nothing (the answer sentence is the report layer's,
:mod:`analysis.report.sentence`).

Decisions written down here:

* The answer is the family contrast a - b (default NLI - QA) of delta = score(intermediate) -
  score(none), XTREME-weighted (targets weighted equally; see :mod:`analysis.effects`). The
  headline row follows the rule of :mod:`analysis.headline` (the mixed model of the design's
  replication units, df never above tasks - 2; the task-bounded t-test for singular fits or a
  single task in a family; no inference with one task per family); when the model cannot be
  fitted, the hierarchical BCa bootstrap, and the caveats say so.
  Bootstrap and permutation tests are robustness rows of the ``contrast`` frame.
* Several encoders: the contrast averages them with equal weight (the bootstrap treats encoder
  as a fixed stratum that shares the resampled tasks, languages and seeds); the mixed model
  gets every row (its module decides how to add encoder). Per-encoder answers: run the analysis
  on each encoder's rows.
* Per target: :func:`analysis.contrast.per_target_frame`, a t over seeds for both
  its CI and its p, adjusted across targets.
* "a beats b in k of N languages": one-sided t-test per language over seeds of the seed-level
  contrast (pooled over targets, :func:`analysis.significance.per_language_frame`), combined by
  partial conjunction (Dror et al. 2017).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields

import numpy as np
import pandas as pd
import scipy

from analysis import bootstrap, contrast, effects, headline, seeds, significance
from analysis.load import validate
from analysis.paper import paper_frames
from analysis.result import Analysis, Frames
from xitt.schema import NONE


def _seed_frames(fit, prim, a: str, b: str, caveats: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Variance components per replication unit and the seed plan (empty frames without a fit)."""
    empty = Frames.empty("variance_components"), Frames.empty("seed_plan")
    if fit is None:
        return empty
    try:
        variance, design = headline.variance_components(fit), seeds.observed_design(prim, a, b)
        plan = pd.concat(
            [
                seeds.plan_seeds(variance, design, a=a, b=b),
                seeds.plan_seeds(variance, design, a=a, b=b, seeds=(3, 5), intermediates_per_family=(4, 8)),
            ],
            ignore_index=True,
        )
        return variance, plan
    except (ValueError, TypeError, KeyError) as err:
        caveats.append(f"Variance components / seed plan unavailable: {err}")
        return empty


def _main_table(prim: pd.DataFrame, delta: pd.DataFrame) -> pd.DataFrame:
    """effects.main_table with p_value and p_adj of delta vs none per cell (NaN for none and avg)."""
    tests = significance.delta_vs_none(delta)[["encoder", "intermediate", "target", "p_value", "p_adj"]]
    return effects.main_table(prim).merge(tests, on=["encoder", "intermediate", "target"], how="left")


def is_synthetic(scores: pd.DataFrame) -> bool:
    """True when an encoder or a target name starts with "synth" (the data's own mark; a grid's
    ``synthetic: true`` reaches :func:`analyze` as its ``synthetic`` argument)."""
    names = pd.concat([scores["encoder"], scores["target"]]).astype(str).str.lower()
    return bool(names.str.startswith("synth").any())


def analyze(
    scores: pd.DataFrame,
    *,
    rng: np.random.Generator,
    a: str = "nli",
    b: str = "qa",
    level: float = 0.95,
    n_boot: int = 2000,
    allow_incomplete: bool = False,
    chance: Mapping[str, float] | None = None,
    experiment: str = "",
    seed: int | None = None,
    synthetic: bool = False,
    keep_degenerate: bool = False,
    encoder: str | None = None,
    dev_scores: pd.DataFrame | None = None,
    examples: pd.DataFrame | None = None,
) -> Analysis:
    """Run every analysis step on a scores frame (the scores.csv contract) and collect the results.

    ``keep_degenerate`` keeps runs at 0 or at chance (default: excluded and listed, see
    :func:`analysis.load.validate`); ``encoder`` analyses that encoder's rows only. With several
    encoders the ``encoders`` frame holds each encoder's answer and the encoder x family
    interaction (:func:`analysis.headline.encoder_answers`).

    ``dev_scores`` (dev_scores.csv) and ``examples`` (examples.csv.gz) feed the comparisons with
    Phang et al. 2020 (:func:`analysis.paper.paper_frames`: oracle, replication, example level).

    Returns an :class:`analysis.result.Analysis`; its ``frames`` (:class:`analysis.result.Frames`)
    document their columns. ``synthetic``: the grid says so (names starting with "synth" mark
    synthetic data too).

    >>> import numpy as np
    >>> from analysis.simulate import simulate_scores
    >>> res = analyze(simulate_scores(np.random.default_rng(0), n_targets=2, n_languages=4, encoder="synth-sim"),
    ...               rng=np.random.default_rng(1), n_boot=200)
    >>> res.synthetic, res.answer.n_languages
    (True, 4)
    """
    if encoder is not None:
        known = sorted(scores["encoder"].astype(str).unique())
        if encoder not in known:
            raise ValueError(f"--encoder {encoder!r} is not in the scores; encoders: {known}")
        scores = scores[scores["encoder"].astype(str) == encoder]
    v = validate(scores, allow_incomplete=allow_incomplete, chance=chance, keep_degenerate=keep_degenerate)
    prim, caveats = v.scores, list(v.warnings)
    delta = _deltas(prim, a, b)
    synthetic = bool(synthetic or is_synthetic(prim))
    des = bootstrap.design(delta, a, b)
    boot = bootstrap.hierarchical_bootstrap(delta, rng=rng, a=a, b=b, n_boot=n_boot, level=level)
    head_rows, fit = contrast.mixed_row(prim, a, b, level, caveats)
    rows, extra = contrast.robustness_rows(delta, boot, a, b, rng)
    by_method = pd.DataFrame([*head_rows, *rows])[contrast.CONTRAST_COLUMNS]
    per_language = significance.per_language_frame(delta, a, b)
    pooled = per_language.loc[per_language["target"] == "all", "p_value"].dropna()
    wins = significance.partial_conjunction(pooled) if len(pooled) else Frames.empty("language_wins")
    variance, plan = _seed_frames(fit, prim, a, b, caveats)
    per_target = contrast.per_target_frame(delta, a, b, level)
    aso = significance.aso_frame(delta, a, b, rng=rng)
    if aso.empty:
        caveats.append("ASO (these tasks, seeds as units) is left out: it needs >= 6 seeds per family.")
    n_tasks = (int(des.is_a.sum()), int((~des.is_a).sum()))
    _design_caveats(caveats, n_tasks, extra["family_permutation"], a, b, delta, synthetic)
    paper = paper_frames(
        prim, delta, rng=rng, synthetic=synthetic, caveats=caveats, dev_scores=dev_scores, examples=examples,
        level=level, n_boot=n_boot,
    )  # fmt: skip
    frames = Frames(
        coverage=v.coverage,
        missing=v.missing,
        degenerate=v.degenerate,
        cell_stats=effects.cell_stats(prim),
        main_table=_main_table(prim, delta),
        deltas=delta,
        family_means=effects.family_means(delta),
        contrast=by_method,
        bootstrap=boot,
        per_target=per_target,
        per_language=per_language,
        language_wins=wins,
        variance_components=variance,
        seed_plan=plan,
        aso=aso,
        effect_sizes=significance.effect_size_frame(delta, a, b),
        encoders=_encoder_frame(prim, a, b, level, caveats),
        **paper,
    )
    answer = contrast.headline(
        by_method, wins, a=a, b=b, level=level, n_tasks=n_tasks, n_targets=len(des.targets)
    )
    settings = {
        **{
            "seed": seed,
            "n_boot": n_boot,
            "level": level,
            "allow_incomplete": allow_incomplete,
            "keep_degenerate": keep_degenerate,
            "encoder": encoder,
            "a": a,
            "b": b,
        },
        "versions": {"numpy": np.__version__, "scipy": scipy.__version__, "pandas": pd.__version__},
    }
    return Analysis(experiment, synthetic, answer, caveats, frames, settings, a=a, b=b, level=level)


def _encoder_frame(prim, a: str, b: str, level: float, caveats: list[str]) -> pd.DataFrame:
    """headline.encoder_answers with several encoders; empty (documented columns) with one."""
    if prim["encoder"].nunique() < 2:
        return Frames.empty("encoders")
    try:
        return headline.encoder_answers(prim, a=a, b=b, level=level)
    except (ValueError, KeyError, np.linalg.LinAlgError) as err:
        caveats.append(f"Per-encoder answers unavailable: {err}")
        return Frames.empty("encoders")


def _deltas(prim: pd.DataFrame, a: str, b: str) -> pd.DataFrame:
    """effects.deltas, after checking that there is a baseline and that a and b have deltas."""
    if not (prim["intermediate"] == NONE).any():
        raise ValueError(
            f"these scores have no '{NONE}' runs, the no-intermediate baseline every gain is measured "
            f"against, so there is no contrast to estimate. Train the baseline (add {NONE} to the grid's "
            "intermediates and `xitt run` again); meanwhile `xitt report` shows the descriptive score tables."
        )
    delta = effects.deltas(prim)
    fams = sorted(set(delta["intermediate_family"]))
    for fam in (a, b):
        if fam not in fams:
            raise ValueError(
                f"no intermediate task of family '{fam}' has a paired '{NONE}' baseline; families "
                f"with deltas: {fams}. Choose a and b among them (e.g. --a nli --b qa)."
            )
    return delta


def _design_caveats(caveats, n_tasks, fp, a, b, delta, synthetic) -> None:
    n_a, n_b = n_tasks
    if min(n_a, n_b) < 3:
        caveats.append(
            f"Only {n_a} {a.upper()} and {n_b} {b.upper()} intermediate task(s): conclusions about the "
            f"families rest on very few tasks. The exact family-permutation test cannot go below "
            f"p = {fp['min_p']:.3g}, and the bootstrap, which resamples so few tasks, gives too narrow "
            "intervals."
        )
    caveats.append(
        "The sign-flip and Wilcoxon rows treat languages as the random units and the intermediate tasks "
        "as fixed: they test these tasks, not the families."
    )
    if delta["encoder"].nunique() > 1:
        caveats.append(
            f"{delta['encoder'].nunique()} encoders are averaged with equal weight; the encoders table "
            "gives each encoder's answer and the encoder x family interaction (--encoder analyses one)."
        )
    if synthetic:
        caveats.insert(
            0, "SYNTHETIC DATA: these numbers come from a simulated benchmark, not from real models."
        )


def describe(
    scores: pd.DataFrame,
    *,
    a: str = "nli",
    b: str = "qa",
    allow_incomplete: bool = False,
    chance: Mapping[str, float] | None = None,
    experiment: str = "",
    synthetic: bool = False,
) -> Analysis:
    """The descriptive part only, for scores without the ``none`` baseline (no deltas, no tests):
    coverage, missing, degenerate, cell_stats and main_table (its delta, p_value, p_adj NaN); the
    other frames empty; ``answer`` None and a caveat that says why."""
    v = validate(scores, allow_incomplete=allow_incomplete, chance=chance)
    prim = v.scores
    synthetic = bool(synthetic or is_synthetic(prim))
    caveats = [
        *(
            ["SYNTHETIC DATA: these numbers come from a simulated benchmark, not from real models."]
            * synthetic
        ),
        f"No '{NONE}' baseline in these scores: the tables describe the scores only; gains, the "
        f"{a.upper()} - {b.upper()} contrast and its tests need the no-intermediate runs (add {NONE} to the "
        "grid's intermediates and `xitt run` again).",
        *v.warnings,
    ]
    main = effects.main_table(prim).assign(p_value=np.nan, p_adj=np.nan)
    described = {
        "coverage": v.coverage,
        "missing": v.missing,
        "degenerate": v.degenerate,
        "cell_stats": effects.cell_stats(prim),
        "main_table": main,
    }
    frames = Frames(**{f.name: described.get(f.name, Frames.empty(f.name)) for f in fields(Frames)})
    settings = {"allow_incomplete": allow_incomplete, "a": a, "b": b, "descriptive_only": True}
    return Analysis(experiment, synthetic, None, caveats, frames, settings, a=a, b=b)
