"""The `xitt` command line. Training and analysis modules are imported lazily, inside the
subcommands that need them, so that `xitt analyze`/`report`/`plan` never load torch.

Every user error (bad grid, unknown task, broken scores file) ends with one paragraph on
stderr that names the problem and the fix, exit status 2, and nothing written.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from xitt.grid.spec import SpecError
from xitt.run.preempt import Preempted
from xitt.schema import SchemaError
from xitt.tasks import TaskError

# SpecError, TaskError and SchemaError are ValueErrors; so are the store's "runs not done" errors.
USER_ERRORS = (SpecError, TaskError, SchemaError, ValueError, FileNotFoundError)


def experiment_dir(arg: str) -> Path:
    """`runs/demo`, `runs/demo/grid.yaml` or just `demo` all name the experiment folder."""
    path = Path(arg)
    if path.name.endswith((".yaml", ".yml")):
        return path.parent
    if not path.exists() and (Path("runs") / arg).is_dir():
        return Path("runs") / arg
    return path


def parse_seeds(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise SpecError(
            f"--seeds takes integers separated by commas (e.g. --seeds 4,5), got {text!r}."
        ) from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise SpecError(f"--seeds must list distinct seeds, got {text!r}.")
    return seeds


# ------------------------------------------------------------------------------------ commands


def cmd_tasks(args) -> int:
    from xitt.tasks import SUITES, scan

    registry, problems = scan()
    if args.validate:
        if problems:
            print(f"{len(problems)} problem(s) in the task files:", *problems, sep="\n  ", file=sys.stderr)
            return 1
        print(
            f"ok: {len(registry.tasks)} tasks in {len(registry.by_family())} families, suites {sorted(SUITES)}"
        )
        return 0
    for family, tasks in registry.by_family().items():
        print(f"{family}")
        for task in tasks:
            if args.role and args.role not in task.roles:
                continue
            langs = task.languages if task.is_target else ()
            where = task.source.get("hub", "local data only") if isinstance(task.source, dict) else ""
            print(
                f"  {task.name:<15} {'/'.join(task.roles):<20} {task.kind:<20} {task.metric:<17} "
                f"{len(langs):>2} lang  {where}"
            )
    for suite, members in SUITES.items():
        print(f"suite {suite}: {', '.join(members)}")
    return 1 if problems else 0


def cmd_plan(args) -> int:
    from xitt.data.loaders import resolve_data_dir
    from xitt.grid.spec import check_baseline, expand_grid, load_grid, record_tasks_path
    from xitt.run.plan import describe_plan

    exp = experiment_dir(args.grid)
    grid = load_grid(args.grid, args.set)
    check_baseline(grid, allowed=args.no_baseline)
    stages, runs = expand_grid(grid, seeds=parse_seeds(args.seeds))
    _note_tasks_path(record_tasks_path(grid, exp), exp)
    data_dir = resolve_data_dir(args.data_dir, grid.data_dir)
    print(describe_plan(grid, stages, runs, exp, full=args.full, data_dir=data_dir))
    from xitt.grid.settings import describe_settings
    from xitt.tasks import registry

    print()
    print(describe_settings(grid, registry(), full=args.full))
    return 0


def cmd_prepare(args) -> int:
    from xitt.data.loaders import resolve_data_dir, set_offline_flags
    from xitt.grid.spec import expand_grid, load_grid

    if args.offline:
        os.environ["XITT_OFFLINE"] = "1"
    offline = set_offline_flags()  # before any HF library is imported
    grid = load_grid(args.grid, args.set)
    stages, runs = expand_grid(grid, seeds=parse_seeds(args.seeds))
    data_dir = resolve_data_dir(args.data_dir, grid.data_dir)
    from xitt.data.prepare import needs_of, prepare
    from xitt.tasks import registry

    outcome = prepare(needs_of(stages, runs, registry()), data_dir, offline=offline, echo=print)
    print(f"{len(outcome.lines)} split(s) ready in {data_dir}; {outcome.hub_calls} hub dataset load(s)")
    return 0


def _note_tasks_path(folders: list[str], exp: Path) -> None:
    if folders:
        print(f"note: recorded tasks_path: [{', '.join(folders)}] in {exp / 'grid.yaml'}", file=sys.stderr)


def cmd_run(args) -> int:
    from xitt.grid.spec import check_baseline, expand_grid, load_grid, record_tasks_path

    if args.offline:
        os.environ["XITT_OFFLINE"] = "1"
    exp = experiment_dir(args.grid)
    grid = load_grid(args.grid, args.set)
    check_baseline(grid, allowed=args.no_baseline)
    seeds = parse_seeds(args.seeds)
    expand_grid(grid, seeds=seeds)  # every spec error before torch is even imported
    if args.no_wait and (args.executor or grid.executor.kind) != "slurm":
        raise SpecError(
            "--no-wait applies to the slurm executor only (a local `xitt run` is the worker itself); "
            "drop --no-wait, or add --executor slurm."
        )
    if (args.executor or grid.executor.kind) == "slurm" and shutil.which("sbatch") is None:
        raise SpecError(
            "--executor slurm (or the grid's executor.kind) needs a SLURM cluster, but sbatch is not on "
            "PATH here. Run `xitt run` on the cluster's login node, or use --executor local."
        )
    _note_tasks_path(record_tasks_path(grid, exp), exp)
    if grid.synthetic:
        print("note: this experiment runs on SYNTHETIC data (the offline demo benchmark).", file=sys.stderr)
    from xitt.run.executors import execute

    summary = execute(
        grid,
        exp_dir=exp,
        seeds=seeds,
        executor=args.executor,
        workers=args.workers,
        fail_fast=args.fail_fast,
        data_dir=args.data_dir,
        progress=not args.quiet,
        wait=not args.no_wait,
    )
    print(" ".join(f"{k}={v}" for k, v in summary.items()))
    from xitt.run.store import status_frame

    _, runs = expand_grid(grid, seeds=seeds)
    counts = Counter(status_frame(exp, [r.run_id for r in runs]).state)
    # The last line says whether the grid is finished; the exit status says it to scripts.
    print(f"{exp}: {len(runs)} runs: {_state_counts(counts)}")
    if args.no_wait:  # submitted: success; the jobs are SLURM's now
        print(f"not waiting for the jobs: `xitt status {exp}` follows them", file=sys.stderr)
        return 0
    return 0 if counts.get("done", 0) == len(runs) else 1


def _plain(text: str) -> str:
    """An error text without control characters: an ESC sequence in a task name once cleared the screen."""
    return "".join(ch if ch.isprintable() else "?" for ch in str(text))


def _state_counts(counts: Counter) -> str:
    return ", ".join(f"{counts.get(s, 0)} {s}" for s in ("done", "running", "failed", "corrupt", "pending"))


def cmd_convert(args) -> int:
    from xitt.data import converters
    from xitt.data.loaders import resolve_data_dir
    from xitt.tasks import registry

    data_dir = resolve_data_dir(args.data_dir)
    src = Path(args.source)
    if args.task == "ccg":
        written = converters.convert_ccg(src, data_dir)
    else:
        languages = args.languages.split(",") if args.languages else list(registry().get(args.task).languages)
        if args.task == "mewslix":
            written = converters.convert_mewslix(src, data_dir, languages, max_candidates=args.max_candidates)
        else:
            written = converters.convert_lareqa(src, data_dir, languages)
    for part, n in written.items():
        print(f"{args.task} {part}: {n}")
    print(f"wrote {data_dir / args.task}; next: `xitt prepare runs/<exp> --data-dir {data_dir}`")
    return 0


def cmd_status(args) -> int:
    from xitt.grid.spec import expand_grid, load_grid, trainings_of
    from xitt.run.store import stage_state, status_frame

    exp = experiment_dir(args.experiment)
    grid = load_grid(exp, args.set)
    stages, runs = expand_grid(grid, seeds=parse_seeds(args.seeds))
    status = status_frame(exp, [r.run_id for r in runs])
    counts = Counter(status.state)
    print(f"{exp}: {len(status)} runs: {_state_counts(counts)}")
    for row in status[status.state.isin(["failed", "corrupt", "running"])].itertuples():
        print(f"  {row.state:<8} {row.run_id}" + (f"\n           {_plain(row.detail)}" if row.detail else ""))
    stage_states = {s.stage_id: stage_state(exp, s.stage_id) for s in stages}
    print(f"{exp}: {len(stages)} intermediate stages: {_state_counts(Counter(stage_states.values()))}")
    for stage_id, state in stage_states.items():
        if state in ("failed", "corrupt", "running"):
            print(f"  {state:<8} stage {stage_id}")
    trainings = {t.train_id: stage_state(exp, t.train_id, "training") for t in trainings_of(runs)}
    if trainings:  # targets that share one target training (XQuAD and MLQA on SQuAD)
        print(
            f"{exp}: {len(trainings)} shared target trainings: {_state_counts(Counter(trainings.values()))}"
        )
    for train_id, state in trainings.items():
        if state in ("failed", "corrupt", "running"):
            print(f"  {state:<8} training {train_id}")
    return 1 if counts.get("failed") or counts.get("corrupt") else 0


def cmd_collect(args) -> int:
    from xitt.grid.spec import expand_grid, load_grid
    from xitt.run.store import collect
    from xitt.schema import write_scores

    exp = experiment_dir(args.experiment)
    grid = load_grid(exp, args.set)
    _, runs = expand_grid(grid, seeds=parse_seeds(args.seeds))
    scores, status = collect(exp, [r.run_id for r in runs], allow_incomplete=args.allow_incomplete)
    if not (status.state == "done").any():
        raise SpecError(
            f"none of the {len(status)} runs of {exp} is done: nothing to collect, no scores.csv written. "
            f"`xitt status {exp}` shows where they stand; `xitt run {exp}` trains them."
        )
    out = write_scores(scores, _out_file(args.out) if args.out else exp / "scores.csv")
    if not args.out:  # the example-level and English-dev files sit beside the experiment's scores.csv
        from xitt.run.examples import collect_extras, write_extras
        from xitt.tasks import registry

        done = status.loc[status.state == "done", "run_id"]
        for path in write_extras(exp, *collect_extras(exp, done, registry())):
            print(f"wrote {path}")
        from xitt.run.aggregates import write_aggregates

        if (path := write_aggregates(exp, scores)) is not None:
            print(f"wrote {path} (official XTREME / XTREME-R scores)")
    left_out = status[status.state != "done"]
    if len(left_out):
        print(
            f"warning: {len(left_out)} runs left out (not done): "
            + ", ".join(left_out.run_id[:5])
            + (" ..." if len(left_out) > 5 else ""),
            file=sys.stderr,
        )
    print(
        f"wrote {out}: {len(scores)} rows from {int((status.state == 'done').sum())} runs"
        + (" (SYNTHETIC data)" if grid.synthetic else "")
    )
    return 0


def _out_file(text: str) -> Path:
    """--out must name a file: a folder there would be replaced by nothing useful."""
    path = Path(text)
    if path.is_dir():
        raise SpecError(f"--out {text} is a folder; give a file path such as {path / 'scores.csv'}.")
    return path


def cmd_import(args) -> int:
    from xitt.importers import import_csv, import_jiant, import_xtreme
    from xitt.schema import write_scores

    if args.format == "xtreme":
        if not args.labels:
            raise SchemaError("--format xtreme needs --labels: the folder of <task>/test-<lang> gold files.")
        pattern = args.pattern or "{encoder}/{intermediate}/seed{seed}"
        scores = import_xtreme(
            Path(args.source), labels=Path(args.labels), pattern=pattern, on_duplicate=args.on_duplicate
        )
    elif args.format == "jiant":
        scores = import_jiant(
            Path(args.source),
            pattern=args.pattern or "{encoder}/{intermediate}/{target}/seed{seed}",
            scale=args.scale,
            on_duplicate=args.on_duplicate,
        )
    else:
        scores = import_csv(Path(args.source), scale=args.scale, on_duplicate=args.on_duplicate)
    out = write_scores(scores, _out_file(args.out))
    print(f"wrote {out}: {len(scores)} rows")
    if args.scale is None:  # the advice looks at the data: fractions imported as points
        from analysis.load import scale_warnings

        for warning in scale_warnings(scores):
            print(f"warning: {warning}", file=sys.stderr)
    return 0


def _chance_levels(scores) -> dict[str, float]:
    from xitt.tasks import registry

    reg = registry()
    chance = {}
    for target in scores["target"].unique():
        task = reg.tasks.get(target)
        if task is not None and task.chance is not None:
            chance[target] = task.chance
    return chance


def _experiment_arg(args) -> Path:
    """The experiment named on the command line, else $EXP; neither is an error (no silent demo)."""
    name = args.experiment or os.environ.get("EXP")
    if not name:
        raise SpecError(
            f"name the experiment: xitt {args.command} runs/<exp> (or set EXP=runs/<exp>); "
            "the shipped demo is runs/demo."
        )
    return experiment_dir(name)


def _grid_of(exp: Path):
    from xitt.grid.spec import load_grid

    return load_grid(exp) if (exp / "grid.yaml").exists() else None


def _display_names(scores, grid):
    """Display names: the task files' ``display:`` fields, then the grid's ``display:`` mapping."""
    from analysis.report.names import display_names
    from xitt.tasks import registry

    reg = registry()
    used = set(scores["intermediate"]) | set(scores["target"])
    tasks = {name: reg.tasks[name].display for name in used if name in reg.tasks and reg.tasks[name].display}
    return display_names(tasks, grid.display if grid is not None else None)


def contrast_folder(exp: Path, a: str, b: str) -> Path:
    """runs/<exp>/analysis/<a>-vs-<b>/: each contrast keeps its own frames."""
    return exp / "analysis" / f"{a}-vs-{b}"


def report_folder(exp: Path, a: str, b: str) -> Path:
    """runs/<exp>/report/ for the default NLI vs QA contrast, runs/<exp>/report-<a>-vs-<b>/ otherwise."""
    return exp / "report" if (a, b) == ("nli", "qa") else exp / f"report-{a}-vs-{b}"


def _check_contrast(args) -> None:
    if args.a == args.b:
        raise SpecError(
            f"--a and --b are both {args.a!r}: a contrast needs two families, e.g. --a nli --b qa."
        )


def _analyze(args, exp: Path, *, descriptive_ok: bool = False):
    """analyze() on runs/<exp>/scores.csv with the command's options; its frames written under
    contrast_folder(). Scores without the ``none`` baseline give describe() when
    ``descriptive_ok`` (the report's score tables), an error otherwise. Returns (analysis,
    written paths, display names)."""
    _check_contrast(args)
    import numpy as np

    from analysis.pipeline import analyze, describe
    from analysis.report.export import write_frames
    from xitt.schema import DEV_SCORES_FILE, EXAMPLES_FILE, NONE, read_examples, read_scores

    scores = read_scores(exp / "scores.csv")
    grid = _grid_of(exp)
    synthetic = bool(grid is not None and grid.synthetic)
    if descriptive_ok and not (scores["intermediate"] == NONE).any():
        result = describe(
            scores,
            a=args.a,
            b=args.b,
            allow_incomplete=args.allow_incomplete,
            chance=_chance_levels(scores),
            experiment=exp.name,
            synthetic=synthetic,
        )
        return (
            result,
            write_frames(result, contrast_folder(exp, args.a, args.b)),
            _display_names(scores, grid),
        )
    result = analyze(
        scores,
        rng=np.random.default_rng(args.seed),
        a=args.a,
        b=args.b,
        n_boot=args.n_boot,
        allow_incomplete=args.allow_incomplete,
        chance=_chance_levels(scores),
        experiment=exp.name,
        seed=args.seed,
        synthetic=synthetic,
        keep_degenerate=args.keep_degenerate,
        encoder=args.encoder,
        # `xitt collect` writes these beside scores.csv (runs saved with save_predictions: true)
        dev_scores=read_scores(exp / DEV_SCORES_FILE) if (exp / DEV_SCORES_FILE).is_file() else None,
        examples=read_examples(exp / EXAMPLES_FILE) if (exp / EXAMPLES_FILE).is_file() else None,
    )
    names = _display_names(scores, grid)
    return result, write_frames(result, contrast_folder(exp, args.a, args.b)), names


def cmd_analyze(args) -> int:
    from analysis.report.terminal import render_summary

    exp = _experiment_arg(args)
    result, paths, names = _analyze(args, exp)
    render_summary(result, names=names)
    print(f"wrote {len(paths)} files under {contrast_folder(exp, args.a, args.b)}")
    return 0


def _formats(text: str) -> tuple[str, ...]:
    from analysis.report.render import TABLE_FORMATS

    formats = tuple(f.strip() for f in text.split(",") if f.strip())
    unknown = [f for f in formats if f not in TABLE_FORMATS]
    if unknown:
        raise SpecError(
            f"--format takes a comma-separated list of {', '.join(TABLE_FORMATS)} (e.g. --format md,csv); "
            f"got {', '.join(unknown)}."
        )
    return formats


def cmd_report(args) -> int:
    from analysis.report.render import PDF_HINT, PREAMBLE, build_report
    from xitt.run.plan import experiment_provenance

    exp = _experiment_arg(args)
    formats = _formats(args.format)
    result, _, names = _analyze(args, exp, descriptive_ok=True)
    if result.answer is None:
        print(
            "note: the scores have no 'none' baseline: the report shows the descriptive score tables only.",
            file=sys.stderr,
        )
    files = build_report(
        result,
        report_folder(exp, args.a, args.b),
        provenance=experiment_provenance(exp, args.seed),
        pdf=not args.no_pdf,
        names=names,
        layout_name=args.layout,
        formats=formats,
    )
    for name, path in files.items():
        print(f"{name}: {path}")
    print(f"tables/*.tex go into a paper with {PREAMBLE} in its preamble (--layout {args.layout}).")
    if not args.no_pdf and "pdf" not in files:
        print(f"warning: {PDF_HINT}", file=sys.stderr)
    return 0


def cmd_synth(args) -> int:
    from xitt.synth import benchmark as synth

    return synth.run(args) or 0


def cmd_calibrate(args) -> int:
    """Coverage, null rejection and power of every row the report prints, by simulation."""
    import numpy as np

    from analysis.calibration import calibration_table

    if args.grids < 1:
        print(f"xitt calibrate: error: --grids must be >= 1; got {args.grids}", file=sys.stderr)
        return 2
    table = calibration_table(np.random.default_rng(args.seed), n_grids=args.grids)
    shown = table[
        [
            "scenario",
            "method",
            "stratum",
            "coverage",
            "rejection_rate",
            "n_grids",
            "mc_se",
            "mean_width",
            "bias",
        ]
    ]
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.out, index=False)
        print(f"wrote {args.out}")
    return 0


def cmd_bench(args) -> int:
    if args.part in ("analysis", "all"):
        from analysis.bench import main as analysis_bench

        analysis_bench()
    if args.part in ("runner", "all"):
        from xitt.bench.runner import main as runner_bench

        runner_bench()
    if args.part == "gpu":
        from xitt.bench.gpu import main as gpu_check

        gpu_check()
    return 0


# -------------------------------------------------------------------------------------- parser


def _positive_int(text: str) -> int:
    """argparse type: an integer of at least 1 (``--workers 0`` once silently meant 1)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("xitt")
    except PackageNotFoundError:
        return "(not installed; run from a checkout)"


