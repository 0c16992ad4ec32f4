"""The permission check sees through symlinks, looks at every folder above, and guards every command."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from monitor.cli import main
from monitor.db.permissions import UnsafePermissions, check_shared_path
from tests.conftest import write_watchlist


def database(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sqlite3.connect(path).close()
    return path


def test_a_world_writable_wal_beside_a_symlinked_databases_target_is_refused(tmp_path: Path) -> None:
    real = database(tmp_path / "real" / "monitor.db")
    link = tmp_path / "link" / "monitor.db"
    link.parent.mkdir()
    link.symlink_to(real)
    wal = Path(f"{real}-wal")
    wal.write_bytes(b"")  # SQLite keeps the log beside the file the link points to
    check_shared_path(link)
    wal.chmod(0o666)
    with pytest.raises(UnsafePermissions, match="-wal"):
        check_shared_path(link)


def test_a_world_writable_folder_above_the_database_is_refused_unless_sticky(tmp_path: Path) -> None:
    top = tmp_path / "srv"
    db = database(top / "monitor" / "desk" / "monitor.db")
    top.chmod(0o777)  # anyone could rename monitor/ away and put their own in its place
    with pytest.raises(UnsafePermissions, match=f"{top}: this folder"):
        check_shared_path(db)
    top.chmod(0o1777)  # sticky, like /tmp: others cannot rename what is not theirs
    check_shared_path(db)


@pytest.mark.parametrize("command", [["stats"], ["export", "mentions"], ["report", "--html"]])
def test_reports_refuse_a_world_writable_database_too(
    tmp_path: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    database(folder / "monitor.db")
    watchlist = write_watchlist(folder)
    os.chmod(folder, 0o777)
    try:
        extra = [str(tmp_path / "r.html")] if command[0] == "report" else []
        code = main(["-w", str(watchlist), *command, *extra])
    finally:
        os.chmod(folder, 0o755)
    assert code != 0
    assert "writable by every user" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()
