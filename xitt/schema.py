"""The scores.csv contract between the training runner and the analysis layer.

One row per run x language x metric:

    run_id, encoder, intermediate, intermediate_family, target, target_family,
    language, seed, metric, score, primary, task_version

* ``score`` is on the 0-100 scale.
* ``primary`` is True for the one metric per (run, language) that enters averages; for QA
  targets the runner writes an extra primary metric ``em_f1`` = (EM + F1) / 2.
* the no-intermediate baseline is the literal intermediate ``none`` (family ``none``), never NaN.

This module imports only pandas/numpy so that ``analysis/`` can depend on it without torch.
"""

from __future__ import annotations

import difflib
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

NONE = "none"


def did_you_mean(name: object, choices: Iterable[object]) -> str:
    """' Did you mean 'a', 'b'?' for the choices closest to ``name`` (up to three), or '' when none is close.

    The one "did you mean" of the project: every error message about an unknown name ends with it.

    >>> did_you_mean("mnlli", ["mnli", "squad_v1"])
    " Did you mean 'mnli'?"
    """
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=3, cutoff=0.5)
    return f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def unknown_key(mapping: Mapping, allowed: Sequence[str], where: str) -> str | None:
    """The message for the first key of ``mapping`` not in ``allowed`` (with did-you-mean and the
    allowed keys), or None: the one unknown-key check of grid files."""
    for key in mapping:
        if key not in allowed:
            return (
                f"unknown key '{key}' in {where}.{did_you_mean(str(key), allowed)} "
                f"Allowed keys: {', '.join(allowed)}."
            )
    return None


MAX_NAME_LENGTH = 64
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")


def name_problem(name: object) -> str | None:
    """Why ``name`` cannot be an encoder, intermediate, task, experiment or language name, or None.

    These names become parts of paths (run ids, stage and checkpoint folders, prediction files), so
    the grid and the task files accept only names that cannot lead a write outside the experiment,
    nest folders, or make two folders coincide: letters, digits and ``. _ + -``, starting with a
    letter or a digit (no ``..``, no hidden files, no ``/``: a hub id keeps its ``/`` in the encoder's
    path, never in its short name), without ``__`` (the separator inside run ids), at most 64
    characters.

    >>> name_problem("xlmr-large") is None and name_problem("nli+qa") is None
    True
    >>> name_problem("../escaped")
    "it must start with a letter or a digit and hold only letters, digits and '.', '_', '+', '-'"
    """
    if not isinstance(name, str) or not name:
        return "it must be a non-empty string"
    if len(name) > MAX_NAME_LENGTH:
        return f"it has {len(name)} characters; at most {MAX_NAME_LENGTH} are allowed"
    if not _NAME.fullmatch(name):
        return "it must start with a letter or a digit and hold only letters, digits and '.', '_', '+', '-'"
    if "__" in name:
        return "it contains '__', which separates the parts of a run id"
    return None


