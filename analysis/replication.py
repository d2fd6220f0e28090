"""The replication table: each claim of Phang et al. (2020) against this grid's estimate.

The claims, the paper's values and their sources live in one data file,
``analysis/data/phang2020_claims.yaml`` (never in templates); it also says which grid names stand
for the paper's conditions (``roles``) and states the rule of each claim kind. Every estimate comes
from the run-level machinery of the main table and :mod:`analysis.oracle`: a seed's value is an
average over targets (language mean per target) of its run-level gains over ``none`` (a run's
language mean minus that of its ``none`` run), so the seed (a fresh stage, run and baseline run)
is the unit; estimate = mean over seeds, 95 % CI = t over seeds (df = seeds - 1). For the
average-gain claims (kinds ``gain`` and ``oracle``) the average is
:func:`analysis.oracle.average_scope`'s: the official XTREME (XTREME-R) score when the grid holds
the suite on its official languages, else the equal-target average over the grid's targets,
named in the ``average`` column as NOT the official score. Direction claims use every target.

Verdicts: ``consistent``, ``not consistent``, ``inconclusive`` (a direction claim whose CI
contains 0) and ``not testable`` (a needed condition or target is not in the grid, or fewer than
2 seeds). The rule of each row is in its ``rule`` column. On a synthetic grid the stand-ins of the
data file are used and :func:`replication_frame` marks every row ``synthetic``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from analysis.oracle import HELD_OUT, average_scope, oracle_frame, run_gains, seed_t_row
from xitt.schema import NONE

CLAIMS_FILE = Path(__file__).parent / "data" / "phang2020_claims.yaml"
REPLICATION_COLUMNS = [
    "claim",
    "text",
    "paper_value",
    "unit",
    "estimate",
    "ci_low",
    "ci_high",
    "n",
    "verdict",
    "rule",
    "conditions",
    "average",
    "synthetic",
]
RULES = {
    "gain": "consistent when the paper's value lies in the 95 % CI",
    "oracle": "consistent when the paper's value lies in the 95 % CI (honest oracle: held-out seeds)",
    "top": "CI of weakest named - strongest other above 0: consistent; below 0: not consistent; else inconclusive",
    "target_order": "CI of (named targets - others) above 0: consistent; below 0: not consistent; else inconclusive",
    "variant_order": "CI of (plain - variant) above 0: consistent; below 0: not consistent; else inconclusive",
}


def load_claims(path: str | Path = CLAIMS_FILE) -> dict:
    """The claims file: {"paper", "source", "roles", "claims"}."""
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


def resolve(role: dict, names, synthetic: bool) -> list[str]:
    """The grid names that stand for a role: those of its ``names`` present (in its order), else
    every name matching one of its ``patterns`` (re.fullmatch), else, on synthetic grids only, those
    of its ``synthetic`` stand-ins present. Empty when the grid has none."""
    names = sorted(set(map(str, names)))
    hits = [n for n in role.get("names", []) if n in names]
    hits = hits or [n for n in names if any(re.fullmatch(p, n) for p in role.get("patterns", []))]
    if synthetic and not hits:
        hits = [n for n in role.get("synthetic", []) if n in names]
    return hits


def _seed_avg(gains: pd.DataFrame, targets) -> pd.Series:
    """Per (intermediate, seed): mean over ``targets`` of the run gains (complete seeds only)."""
    sub = gains[gains["target"].isin(targets)]
    per = sub.groupby(["intermediate", "seed"])["gain"].agg(["mean", "size"])
    return per.loc[per["size"] == len(targets), "mean"]


def _direction(values: pd.Series, level: float) -> tuple[dict, str]:
    row = seed_t_row("", "", values.dropna().to_numpy(float), level, "")
    if not row["n"] > 1:
        return row, "not testable"
    if row["ci_low"] > 0:
        return row, "consistent"
    return row, "not consistent" if row["ci_high"] < 0 else "inconclusive"


def _claim_values(claim: dict, gains: pd.DataFrame, names: dict, variants: set) -> tuple[pd.Series, str]:
    """(per-seed values, conditions used) of a direction claim (top, target_order, variant_order)."""
    targets = sorted(gains["target"].unique())
    inters = sorted(gains["intermediate"].unique())
    avg = _seed_avg(gains, targets).unstack("intermediate")
    inters = [i for i in inters if i in avg]  # intermediates with a seed that has every target
    kind = claim["kind"]
    if kind == "top":
        named = [names[r][0] for r in claim["needs"]]
        if not set(named) <= set(inters):
            return pd.Series(dtype=float), ", ".join(named)
        pool = inters if claim.get("among") == "all" else [i for i in inters if i not in variants]
        others = [i for i in pool if i not in named]
        if not others:
            return pd.Series(dtype=float), ", ".join(named)
        strongest, weakest = avg[others].mean().idxmax(), avg[named].mean().idxmin()
        return avg[weakest] - avg[strongest], f"{weakest} vs {strongest}"
    if kind == "target_order":
        picked = [t for r in claim["targets"] for t in names.get(r) or []]
        versus = [t for r in claim.get("versus", []) for t in names[r]] or [
            t for t in targets if t not in picked
        ]
        if not versus:
            return pd.Series(dtype=float), ", ".join(picked)
        by_target = gains.groupby(["target", "seed"])["gain"].mean().unstack("target")
        label = f"{', '.join(picked)} vs {', '.join(versus)}"
        return by_target[picked].mean(axis=1) - by_target[versus].mean(axis=1), label
    plain = [i for i in inters if i not in variants]
    pairs, diffs = [], []
    for variant in [v for v in names[claim["needs"][0]] if v in inters]:
        base = max((p for p in plain if p in variant), key=len, default=None)
        diffs.append((avg[base] if base else avg[plain].mean(axis=1)) - avg[variant])
        pairs.append(f"{base or 'mean of plain'} vs {variant}")
    if not diffs:
        return pd.Series(dtype=float), ", ".join(names[claim["needs"][0]])
    return pd.concat(diffs, axis=1).mean(axis=1), "; ".join(pairs)


def _row(claim: dict, **values) -> dict:
    row = {c: np.nan for c in REPLICATION_COLUMNS}
    row.update(
        claim=str(claim["id"]),
        text=claim["text"],
        paper_value=claim.get("value", np.nan),
        unit=claim.get("unit", "XTREME-average points"),
        rule=RULES[claim["kind"]],
        conditions="",
        average="",
        verdict="not testable",
    )
    row.update(values)
    return row


def replication_frame(
    delta: pd.DataFrame, *, synthetic: bool, claims: dict | None = None, level: float = 0.95
) -> pd.DataFrame:
    """One row per claim of the claims file (REPLICATION_COLUMNS), for one encoder: the paper's
    (XLM-R large: the file's ``encoder`` role) when the grid has it, else the first by name (the
    ``conditions`` column names it; ``--encoder`` analyses another).

    ``delta``: :func:`analysis.effects.deltas`. ``synthetic``: use the stand-ins and mark the rows.
    """
    claims = claims or load_claims()
    encoders = sorted(delta["encoder"].unique())
    encoder = (resolve(claims["roles"].get("encoder", {}), encoders, False) or encoders)[0]
    gains = run_gains(delta[(delta["encoder"] == encoder) & (delta["intermediate"] != NONE)])
    inters, targets = gains["intermediate"].unique(), gains["target"].unique()
    variants = {
        n for r in claims.get("variant_roles", []) for n in resolve(claims["roles"][r], inters, synthetic)
    }
    rows = []
    for claim in claims["claims"]:
        on_targets = [*claim.get("targets", []), *claim.get("versus", [])]
        names = {r: resolve(claims["roles"][r], inters, synthetic) for r in claim.get("needs", [])}
        names.update({r: resolve(claims["roles"][r], targets, synthetic) for r in on_targets})
        missing = [r for r, n in names.items() if not n]
        if any(names[r] for r in claim.get("targets", [])):  # some of the named targets are enough
            missing = [r for r in missing if r not in claim.get("targets", [])]
        if missing:
            rows.append(_row(claim, conditions=f"not in the grid: {', '.join(missing)}"))
            continue
        rows.append(_estimate(claim, gains, delta, names, variants, level, encoder))
    out = pd.DataFrame(rows, columns=REPLICATION_COLUMNS)
    out["synthetic"] = bool(synthetic)
    return out


def _estimate(claim, gains, delta, names, variants, level, encoder) -> dict:
    kind = claim["kind"]
    average = ""
    if kind in ("gain", "oracle"):
        if kind == "gain":
            cond = names[claim["needs"][0]][0]
            scoped, average = average_scope(
                delta[(delta["encoder"] == encoder) & (delta["intermediate"] != NONE)]
            )
            scoped_gains = run_gains(scoped)
            avg = _seed_avg(scoped_gains, sorted(scoped_gains["target"].unique())).unstack("intermediate")
            values = avg[cond].dropna() if cond in avg else pd.Series(dtype=float)  # no complete seed: none
            stats_row = seed_t_row("", "", values.to_numpy(float), level, "")
        else:
            cond = "best per target, held-out seeds"
            summary, _ = oracle_frame(delta[delta["encoder"] == encoder], level=level)
            stats_row = summary.set_index("method").loc[HELD_OUT].to_dict()
            average = stats_row["average"]
        ok = stats_row["n"] > 1 and np.isfinite(stats_row["ci_low"])
        inside = ok and stats_row["ci_low"] <= claim["value"] <= stats_row["ci_high"]
        verdict = "not testable" if not ok else ("consistent" if inside else "not consistent")
    else:
        values, cond = _claim_values(claim, gains, names, variants)
        stats_row, verdict = _direction(values, level)
    keep = {k: stats_row[k] for k in ("estimate", "ci_low", "ci_high", "n")}
    return _row(claim, **keep, verdict=verdict, conditions=f"{encoder}: {cond}", average=average)
