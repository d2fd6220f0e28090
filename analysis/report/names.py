"""Display names: what a reader sees instead of an id (``squad_v1`` -> ``SQuAD 1.1``).

Three sources, later ones win: the methods and columns below, the ``display:`` field of each task
in the task YAML files, and the grid's ``display:`` mapping (``display: {squad_v1: SQuAD 1.1}``).
The command line collects the last two (the analysis layer reads no task files) and hands a
:class:`Names` to the report and the terminal summary. An id without a display name is shown as
it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# Method ids of the result frames (analysis.contrast, analysis.significance) -> what a paper calls them.
METHODS = {
    "mixed": "mixed model of the replication units, Satterthwaite df",
    "task_bounded": "task-bounded test over per-task means",  # a t, or z after a singular fit
    "task_t_test": "t-test over per-task means",
    "no_inference": "one task per family: no CI or p-value is possible",
    "bootstrap_percentile": "percentile bootstrap",
    "bootstrap_bca": "BCa bootstrap",
    "sign_flip": "sign flip (languages)",
    "wilcoxon": "Wilcoxon (languages)",
    "family_permutation": "family permutation (tasks)",
    "bonferroni": "Bonferroni",
    "t over seeds": "t over seeds",
}

# Family ids -> names in text; other families are shown as their id.
FAMILIES = {"nli": "NLI", "qa": "QA"}


@dataclass(frozen=True)
class Names:
    """Raw id -> display name; calling it on an id without one returns the id."""

    mapping: Mapping[str, str] = field(default_factory=lambda: dict(METHODS))

    def __call__(self, raw) -> str:
        return str(self.mapping.get(str(raw), raw))

    def family(self, raw) -> str:
        """A family's display name: the mapping's, else FAMILIES' ('nli' -> 'NLI'), else the id."""
        return str(self.mapping.get(str(raw), FAMILIES.get(str(raw), raw)))


def display_names(
    tasks: Mapping[str, str] | None = None, overrides: Mapping[str, str] | None = None
) -> Names:
    """Methods < task YAML ``display:`` < the grid's ``display:``."""
    return Names({**METHODS, **(tasks or {}), **{str(k): str(v) for k, v in (overrides or {}).items()}})
