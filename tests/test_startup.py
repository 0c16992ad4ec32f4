"""A fatal error at start-up exits by itself, with one line and a non-zero code: no traceback, no hung thread.

Each command runs as a real process (`python -m monitor ...`). The subprocess timeout is only a safety
net: a process still alive after it is the failure being tested (systemd never restarts a hung process).
"""

from __future__ import annotations

import os
import pty
import pwd
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, write_demo, write_watchlist

SAFETY_NET_S = 120
ESCAPES = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07]*\x07|[@-Z\\-_])")


def run_cli(args: list[str], cwd: Path) -> tuple[int, str]:
    """Run a command that must exit by itself; returns its code and its stderr."""
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        cwd=cwd, capture_output=True, text=True, timeout=SAFETY_NET_S,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    return proc.returncode, proc.stderr


def run_app(args: list[str], cwd: Path) -> tuple[int, str]:
    """The desk in a real pseudo-terminal (Textual writes its screen to stderr): code and the text left."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", *args],
        cwd=cwd, stdin=slave, stdout=slave, stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT), "TERM": "xterm-256color"},
    )  # fmt: skip
    os.close(slave)
    drain = threading.Thread(target=_drain, args=(master,), daemon=True)  # the child never blocks on output
    drain.start()
    try:
        _, err = proc.communicate(timeout=SAFETY_NET_S)
    finally:
        proc.kill()
        proc.wait()
        drain.join(timeout=5)
        os.close(master)
    return proc.returncode, ESCAPES.sub("", err.decode("utf-8", "replace"))


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except OSError:
        pass


def assert_one_line(code: int, stderr: str, *words: str) -> None:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert code != 0, stderr
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1 and lines[0].startswith("monitor: "), stderr
    for word in words:
        assert word in lines[0], stderr


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write_watchlist(tmp_path, write_demo(tmp_path / "demo.jsonl", ["Toulouse: métro arrêté"]))
    return tmp_path


COMMANDS = {
    "collect": ["collect", "--once"],
    "stats": ["stats"],
    "export": ["export", "mentions"],
    "report": ["report", "--html", "out.html"],
}


@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS.keys())
def test_a_file_that_is_not_a_database_exits_in_one_line(folder: Path, command: list[str]) -> None:
    (folder / "monitor.db").write_text("these are my notes, not a database\n" * 100, encoding="utf-8")
    code, err = run_cli(["-w", "watchlist.yaml", *command], folder)
    assert_one_line(code, err, "monitor.db", "not a SQLite database")


def test_the_desk_on_a_file_that_is_not_a_database_exits_before_the_screen(folder: Path) -> None:
    (folder / "monitor.db").write_text("these are my notes, not a database\n" * 100, encoding="utf-8")
    code, err = run_cli(["-w", "watchlist.yaml"], folder)  # no terminal needed: it fails first
    assert_one_line(code, err, "not a SQLite database")


def test_a_missing_demo_file_exits_in_one_line(folder: Path) -> None:
    (folder / "demo.jsonl").unlink()
    code, err = run_cli(["-w", "watchlist.yaml", "collect", "--once"], folder)
    assert_one_line(code, err, "demo.jsonl")


def test_the_desk_with_a_missing_demo_file_exits_by_itself_in_one_line(folder: Path) -> None:
    (folder / "demo.jsonl").unlink()
    code, err = run_app(["-w", "watchlist.yaml"], folder)
    assert_one_line(code, err, "demo.jsonl")


def break_the_matcher(folder: Path) -> None:
    """A pattern that does not compile (patterns are compiled one by one, so only a broken one can fail)."""
    text = (folder / "watchlist.yaml").read_text(encoding="utf-8")
    text = text.replace("terms:\n", 'terms:\n  - name: a\n    patterns: ["(unclosed"]\n', 1)
    (folder / "watchlist.yaml").write_text(text, encoding="utf-8")


def test_the_desk_with_a_pattern_that_breaks_the_matcher_exits_by_itself_in_one_line(folder: Path) -> None:
    break_the_matcher(folder)
    code, err = run_app(["-w", "watchlist.yaml"], folder)
    assert_one_line(code, err)


@pytest.mark.parametrize("command", [["collect", "--once"], ["check"]], ids=["collect", "check"])
def test_a_pattern_that_breaks_the_matcher_exits_in_one_line(folder: Path, command: list[str]) -> None:
    break_the_matcher(folder)
    code, err = run_cli(["-w", "watchlist.yaml", *command], folder)
    assert_one_line(code, err)


@pytest.fixture
def unwritable(tmp_path: Path) -> Iterator[tuple[Path, list[str]]]:
    """A database this user can read but not write: read-only modes, or, as root, another user."""
    base = Path(tempfile.mkdtemp(prefix="monitor-ro-"))  # pytest's own folder is private to root
    folder = base / "desk"
    folder.mkdir()
    write_watchlist(folder, write_demo(folder / "demo.jsonl", ["Toulouse: métro arrêté"]))
    conn = sqlite3.connect(folder / "monitor.db")
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    (folder / "monitor.db").chmod(0o444)
    folder.chmod(0o555)
    base.chmod(0o755)
    nobody = pwd.getpwnam("nobody")
    prefix = [str(ROOT / "tests" / "_as_user.py"), str(nobody.pw_uid), str(nobody.pw_gid), "022", "", "--"]
    try:
        yield folder, prefix if os.geteuid() == 0 else ["-m", "monitor"]
    finally:
        folder.chmod(0o755)
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize("command", [["collect", "--once"], ["stats"]], ids=["collect", "stats"])
def test_a_database_this_user_cannot_write_exits_in_one_line(
    unwritable: tuple[Path, list[str]], command: list[str]
) -> None:
    folder, runner = unwritable
    proc = subprocess.run(
        [sys.executable, *runner, "-w", "watchlist.yaml", *command],
        cwd=folder, capture_output=True, text=True, timeout=SAFETY_NET_S,
    )  # fmt: skip
    assert_one_line(proc.returncode, proc.stderr, "monitor.db")
