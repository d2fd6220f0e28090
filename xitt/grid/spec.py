"""Grid specs: ``grid.yaml`` -> GridSpec -> [StageSpec] + [TrainSpec] + [RunSpec].

A run is one chain for one seed: encoder -> intermediate (English) -> target (English training)
-> zero-shot evaluation in every target language. The intermediate stage of (encoder,
intermediate, seed) is a StageSpec shared by all targets of that chain (a DAG, not a loop); the
target training of targets that declare ``trains_on`` (XQuAD, MLQA: SQuAD v1.1) is a TrainSpec
shared by them (``trainings_of``), between the stage and the runs.

Precedence of training settings, weakest first: TrainConfig defaults < the task's ``hparams``
(generic per-task defaults, in the task YAML) < the grid's ``recipe`` (a named, cited preset:
xitt.grid.recipes; its role default < task < encoder blocks) < the grid's ``train`` < the grid's
``task_train.<task>``. The recipe beats the task files because choosing it is the user's explicit
statement of which published setup to follow; anything written in the grid itself beats both.
A grid without ``recipe`` resolves exactly as before recipes existed (same configs, same ids).
``--set a.b=value`` edits the grid before any of this (YAML syntax for values, so
``--set seeds=[1,2]`` works). Unknown keys and wrong types are errors.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from xitt.grid.intermediates import Intermediate, IntermediateError, MlmMix, Translated, parse_intermediates
from xitt.grid.recipes import Recipe, RecipeError, available, load_recipe
from xitt.schema import NONE, did_you_mean, name_problem, unknown_key
from xitt.tasks import SUITES, Registry, TaskError, registry, task_dirs

GRID_KEYS = (
    "experiment",
    "description",
    "recipe",
    "synthetic",
    "display",
    "tasks_path",
    "encoders",
    "intermediates",
    "targets",
    "languages",
    "seeds",
    "train",
    "task_train",
    "data_dir",
    "checkpoint_dir",
    "keep_checkpoints",
    "save_predictions",
    "executor",
    "cost",
)
EXECUTOR_KEYS = ("kind", "workers", "slurm")
SLURM_KEYS = (
    "partition",
    "gpus_per_node",
    "cpus_per_task",
    "mem_gb",
    "timeout_min",
    "max_jobs",
    "account",
    "qos",
    "constraint",
    "max_requeue",
    "additional_parameters",
    "setup",
)
COST_KEYS = ("intermediate", "target")
# Readable short names for the encoders people use; anything else uses its last path part.
ENCODER_ALIASES = {
    "bert-base-multilingual-cased": "mbert",
    "bert-base-multilingual-uncased": "mbert-uncased",
    "xlm-roberta-base": "xlmr-base",
    "xlm-roberta-large": "xlmr-large",
}


class SpecError(ValueError):
    """The grid file or an override is wrong; the message says what and how to fix it."""


@dataclass(frozen=True)
class TrainConfig:
    """Training settings for one stage (one task). Defaults follow common XTREME practice."""

    lr: float = 2e-5
    epochs: float = 3.0
    max_steps: int = 0  # > 0 stops after this many optimizer steps
    batch_size: int = 32
    eval_batch_size: int = 64
    grad_accum: int = 1
    max_length: int = 128
    doc_stride: int = 128  # span QA: see qa_windows
    max_answer_length: int = 30  # span QA
    n_best: int = 20  # span QA: start/end candidates
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    precision: str = "auto"  # auto (bf16 on GPUs that have it, else fp32) | fp32 | bf16 | fp16
    max_train_examples: int = 0  # > 0 subsamples (seeded) the training set
    max_eval_examples: int = 0  # > 0 caps dev/test sets (first examples, for smoke tests)
    eval_every: int = 0  # steps between English-dev evaluations; 0 = once per epoch
    select_on: str = "dev"  # dev: keep the best English-dev checkpoint | last
    group_by_length: bool = True
    retrieval_layer: int = -1  # hidden layer pooled for retrieval targets (-1 = last)
    num_threads: int = 0  # torch CPU threads; 0 = torch's default
    # Added with the recipes; left out of run ids while at their defaults (ADDED_FIELDS).
    warmup_steps: int = 0  # > 0: linear warmup over this many steps (wins over warmup_ratio)
    qa_windows: str = "overlap"  # span QA: doc_stride is the windows' "overlap" | their "step" (run_squad)
    long_sentences: str = "truncate"  # tagging beyond max_length: "truncate" | "chunk" (XTREME)
    retrieval_pool: str = "mean"  # retrieval: "mean" over tokens | "cls" (the first token)
    candidate_pool: str = "language"  # mAP targets: rank within each "language" | one "shared" pool (LAReQA)
    train_first: str = ""  # a task (same kind) trained before the target with these settings (XCOPA: siqa)
    patience: int = 0  # > 0: stop after this many dev evaluations without a better one (select_on: dev)
    # Minutes between mid-training resume saves (xitt/train/resume.py); 0 = none (a SIGTERM or
    # SIGUSR2 still saves one). How often a run saves never changes what it computes: not in run ids.
    resume_every_min: float = 30.0
    retrieval_training: str = (
        "none"  # retrieval targets: "none" (the encoder as is) | "dual" (xitt.train.dual)
    )
    max_query_length: int = 0  # dual encoder: query tokens (0 = max_length, which bounds the candidates)

    def __post_init__(self):
        for name, (low, high) in TRAIN_RANGES.items():
            value = getattr(self, name)
            if not (math.isfinite(value) and low <= value <= high):
                raise SpecError(
                    f"train.{name} = {value!r} is outside its valid range [{low:g}, {high:g}] "
                    f"({TRAIN_RANGE_NOTES.get(name, 'see TrainConfig in xitt/grid/spec.py')})."
                )
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise SpecError(f"precision must be auto, fp32, bf16 or fp16, not {self.precision!r}.")
        if self.select_on not in ("dev", "last"):
            raise SpecError(f"select_on must be 'dev' or 'last', not {self.select_on!r}.")
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                raise SpecError(f"{name} must be one of {', '.join(allowed)}, not {getattr(self, name)!r}.")
        if self.patience > 0 and self.select_on != "dev":
            raise SpecError(
                "train.patience (early stopping) needs select_on: dev, which evaluates during training."
            )
        if self.epochs <= 0 and self.max_steps <= 0:
            raise SpecError("set train.epochs or train.max_steps to a positive number.")


# The valid range of every numeric setting, checked before anything trains. The upper bounds are far
# above any published recipe; they catch typos (batch_size: 1e12) and runs that would never end.
TRAIN_RANGES: dict[str, tuple[float, float]] = {
    "lr": (1e-9, 1.0),
    "epochs": (0.0, 1000.0),
    "max_steps": (0, 10_000_000),
    "batch_size": (1, 65_536),
    "eval_batch_size": (1, 65_536),
    "grad_accum": (1, 4096),
    "max_length": (8, 8192),
    "doc_stride": (1, 8192),
    "max_answer_length": (1, 8192),
    "n_best": (1, 1000),
    "warmup_ratio": (0.0, 1.0),
    "warmup_steps": (0, 10_000_000),
    "patience": (0, 1_000_000),
    "weight_decay": (0.0, 1.0),
    "max_grad_norm": (1e-6, 1e6),
    "max_train_examples": (0, 1_000_000_000),
    "max_eval_examples": (0, 1_000_000_000),
    "eval_every": (0, 10_000_000),
    "retrieval_layer": (-64, 64),
    "num_threads": (0, 1024),
    "resume_every_min": (0.0, 10_080.0),
    "max_query_length": (0, 8192),
}
TRAIN_RANGE_NOTES = {
    "epochs": "0 only together with max_steps > 0",
    "max_steps": "0 = train for `epochs`",
    "max_train_examples": "0 = all examples",
    "max_eval_examples": "0 = all examples",
    "eval_every": "0 = once per epoch",
    "warmup_ratio": "a fraction of the training steps",
    "num_threads": "0 = torch's default",
    "patience": "0 = no early stopping",
    "resume_every_min": "minutes between resume saves; 0 = only on SIGTERM/SIGUSR2; at most a week",
    "retrieval_layer": "an index into the encoder's hidden states; -1 = the last layer",
    "max_query_length": "0 = max_length",
}
TRAIN_KEYS = tuple(f.name for f in dataclasses.fields(TrainConfig))
CHOICES = {
    "qa_windows": ("overlap", "step"),
    "long_sentences": ("truncate", "chunk"),
    "retrieval_pool": ("mean", "cls"),
    "candidate_pool": ("language", "shared"),
    "retrieval_training": ("none", "dual"),
}
# Fields added after runs were published (runs/demo): a run id hashes them only when they differ
# from their default, so that existing ids stay valid.
ADDED_FIELDS = (
    "warmup_steps",
    "qa_windows",
    "long_sentences",
    "retrieval_pool",
    "candidate_pool",
    "train_first",
    "patience",
    "retrieval_training",
    "max_query_length",
)
# Settings that never change what a run computes: left out of run and stage ids whatever their value.
NOT_IDENTITY = ("resume_every_min",)
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainConfig)}


def train_key(cfg: TrainConfig) -> dict:
    """The settings of ``cfg`` that identify a run (all fields, minus added ones at their default and
    NOT_IDENTITY)."""
    return {
        k: v
        for k, v in dataclasses.asdict(cfg).items()
        if k not in NOT_IDENTITY and (k not in ADDED_FIELDS or v != _DEFAULTS[k])
    }


def _coerce(kind: Any, value: Any, where: str) -> Any:
    """Check a YAML value against a dataclass field type; ints are accepted for floats.

    PyYAML reads ``1e-5`` (no dot) as a string, a classic trap for learning rates: such strings
    are accepted for float fields when they parse as numbers.
    """
    if kind is float and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    ok = {
        int: lambda v: isinstance(v, int) and not isinstance(v, bool),
        float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        bool: lambda v: isinstance(v, bool),
        str: lambda v: isinstance(v, str),
    }[kind]
    if not ok(value):
        raise SpecError(f"{where} must be {kind.__name__}, got {value!r} ({type(value).__name__}).")
    return float(value) if kind is float else value


def make_train_config(*layers: Mapping[str, Any], where: str = "train") -> TrainConfig:
    hints = get_type_hints(TrainConfig)
    values: dict[str, Any] = {}
    for layer in layers:
        if not isinstance(layer or {}, Mapping):
            raise SpecError(
                f"{where} must be a mapping of training settings (e.g. {{lr: 1e-5, epochs: 2}}), got {layer!r}."
            )
        for key, value in (layer or {}).items():
            if key not in hints:
                raise SpecError(
                    f"unknown training setting '{where}.{key}'.{did_you_mean(key, TRAIN_KEYS)} "
                    f"Known settings: {', '.join(TRAIN_KEYS)}."
                )
            values[key] = _coerce(hints[key], value, f"{where}.{key}")
    return TrainConfig(**values)


def _digest(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:6]


@dataclass(frozen=True)
class StageSpec:
    """The intermediate stage of one (encoder, intermediate, seed): trained once, reused by targets."""

    experiment: str
    encoder: str
    encoder_path: str
    intermediate: str
    intermediate_family: str
    intermediate_tasks: tuple[str, ...]
    seed: int
    train: Mapping[str, TrainConfig]  # one config per intermediate task
    task_versions: Mapping[str, str]
    data_dir: str | None = None  # the prepared data the stage reads; not part of its identity
    mlm: MlmMix | None = None  # MLM on unlabelled text mixed in (xitt/grid/intermediates.py)
    translated: Translated | None = None  # translated training data

    def key(self) -> dict:
        out = {
            "encoder_path": self.encoder_path,
            "tasks": list(self.intermediate_tasks),
            "seed": self.seed,
            "train": {t: train_key(c) for t, c in self.train.items()},
            "versions": dict(self.task_versions),
        }
        # the alternatives enter the key only when set: the ids of plain stages stay as they were
        out.update({k: v.key() for k, v in (("mlm", self.mlm), ("translated", self.translated)) if v})
        return out

    @property
    def stage_id(self) -> str:
        return f"{self.encoder}__{self.intermediate}__s{self.seed}__{_digest(self.key())}"


@dataclass(frozen=True)
class TrainSpec:
    """A target training shared by several targets: one (encoder, intermediate stage, seed, training
    task, settings), trained once; every run built on it only evaluates the trained encoder + head.

    Targets declare it with ``trains_on`` in their task YAML (XQuAD and MLQA: ``squad_v1``, as in
    google-research/xtreme, whose train.sh trains SQuAD once into a folder that predict_qa.sh
    evaluates for either target). The training reads the training task's English train and dev
    data and selects on its dev metric; the settings are the targets' (they share it only when
    their effective settings are equal).
    """

    experiment: str
    encoder: str
    encoder_path: str
    intermediate: str
    task: str  # the training task, e.g. squad_v1
    seed: int
    train: TrainConfig
    task_version: str
    stage: StageSpec | None  # None for the `none` baseline
    data_dir: str | None = None  # not part of its identity (see RunSpec.data_dir)

    def key(self) -> dict:
        return {
            "stage": self.stage.key() if self.stage else None,
            "encoder_path": self.encoder_path,
            "task": self.task,
            "seed": self.seed,
            "train": train_key(self.train),
            "version": self.task_version,
        }

    @property
    def train_id(self) -> str:
        return f"{self.encoder}__{self.intermediate}__{self.task}__s{self.seed}__{_digest(self.key())}"

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["train_id"] = self.train_id
        if self.stage is not None:
            out["stage"]["stage_id"] = self.stage.stage_id
        return out


@dataclass(frozen=True)
class RunSpec:
    """One chain: encoder -> intermediate stage (or none) -> target training -> eval per language."""

    experiment: str
    encoder: str
    encoder_path: str
    intermediate: str
    intermediate_family: str
    target: str
    target_family: str
    languages: tuple[str, ...]
    seed: int
    target_train: TrainConfig
    target_version: str
    stage: StageSpec | None  # None for the `none` baseline
    # The data dir the run reads: the grid's as written, replaced by the resolved one (--data-dir,
    # XITT_DATA_DIR, grid, default cache) by ``with_data_dir`` before a run starts, so that
    # config.yaml and result.json record what was used. Not part of the run id: the same data
    # in another folder is the same run.
    data_dir: str | None = None
    save_predictions: bool = False
    # The shared target training this run evaluates (targets with ``trains_on``); None: the run
    # trains its own target head. Part of the run id only when set (existing ids stay valid).
    training: TrainSpec | None = None

    @property
    def run_id(self) -> str:
        payload = {
            "stage": self.stage.key() if self.stage else None,
            "encoder_path": self.encoder_path,
            "target": self.target,
            "languages": list(self.languages),
            "seed": self.seed,
            "train": train_key(self.target_train),
            "version": self.target_version,
        }
        if self.training is not None:
            payload["training"] = self.training.key()
        return f"{self.encoder}__{self.intermediate}__{self.target}__s{self.seed}__{_digest(payload)}"

    def with_data_dir(self, data_dir: str | None) -> RunSpec:
        """The same run (same run id) reading ``data_dir``; its stage and shared training too."""
        stage = dataclasses.replace(self.stage, data_dir=data_dir) if self.stage else None
        training = (
            dataclasses.replace(self.training, data_dir=data_dir, stage=stage) if self.training else None
        )
        return dataclasses.replace(self, data_dir=data_dir, stage=stage, training=training)

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["run_id"] = self.run_id
        if self.stage is not None:
            out["stage"]["stage_id"] = self.stage.stage_id
        if self.training is not None:
            out["training"] = self.training.to_dict()
        else:
            out.pop("training")  # config.yaml of runs without one keeps its old fields
        return out


@dataclass(frozen=True)
class SlurmOptions:
    partition: str | None = None
    gpus_per_node: int = 1
    cpus_per_task: int = 8
    mem_gb: int = 32
    timeout_min: int = 24 * 60
    max_jobs: int = 32  # concurrent SLURM jobs of the whole grid (xitt/run/slurm.py)
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    max_requeue: int = 3
    additional_parameters: Mapping[str, Any] = field(default_factory=dict)
    setup: tuple[str, ...] = ()  # shell lines run before each job (module load, ...)


@dataclass(frozen=True)
class ExecutorSpec:
    kind: str = "local"
    workers: int = 1
    slurm: SlurmOptions = field(default_factory=SlurmOptions)


@dataclass(frozen=True)
class GridSpec:
    experiment: str
    encoders: tuple[tuple[str, str], ...]  # (short name, hub id or local path)
    intermediates: tuple[Intermediate, ...]
    targets: tuple[str, ...]
    languages: Mapping[str, tuple[str, ...]]  # per target, resolved
    seeds: tuple[int, ...]
    train: Mapping[str, Any] = field(default_factory=dict)
    task_train: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    data_dir: str | None = None
    checkpoint_dir: str | None = None
    keep_checkpoints: bool = False
    save_predictions: bool = False
    executor: ExecutorSpec = field(default_factory=ExecutorSpec)
    cost: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    synthetic: bool = False
    description: str = ""
    path: str = ""
    display: Mapping[str, str] = field(default_factory=dict)  # id -> name in reports (SQuAD 1.1)
    tasks_path: tuple[str, ...] = ()  # folders of custom task files, added to XITT_TASKS_PATH
    recipe: Recipe | None = None

    def setting_layers(
        self, task_name: str, reg: Registry, encoder_path: str = ""
    ) -> list[tuple[str, Mapping]]:
        """(label, values) of every layer that sets ``task_name``'s training settings, weakest first."""
        task = reg.get(task_name)
        layers: list[tuple[str, Mapping]] = [("task YAML", task.hparams or {})]
        if self.recipe is not None:
            role = "target" if task.is_target else "intermediate"
            layers += [(label, b.train) for b, label in self.recipe.layers(task_name, role, encoder_path)]
        layers += [
            ("grid train", self.train),
            (f"grid task_train.{task_name}", self.task_train.get(task_name, {})),
        ]
        return layers

    def train_config(self, task_name: str, reg: Registry, encoder_path: str = "") -> TrainConfig:
        """The effective settings of one task for one encoder (see the module docstring's order)."""
        return make_train_config(
            *(values for _, values in self.setting_layers(task_name, reg, encoder_path)),
            where=f"task_train.{task_name}",
        )

    def setting_origins(self, task_name: str, reg: Registry, encoder_path: str = "") -> dict[str, str]:
        """{setting: the layer that set it} for every setting not left at its TrainConfig default."""
        origin: dict[str, str] = {}
        for label, values in self.setting_layers(task_name, reg, encoder_path):
            origin.update(dict.fromkeys(values, label))
        return origin

    def gpu_hours(self, stage: str, task: str, encoder: str | None = None) -> float | None:
        """GPU-hours of one intermediate task or target run from ``cost``: the encoder's own table
        (``cost.<encoder>.<stage>``) first, then the table for every encoder (``cost.<stage>``)."""
        for table in ((self.cost.get(encoder) or {}).get(stage) or {}, self.cost.get(stage) or {}):
            value = table.get(task, table.get("default"))
            if value is not None:
                return float(value)
        return None