def build_parser() -> argparse.ArgumentParser:
    """The parser of every subcommand (building it imports no torch)."""
    from xitt.synth import benchmark as synth

    parser = argparse.ArgumentParser(
        prog="xitt",
        description="Intermediate-task training for zero-shot cross-lingual transfer: plan and run a grid, "
        "collect its scores, and answer whether NLI helps more than QA.",
        epilog="Each command has its own help: xitt <command> --help.",
    )
    parser.add_argument("--version", action="version", version=f"xitt {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    _add_runner_commands(sub)
    _add_analysis_commands(sub)
    p = sub.add_parser("synth", help="build the offline synthetic benchmark and its tiny encoder")
    p.set_defaults(func=cmd_synth)
    synth.add_arguments(p)

    p = sub.add_parser(
        "calibrate",
        help="simulate grids with run-level seed noise and singular designs: coverage, null rejection "
        "and power of every row the report prints",
    )
    p.add_argument("--grids", type=int, default=500, help="grids per scenario (default: 500)")
    p.add_argument("--seed", type=int, default=0, help="simulation seed (default: 0)")
    p.add_argument("--out", default="", help="also write the table as CSV to this path")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("bench", help="speed benchmarks (results are printed, nothing is asserted)")
    p.add_argument(
        "--part",
        choices=["analysis", "runner", "gpu", "all"],
        default="all",
        help="which benchmarks (default: all; gpu needs a CUDA device)",
    )
    p.set_defaults(func=cmd_bench)
    return parser


def _grid_command(sub, name, func, help_, arg="grid"):
    """A subcommand that reads a grid: the experiment argument and --set."""
    p = sub.add_parser(name, help=help_)
    p.add_argument(arg, help="runs/<exp>, runs/<exp>/grid.yaml or an experiment name")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a grid value, e.g. --set train.lr=1e-5 --set seeds=[1,2]",
    )
    p.set_defaults(func=func)
    return p


