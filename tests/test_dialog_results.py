"""Dialogs are typed by their result: a caller gets `T | None` (None: Esc, nothing happened), no `object`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CALLER = """
from typing import assert_type
from textual.app import App
from monitor.ui.screens.dialogs import (
    ChoiceDialog, ChoiceResult, ComposeDialog, ConfirmDialog, FilterDialog, NoteDialog, ReplyResult,
)

async def caller(app: App[None], compose: ComposeDialog, choice: ChoiceDialog, note: NoteDialog,
                 query: FilterDialog, confirm: ConfirmDialog) -> None:
    assert_type(await app.push_screen_wait(compose), ReplyResult | None)
    assert_type(await app.push_screen_wait(choice), ChoiceResult | None)
    assert_type(await app.push_screen_wait(note), str | None)
    assert_type(await app.push_screen_wait(query), str | None)
    assert_type(await app.push_screen_wait(confirm), bool | None)
"""


def test_each_dialog_gives_its_caller_a_precise_result_type(tmp_path: Path) -> None:
    caller = tmp_path / "caller.py"
    caller.write_text(CALLER, encoding="utf-8")
    cache = ROOT / ".mypy_cache" / "dialog-results"  # its own: other options than the package's run
    options = ["--config-file", os.devnull, "--ignore-missing-imports", "--cache-dir", str(cache)]
    # In a child process: mypy in-process changes the interpreter's state (the pty tests after it then hang).
    done = subprocess.run([sys.executable, "-m", "mypy", *options, str(caller)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
