"""Recipes: named, cited presets of training settings and protocol choices (``recipe:`` in a grid).

A recipe file (``xitt/grid/recipes/<name>.yaml``) names its sources once and then gives blocks
of settings, each with the source it was copied from::

    name: xtreme-r
    sources: {xtreme: "google-research/xtreme@838c13b69daafb9328785d16caae2711e4012123"}
    defaults:                        # optional, per role: every intermediate / target task
      target: {source: "xtreme:third_party/run_classify.py", train: {weight_decay: 0.0}}
    tasks:
      xnli:
        source: "xtreme:scripts/train_xnli.sh"
        train: {lr: 2.0e-5, epochs: 5, batch_size: 8, grad_accum: 4}
        encoders:                    # keyed by hub id (or a local folder with that name)
          xlm-roberta-large: {source: "xtreme:scripts/train_xnli.sh", train: {lr: 3.0e-5}}

Inside a recipe the role default is weakest, then the task block, then the encoder block. In the
grid the recipe sits between the task YAML's ``hparams`` and the grid's own ``train`` /
``task_train`` (see xitt.grid.spec): choosing a recipe replaces the task files' generic defaults,
and anything the user writes in the grid still wins. A task or encoder the recipe does not list
keeps the task YAML's values; ``xitt plan`` prints where every effective value came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

RECIPE_DIR = Path(__file__).parent / "recipes"
RECIPE_KEYS = ("name", "title", "description", "sources", "defaults", "tasks")
BLOCK_KEYS = ("source", "train", "note")
TASK_KEYS = (*BLOCK_KEYS, "encoders")
ROLES = ("intermediate", "target")


class RecipeError(ValueError):
    """A recipe file or a recipe name is wrong; the message names the file and the fix."""


@dataclass(frozen=True)
class Block:
    """Settings copied from one place: ``train`` values and their ``source`` (repo@commit:path)."""

    train: Mapping[str, Any]
    source: str | Mapping[str, str]  # one source for all values, or one per value
    note: str = ""

    def source_of(self, key: str) -> str:
        return self.source if isinstance(self.source, str) else self.source[key]


@dataclass(frozen=True)
class TaskRecipe:
    block: Block
    encoders: Mapping[str, Block] = field(default_factory=dict)


@dataclass(frozen=True)
class Recipe:
    name: str
    title: str
    sources: Mapping[str, str]  # alias -> "owner/repo@commit"
    defaults: Mapping[str, Block]  # role -> block
    tasks: Mapping[str, TaskRecipe]
    path: str = ""

    def layers(self, task: str, role: str, encoder_path: str) -> list[tuple[Block, str]]:
        """The recipe's blocks for one (task, role, encoder), weakest first, each with a label."""
        out = []
        if role in self.defaults:
            out.append((self.defaults[role], f"recipe {self.name} ({role} default)"))
        entry = self.tasks.get(task)
        if entry is not None:
            out.append((entry.block, f"recipe {self.name}"))
            key = encoder_key(encoder_path, entry.encoders)
            if key is not None:
                out.append((entry.encoders[key], f"recipe {self.name} ({key})"))
        return out

    def cite(self, source: str) -> str:
        """``alias:path`` -> ``owner/repo@commit:path`` (the full citation of a block)."""
        alias, _, rest = source.partition(":")
        return f"{self.sources[alias]}:{rest}" if alias in self.sources else source


def encoder_key(encoder_path: str, table: Mapping[str, Any]) -> str | None:
    """The key of ``table`` for an encoder: its hub id, or a local folder named like one."""
    if encoder_path in table:
        return encoder_path
    name = Path(encoder_path.rstrip("/")).name
    return name if name in table else None


def available() -> list[str]:
    return sorted(p.stem for p in RECIPE_DIR.glob("*.yaml"))


def _check(mapping: Any, allowed: tuple[str, ...], where: str) -> Mapping:
    if not isinstance(mapping, Mapping):
        raise RecipeError(f"{where} must be a mapping, got {mapping!r}.")
    unknown = [k for k in mapping if k not in allowed]
    if unknown:
        raise RecipeError(f"unknown key(s) {unknown} in {where}; allowed: {', '.join(allowed)}.")
    return mapping


def _block(raw: Any, where: str, sources: Mapping[str, str]) -> Block:
    """One block; ``source`` is one ``alias:path`` for all values, or a mapping value -> ``alias:path``."""
    raw = _check(raw, BLOCK_KEYS, where)
    train = raw.get("train") or {}
    _check(train, tuple(train), f"{where}.train")
    source = raw.get("source")
    per_value = source if isinstance(source, Mapping) else dict.fromkeys(train, source)
    missing = sorted(set(train) - set(per_value))
    bad = [str(s) for s in per_value.values() if str(s or "").partition(":")[0] not in sources]
    if not source or missing or bad:
        raise RecipeError(
            f"{where} needs a 'source' (<alias>:<path>, or one per value) with an alias from 'sources' "
            f"({', '.join(sources)}); every value of a recipe records where it comes from."
            + (f" No source for {missing}." if missing else "")
            + (f" Unknown alias in {bad}." if bad else "")
        )
    return Block(dict(train), source if isinstance(source, str) else dict(source), str(raw.get("note", "")))


def parse_recipe(doc: Mapping[str, Any], where: str) -> Recipe:
    """Build a Recipe from a raw mapping; training keys are checked by the grid (xitt.grid.spec)."""
    _check(doc, RECIPE_KEYS, where)
    sources = doc.get("sources") or {}
    if not sources or not all("@" in str(v) for v in sources.values()):
        raise RecipeError(f"{where}: 'sources' must map aliases to 'owner/repo@commit'.")
    defaults = _check(doc.get("defaults") or {}, ROLES, f"{where} defaults")
    tasks = {}
    for task, entry in _check(doc.get("tasks") or {}, tuple(doc.get("tasks") or {}), where).items():
        _check(entry, TASK_KEYS, f"{where} tasks.{task}")
        encoders = {
            str(enc): _block(block, f"{where} tasks.{task}.encoders.{enc}", sources)
            for enc, block in (entry.get("encoders") or {}).items()
        }
        plain = {k: v for k, v in entry.items() if k != "encoders"}
        tasks[str(task)] = TaskRecipe(_block(plain, f"{where} tasks.{task}", sources), encoders)
    return Recipe(
        name=str(doc.get("name") or Path(where).stem),
        title=str(doc.get("title", "")),
        sources=dict(sources),
        defaults={role: _block(b, f"{where} defaults.{role}", sources) for role, b in defaults.items()},
        tasks=tasks,
        path=where,
    )


def load_recipe(name: str) -> Recipe:
    """A shipped recipe by name (``phang2020``, ``xtreme-r``) or a recipe file by path."""
    path = Path(name) if name.endswith((".yaml", ".yml")) else RECIPE_DIR / f"{name}.yaml"
    if not path.is_file():
        raise RecipeError(
            f"no recipe {name!r}; shipped recipes: {', '.join(available())} (or give a path to a recipe .yaml)."
        )
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise RecipeError(f"{path} is not valid YAML: {err}") from err
    return parse_recipe(doc or {}, str(path))
