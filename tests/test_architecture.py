"""The layering the code is built on, as import-linter contracts (pyproject.toml, `[tool.importlinter]`)."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "monitor"


def contracts() -> list[dict]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]["contracts"]


def lint(pyproject: Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    # In a child process: import-linter disables the loggers that exist when it runs (httpx's among them).
    # The package is found from cwd first, so a copy in a temporary folder is what gets analysed.
    check = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(sys.argv[1], no_cache=True))"
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run(
        [sys.executable, "-c", check, str(pyproject)], capture_output=True, text=True, timeout=240, cwd=cwd, env=env
    )


def test_the_import_contracts_hold() -> None:
    run = lint(ROOT / "pyproject.toml")
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"{len(contracts())} kept, 0 broken" in run.stdout, run.stdout


# One breach per rule the issue names: each must break the contract that forbids it.
BREACHES = {
    "the ui runs sql": ("ui/widgets/header.py", "import sqlite3", "Only the database layer runs SQL"),
    "the engine talks to postgresql": ("engine/collector.py", "import psycopg", "Only the database layer runs SQL"),
    "the ui calls postgresql's sql": ("ui/widgets/header.py", "from monitor.db.pg import mentions", "The UI reaches"),
    "the ui calls sql functions": ("ui/widgets/header.py", "from monitor.db import mentions", "The UI reaches"),
    "a network imports the store": ("networks/feed.py", "from monitor.db import store", "Networks know nothing"),
    "the core imports textual": ("core/models.py", "import textual", "Only the UI and the entry point"),
    "the core imports the engine": ("core/sanitize.py", "from monitor.engine import collector", "Layers"),
}


@pytest.mark.parametrize("breach", BREACHES, ids=list(BREACHES))
def test_a_breach_of_the_layers_breaks_a_contract(breach: str, tmp_path: Path) -> None:
    """The contracts are not decoration: a copy of the package with one bad import fails them."""
    module, line, contract = BREACHES[breach]
    copy = tmp_path / "monitor"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / module
    target.write_text(target.read_text(encoding="utf-8") + f"\n{line}  # noqa\n", encoding="utf-8")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    run = lint(tmp_path / "pyproject.toml", cwd=tmp_path)
    assert run.returncode != 0, run.stdout
    broken = run.stdout[run.stdout.index("Broken contracts") :]
    assert contract in broken, run.stdout


def test_every_package_is_in_exactly_one_layer() -> None:
    """Exhaustive layers: a new folder under monitor/ cannot slip out of the contract by not being listed."""
    (layers,) = (c for c in contracts() if c["type"] == "layers")
    named = {name.strip() for layer in layers["layers"] for name in layer.split("|")}
    present = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir() if p.suffix == ".py" or p.is_dir()}
    present -= {"__init__", "__pycache__", *layers["exhaustive_ignores"]}
    assert named == present


def test_no_contract_ignores_a_breach() -> None:
    assert [c["name"] for c in contracts() if c.get("ignore_imports")] == []


ONCE = ("TERM_SEP", "ENV_NAME", "html_to_text", "draft_followup", "parse_remote_time", "writable")


def test_shared_definitions_are_written_once() -> None:
    """What several layers use is defined in one place (issue 12: two html_to_text, TERM_SEP and the
    environment-variable rule twice); the others import it."""
    where: dict[str, list[str]] = {name: [] for name in ONCE}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                names = [node.name]
            elif isinstance(node, ast.Assign):
                names = [t.id for t in node.targets if isinstance(t, ast.Name)]
            else:
                continue
            for name in names:
                if name.lstrip("_") in where:
                    where[name.lstrip("_")].append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert {name: len(places) for name, places in where.items() if len(places) != 1} == {}, where
