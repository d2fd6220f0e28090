"""Display models of the comparisons with Phang et al. (2020): the oracle, the replication table
and the example-level uncertainty (frames of :mod:`analysis.paper`). Each function returns the
blocks of one report section, or [] when its frame is empty (the section is then left out).
"""

from __future__ import annotations

import pandas as pd

from analysis.multiboot import MIN_SEEDS
from analysis.report import formatting as fmt
from analysis.report.tables import Cell, Options, Table, Text, caption

SYNTHETIC_NOTE = (
    "SYNTHETIC COMPARISON: this grid is synthetic; its conditions only stand in for the paper's "
    "(the stand-ins are listed in analysis/data/phang2020_claims.yaml), so the verdicts say whether "
    "the toolkit's machinery works, not whether the paper replicates."
)


def oracle_blocks(analysis, opts: Options) -> list:
    """Input: ``oracle`` (encoder, method, estimate, ci_low, ci_high, df, n, average, note) and
    ``oracle_choices`` (encoder, method, target, fold, intermediate)."""
    f = analysis.frames.oracle
    if f.empty:
        return []
    est = fmt.estimate_ci_column(f["estimate"], f["ci_low"], f["ci_high"], sign=True)
    rows = [
        [
            Cell(opts.names(r["encoder"])),
            Cell(r["method"]),
            Cell(e),
            Cell(fmt.fmt_df(r["df"])),
            Cell(fmt.fmt_int(r["n"])),
        ]
        for e, (_, r) in zip(est, f.iterrows())
    ]
    notes = "; ".join(dict.fromkeys(f"{r['method']}: {r['note']}" for _, r in f.iterrows() if r["note"]))
    summary = Table(
        "oracle",
        caption(
            "Best intermediate task per target vs none: the gain of the average named under 'which "
            "average' (the official XTREME score when the grid holds the suite on its official languages, "
            "else the mean over targets of the language means) when each target takes its best "
            "intermediate task. "
            "The naive row chooses and reports on the same test runs and is biased upwards (the best of "
            "several noisy means); the held-out rows choose on one half of the seeds (on their test gains "
            "or their English-dev scores) and report on the other half, both ways round. CI: t over the "
            "reported seeds (the seed is the unit).",
            opts,
        ),
        ["encoder", "selection", "gain [CI]", "df", "seeds"],
        rows,
        stub=2,
    )
    return [summary, Text("how each row chose", notes), *_average_text(f), *_choices(analysis, opts)]


def _average_text(f: pd.DataFrame) -> list:
    """The "which average" note: the label of analysis.oracle.average_scope per encoder."""
    if "average" not in f or not f["average"].astype(bool).any():
        return []
    labels = f.dropna(subset=["average"]).groupby("encoder", sort=True)["average"].first()
    return [Text("which average", "; ".join(f"{enc}: {label}" for enc, label in labels.items() if label))]


def _choices(analysis, opts: Options) -> list:
    c = analysis.frames.oracle_choices
    if c.empty:
        return []
    picked = (
        c.groupby(["encoder", "method", "target"], sort=False)["intermediate"]
        .agg(lambda s: " / ".join(dict.fromkeys(opts.names(x) for x in s)))
        .unstack("target")
    )
    targets = list(picked.columns)
    rows = [
        [Cell(opts.names(enc)), Cell(method), *(Cell(str(picked.loc[(enc, method), t])) for t in targets)]
        for enc, method in picked.index
    ]
    return [
        Table(
            "oracle_choices",
            caption(
                "The intermediate task each selection chose per target (fold 1 / fold 2 when they differ).",
                opts,
            ),
            ["encoder", "selection", *(opts.names(t) for t in targets)],
            rows,
            align="ll" + "l" * len(targets),
            stub=2,
        )
    ]


