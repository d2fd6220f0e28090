"""The contract between the analysis and everything that shows it: :class:`Analysis`.

:func:`analysis.pipeline.analyze` returns one; the report (``analysis/report/``), the terminal
summary and the CSV export read it, and nothing else. Every frame is a named field of
:class:`Frames` whose documented columns are checked when the object is built, so renaming a
frame or a column breaks the build of this object (or the attribute access of its readers)
instead of making a table silently vanish. Frames may have extra columns; an empty frame still
carries its documented columns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import pandas as pd

from analysis.multiboot import MULTIBOOT_COLUMNS
from analysis.oracle import CHOICE_COLUMNS, ORACLE_COLUMNS
from analysis.replication import REPLICATION_COLUMNS

RESULT = ("estimate", "ci_low", "ci_high", "se", "df", "statistic", "p_value")


def _frame(*columns: str, doc: str):
    return field(metadata={"columns": tuple(columns), "doc": doc})


def _optional(columns, doc: str):
    """A frame that may be left out (empty with its columns by default): the paper comparisons."""
    return field(
        default_factory=lambda: pd.DataFrame(columns=list(columns)),
        metadata={"columns": tuple(columns), "doc": doc},
    )


@dataclass
class Frames:
    """The result frames of one analysis; ``columns(name)`` lists a frame's guaranteed columns."""

    coverage: pd.DataFrame = _frame(
        "encoder", "target", "n_expected", "n_present", "n_missing", doc="expected and present cells"
    )
    missing: pd.DataFrame = _frame(
        "encoder", "intermediate", "target", "language", "seed", doc="cells of the grid without a score"
    )
    degenerate: pd.DataFrame = _frame(
        "run_id",
        "encoder",
        "intermediate",
        "target",
        "seed",
        "mean_score",
        "chance",
        "reason",
        doc="runs at 0 or at chance, excluded",
    )
    cell_stats: pd.DataFrame = _frame(
        "encoder",
        "intermediate",
        "intermediate_family",
        "target",
        "language",
        "mean",
        "sd",
        "n",
        doc="mean and sd over seeds per (encoder, intermediate, target, language)",
    )
    main_table: pd.DataFrame = _frame(
        "encoder",
        "intermediate",
        "intermediate_family",
        "target",
        "mean",
        "sd",
        "n",
        "delta",
        "p_value",
        "p_adj",
        doc="per encoder x intermediate x target (+ avg): seed mean and sd of the language mean, "
        "delta vs none, its t-test over seeds (the run is the unit), Holm-corrected across the cells",
    )
    deltas: pd.DataFrame = _frame(
        "encoder",
        "intermediate",
        "intermediate_family",
        "target",
        "language",
        "seed",
        "delta",
        doc="score(intermediate) - score(none), paired on encoder, target, language, seed",
    )
    family_means: pd.DataFrame = _frame(
        "intermediate_family", "target", "estimate", "sd", "n", doc="mean delta per family and target"
    )
    contrast: pd.DataFrame = _frame(
        "method", *RESULT, "n", "note", doc="the a - b contrast, one row per method (mixed model first)"
    )
    bootstrap: pd.DataFrame = _frame(
        "target", "method", "estimate", "ci_low", "ci_high", "se", "n", doc="bootstrap intervals"
    )
    per_target: pd.DataFrame = _frame(
        "target",
        *RESULT,
        "p_adj",
        "p_adj_bh",
        "n",
        "wins",
        "method",
        doc="the a - b contrast per target task; p adjusted across targets (Holm, BH)",
    )
    per_language: pd.DataFrame = _frame(
        "target", "language", "estimate", "se", "df", "statistic", "p_value", "n", doc="a - b per language"
    )
    language_wins: pd.DataFrame = _frame(
        "method", "k_hat", "n", "alpha", doc="partial conjunction: a beats b in k_hat of n languages"
    )
    variance_components: pd.DataFrame = _frame(
        "component",
        "variance",
        "sd",
        "share",
        doc="the mixed model's variance components, one per replication unit",
    )
    seed_plan: pd.DataFrame = _frame(
        "design",
        "n_seeds",
        "n_languages",
        "n_intermediate_per_family",
        "half_width",
        "task_floor_half_width",
        "power",
        doc="expected precision of other designs",
    )
    aso: pd.DataFrame = _frame(
        "comparison", "epsilon", "eps_min", "n_a", "n_b", "warning", doc="almost stochastic order over seeds"
    )
    effect_sizes: pd.DataFrame = _frame("target", "measure", "estimate", doc="standardised effect sizes")
    encoders: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["encoder", "method", *RESULT, "n", "note"]),
        metadata={
            "columns": ("encoder", "method", *RESULT, "n", "note"),
            "doc": "per-encoder answers, 'all', and the encoder x family interaction (several encoders)",
        },
    )

    # The comparisons with Phang et al. (2020): analysis.paper (empty when the data does not support them).
    oracle: pd.DataFrame = _optional(
        ORACLE_COLUMNS, "best intermediate per target: naive and honest (analysis.oracle)"
    )
    oracle_choices: pd.DataFrame = _optional(
        CHOICE_COLUMNS, "the intermediate each oracle method chose per target"
    )
    replication: pd.DataFrame = _optional(
        REPLICATION_COLUMNS, "the paper's claims vs this grid (analysis.replication)"
    )
    example_level: pd.DataFrame = _optional(
        MULTIBOOT_COLUMNS,
        "intermediate vs none by the multi-bootstrap over seeds x examples (analysis.multiboot)",
    )

    def __post_init__(self):
        for f in fields(self):
            frame = getattr(self, f.name)
            if not isinstance(frame, pd.DataFrame):
                raise TypeError(f"Frames.{f.name} must be a DataFrame, got {type(frame).__name__}")
            missing = [c for c in f.metadata["columns"] if c not in frame.columns]
            if missing:
                raise ValueError(
                    f"Frames.{f.name} lacks its documented columns {missing}; has {list(frame.columns)}"
                )

    @staticmethod
    def columns(name: str) -> tuple[str, ...]:
        """The documented columns of frame ``name`` (KeyError for an unknown frame)."""
        return {f.name: f.metadata["columns"] for f in fields(Frames)}[name]

    @staticmethod
    def empty(name: str) -> pd.DataFrame:
        """An empty frame with the documented columns of ``name``."""
        return pd.DataFrame(columns=list(Frames.columns(name)))

    def items(self) -> list[tuple[str, pd.DataFrame]]:
        """(name, frame) in declaration order."""
        return [(f.name, getattr(self, f.name)) for f in fields(self)]


@dataclass(frozen=True)
class Answer:
    """The headline: the a - b contrast by ``method`` (the contrast frame's row) and k_hat of
    n_languages from the Bonferroni partial conjunction (None when no language could be tested)."""

    a: str
    b: str
    level: float
    method: str
    estimate: float
    ci_low: float
    ci_high: float
    df: float
    p_value: float
    k_hat: int | None
    n_languages: int | None
    n_tasks_a: int
    n_tasks_b: int
    n_targets: int

    def to_dict(self) -> dict:
        """Plain JSON-ready values (non-finite floats -> None)."""
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = None if isinstance(v, float) and not math.isfinite(v) else v
        return out


@dataclass
class Analysis:
    """Everything :func:`analysis.pipeline.analyze` found about one experiment, for the contrast
    a - b at confidence ``level``. ``answer`` is None for a descriptive-only analysis
    (:func:`analysis.pipeline.describe`: scores without the ``none`` baseline), whose frames
    other than coverage, missing, degenerate, cell_stats and main_table are empty."""

    experiment: str
    synthetic: bool
    answer: Answer | None
    caveats: list[str]
    frames: Frames
    settings: dict = field(default_factory=dict)
    a: str = "nli"
    b: str = "qa"
    level: float = 0.95