SCORE_COLUMNS: tuple[str, ...] = (
    "run_id",
    "encoder",
    "intermediate",
    "intermediate_family",
    "target",
    "target_family",
    "language",
    "seed",
    "metric",
    "score",
    "primary",
    "task_version",
)
# A (encoder, intermediate, target, language, seed, metric) cell is measured once.
CELL_KEYS: tuple[str, ...] = ("encoder", "intermediate", "target", "language", "seed", "metric")
STRING_COLUMNS: tuple[str, ...] = (
    "run_id",
    "encoder",
    "intermediate",
    "intermediate_family",
    "target",
    "target_family",
    "language",
    "metric",
    "task_version",
)
# Columns of every analysis result frame that reports an estimate.
RESULT_COLUMNS: tuple[str, ...] = (
    "estimate",
    "ci_low",
    "ci_high",
    "se",
    "df",
    "statistic",
    "p_value",
    "p_adj",
    "n",
)
# ----------------------------------------------------------------------------- XTREME suites
# The official XTREME / XTREME-R tasks (xitt's target names are the XTREME ids), their languages
# and groups: data shared by xitt.train.metrics.xtreme_score, xitt collect's aggregates.csv and
# analysis (which may import only this module).
# google-research/xtreme, evaluate.py at 838c13b6 (XTREME_TASK2LANGS, XTREME_GROUP2TASK and, for
# ``--xtreme_version xtreme-r``, XTREME_R_TASK2LANGS, XTREME_R_GROUP2TASK; evaluate()): each task's
# score ("avg_metric") is the plain mean over its official languages of (EM + F1) / 2 for QA, else
# F1 if the task reports one (tagging, BUCC), else accuracy (XNLI, PAWS-X, XCOPA, Tatoeba), else
# mAP@20 (Mewsli-X); a group's score is the mean of its tasks' scores, shown only when every task
# of the group is present; the overall score ("all_task") only when every task of the version is.
XTREME_LANGUAGES = {
    "pawsx": "de en es fr ja ko zh".split(),
    "xnli": "ar bg de el en es fr hi ru sw th tr ur vi zh".split(),
    "panx": "ar he vi id jv ms tl eu ml ta te af nl en de el bn hi mr ur fa fr it pt es bg ru ja ka ko th sw "
    "yo my zh kk tr et fi hu".split(),
    "udpos": "af ar bg de el en es et eu fa fi fr he hi hu id it ja kk ko mr nl pt ru ta te th tl tr ur vi "
    "yo zh".split(),
    "bucc2018": "de fr ru zh".split(),
    "tatoeba": "ar he vi id jv tl eu ml ta te af nl de el bn hi mr ur fa fr it pt es bg ru ja ka ko th sw zh "
    "kk tr et fi hu".split(),
    "xquad": "en es de el ru tr ar vi th zh hi".split(),
    "mlqa": "en es de ar hi vi zh".split(),
    "tydiqa": "en ar bn fi id ko ru sw te".split(),
}
XTREME_GROUPS = {
    "classification": ("pawsx", "xnli"),
    "tagging": ("udpos", "panx"),
    "qa": ("xquad", "mlqa", "tydiqa"),
    "retrieval": ("bucc2018", "tatoeba"),
}
# XTREME-R: no PAWS-X and BUCC; XCOPA, LAReQA and Mewsli-X added; more languages for UD-POS,
# PAN-X, Tatoeba and XQuAD. evaluate.py lists XCOPA in two groups and gives LAReQA no languages
# and no reader, so evaluate.py itself never reaches an XTREME-R "all_task"; here LAReQA
# (language-agnostic retrieval over the pooled XQuAD-R languages, mAP@20 in the XTREME-R paper,
# Ruder et al. 2021, arXiv 2104.07412) is the mean over whatever languages the caller gives
# (at least one), so that the ten-task mean exists. That part is our decision, not official code.
XTREME_R_LANGUAGES = {
    "xnli": XTREME_LANGUAGES["xnli"],
    "panx": XTREME_LANGUAGES["panx"] + "qu pl uk az lt pa gu ro".split(),
    "udpos": XTREME_LANGUAGES["udpos"] + "lt pl uk wo ro".split(),
    "tatoeba": XTREME_LANGUAGES["tatoeba"] + "az lt pl uk ro".split(),
    "xcopa": "et ht id it qu sw ta th tr vi zh".split(),
    "lareqa": [],
    "mewslix": "ar de en es fa ja pl ro ta tr uk".split(),
    "xquad": XTREME_LANGUAGES["xquad"] + ["ro"],
    "mlqa": XTREME_LANGUAGES["mlqa"],
    "tydiqa": XTREME_LANGUAGES["tydiqa"],
}
XTREME_R_GROUPS = {
    "classification": ("xnli", "xcopa"),
    "tagging": ("udpos", "panx"),
    "qa": ("xquad", "mlqa", "tydiqa"),
    "retrieval": ("tatoeba", "mewslix"),
    "multi_choice": ("xcopa",),
}
XTREME_VERSIONS = {
    "xtreme": (XTREME_LANGUAGES, XTREME_GROUPS),
    "xtreme-r": (XTREME_R_LANGUAGES, XTREME_R_GROUPS),
}


AGGREGATES_FILE = "aggregates.csv"
# aggregates.csv (`xitt collect`): per (encoder, intermediate, seed, version) one row per group
# ("all" = the overall XTREME / XTREME-R score, else a group of *_GROUPS) with the official score,
# whether it could be computed (complete), how many of the version's tasks the run set holds
# (n_tasks) and what is missing (missing: "task" or "task:lang lang").
AGGREGATE_COLUMNS: tuple[str, ...] = (
    "encoder",
    "intermediate",
    "seed",
    "version",
    "group",
    "score",
    "complete",
    "n_tasks",
    "missing",
)
_TRUE = {"true", "1", "yes", "t", "y"}
_FALSE = {"false", "0", "no", "f", "n"}


class SchemaError(ValueError):
    """A scores table does not follow the scores.csv contract; the message says how to fix it."""


