"""The official XTREME aggregate: `xitt collect`'s aggregates.csv and the averages of the oracle and
replication tables (analysis.oracle.average_scope), on hand-built grids with known answers.

The suite (tasks, official languages, groups) is google-research/xtreme evaluate.py at 838c13b6
(XTREME_TASK2LANGS, XTREME_GROUP2TASK), held in xitt.schema; the per-language metric is
evaluate.py's avg_metric: (EM + F1) / 2 for QA, F1 for tagging and BUCC, accuracy otherwise.
"""

import numpy as np
import pandas as pd
import pytest

from analysis.effects import deltas
from analysis.oracle import NAIVE, average_scope, oracle_frame
from analysis.replication import replication_frame
from xitt.run.aggregates import aggregate_frame, held_versions, write_aggregates
from xitt.schema import AGGREGATE_COLUMNS, XTREME_LANGUAGES, read_csv_lines
from xitt.train.metrics import xtreme_score

TASKS = list(XTREME_LANGUAGES)  # pawsx xnli panx udpos bucc2018 tatoeba xquad mlqa tydiqa
QA = {"xquad", "mlqa", "tydiqa"}
BASE = {t: 50.0 + k for k, t in enumerate(TASKS)}  # none's per-language score of each task
GAIN = {t: 1.0 + k for k, t in enumerate(TASKS)}  # mnli's gain on each task (every official language)
PRIMARY = {"panx": "f1", "udpos": "f1", "bucc2018": "f1"}  # else accuracy; QA: em_f1


def _rows(task: str, language: str, intermediate: str, seed: int, value: float) -> list[dict]:
    """scores.csv rows of one (run, language); QA: em = value - 5, f1 = value + 5, em_f1 = value."""
    if task in QA:
        metrics = {"em_f1": (value, True), "em": (value - 5, False), "f1": (value + 5, False)}
    else:
        metrics = {PRIMARY.get(task, "accuracy"): (value, True)}
        if task in PRIMARY:
            metrics["precision"] = (0.0, False)
    run_id = f"e__{intermediate}__{task}__s{seed}"
    return [
        dict(
            run_id=run_id,
            encoder="e",
            intermediate=intermediate,
            intermediate_family=intermediate,
            target=task,
            target_family=task,
            language=language,
            seed=seed,
            metric=m,
            score=v,
            primary=p,
            task_version="1",
        )  # fmt: skip
        for m, (v, p) in metrics.items()
    ]


def suite_scores(seeds=(1, 2, 3), drop=()) -> pd.DataFrame:
    """A full XTREME grid (none, mnli) plus a non-official language "xx" per task (none 0, mnli +100:
    any average that used it would be far off). ``drop``: (task, language) cells left out."""
    rows = []
    for seed in seeds:
        for task in TASKS:
            for language in [*XTREME_LANGUAGES[task], "xx"]:
                if (task, language) in drop:
                    continue
                official = language != "xx"
                none = BASE[task] if official else 0.0
                rows += _rows(task, language, "none", seed, none)
                rows += _rows(task, language, "mnli", seed, none + (GAIN[task] if official else 100.0))
    return pd.DataFrame(rows)


def _results(scores: pd.DataFrame, intermediate: str) -> dict:
    """xtreme_score's input for one run set, built independently of xitt.run.aggregates."""
    out: dict = {}
    for r in scores[scores["intermediate"] == intermediate].itertuples():
        metric = "exact_match" if r.metric == "em" else r.metric
        out.setdefault(r.target, {}).setdefault(r.language, {})[metric] = r.score
    return out


def test_aggregate_of_a_full_suite_is_the_official_score():
    scores = suite_scores(seeds=(1,))
    frame = aggregate_frame(scores)
    assert list(frame.columns) == list(AGGREGATE_COLUMNS)
    assert held_versions(scores["target"].unique()) == ["xtreme"]  # no xcopa, mewslix, lareqa
    overall = frame[frame["group"] == "all"].set_index("intermediate")
    # known answer: the mean over the 9 tasks of their per-language score ("xx" ignored)
    assert overall.loc["none", "score"] == pytest.approx(np.mean(list(BASE.values())))  # 54.0
    assert overall.loc["mnli", "score"] == pytest.approx(54.0 + np.mean(list(GAIN.values())))  # 59.0
    for inter in ("none", "mnli"):
        assert overall.loc[inter, "score"] == pytest.approx(xtreme_score(_results(scores, inter))["all_task"])
    assert overall["complete"].all() and (overall["n_tasks"] == 9).all()
    qa = frame[(frame["group"] == "qa") & (frame["intermediate"] == "none")]["score"].item()
    assert qa == pytest.approx(np.mean([BASE[t] for t in ("xquad", "mlqa", "tydiqa")]))


