"""The house's walls: which wing may import which, and which commands may load torch.

`analysis/` imports only `xitt.schema` from the training side; `xitt/` imports `analysis/` only from the
CLI (lazily, inside a subcommand); `xitt analyze`, `report` and `plan` never load torch.
"""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> set[str]:
    """Every module a file imports (absolute imports; the project uses no relative ones)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import"
            names.add(node.module or "")
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _files(wing: str) -> list[Path]:
    return sorted((ROOT / wing).rglob("*.py"))


def test_analysis_imports_only_the_schema_from_xitt():
    offenders = {
        str(path.relative_to(ROOT)): sorted(n for n in _imports(path) if n.split(".")[0] == "xitt")
        for path in _files("analysis")
    }
    offenders = {
        path: [n for n in names if n not in ("xitt.schema",) and not n.startswith("xitt.schema.")]
        for path, names in offenders.items()
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_analysis_never_imports_torch():
    heavy = ("torch", "transformers", "datasets", "tokenizers")
    found = {
        str(path.relative_to(ROOT)): sorted(n for n in _imports(path) if n.split(".")[0] in heavy)
        for path in _files("analysis")
    }
    assert {path: names for path, names in found.items() if names} == {}


def test_only_the_cli_imports_analysis():
    found = {
        str(path.relative_to(ROOT)): sorted(n for n in _imports(path) if n.split(".")[0] == "analysis")
        for path in _files("xitt")
    }
    assert {path for path, names in found.items() if names} <= {"xitt/cli.py"}
    assert found["xitt/cli.py"], "the CLI dispatches to analysis/; the test lost its subject"


def test_statistics_never_import_the_report_layer():
    """analysis/report/ reads the statistics' results; statistics never reach up into rendering."""
    found = {
        str(path.relative_to(ROOT)): sorted(n for n in _imports(path) if n.startswith("analysis.report"))
        for path in _files("analysis")
        if "report" not in path.relative_to(ROOT).parts[1:-1] and path.name != "bench.py"
    }
    assert {path: names for path, names in found.items() if names} == {}


@pytest.mark.parametrize("command", ["analyze", "report", "plan"])
def test_commands_that_do_not_train_load_no_torch(command, tmp_path):
    exp = tmp_path / "demo"
    shutil.copytree(ROOT / "runs" / "demo", exp, ignore=shutil.ignore_patterns("report", "analysis"))
    code = (
        "import sys; from xitt.cli import main; "
        f"rc = main([{command!r}, {str(exp)!r}]); "
        "sys.exit(10 + (rc or 0) if 'torch' in sys.modules else (rc or 0))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, f"exit {proc.returncode} (>= 10: torch was imported)\n{proc.stderr[-2000:]}"