# ---------------------------------------------------------------------------- parsing grid.yaml


def apply_sets(doc: dict, sets: Sequence[str]) -> dict:
    """Apply ``--set a.b=value`` overrides (value in YAML syntax) to a raw grid mapping."""
    doc = json.loads(json.dumps(doc, default=str))  # deep copy of plain data
    for item in sets:
        if "=" not in item:
            raise SpecError(f"--set takes KEY=VALUE (e.g. --set train.lr=1e-5), got {item!r}.")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        if parts[0] not in GRID_KEYS:
            raise SpecError(f"--set {key}: unknown grid key '{parts[0]}'.{did_you_mean(parts[0], GRID_KEYS)}")
        if parts[0] == "train" and len(parts) == 2 and parts[1] not in TRAIN_KEYS:
            raise SpecError(
                f"--set {key}: unknown training setting '{parts[1]}'.{did_you_mean(parts[1], TRAIN_KEYS)}"
            )
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as err:
            raise SpecError(f"--set {key}: value {raw!r} is not valid YAML: {err}") from err
        node = doc
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise SpecError(f"--set {key}: '{part}' is not a mapping in the grid.")
        node[parts[-1]] = value
    return doc


def read_grid_file(path: str | Path) -> dict:
    path = Path(path)
    if path.is_dir():
        path = path / "grid.yaml"
    if not path.is_file():
        raise SpecError(f"no grid file at {path}; an experiment is a folder runs/<exp>/ with a grid.yaml.")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise SpecError(f"{path} is not valid YAML: {err}") from err
    if not isinstance(doc, dict):
        raise SpecError(
            f"{path} must be a YAML mapping with keys like encoders, intermediates, targets, seeds."
        )
    return doc


