"""Mypy, with the settings in pyproject.toml, finds no error in the package: the suite keeps it so."""

from __future__ import annotations

from pathlib import Path

import pytest
from mypy import api

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_finds_no_error_in_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # pyproject names the package relative to the checkout
    stdout, stderr, status = api.run(["--config-file", str(ROOT / "pyproject.toml")])
    assert status == 0, stdout + stderr
    assert "Success: no issues found" in stdout, stdout


def test_the_core_is_clean_under_strict_mypy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The core layer holds to `--strict` (the pyproject override lists its flags); modules it imports are
    read but not reported, and whether they re-export a name is their own setting (the database layer is not
    strict), so `--implicit-reexport`."""
    monkeypatch.chdir(ROOT)
    core = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "monitor" / "core").glob("*.py"))
    flags = ["--strict", "--implicit-reexport", "--follow-imports=silent", "--ignore-missing-imports"]
    stdout, stderr, status = api.run([*flags, *core])
    assert status == 0, stdout + stderr