def test_a_missing_official_language_makes_the_score_incomplete_and_says_which():
    frame = aggregate_frame(suite_scores(seeds=(1,), drop={("udpos", "yo"), ("udpos", "zh")}))
    rows = frame.set_index(["intermediate", "group"])
    for group in ("all", "tagging"):
        assert not rows.loc[("none", group), "complete"] and np.isnan(rows.loc[("none", group), "score"])
        assert rows.loc[("none", group), "missing"] == "udpos:yo zh"
    assert rows.loc[("none", "qa"), "complete"] and rows.loc[("none", "qa"), "missing"] == ""


def test_write_aggregates_writes_only_when_a_suite_is_held(tmp_path):
    path = write_aggregates(tmp_path, suite_scores(seeds=(1, 2)))
    back = read_csv_lines(path)
    assert len(back) == 2 * 2 * 5  # 2 intermediates x 2 seeds x (all + 4 groups)
    partial = suite_scores(seeds=(1,))
    assert write_aggregates(tmp_path / "other", partial[partial["target"] != "tydiqa"]) is None


def _primary_deltas(scores: pd.DataFrame) -> pd.DataFrame:
    return deltas(scores[scores["primary"]])


def test_average_scope_is_the_official_score_gain_on_a_full_suite():
    scores = suite_scores()
    delta = _primary_deltas(scores)
    scoped, label = average_scope(delta)
    assert label == "XTREME score"
    assert "xx" not in set(scoped["language"])
    summary, _ = oracle_frame(delta)
    naive = summary.set_index("method").loc[NAIVE]
    official_gain = (
        xtreme_score(_results(scores, "mnli"))["all_task"]
        - xtreme_score(_results(scores, "none"))["all_task"]
    )
    assert naive["estimate"] == pytest.approx(official_gain) and official_gain == pytest.approx(5.0)
    assert naive["average"] == "XTREME score"
    table = replication_frame(delta, synthetic=False).set_index("claim")
    assert table.loc["1b", "estimate"] == pytest.approx(5.0)  # MNLI's average gain
    assert table.loc["1b", "average"] == "XTREME score"


def test_the_label_flips_when_a_target_is_missing():
    scores = suite_scores()
    delta = _primary_deltas(scores[scores["target"] != "tydiqa"])
    scoped, label = average_scope(delta)
    assert "NOT the official XTREME score" in label and "missing from the XTREME suite: tydiqa" in label
    assert "xquad (" in label and "xx" in label  # which targets and languages the average used
    summary, _ = oracle_frame(delta)
    naive = summary.set_index("method").loc[NAIVE]
    # equal-target mean over 8 targets, "xx" included (+100 on each): not the official number
    languages = {t: len(XTREME_LANGUAGES[t]) for t in TASKS if t != "tydiqa"}
    expected = np.mean([(GAIN[t] * n + 100.0) / (n + 1) for t, n in languages.items()])
    assert naive["estimate"] == pytest.approx(expected)
    assert naive["average"] == label


def test_a_missing_official_language_also_flips_the_label():
    delta = _primary_deltas(suite_scores(drop={("pawsx", "ko")}))
    assert "missing from the XTREME suite: pawsx:ko" in average_scope(delta)[1]


def test_xitt_collect_writes_aggregates_csv(tmp_path, capsys):
    """From the CLI: a grid over the 9 XTREME targets, result files written by hand, `xitt collect`."""
    import yaml

    from xitt.cli import main
    from xitt.grid.spec import expand_grid, load_grid
    from xitt.run.store import RunResult, run_dir, write_result

    exp = tmp_path / "runs" / "exp"
    exp.mkdir(parents=True)
    grid = {
        "encoders": ["mbert-test"],
        "intermediates": ["none", "mnli"],
        "targets": TASKS,
        "languages": {t: XTREME_LANGUAGES[t] for t in TASKS},
        "seeds": [1],
    }
    (exp / "grid.yaml").write_text(yaml.safe_dump(grid))
    _, runs = expand_grid(load_grid(exp))
    for spec in runs:
        task, gain = spec.target, GAIN[spec.target] if spec.intermediate == "mnli" else 0.0
        rows = {lg: {} for lg in XTREME_LANGUAGES[task]}
        for r in _rows(task, "-", spec.intermediate, 1, BASE[task] + gain):
            for lg in rows:
                rows[lg][r["metric"]] = r["score"]
        primary = next(r["metric"] for r in _rows(task, "-", "none", 1, 0.0) if r["primary"])
        write_result(run_dir(exp, spec.run_id), RunResult(spec.run_id, spec.to_dict(), "done", scores=rows,
                                                          primary_metric=primary))  # fmt: skip
    assert main(["collect", str(exp)]) == 0
    assert "aggregates.csv" in capsys.readouterr().out
    back = read_csv_lines(exp / "aggregates.csv").set_index(["intermediate", "group"])
    assert float(back.loc[("none", "all"), "score"]) == pytest.approx(54.0)
    assert float(back.loc[("mnli", "all"), "score"]) == pytest.approx(59.0)
