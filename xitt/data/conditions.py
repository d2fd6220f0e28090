"""The data of the alternative intermediates (xitt/grid/intermediates.py) as ordinary splits.

Both become (task, "train", language) needs that ``xitt prepare`` resolves, verifies and caches
with a manifest entry like any task split; the runs then read only the prepared copies.

MLM text: a pseudo-task of kind ``text`` named after the corpus (``text_task``). Its files::

    <data_dir>/<corpus>/train-<lang>.txt     source: <corpus> (a bare name)
    <folder>/train-<lang>.txt or <folder>/<lang>.txt     source: <folder> (a path, with a '/')

one text per line (blank lines skipped), as jiant's MLM task reads them (nyu-mll/jiant,
jiant/tasks/lib/templates/mlm.py: one example per line, masked on the fly).

Translations: the intermediate task itself, split ``train`` in the translation's language
(``translated_task``), found in the translations' folder (``translated.source``; the data dir
without it) under the first of::

    <folder>/<task>/train-<lang>.<ext>                             xitt's own layout
    <folder>/XNLI-Translated/en-<lang>-translated.tsv              XTREME translate-train, pair tasks
    <folder>/en-<lang>-translated.tsv                              (MNLI translated: XNLI-MT)
    <folder>/squad/translate-train/squad.translate.train.en-<lang>.json   XTREME, span QA
    <folder>/squad.translate.train.en-<lang>.json

XTREME's names: google-research/xtreme third_party/processors/xnli.py (``XNLI-Translated/
en-{lg}-translated.tsv``: sentence1, sentence2, label; "contradictory" read as "contradiction")
and the gs://xtreme_translations/SQuAD/translate-train/ files ``squad.translate.train.en-{lang}.json``
(SQuAD v1.1 JSON) that XTREME's run_squad reads for translate-train.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from xitt.grid.intermediates import MlmMix, Translated
from xitt.tasks import Task

TEXT_FAMILY = "text"


def text_task(mlm: MlmMix) -> Task:
    """The pseudo-task whose ``train-<lang>`` splits are the MLM corpus ``mlm.source``."""
    path = "/" in mlm.source
    folder = str(Path(mlm.source).expanduser()) if path else None
    name = Path(mlm.source).name if path else mlm.source
    where = f"{mlm.source}/train-<lang>.txt" if path else f"<data_dir>/{name}/train-<lang>.txt"
    return Task(
        name=name,
        family=TEXT_FAMILY,
        roles=("intermediate",),
        kind="text",
        metric="",
        languages=tuple(mlm.languages),
        source={
            "local_only": True,
            "folder": folder,
            "obtain": f"put the unlabelled text, one text per line, in {where}",
        },
        version="text-1",
        description=f"unlabelled text for the MLM objective ({mlm.source})",
    )


def translated_task(task: Task, translated: Translated) -> Task:
    """``task`` whose ``train-<lang>`` splits are read from the translations' folder (local only)."""
    folder = str(Path(translated.source).expanduser()) if translated.source else ""
    obtain = (
        f"put the translated training data in {folder or '<data_dir>'}/{task.name}/train-<lang>."
        "<ext> (or XTREME's translate-train files there; xitt/data/conditions.py)"
    )
    return dataclasses.replace(task, source={"local_only": True, "folder": folder, "obtain": obtain})


def candidates(task: Task, split: str, lang: str, folder: Path) -> list[Path]:
    """The files that may hold ``split``-``lang`` of ``task`` in ``folder``, the xitt layout first."""
    from xitt.data.loaders import EXTENSIONS

    if task.kind == "text":  # a corpus given as a path (a bare name is read by loaders.local_path)
        return [folder / f"{split}-{lang}.txt", folder / f"{lang}.txt"]
    out = [folder / task.name / f"{split}-{lang}.{EXTENSIONS[task.kind]}"]
    if split != "train":
        return out
    if task.kind == "pair_classification":
        out += [
            folder / "XNLI-Translated" / f"en-{lang}-translated.tsv",
            folder / f"en-{lang}-translated.tsv",
        ]
    if task.kind == "span_qa":
        name = f"squad.translate.train.en-{lang}.json"
        out += [folder / "squad" / "translate-train" / name, folder / name]
    return out


def stage_needs(stage, reg) -> list[tuple[Task, str, str]]:
    """(task, split, language) of a stage's MLM text and translations (none for a plain stage)."""
    needs = []
    if stage.mlm:
        text = text_task(stage.mlm)
        needs += [(text, "train", lang) for lang in stage.mlm.languages]
    if stage.translated:
        for name in stage.intermediate_tasks:
            task = translated_task(reg.get(name), stage.translated)
            needs += [(task, "train", lang) for lang in stage.translated.languages]
    return needs
