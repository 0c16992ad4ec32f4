"""The shared database must not be writable by everyone: anyone on the server could forge the log."""

from __future__ import annotations

import stat
from pathlib import Path


class UnsafePermissions(Exception):
    pass


def check_shared_path(db: Path) -> None:
    """Refuse a database, its -wal/-shm, its folder, or any folder above it, writable by every user.

    The intended setup is a group-owned setgid folder (see README): operators share it through a Unix
    group, never through world-writable modes. SQLite keeps -wal and -shm beside the file a symlinked
    path points to, so both places are checked. A world-writable folder higher up lets anyone rename
    the database's folder away and put their own in its place, unless its sticky bit forbids that (/tmp).
    """
    given = db.absolute()
    real = db.resolve()
    folders = list(dict.fromkeys([given.parent, real.parent]))
    files = [
        p
        for base in dict.fromkeys([given, real])
        for p in (base, Path(f"{base}-wal"), Path(f"{base}-shm"))
        if p.exists()
    ]
    above = [a for folder in folders for a in folder.resolve().parents]
    for path in dict.fromkeys([*folders, *files, *above]):
        try:
            mode = path.stat().st_mode
        except OSError:  # a folder not created yet: Store.open makes it, with the umask's mode
            continue
        if not mode & stat.S_IWOTH:
            continue
        if path.is_dir() and mode & stat.S_ISVTX and path not in folders:
            continue
        kind = "folder" if path.is_dir() else "file"
        raise UnsafePermissions(
            f"{path}: this {kind} is writable by every user of the machine (mode {stat.filemode(mode)}), "
            "so anyone could alter the mentions and the action log. Share it through a group instead: "
            f"chmod o-w '{path}' (see README, 'One server, many operators')."
        )
