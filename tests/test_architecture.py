"""The layering the code is built on, as import-linter contracts (pyproject.toml, `[tool.importlinter]`)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "monitor"
UI = {"app", "cli", "__main__", "messages", "screens", "widgets"}  # cli: the entry point


def contracts() -> list[dict]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]["contracts"]


def test_the_import_contracts_hold(capsys: pytest.CaptureFixture[str]) -> None:
    status = lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True)
    out = capsys.readouterr().out
    assert status == 0, out
    assert f"{len(contracts())} kept, 0 broken" in out, out


def test_every_module_outside_the_ui_is_bound_by_the_core_contract() -> None:
    """A new module is core unless it is UI: it cannot slip out of the contract by not being listed."""
    core = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir() if p.suffix == ".py" or p.is_dir()}
    core -= UI | {"__init__", "__pycache__"}
    (contract,) = (c for c in contracts() if c["name"].startswith("The core never imports Textual"))
    assert {m.removeprefix("monitor.") for m in contract["source_modules"]} == core
    assert {f"monitor.{m}" for m in UI} <= set(contract["forbidden_modules"])
    assert {"textual", "textual_plotext"} <= set(contract["forbidden_modules"])
