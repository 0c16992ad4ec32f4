"""The layering the code is built on: a core that knows nothing of Textual, sources that know nothing of SQLite."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "monitor"
UI = {"app.py", "messages.py", "screens", "widgets", "cli.py", "__main__.py"}  # cli: the entry point


def imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def core_files() -> list[Path]:
    return [p for p in PACKAGE.rglob("*.py") if p.relative_to(PACKAGE).parts[0] not in UI]


def test_the_core_never_imports_textual_or_the_ui() -> None:
    files = core_files()
    assert len(files) > 20
    for path in files:
        bad = {n for n in imports(path) if n.split(".")[0] in ("textual", "textual_plotext")}
        bad |= {n for n in imports(path) if n.startswith(("monitor.app", "monitor.screens", "monitor.widgets"))}
        assert not bad, f"{path.relative_to(PACKAGE)} imports {bad}"


def test_sources_know_nothing_of_sqlite_or_the_store() -> None:
    for path in (PACKAGE / "sources").glob("*.py"):
        bad = {
            n for n in imports(path) if n in ("sqlite3", "aiosqlite") or n.startswith(("monitor.store", "monitor.app"))
        }
        assert not bad, f"{path.name} imports {bad}"