def _add_runner_commands(sub) -> None:
    """tasks, plan, run, status, collect, import."""
    p = sub.add_parser("tasks", help="list the declared tasks by family and role")
    p.add_argument("--validate", action="store_true", help="check the task files; exit 1 on problems")
    p.add_argument(
        "--role", choices=["intermediate", "target"], help="only the tasks that can play this role"
    )
    p.set_defaults(func=cmd_tasks)

    data_help = "the data cache (prepared copies + local inputs); also XITT_DATA_DIR; default ~/.cache/xitt"
    no_baseline = "plan/train a grid without the 'none' baseline (analyze then has no deltas to compare)"
    p = _grid_command(
        sub, "plan", cmd_plan, "show the DAG of stages and runs, GPU-hours, what is done and prepared"
    )
    p.add_argument("--seeds", help="only these seeds, e.g. 4,5")
    p.add_argument("--full", action="store_true", help="list every run id")
    p.add_argument("--data-dir", help=data_help)
    p.add_argument("--no-baseline", action="store_true", help=no_baseline)

    p = _grid_command(
        sub, "prepare", cmd_prepare, "resolve, verify and cache every data split of a grid (no training)"
    )
    p.add_argument("--seeds", help="only these seeds, e.g. 4,5")
    p.add_argument("--data-dir", help=data_help)
    p.add_argument("--offline", action="store_true", help="never contact the hub: check the cache only")

    p = _grid_command(sub, "run", cmd_run, "train and evaluate every run of a grid (idempotent, resumable)")
    p.add_argument("--seeds", help="only these seeds, e.g. --seeds 4,5 to add seeds to a finished grid")
    p.add_argument("--executor", choices=["local", "slurm"], help="default: the grid's executor.kind")
    p.add_argument(
        "--workers",
        type=_positive_int,
        help="local process pool size, at least 1 (default: the grid's executor.workers)",
    )
    p.add_argument("--fail-fast", action="store_true", help="stop at the first failing run")
    p.add_argument("--data-dir", help=data_help)
    p.add_argument("--offline", action="store_true", help="never contact the hub (sets HF_*_OFFLINE)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--no-baseline", action="store_true", help=no_baseline)
    p.add_argument(
        "--no-wait",
        action="store_true",
        help="slurm: submit the pending jobs and return (`xitt status` follows them; `xitt run` again "
        "waits for the queued ones and submits none twice)",
    )
    same = "the same --seeds as `xitt run` was given (runs of other seeds are then seen too)"

    p = sub.add_parser(
        "convert", help="XTREME-R download-script files (Mewsli-X, LAReQA) or CCGbank -> the data dir"
    )
    p.add_argument("task", choices=["mewslix", "lareqa", "ccg"], help="which data set the files are")
    p.add_argument("source", help="the folder the download script wrote (or the CCGbank root)")
    p.add_argument("--data-dir", help=data_help)
    p.add_argument("--languages", help="comma-separated (default: the task's languages)")
    p.add_argument("--max-candidates", type=int, default=1000, help="Mewsli-X: pool entities per language")
    p.set_defaults(func=cmd_convert)

    p = _grid_command(
        sub, "status", cmd_status, "done / running / failed / pending runs of an experiment", arg="experiment"
    )
    p.add_argument("--seeds", help=same)

    p = _grid_command(
        sub, "collect", cmd_collect, "gather result.json files into runs/<exp>/scores.csv", arg="experiment"
    )
    p.add_argument("--seeds", help=same)
    p.add_argument(
        "--allow-incomplete",
        action="store_true",
        help="write the runs that are done and list the others (at least one must be done)",
    )
    p.add_argument("--out", help="where to write the scores (default: runs/<exp>/scores.csv)")

    p = sub.add_parser(
        "import",
        help="convert other results (tidy CSV, jiant 1.x/2.x runs, XTREME submissions) to scores.csv",
    )
    p.add_argument("source", help="a CSV file, a folder of jiant runs or a folder of XTREME submissions")
    p.add_argument("--out", required=True, help="the scores.csv to write (e.g. runs/<exp>/scores.csv)")
    p.add_argument(
        "--format",
        choices=["csv", "jiant", "xtreme"],
        default="csv",
        help="csv: a tidy CSV with the scores.csv columns; jiant: jiant 2.x val_metrics.json / 1.x results.tsv "
        "run folders; xtreme: submission folders of <task>/test-<lang>.tsv|json, scored against --labels "
        "(default: csv)",
    )
    p.add_argument(
        "--pattern",
        default=None,
        help="jiant/xtreme: how run folders are named, relative to SOURCE (default jiant: "
        "{encoder}/{intermediate}/{target}/seed{seed}; xtreme: {encoder}/{intermediate}/seed{seed})",
    )
    p.add_argument("--labels", default=None, help="xtreme: the gold folder, <task>/test-<lang>.tsv|json")
    p.add_argument("--scale", type=float, default=None, help="multiply scores (e.g. 100 for fractions)")
    p.add_argument(
        "--on-duplicate",
        choices=["error", "last", "mean"],
        default="error",
        help="repeated runs of one cell: error (list them; default), last (keep the row read last), mean",
    )
    p.set_defaults(func=cmd_import)