def _bools(column: pd.Series, where: str = "rows") -> pd.Series:
    if column.dtype == bool:
        return column
    text = column.astype(str).str.strip().str.lower()
    bad = ~text.isin(_TRUE | _FALSE)
    if bad.any():
        raise SchemaError(
            f"column 'primary' must be true/false; got {sorted(set(column[bad].astype(str)))[:5]} "
            f"in {where} {list(column.index[bad][:10])}. Write True for the metric that enters averages."
        )
    return text.isin(_TRUE)


def validate_scores(frame: pd.DataFrame, *, source: str = "scores", where: str = "rows") -> pd.DataFrame:
    """Check ``frame`` against the contract and return a copy with canonical dtypes and column order.

    Raises SchemaError naming missing columns, empty key fields, non-numeric or out-of-range
    scores, and duplicated cells (listing them). Extra columns are kept after the contract ones.
    Bad rows are named by the frame's index, called ``where`` ("lines" when the index holds the
    file's line numbers, as :func:`read_csv_lines` makes it).
    """
    missing = [c for c in SCORE_COLUMNS if c not in frame.columns]
    if missing:
        raise SchemaError(
            f"{source}: missing column(s) {missing}. A scores table needs exactly these columns: "
            f"{', '.join(SCORE_COLUMNS)}. Use `xitt import` to convert other formats."
        )
    out = frame.copy()
    for col in STRING_COLUMNS:
        empty = out[col].isna() | (out[col].astype(str).str.strip() == "")
        if empty.any():
            if col == "intermediate" or col == "intermediate_family":
                hint = f"write the literal '{NONE}' for the no-intermediate baseline"
            else:
                hint = "fill it in"
            raise SchemaError(
                f"{source}: column '{col}' is empty in {where} {list(out.index[empty][:10])}; {hint}."
            )
        out[col] = out[col].astype(str).str.strip()
    seeds = pd.to_numeric(out["seed"], errors="coerce")
    if seeds.isna().any() or (seeds % 1 != 0).any():
        bad = out.index[seeds.isna() | (seeds % 1 != 0)]
        raise SchemaError(f"{source}: column 'seed' must hold integers; {where} {list(bad[:10])} do not.")
    out["seed"] = seeds.astype(np.int64)
    scores = pd.to_numeric(out["score"], errors="coerce")
    bad = scores.isna() | ~np.isfinite(scores.fillna(0))
    if bad.any():
        examples = out.loc[bad, "score"].astype(str).head(5).tolist()
        raise SchemaError(
            f"{source}: column 'score' must be numeric; {where} {list(out.index[bad][:10])} hold {examples}. "
            "Remove those rows or re-run the runs they come from."
        )
    if ((scores < 0) | (scores > 100)).any():
        rows = list(out.index[(scores < 0) | (scores > 100)][:10])
        raise SchemaError(
            f"{source}: scores are on the 0-100 scale; {where} {rows} are outside it. "
            "Multiply fractions by 100 (xitt import --scale 100)."
        )
    out["score"] = scores.astype(float)
    out["primary"] = _bools(out["primary"], where)
    dup = out.duplicated(list(CELL_KEYS), keep=False)
    if dup.any():
        cells = out.loc[dup, list(CELL_KEYS)].drop_duplicates().head(10).to_dict("records")
        raise SchemaError(
            f"{source}: {int(dup.sum())} rows repeat a (encoder, intermediate, target, language, seed, "
            f"metric) cell, e.g. {cells}. Keep one row per cell (was a run collected twice, or two "
            "runs given the same seed?)."
        )
    extra = [c for c in out.columns if c not in SCORE_COLUMNS]
    return out[list(SCORE_COLUMNS) + extra].reset_index(drop=True)


def read_scores(path: str | os.PathLike) -> pd.DataFrame:
    """Read and validate a scores.csv (all text read as strings first, so nothing is guessed)."""
    path = Path(path)
    if not path.is_file():
        raise SchemaError(f"no scores file at {path}; run `xitt collect runs/<exp>` first.")
    return validate_scores(read_csv_lines(path), source=str(path), where="lines")


