"""The whole analysis of one experiment: scores in, an :class:`Analysis` out.

Decisions written down here:

* The answer is the family contrast a - b (default NLI - QA) of delta = score(intermediate) -
  score(none), XTREME-weighted (see :mod:`analysis.effects`). The headline row is the crossed
  random-intercept mixed model with Satterthwaite df (analysis.mixed) when it is available and
  fits; otherwise the hierarchical BCa bootstrap, and the caveats say so. Bootstrap and
  permutation tests are robustness rows of the ``contrast`` frame.
* Several encoders: the contrast averages them with equal weight (the bootstrap treats encoder
  as a fixed stratum that shares the resampled tasks, languages and seeds); the mixed model
  gets every row (its module decides how to add encoder). Per-encoder answers: run the analysis
  on each encoder's rows.
* Per-target p-values come from the sign-flip test across that target's languages (exact for
  <= 16 languages) and are Holm- and BH-corrected across targets; per-target intervals are the
  hierarchical percentile bootstrap.
* "a beats b in k of N languages": one-sided t-test per language over seeds of the seed-level
  contrast (pooled over targets), combined by partial conjunction (Dror et al. 2017).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy

from analysis import bootstrap, effects, mixed, seeds, significance
from analysis.load import validate
from analysis.report import formatting as fmt
from xitt.schema import atomic_write_text

LABELS = {
    "mixed": "mixed model, Satterthwaite",
    "bootstrap_bca": "hierarchical BCa bootstrap",
    "bootstrap_percentile": "hierarchical percentile bootstrap",
}
CONTRAST_COLUMNS = [
    "method",
    "estimate",
    "ci_low",
    "ci_high",
    "se",
    "df",
    "statistic",
    "p_value",
    "n",
    "mc_error_low",
    "mc_error_high",
    "note",
]


@dataclass
class Analysis:
    """Everything :func:`analyze` found. See the module docstring for the frames it holds."""

    experiment: str
    synthetic: bool
    answer: dict
    caveats: list[str]
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    settings: dict = field(default_factory=dict)


def _row(method: str, **values) -> dict:
    row = {c: np.nan for c in CONTRAST_COLUMNS}
    row.update({"method": method, "note": "", **values})
    return row


def _mixed(delta: pd.DataFrame, a: str, b: str, level: float, caveats: list[str]):
    """(contrast row, fit or None): the crossed mixed model on the rows of families a and b (the
    contrast's only data); a NaN row + caveat when it cannot be fitted."""
    try:
        fit = mixed.fit_crossed(delta[delta["intermediate_family"].isin([a, b])])
        comp = fit.compare(a, b, level=level)
    except (ValueError, KeyError, np.linalg.LinAlgError, RuntimeError) as err:
        caveats.append(
            f"The mixed model could not be fitted ({err}); the answer falls back to the bootstrap."
        )
        return _row("mixed", note=f"failed: {err}"), None
    row = _row("mixed", note="crossed random intercepts, REML, Satterthwaite df")
    row.update(
        {
            k: float(comp[k])
            for k in ("estimate", "ci_low", "ci_high", "se", "df", "statistic", "p_value", "n")
            if k in comp
        }
    )
    caveats.extend(f"Mixed model: {msg}" for msg in fit.diagnostics)
    return row, fit


def _seed_frames(fit, a: str, b: str, caveats: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    if fit is None:
        return pd.DataFrame(columns=["component", "variance", "sd", "share"]), pd.DataFrame()
    try:
        plan = pd.concat(
            [
                seeds.plan_seeds(fit, level_a=a, level_b=b),
                seeds.plan_seeds(fit, level_a=a, level_b=b, seeds=(3, 5), intermediates_per_family=(4, 8)),
            ],
            ignore_index=True,
        )
        return seeds.variance_components(fit), plan
    except (ValueError, TypeError, KeyError) as err:
        caveats.append(f"Variance components / seed plan unavailable: {err}")
        return pd.DataFrame(columns=["component", "variance", "sd", "share"]), pd.DataFrame()


def _robustness_rows(delta, des, boot, a, b, rng) -> tuple[list[dict], dict]:
    rows = [
        _row(
            r["method"],
            **{
                k: r[k] for k in ("estimate", "ci_low", "ci_high", "se", "n", "mc_error_low", "mc_error_high")
            },
            note="tasks, languages, seeds resampled",
        )
        for _, r in boot[boot["target"] == "all"].iterrows()
    ]
    g = effects.language_weights(delta, a, b)
    sf = significance.sign_flip_test(g["estimate"] * len(g), rng=rng)
    rows.append(
        _row(
            "sign_flip",
            estimate=sf["estimate"],
            statistic=sf["statistic"],
            p_value=sf["p_value"],
            n=sf["n"],
            note=f"{sf['method']}; languages as units, tasks fixed",
        )
    )
    wx = significance.wilcoxon_test(g["estimate"])
    rows.append(
        _row(
            "wilcoxon",
            estimate=float(g["estimate"].sum()),
            statistic=wx["statistic"],
            p_value=wx["p_value"],
            n=wx["n"],
            note="languages as units, tasks fixed",
        )
    )
    task = task_effects(delta)
    fp = significance.family_permutation_test(task["estimate"], task["intermediate_family"], a, b)
    rows.append(
        _row(
            "family_permutation",
            estimate=fp["estimate"],
            statistic=fp["statistic"],
            p_value=fp["p_value"],
            n=fp["n"],
            note=f"exact over {int(fp['n_permutations'])} label splits; smallest attainable p = "
            f"{fp['min_p']:.4g}",
        )
    )
    return rows, {"language_g": g, "family_permutation": fp, "task": task}


def task_effects(delta: pd.DataFrame) -> pd.DataFrame:
    """Per intermediate task: XTREME mean of delta (seed, language, target, encoder means).

    Returns intermediate, intermediate_family, estimate.
    """
    cell = delta.groupby(["intermediate", "intermediate_family", "encoder", "target", "language"])[
        "delta"
    ].mean()
    per_t = cell.groupby(["intermediate", "intermediate_family", "encoder", "target"]).mean()
    per_e = per_t.groupby(["intermediate", "intermediate_family", "encoder"]).mean()
    return per_e.groupby(["intermediate", "intermediate_family"]).mean().rename("estimate").reset_index()


def _main_table(prim: pd.DataFrame, delta: pd.DataFrame) -> pd.DataFrame:
    """effects.main_table with p_value and p_adj of delta vs none per cell (NaN for none and avg)."""
    tests = significance.delta_vs_none(delta)[["encoder", "intermediate", "target", "p_value", "p_adj"]]
    return effects.main_table(prim).merge(tests, on=["encoder", "intermediate", "target"], how="left")


def per_target_frame(delta, boot, a, b, rng) -> pd.DataFrame:
    """Per target: bootstrap percentile CI, sign-flip p across languages, Holm and BH across targets."""
    tl = effects.contrast_by(delta, ["target", "language"], a, b).dropna(subset=["estimate"])
    pct = boot[(boot["method"] == "bootstrap_percentile") & (boot["target"] != "all")].set_index("target")
    rows = []
    for target, sub in tl.groupby("target", sort=True):
        sf = significance.sign_flip_test(sub["estimate"], rng=rng)
        r = pct.loc[target] if target in pct.index else {}
        rows.append(
            {
                "target": target,
                "estimate": float(r.get("estimate", sf["estimate"])),
                "ci_low": float(r.get("ci_low", np.nan)),
                "ci_high": float(r.get("ci_high", np.nan)),
                "se": float(r.get("se", np.nan)),
                "df": np.nan,
                "statistic": sf["statistic"],
                "p_value": sf["p_value"],
                "n": float(len(sub)),
                "wins": f"{int((sub['estimate'] > 0).sum())}/{len(sub)}",
                "method": f"bootstrap percentile CI; sign-flip p ({sf['method']}) across languages",
            }
        )
    out = pd.DataFrame(rows)
    out.insert(out.columns.get_loc("n"), "p_adj", significance.holm(out["p_value"]))
    out.insert(out.columns.get_loc("n"), "p_adj_bh", significance.benjamini_hochberg(out["p_value"]))
    return out


def per_language_frame(delta, a, b) -> pd.DataFrame:
    """Per (target, language) and per language pooled over targets (target "all"): the seed-mean
    contrast, its se over seeds and a one-sided t-test (a > b) over seeds."""
    parts = []
    for by in (["target", "language"], ["language"]):
        per_seed = effects.contrast_by(delta, [*by, "seed"], a, b).dropna(subset=["estimate"])
        grp = per_seed.groupby(by, sort=True)["estimate"]
        out = grp.agg(estimate="mean", sd="std", n="size").reset_index()
        out["se"] = out["sd"] / np.sqrt(out["n"])
        out["df"] = out["n"] - 1
        with np.errstate(divide="ignore", invalid="ignore"):
            out["statistic"] = out["estimate"] / out["se"]
        out["p_value"] = np.where(out["n"] > 1, scipy.stats.t.sf(out["statistic"], out["df"]), np.nan)
        if "target" not in by:
            out.insert(0, "target", "all")
        parts.append(out.drop(columns="sd"))
    res = pd.concat(parts, ignore_index=True)
    res["n"] = res["n"].astype(float)
    return res[["target", "language", "estimate", "se", "df", "statistic", "p_value", "n"]]


def _aso_frame(delta, a, b, rng, caveats) -> pd.DataFrame:
    """ASO of the per-seed family scores (XTREME-weighted mean delta of each family at each seed)."""
    cell = delta.groupby(["intermediate_family", "intermediate", "seed", "encoder", "target"])["delta"].mean()
    fam_seed = (
        cell.groupby(["intermediate_family", "intermediate", "seed"])
        .mean()
        .groupby(["intermediate_family", "seed"])
        .mean()
    )
    sa, sb = fam_seed.get(a, pd.Series(dtype=float)), fam_seed.get(b, pd.Series(dtype=float))
    if sa.empty or sb.empty:
        return pd.DataFrame()
    rows = []
    for x, y, label in ((sa, sb, f"{a} over {b}"), (sb, sa, f"{b} over {a}")):
        r = significance.aso(x.to_numpy(), y.to_numpy(), rng=rng)
        rows.append(
            {
                "comparison": label,
                "epsilon": r["epsilon"],
                "eps_min": r["eps_min"],
                "n_a": r["n_a"],
                "n_b": r["n_b"],
                "warning": r["warning"],
            }
        )
    if rows[0]["warning"]:
        caveats.append(rows[0]["warning"])
    return pd.DataFrame(rows)


def _effect_sizes(delta, g, task, a, b) -> pd.DataFrame:
    tl = effects.contrast_by(delta, ["target", "language"], a, b).dropna(subset=["estimate"])
    rows = [
        {
            "target": "all",
            "measure": "cohens_dz (languages)",
            "estimate": significance.cohens_dz(g["estimate"]),
        },
        {
            "target": "all",
            "measure": "rank_biserial (languages)",
            "estimate": significance.rank_biserial(g["estimate"]),
        },
        {
            "target": "all",
            "measure": "cliffs_delta (tasks)",
            "estimate": significance.cliffs_delta(
                task.loc[task.intermediate_family == a, "estimate"],
                task.loc[task.intermediate_family == b, "estimate"],
            ),
        },
    ]
    for target, sub in tl.groupby("target", sort=True):
        rows.append(
            {
                "target": target,
                "measure": "cohens_dz (languages)",
                "estimate": significance.cohens_dz(sub["estimate"]),
            }
        )
        rows.append(
            {
                "target": target,
                "measure": "rank_biserial (languages)",
                "estimate": significance.rank_biserial(sub["estimate"]),
            }
        )
    return pd.DataFrame(rows)


def _answer(contrast, wins, n_tasks, n_targets, a, b, level, synthetic) -> dict:
    by = contrast.set_index("method")
    method = next(
        (
            m
            for m in ("mixed", "bootstrap_bca", "bootstrap_percentile")
            if m in by.index and np.isfinite(by.loc[m, "estimate"]) and np.isfinite(by.loc[m, "ci_low"])
        ),
        "bootstrap_percentile",
    )
    r = by.loc[method]
    bonf = wins[wins["method"] == "bonferroni"] if len(wins) else wins
    k_hat = int(bonf["k_hat"].iloc[0]) if len(bonf) else np.nan
    n_lang = int(bonf["n"].iloc[0]) if len(bonf) else np.nan
    # The same digits as the report's tables: decimals from the CI width, p and df as fmt_p / fmt_df.
    d = fmt.decimals_for_width(r["ci_high"] - r["ci_low"])
    df_txt = f", df = {fmt.fmt_df(r['df'])}" if np.isfinite(r["df"]) else ""
    p = fmt.fmt_p(r["p_value"])
    p_txt = "" if p == fmt.DASH else f", p {p}" if p.startswith("<") else f", p = {p}"
    A, B = a.upper(), b.upper()
    sentence = (
        f"{'[Synthetic data] ' if synthetic else ''}Averaged over {n_targets} target task(s), the gain from "
        f"{A} intermediate training ({n_tasks[0]} task(s)) minus the gain from {B} ({n_tasks[1]} task(s)) is "
        f"{fmt.fmt_num(r['estimate'], d, sign=True)} points ({int(round(level * 100))}% CI "
        f"{fmt.fmt_num(r['ci_low'], d, sign=True)} to {fmt.fmt_num(r['ci_high'], d, sign=True)}; "
        f"{LABELS.get(method, method)}{df_txt}{p_txt})"
    )
    if np.isfinite(n_lang):
        sentence += f"; {A} beats {B} in {k_hat} of {n_lang} languages (partial conjunction, Bonferroni)"
    return {
        "estimate": float(r["estimate"]),
        "ci_low": float(r["ci_low"]),
        "ci_high": float(r["ci_high"]),
        "df": float(r["df"]),
        "p_value": float(r["p_value"]),
        "k_hat": k_hat,
        "n_languages": n_lang,
        "method": method,
        "sentence": sentence + ".",
        "a": a,
        "b": b,
        "level": level,
    }


def is_synthetic(scores: pd.DataFrame) -> bool:
    """True when an encoder or a target name starts with "synth"."""
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
) -> Analysis:
    """Run every analysis step on a scores frame (the scores.csv contract) and collect the results.

    Returns an :class:`Analysis` whose ``frames`` hold coverage, missing, degenerate, cell_stats,
    main_table, deltas, family_means, contrast (one row per method: mixed, bootstrap_percentile,
    bootstrap_bca, sign_flip, wilcoxon, family_permutation), per_target, per_language,
    language_wins, variance_components, seed_plan, aso, effect_sizes.

    >>> import numpy as np
    >>> from analysis.simulate import simulate_scores
    >>> res = analyze(simulate_scores(np.random.default_rng(0), n_targets=2, n_languages=4, encoder="synth-sim"),
    ...               rng=np.random.default_rng(1), n_boot=200)
    >>> res.synthetic, res.answer["n_languages"]
    (True, 4)
    """
    v = validate(scores, allow_incomplete=allow_incomplete, chance=chance)
    prim = v.scores
    caveats = list(v.warnings)
    delta = effects.deltas(prim)
    fams = sorted(set(delta["intermediate_family"]))
    for fam in (a, b):
        if fam not in fams:
            raise ValueError(
                f"no intermediate task of family '{fam}' has a paired '{'none'}' baseline; families "
                f"with deltas: {fams}. Choose a and b among them (e.g. --a nli --b qa)."
            )
    synthetic = bool(synthetic or is_synthetic(prim))
    des = bootstrap.design(delta, a, b)
    boot = bootstrap.hierarchical_bootstrap(
        delta, rng=rng, a=a, b=b, n_boot=n_boot, level=level, per_target=True
    )
    mixed_row, fit = _mixed(delta, a, b, level, caveats)
    rows, extra = _robustness_rows(delta, des, boot, a, b, rng)
    contrast = pd.DataFrame([mixed_row, *rows])[CONTRAST_COLUMNS]
    per_language = per_language_frame(delta, a, b)
    pooled = per_language[per_language["target"] == "all"]
    finite = pooled["p_value"].dropna()
    wins = (
        significance.partial_conjunction(finite)
        if len(finite)
        else pd.DataFrame(columns=["method", "k_hat", "n", "alpha"])
    )
    variance, plan = _seed_frames(fit, a, b, caveats)
    n_tasks = (int(des.is_a.sum()), int((~des.is_a).sum()))
    _design_caveats(caveats, n_tasks, extra["family_permutation"], a, b, delta, synthetic)
    frames = {
        "coverage": v.coverage,
        "missing": v.missing,
        "degenerate": v.degenerate,
        "cell_stats": effects.cell_stats(prim),
        "main_table": _main_table(prim, delta),
        "deltas": delta,
        "family_means": effects.family_means(delta),
        "contrast": contrast,
        "bootstrap": boot,
        "per_target": per_target_frame(delta, boot, a, b, rng),
        "per_language": per_language,
        "language_wins": wins,
        "variance_components": variance,
        "seed_plan": plan,
        "aso": _aso_frame(delta, a, b, rng, caveats),
        "effect_sizes": _effect_sizes(delta, extra["language_g"], extra["task"], a, b),
    }
    answer = _answer(contrast, wins, n_tasks, len(des.targets), a, b, level, synthetic)
    settings = {
        "seed": seed,
        "n_boot": n_boot,
        "level": level,
        "allow_incomplete": allow_incomplete,
        "a": a,
        "b": b,
        "versions": {"numpy": np.__version__, "scipy": scipy.__version__, "pandas": pd.__version__},
    }
    return Analysis(
        experiment=experiment,
        synthetic=synthetic,
        answer=answer,
        caveats=caveats,
        frames=frames,
        settings=settings,
    )


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
            f"{delta['encoder'].nunique()} encoders are averaged with equal weight; analyse each "
            "encoder's rows separately for per-encoder answers."
        )
    if synthetic:
        caveats.insert(
            0, "SYNTHETIC DATA: these numbers come from a simulated benchmark, not from real models."
        )


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not math.isfinite(float(value)) else float(value)
    return value