def _check_keys(mapping: Mapping, allowed: Sequence[str], where: str) -> None:
    if not isinstance(mapping, Mapping):
        raise SpecError(f"{where} must be a mapping, got {mapping!r}.")
    if problem := unknown_key(mapping, allowed, where):
        raise SpecError(problem)


def _settings(value: Any, where: str) -> dict[str, Any]:
    """A mapping of training settings (``train:`` or ``task_train.<task>:``); empty when not given."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SpecError(f"{where} must be a mapping of training settings, e.g. {{lr: 1e-5}}; got {value!r}.")
    return dict(value)


def _name(value: Any, where: str, fix: str) -> str:
    """``value`` as a name that may become part of a path (see xitt.schema.name_problem)."""
    problem = name_problem(value)
    if problem:
        raise SpecError(f"{where} {value!r} cannot name folders: {problem}. {fix}")
    return value


def _encoders(raw: Any) -> tuple[tuple[str, str], ...]:
    if not raw or not isinstance(raw, list):
        raise SpecError("'encoders' must be a non-empty list of hub ids or {name, path} mappings.")
    out = []
    for item in raw:
        if isinstance(item, str):
            out.append((ENCODER_ALIASES.get(item, Path(item).name), item))
        elif isinstance(item, Mapping) and set(item) <= {"name", "path"} and "path" in item:
            out.append((str(item.get("name") or Path(str(item["path"])).name), str(item["path"])))
        else:
            raise SpecError(
                f"encoder entry {item!r} must be a hub id or a mapping with 'path' (and optional 'name')."
            )
    for name, path in out:
        _name(name, f"encoder {path!r}: the short name", "Give the encoder a 'name:' such as 'xlmr-large'.")
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise SpecError(f"two encoders share a short name in {names}; give them distinct 'name's.")
    return tuple(out)


def _intermediates(raw: Any, reg: Registry) -> tuple[Intermediate, ...]:
    """The grid's intermediates (xitt/grid/intermediates.py: tasks, multi-task, mlm, translated)."""
    try:
        return parse_intermediates(raw, reg)
    except IntermediateError as err:
        raise SpecError(str(err)) from err


