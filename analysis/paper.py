"""The comparisons with Phang et al. (2020) that join the analysis when the data supports them.

:func:`paper_frames` computes the frames :class:`analysis.result.Frames` holds for them:

* ``oracle`` / ``oracle_choices`` -- :mod:`analysis.oracle` (needs >= 2 intermediate tasks; the
  English-dev row needs ``dev_scores.csv``);
* ``replication`` -- :mod:`analysis.replication` (always one row per claim; most claims are "not
  testable" on a grid without the paper's conditions);
* ``example_level`` -- :mod:`analysis.multiboot` (needs ``examples.csv.gz``: runs saved with
  ``save_predictions: true``, then ``xitt collect``).

A frame the data does not support stays empty and the report leaves its section out; a step
that fails leaves its frame empty with a caveat naming the error, and never stops the analysis.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import multiboot, oracle, replication


def paper_frames(
    prim: pd.DataFrame,
    delta: pd.DataFrame,
    *,
    rng: np.random.Generator,
    synthetic: bool,
    caveats: list[str],
    dev_scores: pd.DataFrame | None = None,
    examples: pd.DataFrame | None = None,
    level: float = 0.95,
    n_boot: int = 2000,
) -> dict[str, pd.DataFrame]:
    """{oracle, oracle_choices, replication, example_level}; see the module docstring.

    ``prim``: primary score rows (run_id, encoder, intermediate, target, language, seed);
    ``delta``: :func:`analysis.effects.deltas`; ``dev_scores``: dev_scores.csv rows (primary);
    ``examples``: examples.csv.gz rows (EXAMPLE_COLUMNS).
    """
    out: dict[str, pd.DataFrame] = {}
    steps = {
        "oracle": lambda: _oracle(delta, dev_scores, level),
        "replication": lambda: {
            "replication": replication.replication_frame(delta, synthetic=synthetic, level=level)
        },
        "example-level": lambda: _examples(examples, prim, rng, n_boot, level),
    }
    for name, step in steps.items():
        try:
            out.update(step())
        except (ValueError, KeyError, TypeError) as err:
            caveats.append(f"The {name} comparison is left out: {err}")
    return out


def _oracle(delta: pd.DataFrame, dev: pd.DataFrame | None, level: float) -> dict[str, pd.DataFrame]:
    inters = delta.groupby("encoder")["intermediate"].nunique()
    if delta.empty or inters.max() < 2:
        return {}
    if dev is not None:
        dev = dev[dev["primary"]] if "primary" in dev else dev
    summary, choices = oracle.oracle_frame(delta, dev, level=level)
    return {"oracle": summary, "oracle_choices": choices}


def _examples(examples, prim, rng, n_boot: int, level: float) -> dict[str, pd.DataFrame]:
    if examples is None or examples.empty:
        return {}
    frame = multiboot.example_level_frame(examples, prim, rng=rng, n_boot=n_boot, level=level)
    return {"example_level": frame} if len(frame) else {}