def _add_analysis_commands(sub) -> None:
    """analyze and report."""
    for name, func, help_ in (
        ("analyze", cmd_analyze, "answer NLI vs QA: mixed model, bootstrap, tests, seed plan"),
        ("report", cmd_report, "write runs/<exp>/report/ (HTML, LaTeX, PDF, figures)"),
    ):
        p = sub.add_parser(name, help=help_)
        p.add_argument(
            "experiment",
            nargs="?",
            help="runs/<exp> or an experiment name (default: $EXP; required otherwise)",
        )
        p.add_argument(
            "--seed", type=int, default=0, help="analysis seed for bootstrap and permutations (default: 0)"
        )
        p.add_argument(
            "--n-boot",
            type=int,
            default=2000,
            help="bootstrap resamples (default: 2000; the report shows their Monte-Carlo error)",
        )
        p.add_argument(
            "--a", default="nli", help="first intermediate family of the contrast a - b (default: nli)"
        )
        p.add_argument(
            "--b", default="qa", help="second intermediate family of the contrast a - b (default: qa)"
        )
        p.add_argument(
            "--allow-incomplete",
            action="store_true",
            help="analyse a grid with missing cells (they are listed as a caveat) instead of stopping",
        )
        p.add_argument(
            "--keep-degenerate",
            action="store_true",
            help="keep runs at 0 or at chance level in the analysis (default: excluded; listed either way)",
        )
        p.add_argument(
            "--encoder",
            default=None,
            help="analyse one encoder's runs only (default: all encoders, equal weights, plus per-encoder "
            "answers and the encoder x family interaction)",
        )
        p.set_defaults(func=func)
        if name == "report":
            p.add_argument("--no-pdf", action="store_true", help="do not run pdflatex (HTML and LaTeX only)")
            p.add_argument(
                "--layout",
                choices=["one", "two"],
                default="one",
                help="paper columns the LaTeX tables are laid out for: 'two' uses table* and splits what "
                "is wider than the page; nothing is ever scaled (default: one)",
            )
            p.add_argument(
                "--format",
                default="",
                metavar="md,csv",
                help="also write the formatted tables as Markdown and/or CSV under report/tables/",
            )


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:  # `xitt plan ... | head`: the reader left; end quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:  # claims are released on the way out (context managers, finally blocks)
        print(
            f"xitt {args.command}: interrupted; finished runs are kept, run it again to resume",
            file=sys.stderr,
        )
        return 130
    except Preempted as err:  # SIGTERM/SIGUSR2: resume states saved, claims released
        print(
            f"xitt {args.command}: {err}; the running stages and runs saved their resume states, "
            "run it again to go on from there",
            file=sys.stderr,
        )
        return 128 + err.signum
    except (*USER_ERRORS, OSError) as err:
        if os.environ.get("XITT_DEBUG"):
            raise
        print(
            f"xitt {args.command}: error: {_error_text(err)}\n(set XITT_DEBUG=1 for a traceback)",
            file=sys.stderr,
        )
        return 2


def _error_text(err: BaseException) -> str:
    """One paragraph without control characters; a file-system error names its file and what to check."""
    if isinstance(err, OSError) and not isinstance(err, FileNotFoundError) and err.filename:
        return _plain(
            f"cannot use {err.filename}: {err.strerror or err}. Check that it is a writable file path."
        )
    return "\n".join(_plain(line) for line in str(err).splitlines())


if __name__ == "__main__":
    sys.exit(main())
