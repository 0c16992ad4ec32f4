"""The shared database must not be writable by everyone: anyone on the server could forge the log."""

from __future__ import annotations

import stat
from pathlib import Path


class UnsafePermissions(Exception):
    pass


def check_shared_path(db: Path) -> None:
    """Refuse a database file, or its folder, writable by every user of the machine.

    The intended setup is a group-owned setgid folder (see README): operators share it through a Unix
    group, never through world-writable modes.
    """
    folder = db.resolve().parent if db.exists() else db.absolute().parent
    candidates = [folder] + [p for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists()]
    for path in candidates:
        mode = path.stat().st_mode
        if not mode & stat.S_IWOTH:
            continue
        if path.is_dir() and mode & stat.S_ISVTX and path != folder:
            continue
        kind = "folder" if path.is_dir() else "file"
        raise UnsafePermissions(
            f"{path}: this {kind} is writable by every user of the machine (mode {stat.filemode(mode)}), "
            "so anyone could alter the mentions and the action log. Share it through a group instead: "
            f"chmod o-w '{path}' (see README, 'One server, many operators')."
        )
