"""The README's recipe for one database shared by several operators, run with real Unix users.

Needs root (to create the users and group); skipped otherwise. CI runs it as root.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT, write_demo, write_watchlist

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("useradd"), reason="creates Unix users: needs root"
)
AS_USER = ROOT / "tests" / "_as_user.py"
SAFETY_NET_S = 120


@dataclass(frozen=True)
class Desk:
    folder: Path
    gid: int
    alice: int
    bob: int

    def run(self, uid: int, *args: str) -> subprocess.CompletedProcess[str]:
        """As this operator, with the README's `umask 007`, in the desk's group."""
        return subprocess.run(
            [sys.executable, str(AS_USER), str(uid), str(self.gid), "007", str(self.gid), "--", *args],
            cwd=self.folder, capture_output=True, text=True, timeout=SAFETY_NET_S,
            env={**os.environ, "XDG_STATE_HOME": str(self.folder / f".state-{uid}")},  # each operator's own
        )  # fmt: skip


@pytest.fixture
def desk() -> Iterator[Desk]:
    """`groupadd monitor-desk`, two operators in it, and `install -d -g monitor-desk -m 2770` a folder."""
    tag = f"m{os.getpid() % 100000}"
    group, users = f"{tag}desk", [f"{tag}alice", f"{tag}bob"]
    base = Path(tempfile.mkdtemp(prefix="monitor-shared-"))
    base.chmod(0o755)
    try:
        subprocess.run(["groupadd", group], check=True, capture_output=True)
        for user in users:
            subprocess.run(
                ["useradd", "--no-create-home", "--gid", group, "--shell", "/usr/sbin/nologin", user],
                check=True, capture_output=True,
            )  # fmt: skip
        gid = grp.getgrnam(group).gr_gid
        folder = base / "monitor"
        folder.mkdir()
        os.chown(folder, 0, gid)
        folder.chmod(0o2770)
        yield Desk(folder, gid, pwd.getpwnam(users[0]).pw_uid, pwd.getpwnam(users[1]).pw_uid)
    finally:
        for user in users:
            subprocess.run(["userdel", user], capture_output=True)
        subprocess.run(["groupdel", group], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def test_the_readme_recipe_lets_a_second_operator_write_the_database_the_first_created(desk: Desk) -> None:
    demo = write_demo(desk.folder / "demo.jsonl", ["Toulouse: le métro est arrêté"])
    write_watchlist(desk.folder, demo)
    db = desk.folder / "monitor.db"

    created = desk.run(desk.alice, "-w", "watchlist.yaml", "collect", "--once")
    assert created.returncode == 0, created.stderr
    assert db.stat().st_uid == desk.alice and db.stat().st_gid == desk.gid  # setgid: the group's file
    for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        if path.exists():
            assert path.stat().st_mode & stat.S_IWGRP, f"{path}: {stat.filemode(path.stat().st_mode)}"

    acted = desk.run(desk.bob, "act", str(db), "1")
    assert acted.returncode == 0, acted.stderr
    again = desk.run(desk.bob, "-w", "watchlist.yaml", "collect", "--once")  # and collects, as a service would
    assert again.returncode == 0, again.stderr
    rows = sqlite3.connect(db).execute("SELECT mention_id, kind, operator FROM actions").fetchall()
    assert rows == [(1, "note", "bob")]
