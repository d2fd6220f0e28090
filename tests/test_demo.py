"""The offline demo end to end, small: `xitt synth` -> `xitt run` -> `xitt collect` on 2 languages,
2 intermediate tasks (+ none), 1 target, 2 seeds; run twice, the scores are identical. Also checks
the committed runs/demo (grid and scores) without training."""

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "runs" / "demo"


def _grid(tmp: Path) -> dict:
    return {
        "experiment": "demo-small",
        "synthetic": True,
        "encoders": [{"name": "synth-mbert", "path": str(tmp / "synth" / "encoder")}],
        "data_dir": str(tmp / "synth" / "data"),
        "intermediates": ["none", "synth_nli", "synth_qa"],
        "targets": ["synth_xnli"],
        "languages": {"synth_xnli": ["en", "qaa"]},
        "seeds": [1, 2],
        "train": {"num_threads": 1, "precision": "fp32"},
        "keep_checkpoints": False,
    }


@pytest.mark.slow
def test_small_demo_end_to_end_is_deterministic(tmp_path, monkeypatch):
    from xitt import cli
    from xitt.grid.spec import expand_grid, load_grid
    from xitt.run.executors import execute
    from xitt.run.store import collect
    from xitt.schema import read_scores, write_scores

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # restored after the test (the CLI sets them too)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    assert cli.main(["synth", "--out", str(tmp_path / "synth"), "--languages", "1", "--size", "small"]) == 0
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "grid.yaml").write_text(yaml.safe_dump(_grid(tmp_path)))

    assert cli.main(["run", str(tmp_path / "a"), "--offline", "--quiet"]) == 0
    assert cli.main(["collect", str(tmp_path / "a")]) == 0
    scores = read_scores(tmp_path / "a" / "scores.csv")
    assert len(scores) == 3 * 2 * 2  # intermediates x languages x seeds (accuracy only)
    assert set(scores.intermediate_family) == {"none", "nli", "qa"}
    assert not list((tmp_path / "a").glob("checkpoints/*"))  # keep_checkpoints: false
    assert scores.score.nunique() > 1

    grid = load_grid(tmp_path / "b")  # the same grid again, through execute + collect
    counts = execute(grid, exp_dir=tmp_path / "b", progress=False)
    assert counts["done"] == counts["runs"] == 6
    again, _ = collect(tmp_path / "b", [r.run_id for r in expand_grid(grid)[1]])
    write_scores(again, tmp_path / "b" / "scores.csv")
    assert (tmp_path / "b" / "scores.csv").read_bytes() == (tmp_path / "a" / "scores.csv").read_bytes()


def test_committed_demo_grid_is_valid_and_synthetic():
    from xitt.grid.spec import expand_grid, load_grid

    grid = load_grid(DEMO)
    assert grid.synthetic and not grid.keep_checkpoints
    assert (
        grid.encoders == (("synth-mbert", ".cache/synth/encoder"),) and grid.data_dir == ".cache/synth/data"
    )
    families = [i.family for i in grid.intermediates]
    assert (
        families.count("nli") >= 2
        and families.count("qa") >= 2
        and "paraphrase" in families
        and "none" in families
    )
    assert len(grid.targets) >= 3 and len(grid.seeds) >= 3
    assert all(len(langs) >= 5 for langs in grid.languages.values())
    stages, runs = expand_grid(grid)
    assert len(runs) == len(grid.intermediates) * len(grid.targets) * len(grid.seeds)


def test_committed_demo_scores_cover_the_grid():
    from xitt.grid.spec import expand_grid, load_grid
    from xitt.schema import read_scores

    scores = read_scores(DEMO / "scores.csv")  # committed: `make report` on a fresh clone needs it
    _, runs = expand_grid(load_grid(DEMO))
    assert set(scores.run_id) == {r.run_id for r in runs}
    assert all(
        (DEMO / r.run_id / "result.json").is_file() and (DEMO / r.run_id / "config.yaml").is_file()
        for r in runs
    )
    assert not list(DEMO.glob("checkpoints/*"))
    # save_predictions: every trained run has its per-example predictions, one file per language
    trained = [r for r in runs if r.target != "synth_tatoeba"]
    assert all(
        sorted(p.name for p in (DEMO / r.run_id / "predictions").iterdir())
        == sorted(f"{lang}.jsonl.gz" for lang in r.languages)
        for r in trained
    )
    generated = ("analysis", "report", "checkpoints")  # git-ignored, rewritten by analyze / report
    files = [p for p in DEMO.rglob("*") if p.is_file() and p.relative_to(DEMO).parts[0] not in generated]
    size = sum(p.stat().st_size for p in files if p.name != "train.log" and "predictions" not in p.parts)
    predictions = sum(p.stat().st_size for p in files if "predictions" in p.parts)
    assert size < 2_000_000 and predictions < 2_000_000
