"""Files are written beside their target under a fresh name, never through a planted symlink, then renamed."""

from __future__ import annotations

import json
import sqlite3
import stat
from pathlib import Path

import pytest

from monitor.cli import main
from monitor.core import safefile
from monitor.db.store import open_sync
from monitor.networks.bluesky.xrpc import Session, SessionFile
from tests.conftest import write_watchlist


def victim(tmp_path: Path) -> tuple[Path, bytes]:
    """The file a group member wants destroyed: the shared database."""
    db = tmp_path / "monitor.db"
    conn = open_sync(db)
    conn.close()
    return db, db.read_bytes()


def test_a_planted_symlink_at_the_old_session_temp_name_is_not_followed(tmp_path: Path) -> None:
    db, before = victim(tmp_path)
    path = tmp_path / "bluesky-bsky.session.json"
    Path(f"{path}.tmp").symlink_to(db)  # the name the old code always used
    SessionFile(path, "https://bsky.social", "desk.example").save(Session("did:plc:x", "desk", "A" * 20, "R" * 20))
    assert db.read_bytes() == before
    assert sqlite3.connect(db).execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert json.loads(path.read_text("utf-8"))["did"] == "did:plc:x"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_symlink_planted_at_the_target_is_replaced_not_written_through(tmp_path: Path) -> None:
    db, before = victim(tmp_path)
    out = tmp_path / "export.jsonl"
    out.symlink_to(db)
    safefile.write_text(out, "new\n")
    assert db.read_bytes() == before
    assert not out.is_symlink() and out.read_text("utf-8") == "new\n"


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    out.write_text("old", encoding="utf-8")
    with pytest.raises(RuntimeError), safefile.atomic_writer(out) as f:
        f.write("half")
        raise RuntimeError("disk went away")
    assert out.read_text("utf-8") == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


@pytest.mark.parametrize("command", [["export", "mentions", "-o"], ["report", "--html"]], ids=["export", "report"])
def test_exports_and_reports_do_not_write_through_a_planted_symlink(tmp_path: Path, command: list[str]) -> None:
    watchlist = write_watchlist(tmp_path)
    db, before = victim(tmp_path)
    out = tmp_path / "out"
    out.symlink_to(db)
    assert main(["-w", str(watchlist), *command, str(out)]) == 0
    assert db.read_bytes() == before
    assert not out.is_symlink()