def write_frames(analysis: Analysis, outdir: Path) -> list[Path]:
    """Write every frame as ``<name>.csv``, plus answer.json, caveats.txt and settings.json.

    The only I/O of the analysis layer besides reading scores. Returns the written paths.
    """
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, frame in analysis.frames.items():
        path = outdir / f"{name}.csv"
        atomic_write_text(path, frame.to_csv(index=False, lineterminator="\n"))
        paths.append(path)
    answer = {"experiment": analysis.experiment, "synthetic": analysis.synthetic, **analysis.answer}
    for name, payload in (("answer.json", answer), ("settings.json", analysis.settings)):
        atomic_write_text(outdir / name, json.dumps(_jsonable(payload), indent=2, sort_keys=True) + "\n")
        paths.append(outdir / name)
    atomic_write_text(outdir / "caveats.txt", "".join(f"- {c}\n" for c in analysis.caveats))
    paths.append(outdir / "caveats.txt")
    return paths


def calibration_methods(a: str = "nli", b: str = "qa", *, n_boot: int = 1000, level: float = 0.95) -> dict:
    """Robustness methods as plug-ins for analysis.calibration: name -> f(delta, rng) -> (ci_low, ci_high, p_value).

    bootstrap_percentile / bootstrap_bca give an interval (p NaN); sign_flip and
    family_permutation give a p-value (interval NaN).
    """

    def boot(method):
        def run(delta, rng):
            r = bootstrap.hierarchical_bootstrap(delta, rng=rng, a=a, b=b, n_boot=n_boot, level=level)
            row = r[r["method"] == method].iloc[0]
            return float(row["ci_low"]), float(row["ci_high"]), np.nan

        return run

    def sign_flip(delta, rng):
        g = effects.language_weights(delta, a, b)["estimate"]
        return np.nan, np.nan, significance.sign_flip_test(g, rng=rng)["p_value"]

    def family_permutation(delta, rng):
        t = task_effects(delta)
        return (
            np.nan,
            np.nan,
            significance.family_permutation_test(t["estimate"], t["intermediate_family"], a, b)["p_value"],
        )

    return {
        "bootstrap_percentile": boot("bootstrap_percentile"),
        "bootstrap_bca": boot("bootstrap_bca"),
        "sign_flip": sign_flip,
        "family_permutation": family_permutation,
    }