def _seeds(raw: Any) -> tuple[int, ...]:
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise SpecError("'seeds' must be a non-empty list of integers, e.g. seeds: [1, 2, 3].")
    if any(not isinstance(s, int) or isinstance(s, bool) or not 0 <= s < 2**32 for s in raw):
        raise SpecError(f"'seeds' must hold integers from 0 to 2**32 - 1, got {raw!r}.")
    dup = sorted({s for s in raw if raw.count(s) > 1})
    if dup:
        raise SpecError(f"seed(s) {dup} appear twice in 'seeds'; each seed is one chain, list it once.")
    return tuple(raw)


def _targets(raw: Any, reg: Registry) -> tuple[tuple[str, ...], str | None]:
    if isinstance(raw, str):
        raw = [raw]
    if not raw or not isinstance(raw, list):
        raise SpecError("'targets' must be a target name, a suite (xtreme, xtreme-r) or a list of them.")
    suite = next((str(t).lower() for t in raw if str(t).lower() in SUITES), None)
    return tuple(reg.expand_targets(raw)), suite


def _languages(
    raw: Any, targets: Sequence[str], suite: str | None, reg: Registry
) -> dict[str, tuple[str, ...]]:
    raw = raw or {}
    _check_keys(raw, list(targets), "languages (keys must be targets of this grid)")
    out = {}
    for target in targets:
        declared = reg.get(target).languages_for(suite)
        chosen = raw.get(target, list(declared))
        if not isinstance(chosen, list):
            raise SpecError(
                f"languages.{target} must be a list of language codes, e.g. {{{target}: [{declared[0]}]}}; "
                f"got {chosen!r}."
            )
        bad = [lang for lang in chosen if lang not in declared]
        if bad:
            raise SpecError(
                f"target '{target}' has no language(s) {bad}; it has {list(declared)}."
                f"{did_you_mean(bad[0], declared)}"
            )
        if not chosen:
            raise SpecError(f"languages.{target} is empty; list at least one language or drop the key.")
        out[target] = tuple(chosen)
    return out


