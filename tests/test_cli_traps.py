"""The CLI without traps (issue 13): no silent demo, no silent PDF skip, no stale files, no grid
without a baseline, contrasts in their own folders, display names, help everywhere, quiet pipes,
CSV errors with the file's line numbers. No torch is imported here."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from analysis.simulate import simulate_scores
from xitt.cli import build_parser, main
from xitt.schema import write_scores

# Real task names, so that the grid validates against the registry (xitt/tasks/*.yaml).
RENAME = {
    "intermediate": {
        "nli_1": "mnli",
        "nli_2": "anli",
        "qa_1": "squad_v1",
        "qa_2": "squad_v2",
        "para_1": "qqp",
    },
    "target": {"target_1": "xnli", "target_2": "xquad"},
}
GRID = {
    "encoders": ["mbert-test"],
    "intermediates": ["none", "mnli", "anli", "squad_v1", "squad_v2", "qqp"],
    "targets": ["xnli", "xquad"],
    "languages": {"xnli": ["de", "fr", "sw"], "xquad": ["de", "es", "zh"]},
    "seeds": [1, 2, 3],
    "display": {"xquad": "XQuAD (ours)"},
}
LANGUAGES = {"l01": "de", "l02": "fr", "l03": "sw"}


@pytest.fixture
def exp(tmp_path):
    """runs/exp with a grid and a simulated scores.csv (NLI, QA and paraphrase intermediates)."""
    folder = tmp_path / "runs" / "exp"
    folder.mkdir(parents=True)
    (folder / "grid.yaml").write_text(yaml.safe_dump(GRID))
    scores = simulate_scores(
        np.random.default_rng(0),
        families={"nli": 2, "qa": 2, "para": 1},
        family_effects={"nli": 1.0, "qa": 0.0, "para": 0.5},
        n_targets=2,
        n_languages=3,
        encoder="mbert-test",
    )
    for column, mapping in RENAME.items():
        scores[column] = scores[column].replace(mapping)
    scores["intermediate_family"] = scores["intermediate_family"].replace({"para": "paraphrase"})
    scores["language"] = scores["language"].replace(LANGUAGES)
    write_scores(scores, folder / "scores.csv")
    return folder


def test_analyze_and_report_need_the_experiment_unless_exp_is_set(exp, capsys, monkeypatch):
    monkeypatch.delenv("EXP", raising=False)
    for command in ("analyze", "report"):
        assert main([command]) == 2
        assert "name the experiment" in capsys.readouterr().err
    monkeypatch.setenv("EXP", str(exp))
    assert main(["analyze", "--n-boot", "100"]) == 0
    assert (exp / "analysis" / "nli-vs-qa" / "answer.json").is_file()


def test_each_contrast_has_its_own_folder(exp, capsys):
    assert main(["analyze", str(exp), "--n-boot", "100"]) == 0
    assert main(["analyze", str(exp), "--n-boot", "100", "--b", "paraphrase"]) == 0
    first = (exp / "analysis" / "nli-vs-qa" / "answer.json").read_text()
    second = (exp / "analysis" / "nli-vs-paraphrase" / "answer.json").read_text()
    assert '"b": "qa"' in first and '"b": "paraphrase"' in second


def test_report_announces_a_skipped_pdf_and_removes_stale_files(exp, capsys, monkeypatch):
    from analysis.report import render

    stale = exp / "report" / "report.pdf"
    stale.parent.mkdir()
    stale.write_bytes(b"%PDF old")
    (exp / "report" / "tables").mkdir()
    (exp / "report" / "tables" / "old_table.tex").write_text("old")
    real_which = render.shutil.which
    monkeypatch.setattr(render.shutil, "which", lambda name: None if name == "pdflatex" else real_which(name))
    assert main(["report", str(exp), "--n-boot", "100", "--format", "md,csv"]) == 0
    captured = capsys.readouterr()
    assert (
        "the PDF was skipped: pdflatex is not on PATH" in captured.err and "apt-get install" in captured.err
    )
    assert not stale.exists() and not (exp / "report" / "tables" / "old_table.tex").exists()
    assert "\\usepackage{booktabs}" in captured.out  # the one preamble line the tables need
    md = (exp / "report" / "tables" / "per_target.md").read_text()
    assert md.count("\n| ") >= 3 and "XQuAD (ours)" in md  # the grid's display override
    main_md = (exp / "report" / "tables" / "main_table.md").read_text()
    assert "SQuAD 1.1" in main_md and "squad_v1" not in main_md  # the task file's display name
    csv = (exp / "report" / "tables" / "per_target.csv").read_text()
    assert csv.startswith("target,estimate [CI],df,p,p Holm,p BH,wins\n") and "\u2212" not in csv


def test_report_of_scores_without_a_baseline_shows_the_score_tables(exp, capsys):
    from xitt.schema import read_scores

    scores = read_scores(exp / "scores.csv")
    write_scores(scores[scores.intermediate != "none"], exp / "scores.csv")
    assert main(["analyze", str(exp)]) == 2
    err = capsys.readouterr().err
    assert "no 'none' runs" in err and "--a" not in err  # the real fix, not another contrast
    assert main(["report", str(exp), "--no-pdf"]) == 0
    assert "descriptive score tables only" in capsys.readouterr().err
    tables = sorted(p.stem for p in (exp / "report" / "tables").glob("*.tex"))
    assert "main_table" in tables and "contrast" not in tables and "per_target" not in tables


def test_plan_and_run_stop_without_a_baseline_unless_asked(exp, capsys):
    grid = dict(GRID, intermediates=["mnli", "squad_v1"])
    (exp / "grid.yaml").write_text(yaml.safe_dump(grid))
    for command in ("plan", "run"):
        assert main([command, str(exp)]) == 2
        err = capsys.readouterr().err
        assert "no 'none' intermediate" in err and "--no-baseline" in err
    assert main(["plan", str(exp), "--no-baseline"]) == 0


def test_collect_with_nothing_done_is_an_error(exp, capsys):
    (exp / "scores.csv").unlink()
    assert main(["collect", str(exp), "--allow-incomplete"]) == 2
    assert "none of the" in capsys.readouterr().err and not (exp / "scores.csv").exists()


def test_tasks_path_is_recorded_in_the_grid(exp, tmp_path, capsys, monkeypatch):
    custom = tmp_path / "my_tasks"
    custom.mkdir()
    nli = yaml.safe_load((Path(__file__).parents[1] / "xitt" / "tasks" / "nli.yaml").read_text())
    nli["tasks"] = {"my_nli": dict(nli["tasks"]["mnli"], display="My NLI")}
    (custom / "mine.yaml").write_text(yaml.safe_dump(nli))
    monkeypatch.setenv("XITT_TASKS_PATH", str(custom))
    (exp / "grid.yaml").write_text(yaml.safe_dump(dict(GRID, intermediates=["none", "my_nli"])))
    assert main(["plan", str(exp)]) == 0
    assert "recorded tasks_path" in capsys.readouterr().err
    assert yaml.safe_load((exp / "grid.yaml").read_text())["tasks_path"] == [str(custom)]
    monkeypatch.setenv("XITT_TASKS_PATH", "")  # a later shell without the variable
    assert main(["status", str(exp)]) == 0


def test_every_option_has_help_and_there_is_a_version(capsys):
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.choices and isinstance(a.choices, dict)).choices
    missing = [
        f"{name} {'/'.join(action.option_strings) or action.dest}"
        for name, sub in subparsers.items()
        for action in sub._actions
        if not action.help and action.dest != "help"
    ]
    assert missing == []
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.startswith("xitt ")
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "imported lazily" not in capsys.readouterr().out  # no developer notes for users


def test_a_closed_pipe_ends_quietly(exp):
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1]))
    proc = subprocess.run(
        f"{sys.executable} -m xitt.cli plan {exp} --full --set 'seeds=[{','.join(map(str, range(1, 200)))}]' | head -1",
        shell=True,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.stdout.strip() and proc.stderr == ""


def test_csv_errors_name_the_file_line(tmp_path, capsys):
    bad = tmp_path / "results.csv"
    bad.write_text(
        "encoder,intermediate,target,language,seed,score\n"
        "mbert,none,xnli,de,1,61.0\n"
        "\n"
        "mbert,mnli,xnli,de,1,62.0\n"
        "mbert,mnli,xnli,fr,1,high\n"
    )
    assert main(["import", str(bad), "--out", str(tmp_path / "scores.csv")]) == 2
    assert "lines [5]" in capsys.readouterr().err  # line 5 of the file, as an editor shows it


def test_missing_data_is_grouped_by_task_with_each_fix_once(tmp_path):
    from xitt.data.loaders import DataError
    from xitt.data.prepare import prepare
    from xitt.tasks import registry

    reg = registry()
    needs = [
        (reg.get("synth_xnli"), split, lang)
        for split, lang in [("train", "en"), ("dev", "en"), ("test", "de"), ("test", "fr")]
    ] + [(reg.get("xnli"), "test", lang) for lang in ("de", "fr")]
    with pytest.raises(DataError) as err:
        prepare(needs, tmp_path / "cache", offline=True)
    text = str(err.value)
    lines = text.splitlines()
    assert text.startswith("6 data split(s) of 2 task(s) cannot be prepared")
    assert sum("'synth_xnli'" in line for line in lines) == 1  # one line per task and problem, not per split
    assert "train-en, dev-en, test-de, test-fr" in text and "test-de, test-fr: not prepared" in text
    assert text.count("xitt synth --out") == 1 and text.count("once online") == 1
    synth_fix = next(line for line in lines if "xitt synth" in line)
    assert "synth_xnli" in synth_fix and "online" not in synth_fix


def test_runs_of_extra_seeds_are_seen_with_the_same_option(exp, capsys):
    """`xitt run --seeds 4` trains runs outside the grid's seeds; status and collect see them when
    given the same --seeds (or --set), and not otherwise."""
    from xitt.grid.spec import expand_grid, load_grid
    from xitt.run.store import RunResult, run_dir, write_result

    (exp / "scores.csv").unlink()
    grid = load_grid(exp)
    _, runs = expand_grid(grid, seeds=[4])
    for spec in runs:
        languages = grid.languages[spec.target]
        metric = "accuracy" if spec.target == "xnli" else "em_f1"
        write_result(
            run_dir(exp, spec.run_id),
            RunResult(
                spec.run_id,
                spec.to_dict(),
                "done",
                scores={lang: {metric: 60.0} for lang in languages},
                primary_metric=metric,
            ),
        )
    assert main(["status", str(exp)]) == 0
    assert "0 done" in capsys.readouterr().out
    assert main(["status", str(exp), "--seeds", "4"]) == 0
    assert f"{len(runs)} done" in capsys.readouterr().out
    assert main(["collect", str(exp), "--set", "seeds=[4]"]) == 0
    assert (exp / "scores.csv").is_file()


def test_report_layout_two_sets_wide_tables_across_both_columns(exp, capsys):
    assert main(["report", str(exp), "--n-boot", "100", "--no-pdf", "--layout", "two"]) == 0
    assert "--layout two" in capsys.readouterr().out
    main_table = (exp / "report" / "tables" / "main_table.tex").read_text()
    assert "\\begin{table*}" in main_table and "\\label{tab:exp-main-table}" in main_table
    assert "\\begin{table}" in (exp / "report" / "tables" / "language_wins.tex").read_text()
