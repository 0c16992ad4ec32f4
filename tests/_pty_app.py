"""The real app (`python -m monitor`) in a pseudo-terminal, for the tests and benchmarks that need the terminal path.

Keys are written to the pty master as a terminal would send them; the output is read continuously (an app
whose terminal is not read blocks on its writes) into a pyte screen, so a test can wait for what is shown.
Not a test module (no test_ prefix): pytest does not collect it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyte
from ptyprocess import PtyProcess

ROOT = Path(__file__).resolve().parent.parent
CTRL_S, CTRL_U, ENTER = "\x13", "\x15", "\r"


def demo_file(path: Path, n: int) -> Path:
    """n mentions of the city, oldest first, all matching a term: a deterministic New pane."""
    lines = []
    for i in range(1, n + 1):
        lines.append(json.dumps({
            "id": f"ta-{i:04d}", "at": float(i), "network": "mastodon", "author": f"@citizen{i}@piaille.fr",
            "author_name": f"Citizen {i}", "text": f"Toulouse: signalement numéro {i}, rue {i}",
            "url": f"https://piaille.fr/@citizen{i}/{i}", "lang": "fr", "published_ago": 30, "tags": [],
        }))  # fmt: skip
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def collect_once(watchlist: Path, db: Path) -> None:
    """Fill the database through the real CLI, so the app starts on known data."""
    subprocess.run([sys.executable, "-m", "monitor", "collect", "--once", "-w", str(watchlist), "--db", str(db)],
                   cwd=ROOT, check=True, capture_output=True, timeout=120)  # fmt: skip


class PtyApp:
    def __init__(
        self, args: list[str], rows: int = 24, cols: int = 80, program: tuple[str, ...] = ("-m", "monitor")
    ) -> None:
        """`program` is what Python runs (another script: a benchmark's baseline app in the same terminal)."""
        env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(cols), "LINES": str(rows)}
        env.pop("TEXTUAL", None)
        self.proc = PtyProcess.spawn([sys.executable, *program, *args], cwd=str(ROOT), env=env,
                                     dimensions=(rows, cols))  # fmt: skip
        self.pid = self.proc.pid
        self.screen = pyte.Screen(cols, rows)
        self._stream = pyte.ByteStream(self.screen)
        self._lock = threading.Lock()
        self.rendering = True  # off: output is read and dropped (pyte is slower than a desk in a storm)
        self._reader = threading.Thread(target=self._read, name="pty-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = self.proc.read(65536)
            except (EOFError, OSError, ValueError):  # ValueError: hung up (the file object is closed)
                return
            if self.rendering:
                with self._lock:
                    self._stream.feed(data)

    def text(self) -> str:
        with self._lock:
            return "\n".join(self.screen.display)

    def write(self, keys: str) -> float:
        """Send keys in one write (one burst); returns when it was sent (perf_counter)."""
        self.proc.write(keys.encode("utf-8"))
        return time.perf_counter()

    def hang_up(self) -> None:
        """Close the master side, as tmux or sshd does when the link drops: the kernel sends SIGHUP.

        Through ptyprocess's file object, which owns the descriptor: an `os.close` beside it left that object
        to close the same number again when collected, by then another test's descriptor (its event loop's
        self-pipe: a failed teardown, or a loop that hung)."""
        self.proc.fileobj.close()
        self.proc.closed = True

    def alive(self) -> bool:
        try:
            pid, _ = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            return False
        return pid == 0

    def session_processes(self) -> list[int]:
        """Processes still in the app's session (the app and anything it started)."""
        left = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[3]) == self.pid and fields[0] != "Z":  # fields[3]: session id
                left.append(int(entry.name))
        return left

    def kill(self) -> None:
        if self.alive():
            os.kill(self.pid, 9)
            os.waitpid(self.pid, 0)


def pane_lines(app: PtyApp) -> tuple[list[int], int | None]:
    """The pane's row lines on screen, and the highlighted one (its background differs from the others)."""
    lines = app.screen.display
    head = next((y for y, s in enumerate(lines) if " Source " in s and " Author " in s), None)
    if head is None:
        return [], None
    rule = next((y for y in range(head + 1, len(lines)) if lines[y].startswith("──")), len(lines))
    ys = list(range(head + 1, rule))
    bgs = {y: app.screen.buffer[y][20].bg for y in ys}
    common = Counter(bgs.values()).most_common(1)
    cursor = [y for y in ys if common and bgs[y] != common[0][0]]
    return ys, cursor[0] if len(cursor) == 1 else None


def selected(app: PtyApp) -> tuple[int, str, str] | None:
    """The highlighted row as seen: its line, author and text (the age column ticks, so it is left out);
    None when it is off screen. A storm repeats its demo posts: the line tells two of them apart."""
    with app._lock:
        _, y = pane_lines(app)
        return (y, app.screen.display[y][14:30].strip(), app.screen.display[y][48:]) if y is not None else None


def detail_author(app: PtyApp) -> str:
    with app._lock:
        lines = app.screen.display
        rule = next((y for y, s in enumerate(lines) if y > 4 and s.startswith("──")), None)
        return lines[rule + 1].strip() if rule is not None and rule + 1 < len(lines) else ""


def wait_until(condition: Callable[[], Any], within: float, what: str) -> Any:
    """Poll a condition until it holds; fail with `what` after a generous deadline.

    A blocking twin of tests.conftest.wait_until (which is async): the pty tests and the benchmark
    that drive a PtyApp are synchronous, the app lives in another process and its output is read by a thread.
    """
    deadline = time.monotonic() + within
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not in {within:.0f} s: {what}")
        time.sleep(0.02)


def db_actions(db: Path) -> list[tuple[int, str, dict[str, Any]]]:
    conn = sqlite3.connect(db, timeout=30)
    try:
        rows = conn.execute("SELECT mention_id, kind, payload FROM actions ORDER BY id").fetchall()
    finally:
        conn.close()
    return [(m, k, json.loads(p)) for m, k, p in rows]