def _executor(raw: Any) -> ExecutorSpec:
    raw = raw or {}
    _check_keys(raw, EXECUTOR_KEYS, "executor")
    kind = raw.get("kind", "local")
    if kind not in ("local", "slurm"):
        raise SpecError(f"executor.kind must be 'local' or 'slurm', got {kind!r}.")
    slurm_raw = dict(raw.get("slurm") or {})
    if "array_parallelism" in slurm_raw:
        raise SpecError(
            "executor.slurm.array_parallelism is gone: it limited each job array on its own (a grid "
            "has ~92). Use executor.slurm.max_jobs, one limit on concurrent jobs for the whole grid."
        )
    _check_keys(slurm_raw, SLURM_KEYS, "executor.slurm")
    hints = get_type_hints(SlurmOptions)
    simple = {k: v for k, v in slurm_raw.items() if k not in ("additional_parameters", "setup")}
    for key, value in simple.items():
        kind_ = hints[key]
        base = str if "str" in str(kind_) else int
        _coerce(base, value, f"executor.slurm.{key}")
    slurm = SlurmOptions(
        **simple,
        additional_parameters=dict(slurm_raw.get("additional_parameters") or {}),
        setup=tuple(slurm_raw.get("setup") or ()),
    )
    if slurm.max_jobs < 1:
        raise SpecError("executor.slurm.max_jobs must be at least 1.")
    workers = _coerce(int, raw.get("workers", 1), "executor.workers")
    if workers < 1:
        raise SpecError("executor.workers must be at least 1.")
    return ExecutorSpec(kind=kind, workers=workers, slurm=slurm)


