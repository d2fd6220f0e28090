"""A stand-in for the Hugging Face hub: ``datasets.load_dataset`` and ``HfApi.dataset_info``.

It serves rows with the schemas recorded in tests/data/hub_schemas.yaml (configs, splits,
columns, label names) and raises what ``datasets`` >= 4 raises: RuntimeError("Dataset scripts are
no longer supported, but found <script>") for a script-only repository on its main branch,
ValueError("BuilderConfig '<name>' not found. Available: [...]") for an unknown config,
ValueError('Unknown split "<split>". Should be one of [...].') for an unknown split, and
DatasetNotFoundError for an unknown repository. ``calls`` records every load.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import yaml

SCHEMAS = Path(__file__).parent / "data" / "hub_schemas.yaml"
WORDS = (
    "the river city north table music green winter market paper quick light stone garden early "
    "silver window morning story bridge ocean yellow station doctor letter forest simple"
).split()


def load_schemas(path: Path = SCHEMAS) -> dict:
    """{repo: {script_only, parquet_export, configs: {config: group}}}."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))["datasets"]
    out = {}
    for repo, spec in doc.items():
        configs = {c: group for group in spec["groups"] for c in group["configs"]}
        out[repo] = {
            "script_only": spec.get("script_only"),
            "parquet_export": spec.get("parquet_export", False),
            "configs": configs,
        }
    return out


class StandInHub:
    """Install with ``install(monkeypatch)``; ``rows`` examples per split (per language value)."""

    def __init__(self, rows: int = 8, schemas: dict | None = None):
        self.schemas = schemas if schemas is not None else load_schemas()
        self.rows = rows
        self.calls: list[tuple] = []

    def install(self, monkeypatch) -> StandInHub:
        import datasets
        import huggingface_hub

        monkeypatch.setattr(datasets, "load_dataset", self.load_dataset)
        monkeypatch.setattr(
            huggingface_hub.HfApi, "dataset_info", lambda api, repo, revision=None: self.info(repo)
        )
        return self

    def info(self, repo: str):
        from types import SimpleNamespace

        self._repo(repo)
        return SimpleNamespace(sha=hashlib.sha1(repo.encode()).hexdigest())

    def _repo(self, repo: str) -> dict:
        from datasets.exceptions import DatasetNotFoundError

        if repo not in self.schemas:
            raise DatasetNotFoundError(f"Dataset '{repo}' doesn't exist on the Hub or cannot be accessed.")
        return self.schemas[repo]

    def load_dataset(self, path, name=None, split=None, revision=None, data_dir=None, **kwargs):
        self.calls.append((path, name or data_dir, split, revision))
        spec = self._repo(path)
        if revision == "refs/convert/parquet":
            if not spec["parquet_export"]:
                raise FileNotFoundError(f"Unable to find parquet files in {path}@{revision}/{data_dir}")
            name = data_dir
        elif spec["script_only"]:
            raise RuntimeError(f"Dataset scripts are no longer supported, but found {spec['script_only']}")
        configs = spec["configs"]
        if name is None and len(configs) == 1:
            name = next(iter(configs))
        if name not in configs:
            raise ValueError(f"BuilderConfig '{name}' not found. Available: {list(configs)}")
        group = configs[name]
        if split not in group["splits"]:
            raise ValueError(f'Unknown split "{split}". Should be one of {list(group["splits"])}.')
        return self._dataset(path, name, split, group)

    def _dataset(self, repo, config, split, group):
        import datasets

        seed = int(hashlib.sha1(f"{repo}|{config}|{split}".encode()).hexdigest()[:8], 16)
        rng = np.random.default_rng(seed)
        keys = _languages(group)
        rows = [_row(group, rng, i, keys[i % len(keys)]) for i in range(self.rows * len(keys))]
        features = datasets.Features({c: _feature(t, c, group) for c, t in group["columns"].items()})
        info = datasets.DatasetInfo(
            features=features,
            splits=datasets.SplitDict({split: datasets.SplitInfo(name=split, num_examples=len(rows))}),
        )
        return datasets.Dataset.from_list(rows, features=features, info=info)


def _languages(group) -> list:
    if "language" in group.get("values", {}):
        return list(group["values"]["language"])
    if group.get("id_prefixes"):
        return list(next(iter(group["id_prefixes"].values())))
    return [None]


def _feature(kind, column, group):
    import datasets

    names = (group.get("labels") or {}).get(column)
    simple = {
        "string": datasets.Value("string"),
        "int": datasets.Value("int32"),
        "bool": datasets.Value("bool"),
    }
    if kind in simple:
        return simple[kind]
    if kind == "label":
        return datasets.ClassLabel(names=names)
    if kind == "[string]":
        return datasets.Sequence(datasets.Value("string"))
    if kind == "[label]":
        return datasets.Sequence(datasets.ClassLabel(names=names))
    if kind == "answers":
        return datasets.Sequence({"text": datasets.Value("string"), "answer_start": datasets.Value("int32")})
    if kind == "choices":
        return datasets.Sequence({"label": datasets.Value("string"), "text": datasets.Value("string")})
    raise ValueError(f"unknown column type {kind!r} for {column}")


def _sentence(rng, n=None) -> str:
    return " ".join(rng.choice(WORDS, size=n or int(rng.integers(4, 9))))


def _row(group, rng, i, key) -> dict:
    values, labels = group.get("values") or {}, group.get("labels") or {}
    sequences = [labels[c] for c, k in group["columns"].items() if k == "[label]"]
    # The first row of a split carries every tag once, as any real training set of that size does.
    length = len(sequences[0]) if sequences and i == 0 else int(rng.integers(3, 8))
    row: dict = {}
    for column, kind in group["columns"].items():
        if column in values and column != "language":
            row[column] = values[column][int(rng.integers(len(values[column])))]
        elif column == "language":
            row[column] = key
        elif column in (group.get("id_prefixes") or {}):
            row[column] = f"{key}-{i}"
        elif kind == "string":
            row[column] = _sentence(rng) if column != "id" else f"q{i}"
        elif kind in ("int", "bool"):
            row[column] = i if kind == "int" else bool(i % 2)
        elif kind == "label":
            row[column] = int(rng.integers(len(labels[column])))
        elif kind == "[string]":
            n = (group.get("lengths") or {}).get(column, length)
            row[column] = [str(w) for w in rng.choice(WORDS, size=n)]
        elif kind == "[label]":
            n = len(labels[column])
            row[column] = list(range(n)) if i == 0 else [int(t) for t in rng.integers(n, size=length)]
        elif kind == "choices":
            row[column] = {"label": list("ABCDE"), "text": [_sentence(rng, 2) for _ in range(5)]}
    if "answers" in group["columns"]:
        words = row["context"].split()
        start_word = int(rng.integers(len(words)))
        text = " ".join(words[start_word : start_word + 2])
        row["answers"] = {
            "text": [text],
            "answer_start": [len(" ".join(words[:start_word])) + (start_word > 0)],
        }
    if "answerKey" in group["columns"]:
        row["answerKey"] = "ABCDE"[int(rng.integers(5))]
    return row
