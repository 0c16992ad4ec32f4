"""The layering the code is built on, as import-linter contracts (pyproject.toml, `[tool.importlinter]`)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "monitor"
UI = {"app", "cli", "__main__", "messages", "screens", "widgets"}  # cli: the entry point


def contracts() -> list[dict]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]["contracts"]


def test_the_import_contracts_hold() -> None:
    # In a child process: import-linter disables the loggers that exist when it runs (httpx's among them).
    check = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(sys.argv[1], no_cache=True))"
    run = subprocess.run(
        [sys.executable, "-c", check, str(ROOT / "pyproject.toml")], capture_output=True, text=True, timeout=240
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"{len(contracts())} kept, 0 broken" in run.stdout, run.stdout


def test_every_module_outside_the_ui_is_bound_by_the_core_contract() -> None:
    """A new module is core unless it is UI: it cannot slip out of the contract by not being listed."""
    core = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir() if p.suffix == ".py" or p.is_dir()}
    core -= UI | {"__init__", "__pycache__"}
    (contract,) = (c for c in contracts() if c["name"].startswith("The core never imports Textual"))
    assert {m.removeprefix("monitor.") for m in contract["source_modules"]} == core
    assert {f"monitor.{m}" for m in UI} <= set(contract["forbidden_modules"])
    assert {"textual", "textual_plotext"} <= set(contract["forbidden_modules"])