def read_csv_lines(path: str | os.PathLike) -> pd.DataFrame:
    """A CSV as strings, indexed by each row's line number in the file (the header is line 1;
    blank lines are skipped but counted), so that errors can name the line an editor shows."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=False)
    except pd.errors.EmptyDataError:
        raise SchemaError(
            f"{path} is empty: a scores CSV starts with a header line ({', '.join(SCORE_COLUMNS)})."
        ) from None
    except UnicodeDecodeError as err:
        raise SchemaError(
            f"{path} is not UTF-8 text ({err.reason} at byte {err.start}); save it as UTF-8."
        ) from None
    except pd.errors.ParserError as err:
        raise SchemaError(f"{path} is not a readable CSV: {err}") from err
    frame.index = pd.RangeIndex(2, 2 + len(frame))
    blank = (frame == "").all(axis=1) if len(frame.columns) else pd.Series(False, index=frame.index)
    return frame[~blank]


def write_scores(frame: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Validate and write ``frame`` atomically, sorted so that the file is reproducible."""
    path = Path(path)
    frame = validate_scores(frame, source=str(path))
    frame = frame.sort_values(["run_id", "language", "metric"], kind="stable")
    atomic_write_text(path, frame.to_csv(index=False, lineterminator="\n"))
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically; see :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder, fsync and rename.

    Readers see the old file or the new one, never a half-written one; a symlink at ``path`` is
    replaced, never written through (a linked report.html once overwrote the link's target).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ----------------------------------------------------------------------------- example-level file
# runs/<exp>/examples.csv.gz (`xitt collect`, from runs saved with `save_predictions: true`): one row
# per run x language x test example. A run's score on any resample of its examples is the ratio of
# sums 100 * sum(numerator) / sum(denominator), so the full sample gives back its recorded primary score:
# accuracy: correct (0/1) over 1; QA: the example's (EM + F1) / 2 in [0, 1] over 1; tagging F1:
# 2 x true-positive chunks over predicted + gold chunks of the sentence; token accuracy: correct tags
# over tags. The run's other columns (encoder, intermediate, seed, ...) come from scores.csv by run_id.
EXAMPLES_FILE = "examples.csv.gz"
EXAMPLE_COLUMNS: tuple[str, ...] = ("run_id", "language", "metric", "example", "numerator", "denominator")
# runs/<exp>/dev_scores.csv (`xitt collect`): the scores.csv columns for each target run's English-dev
# selection score (language = the task's training language, metric = its primary metric), the score the
# runner used to pick its checkpoint; targets without target training (retrieval) have none.
DEV_SCORES_FILE = "dev_scores.csv"


def validate_examples(frame: pd.DataFrame, *, source: str = "examples") -> pd.DataFrame:
    """Check an example-level frame (columns EXAMPLE_COLUMNS) and return it with canonical dtypes.

    Raises SchemaError for missing columns, non-integer example indices, negative or non-numeric
    numerators/denominators, and repeated (run_id, language, example) rows.
    """
    missing = [c for c in EXAMPLE_COLUMNS if c not in frame.columns]
    if missing:
        raise SchemaError(
            f"{source}: missing column(s) {missing}; an examples file has {', '.join(EXAMPLE_COLUMNS)}. "
            "Re-run `xitt collect` to rebuild it."
        )
    out = frame[list(EXAMPLE_COLUMNS)].copy()
    for col in ("run_id", "language", "metric"):
        out[col] = out[col].astype(str)
    example = pd.to_numeric(out["example"], errors="coerce")
    values = out[["numerator", "denominator"]].apply(pd.to_numeric, errors="coerce")
    bad = example.isna() | (example % 1 != 0) | values.isna().any(axis=1) | (values < 0).any(axis=1)
    if bad.any():
        raise SchemaError(
            f"{source}: rows {list(out.index[bad][:10])} need an integer example index and non-negative "
            "numerator and denominator. Re-run `xitt collect` to rebuild the file."
        )
    out["example"] = example.astype(np.int64)
    out[["numerator", "denominator"]] = values.astype(float)
    dup = out.duplicated(["run_id", "language", "example"])
    if dup.any():
        raise SchemaError(
            f"{source}: {int(dup.sum())} rows repeat a (run_id, language, example), e.g. "
            f"{out.loc[dup, ['run_id', 'language', 'example']].head(3).to_dict('records')}. "
            "Re-run `xitt collect` to rebuild the file."
        )
    return out.reset_index(drop=True)


def read_examples(path: str | os.PathLike) -> pd.DataFrame:
    """Read and validate ``examples.csv.gz`` (see EXAMPLE_COLUMNS)."""
    path = Path(path)
    if not path.is_file():
        raise SchemaError(
            f"no examples file at {path}; set `save_predictions: true` in the grid, run, then `xitt collect`."
        )
    return validate_examples(pd.read_csv(path, dtype={"run_id": str, "language": str}), source=str(path))