def replication_blocks(analysis, opts: Options) -> list:
    """Input: ``replication`` (claim, text, paper_value, unit, estimate, ci_low, ci_high, n, verdict,
    rule, conditions, average, synthetic)."""
    f = analysis.frames.replication
    if f.empty:
        return []
    est = fmt.estimate_ci_column(f["estimate"], f["ci_low"], f["ci_high"], sign=True)
    paper = fmt.fmt_plain_column([v if fmt.finite(v) else float("nan") for v in f["paper_value"]])
    rows = [
        [
            Cell(str(r["claim"])),
            Cell(r["text"]),
            Cell(p),
            Cell(e),
            Cell(r["verdict"], bold=r["verdict"] == "consistent"),
        ]
        for p, e, (_, r) in zip(paper, est, f.iterrows())
    ]
    synthetic = bool(f["synthetic"].any())
    table = Table(
        "replication",
        caption(
            ("Synthetic comparison: " if synthetic else "")
            + "Claims of Phang et al. (2020) vs this grid. Paper values: as quoted in xitt's issue 15 from "
            "the paper's abstract and tables (analysis/data/phang2020_claims.yaml). Estimates: per seed, "
            "the average over targets of the run-level gains over none (for the average-gain claims the "
            "average named under 'which average': the official XTREME score only when the grid holds "
            "the suite); mean and 95 % t interval over seeds; points.",
            opts,
        ),
        ["claim", "in one line", "paper", "this grid [95% CI]", "verdict"],
        rows,
        align="llrrl",
    )
    by_rule = f.groupby("rule", sort=False)["claim"].agg(lambda c: ", ".join(map(str, c)))
    rules = "; ".join(f"{claims}: {rule}" for rule, claims in by_rule.items())
    used = "; ".join(f"{r['claim']}: {r['conditions']}" for _, r in f.iterrows() if r["conditions"])
    not_testable = "Not testable: a needed condition or target is not in the grid, or fewer than 2 seeds."
    blocks = [table, Text("rules", f"Verdict rules. {rules}. {not_testable}")]
    if used:
        blocks.append(Text("conditions used", used))
    averages = f["average"].dropna().astype(str) if "average" in f else pd.Series(dtype=str)
    if (averages != "").any():
        claims = f.loc[averages.index, "claim"].astype(str).groupby(averages.to_numpy(), sort=False)
        which = "; ".join(f"{', '.join(c)}: {a}" for a, c in claims if a)
        blocks.append(Text("which average", which))
    if synthetic:
        blocks.insert(0, Text("synthetic", SYNTHETIC_NOTE))
    return blocks


def example_blocks(analysis, opts: Options) -> list:
    """Input: ``example_level`` (encoder, target, intermediate, estimate, ci_low, ci_high, p_value,
    n, n_examples, width_seeds, width_examples, share_seeds, share_examples)."""
    f = analysis.frames.example_level
    if f.empty:
        return []
    blocks = [_width_table(f, opts), _comparison_table(f, opts)]
    if f["ci_low"].isna().any():
        blocks.append(Text("few seeds", FEW_SEEDS_NOTE))
    return blocks


FEW_SEEDS_NOTE = (
    f"Rows with fewer than {MIN_SEEDS} paired seeds show no interval and no p: drawing seeds with "
    "replacement from a handful under-covers where seed noise matters (calibration: 0.80-0.90 with 3 "
    "seeds, 0.87-0.94 with 5, 0.93 with 10). The widths above are descriptive only."
)


def _width_table(f: pd.DataFrame, opts: Options) -> Table:
    g = f.assign(width=f["ci_high"] - f["ci_low"]).groupby(["encoder", "target"], sort=True)
    per = g.agg(
        width=("width", "mean"),
        width_seeds=("width_seeds", "mean"),
        width_examples=("width_examples", "mean"),
        share_seeds=("share_seeds", "mean"),
        n=("n", "max"),
        n_examples=("n_examples", "max"),
    ).reset_index()
    widths = [fmt.fmt_plain_column(per[c]) for c in ("width", "width_seeds", "width_examples")]
    rows = [
        [
            Cell(opts.names(r["encoder"])),
            Cell(opts.names(r["target"])),
            *(Cell(w[i]) for w in widths),
            Cell(f"{100 * r['share_seeds']:.0f}%" if fmt.finite(r["share_seeds"]) else fmt.DASH),
            Cell(fmt.fmt_int(r["n"])),
            Cell(fmt.fmt_int(r["n_examples"])),
        ]
        for i, (_, r) in enumerate(per.iterrows())
    ]
    return Table(
        "example_widths",
        caption(
            "Where the width of the 95 % CI of \u0394 vs none comes from, per target (mean over the "
            "intermediate tasks): the multi-bootstrap over seeds and test examples jointly (Sellam et al. "
            "2022), over seeds only (test sets fixed) and over examples only (every seed); seed share = "
            "var(seeds only) / (var(seeds only) + var(examples only)). Widths in points.",
            opts,
        ),
        ["encoder", "target", "joint", "seeds only", "examples only", "seed share", "seeds", "examples"],
        rows,
        stub=2,
    )


def _comparison_table(f: pd.DataFrame, opts: Options) -> Table:
    est = fmt.estimate_ci_column(f["estimate"], f["ci_low"], f["ci_high"], sign=True)
    rows = [
        [
            Cell(opts.names(r["encoder"])),
            Cell(opts.names(r["target"])),
            Cell(opts.names(r["intermediate"])),
            Cell(e),
            Cell(fmt.fmt_p(r["p_value"])),
        ]
        for e, (_, r) in zip(est, f.iterrows())
    ]
    return Table(
        "example_level",
        caption(
            "\u0394 vs none per target by the paired multi-bootstrap (seeds paired, the same resampled "
            "test examples for both sides, each language's test set resampled on its own; percentile "
            "95 % CI; two-sided bootstrap p). Unlike the t over seeds of the main table, the interval "
            "also carries the sampling variance of the test sets.",
            opts,
        ),
        ["encoder", "target", "intermediate", "\u0394 [95% CI]", "p"],
        rows,
        stub=3,
    )
