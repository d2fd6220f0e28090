"""The effective training settings of a grid, per encoder and task, with where each value came from.

``xitt plan`` prints this table under the DAG; with ``--full`` it adds the recipe source of
every recipe value (repository@commit:path).
"""

from __future__ import annotations

from xitt.grid.recipes import encoder_key
from xitt.grid.spec import TRAIN_KEYS, GridSpec
from xitt.tasks import NONE, Registry

# Shown for every task (the settings that differ most between recipes); others when set anywhere.
MAIN_KEYS = ("lr", "epochs", "batch_size", "grad_accum", "max_length")
ORIGIN_MARK = {"task YAML": "Y", "grid train": "G", "default": "D"}
# Retrieval targets are not trained: only these settings matter for them.
RETRIEVAL_KEYS = ("max_length", "retrieval_layer", "retrieval_pool")
# a retrieval target fine-tuned as a dual encoder (xitt.train.dual): its training settings instead
DUAL_KEYS = ("retrieval_training", "candidate_pool", *MAIN_KEYS, "max_query_length")
# Settings that only change how a run is executed or logged, never what it computes.
QUIET_KEYS = ("eval_batch_size", "precision", "num_threads")


def _mark(origin: str) -> str:
    if origin.startswith("recipe"):
        return "R"
    if origin.startswith("grid task_train"):
        return "T"
    return ORIGIN_MARK.get(origin, "-")


def grid_tasks(grid: GridSpec) -> list[tuple[str, str]]:
    """(task, role) of every task the grid trains or evaluates, intermediates first, in grid order."""
    seen: dict[str, str] = {}
    for inter in grid.intermediates:
        if inter.name != NONE:
            seen.update(dict.fromkeys((t for t in inter.tasks if t not in seen), "intermediate"))
    seen.update(dict.fromkeys((t for t in grid.targets if t not in seen), "target"))
    return list(seen.items())


def describe_settings(grid: GridSpec, reg: Registry, *, full: bool = False) -> str:
    """Text block: one line per (encoder, task) with ``setting=value[origin]``.

    Origins: D = TrainConfig default, Y = task YAML, R = the grid's recipe, G = grid ``train``,
    T = grid ``task_train``. Lists the tasks and encoders the recipe does not cover.
    """
    recipe = grid.recipe
    head = f"recipe {recipe.name}: {recipe.title}" if recipe else "no recipe (task YAML values)"
    lines = [
        f"effective training settings ({head}); [origin] D default, Y task YAML, R recipe, G grid train, "
        "T task_train"
    ]
    uncovered = set()
    for enc, enc_path in grid.encoders:
        for task, role in grid_tasks(grid):
            cfg = grid.train_config(task, reg, enc_path)
            origins = grid.setting_origins(task, reg, enc_path)
            keys = [k for k in TRAIN_KEYS if k in MAIN_KEYS or (k in origins and k not in QUIET_KEYS)]
            if not reg.get(task).trains_on_target and role == "target":
                keys = list(DUAL_KEYS if cfg.retrieval_training == "dual" else RETRIEVAL_KEYS)
            parts = [f"{k}={getattr(cfg, k)}[{_mark(origins.get(k, 'default'))}]" for k in keys]
            lines.append(f"  {enc:<12} {task:<14} {role:<12} " + " ".join(parts))
            if recipe is not None and not any(
                o.startswith("recipe") and "default" not in o for o in origins.values()
            ):
                uncovered.add(task)
    if recipe is not None:
        lines += _recipe_notes(grid, uncovered)
        if full:
            lines += _recipe_sources(grid, reg)
    return "\n".join(lines)


def _recipe_sources(grid: GridSpec, reg: Registry) -> list[str]:
    """One line per (encoder, task, recipe setting): the full citation of the value."""
    out = []
    for enc, enc_path in grid.encoders:
        for task, role in grid_tasks(grid):
            for block, label in grid.recipe.layers(task, role, enc_path):
                for key, value in block.train.items():
                    cite = grid.recipe.cite(block.source_of(key))
                    out.append(f"    {enc} {task} {key}={value}  <- {label}: {cite}")
    return out


def _recipe_notes(grid: GridSpec, uncovered: set[str]) -> list[str]:
    """What the recipe leaves to other layers: tasks without an entry, encoders without values; sources."""
    recipe, tasks = grid.recipe, dict(grid_tasks(grid))
    lines = []
    if uncovered:
        lines.append(
            f"  recipe {recipe.name} has no entry for: {', '.join(sorted(uncovered))} "
            "(their values come from the task YAML and the recipe's role defaults)"
        )
    tables = [e.encoders for t, e in recipe.tasks.items() if t in tasks and e.encoders]
    unknown = [enc for enc, path in grid.encoders if not any(encoder_key(path, table) for table in tables)]
    if tables and unknown:
        lines.append(
            f"  recipe {recipe.name} has no encoder-specific values for: {', '.join(unknown)} (keyed by hub "
            "id, e.g. xlm-roberta-large; per-encoder settings such as retrieval_layer keep the values above)"
        )
    lines.append("  sources: " + "; ".join(f"{a} = {s}" for a, s in recipe.sources.items()))
    return lines