def _cost_tables(raw: Any, where: str) -> dict[str, dict[str, float]]:
    _check_keys(raw, COST_KEYS, where)
    out = {}
    for stage, table in raw.items():
        _check_keys(table, list(table), f"{where}.{stage}")
        out[stage] = {str(k): _coerce(float, v, f"{where}.{stage}.{k}") for k, v in table.items()}
    return out


def _cost(raw: Any, encoders: Sequence[tuple[str, str]]) -> dict[str, dict]:
    """``cost``: {intermediate, target} tables for every encoder and/or one such pair per encoder
    short name (``cost: {mbert: {intermediate: ..., target: ...}}``), which wins for that encoder."""
    raw = raw or {}
    # the grid's encoders and the usual short names (a grid whose encoders are replaced with --set
    # keeps its cost table valid)
    names = list(dict.fromkeys([n for n, _ in encoders] + list(ENCODER_ALIASES.values())))
    _check_keys(raw, [*COST_KEYS, *names], "cost (keys: intermediate, target, or an encoder's short name)")
    out: dict[str, dict] = _cost_tables({k: v for k, v in raw.items() if k in COST_KEYS}, "cost")
    for name in names:
        if name in raw:
            out[name] = _cost_tables(raw[name] or {}, f"cost.{name}")
    return out


def _display(raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping) or not all(isinstance(v, (str, int, float)) for v in raw.values()):
        raise SpecError(
            f"display must map ids to the names reports show, e.g. display: {{squad_v1: SQuAD 1.1}}; got {raw!r}."
        )
    return {str(k): str(v) for k, v in raw.items()}


def _tasks_path(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    folders = [raw] if isinstance(raw, str) else raw
    if not isinstance(folders, (list, tuple)) or not all(isinstance(f, str) for f in folders):
        raise SpecError(f"tasks_path must be a folder or a list of folders of task files; got {raw!r}.")
    missing = [f for f in folders if not Path(f).is_dir()]
    if missing:
        raise SpecError(
            f"tasks_path names folders that do not exist: {', '.join(missing)} (relative paths start from "
            "the directory xitt runs in)."
        )
    return tuple(folders)


def use_tasks_path(doc: Mapping[str, Any]) -> None:
    """Add the grid's ``tasks_path`` folders to XITT_TASKS_PATH (this process and the workers it
    starts), so that the grid's custom tasks resolve without the variable being set by hand."""
    folders = _tasks_path(doc.get("tasks_path"))
    present = [p for p in os.environ.get("XITT_TASKS_PATH", "").split(os.pathsep) if p]
    added = [f for f in folders if f not in present]
    if added:
        os.environ["XITT_TASKS_PATH"] = os.pathsep.join(present + added)


def parse_grid(doc: Mapping[str, Any], *, path: str | Path = "", reg: Registry | None = None) -> GridSpec:
    """Build a GridSpec from a raw grid mapping; every error is a SpecError/TaskError naming the fix."""
    reg = reg or registry()
    _check_keys(doc, GRID_KEYS, f"the grid {path}".strip())
    for key in ("encoders", "intermediates", "targets", "seeds"):
        if key not in doc:
            raise SpecError(f"the grid {path} needs '{key}'.")
    targets, suite = _targets(doc["targets"], reg)
    task_train = doc.get("task_train") or {}
    _check_keys(task_train, list(reg.tasks), "task_train (keys must be task names)")
    folder = Path(path).parent if path else Path(".")
    encoders = _encoders(doc["encoders"])
    grid = GridSpec(
        experiment=_name(
            doc.get("experiment") or folder.name or "experiment",
            "the experiment name",
            "Set 'experiment:' in the grid to a plain name such as 'nli-vs-qa'.",
        ),
        encoders=encoders,
        intermediates=_intermediates(doc["intermediates"], reg),
        targets=targets,
        languages=_languages(doc.get("languages"), targets, suite, reg),
        seeds=_seeds(doc["seeds"]),
        train=_settings(doc.get("train"), "train"),
        task_train={k: _settings(v, f"task_train.{k}") for k, v in task_train.items()},
        data_dir=doc.get("data_dir"),
        checkpoint_dir=doc.get("checkpoint_dir"),
        keep_checkpoints=_coerce(bool, doc.get("keep_checkpoints", False), "keep_checkpoints"),
        save_predictions=_coerce(bool, doc.get("save_predictions", False), "save_predictions"),
        executor=_executor(doc.get("executor")),
        cost=_cost(doc.get("cost"), encoders),
        synthetic=_coerce(bool, doc.get("synthetic", False), "synthetic"),
        description=str(doc.get("description", "")),
        path=str(path),
        display=_display(doc.get("display")),
        tasks_path=_tasks_path(doc.get("tasks_path")),
        recipe=_recipe(doc.get("recipe")),
    )
    make_train_config(grid.train, where="train")  # fail on bad global settings even if no task uses them
    for name in {t for i in grid.intermediates for t in i.tasks} | set(grid.targets):
        for _, enc_path in grid.encoders:
            _check_train_first(name, grid.train_config(name, reg, enc_path), reg)
            _check_dual(name, grid.train_config(name, reg, enc_path), reg)
    return grid


def _check_train_first(name: str, cfg: TrainConfig, reg: Registry) -> None:
    """``train_first`` names a known task of the same kind as ``name`` (one head serves both)."""
    if not cfg.train_first:
        return
    first, task = reg.get(cfg.train_first), reg.get(name)
    if first.kind != task.kind or not task.trains_on_target or first.name == name:
        raise SpecError(
            f"train_first of '{name}' is '{first.name}', a {first.kind} task; it must be another task of "
            f"the same kind as '{name}' ({task.kind}), which must train on its own data."
        )


def _check_dual(name: str, cfg: TrainConfig, reg: Registry) -> None:
    """``retrieval_training: dual`` only for a retrieval task that declares its dual-encoder training
    data (other kinds train their own head and ignore it)."""
    task = reg.get(name)
    if cfg.retrieval_training == "dual" and task.kind == "retrieval" and not task.dual_encoder:
        raise SpecError(
            f"retrieval_training of '{name}' is 'dual', but '{name}' declares no dual_encoder training "
            f"data in {task.file or 'its task file'}; dual-encoder fine-tuning exists for "
            f"{', '.join(sorted(t.name for t in reg.tasks.values() if t.dual_encoder)) or 'no task'}. Set "
            f"task_train.{name}.retrieval_training: none."
        )
    spec = task.dual_encoder
    if cfg.retrieval_training == "dual" and task.kind == "retrieval":
        if spec.get("train") not in reg.tasks or spec.get("pairs") not in ("aligned", "answer_sentence"):
            raise SpecError(
                f"{task.file}: {name}.dual_encoder must be {{train: <a known task>, pairs: aligned | "
                f"answer_sentence}}, not {dict(spec)}.{did_you_mean(str(spec.get('train')), list(reg.tasks))}"
            )


def _recipe(raw: Any) -> Recipe | None:
    """The grid's ``recipe`` (a shipped name or a path), with every value checked as a training setting."""
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise SpecError(f"'recipe' must be a recipe name ({', '.join(available())}) or a path, got {raw!r}.")
    try:
        recipe = load_recipe(raw)
    except RecipeError as err:
        raise SpecError(f"recipe: {err}{did_you_mean(raw, available())}") from err
    blocks = [(f"defaults.{role}", b) for role, b in recipe.defaults.items()]
    for task, entry in recipe.tasks.items():
        blocks.append((f"tasks.{task}", entry.block))
        blocks += [(f"tasks.{task}.encoders.{enc}", b) for enc, b in entry.encoders.items()]
    for where, block in blocks:
        make_train_config(block.train, where=f"recipe {recipe.name} {where}.train")
    return recipe


def load_grid(path: str | Path, sets: Sequence[str] = (), *, reg: Registry | None = None) -> GridSpec:
    """Read ``runs/<exp>/grid.yaml`` (or the file given), apply ``--set`` overrides, validate."""
    path = Path(path)
    file = path / "grid.yaml" if path.is_dir() else path
    try:
        doc = apply_sets(read_grid_file(file), sets)
        use_tasks_path(doc)
        return parse_grid(doc, path=file, reg=reg)
    except TaskError as err:
        raise SpecError(f"{file}: {err}") from err


def expand_grid(
    grid: GridSpec, *, reg: Registry | None = None, seeds: Sequence[int] | None = None
) -> tuple[list[StageSpec], list[RunSpec]]:
    """All intermediate stages and target runs of the grid (``seeds`` restricts to those seeds)."""
    reg = reg or registry()
    chosen = tuple(seeds) if seeds else grid.seeds
    stages: dict[str, StageSpec] = {}
    runs: list[RunSpec] = []
    for enc, enc_path in grid.encoders:
        for inter in grid.intermediates:
            for seed in chosen:
                stage = None
                if inter.name != NONE:
                    stage = StageSpec(
                        grid.experiment,
                        enc,
                        enc_path,
                        inter.name,
                        inter.family,
                        inter.tasks,
                        seed,
                        {t: grid.train_config(t, reg, enc_path) for t in inter.tasks},
                        {t: reg.get(t).version for t in inter.tasks},
                        grid.data_dir,
                        inter.mlm,
                        inter.translated,
                    )
                    stages.setdefault(stage.stage_id, stage)
                for target in grid.targets:
                    task = reg.get(target)
                    cfg = grid.train_config(target, reg, enc_path)
                    training = None
                    if task.trains_on:
                        training = TrainSpec(
                            grid.experiment,
                            enc,
                            enc_path,
                            inter.name,
                            task.trains_on,
                            seed,
                            cfg,
                            reg.get(task.trains_on).version,
                            stage,
                            grid.data_dir,
                        )
                    runs.append(
                        RunSpec(
                            grid.experiment,
                            enc,
                            enc_path,
                            inter.name,
                            inter.family,
                            target,
                            task.family,
                            grid.languages[target],
                            seed,
                            cfg,
                            task.version,
                            stage,
                            grid.data_dir,
                            grid.save_predictions,
                            training,
                        )
                    )
    return list(stages.values()), runs


def trainings_of(runs: Sequence[RunSpec]) -> list[TrainSpec]:
    """The shared target trainings the runs evaluate, once each, in the runs' order. Targets with the
    same ``trains_on`` and equal settings share one per (encoder, intermediate, seed)."""
    out: dict[str, TrainSpec] = {}
    for run in runs:
        if run.training is not None:
            out.setdefault(run.training.train_id, run.training)
    return list(out.values())


def check_baseline(grid: GridSpec, *, allowed: bool = False) -> None:
    """A grid without the ``none`` intermediate has no deltas: stop before planning or training."""
    if allowed or any(i.name == NONE for i in grid.intermediates):
        return
    raise SpecError(
        f"the grid {grid.path} has no '{NONE}' intermediate, the no-intermediate baseline every gain is "
        f"measured against: without it `xitt analyze` cannot compare families. Add {NONE} to "
        "intermediates (intermediates: [none, ...]), or pass --no-baseline to train anyway (the report "
        "then shows the descriptive score tables only)."
    )


def record_tasks_path(grid: GridSpec, exp: Path) -> list[str]:
    """Custom tasks found through XITT_TASKS_PATH: write their folders into the grid as
    ``tasks_path:`` so that status, collect and report find them without the variable. Returns
    the folders written (none when the grid already records them or uses built-in tasks only)."""
    builtin = task_dirs()[0].resolve()
    reg = registry()
    used = {t for i in grid.intermediates for t in i.tasks} | set(grid.targets)
    folders = sorted({str(Path(reg.tasks[t].file).parent) for t in used if t in reg.tasks})
    custom = [f for f in folders if Path(f).resolve() != builtin]
    grid_file = exp / "grid.yaml"
    if not custom or grid.tasks_path or not grid_file.is_file():
        return []
    text = grid_file.read_text(encoding="utf-8")
    grid_file.write_text(text.rstrip("\n") + f"\ntasks_path: [{', '.join(custom)}]\n", encoding="utf-8")
    return custom
