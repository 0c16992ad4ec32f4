"""What can go wrong with the database file, as states the operator can be shown, not crashes.

SQLite's errors are classified (locked, read-only, full, unreadable) into StoreError subclasses with
one-line messages that keep SQLite's own words; a file deleted or replaced under an open connection is
told apart by its (device, inode). One base class: the CLI maps them all with a single `except`.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

from monitor.core import safefile

log = logging.getLogger(__name__)


class StoreError(Exception):
    pass


class StoreUnavailable(StoreError):
    """The database cannot take this now: a state to show the operator, not a bug. Nothing was written."""

    state = "database unavailable"


class StoreLocked(StoreUnavailable):
    state = "database locked"


class StoreUnreachable(StoreUnavailable):
    """The server cannot be reached (restarting, failing over): retried, as a locked database is."""


class CommitUnknown(StoreUnreachable):
    """The connection dropped while a COMMIT was under way: the write may have been saved. An operator's write
    retried under its key (monitor.db.writekey) is then not made twice."""


class StoreReadOnly(StoreUnavailable):
    state = "database read-only"


class StoreFull(StoreUnavailable):
    state = "disk full"


class StoreGone(StoreUnavailable):
    """The file was deleted or replaced under us: writing on would go to a file nobody else reads."""

    state = "database deleted or replaced"


class StoreBroken(StoreUnavailable):
    state = "database unreadable"


# SQLite primary result codes (the low byte of an extended code).
_CLASSES: dict[int, tuple[type[StoreUnavailable], str]] = {
    5: (StoreLocked, "the database is locked by another process; nothing was written"),  # BUSY
    6: (StoreLocked, "the database is locked; nothing was written"),  # LOCKED
    8: (StoreReadOnly, "the database is read-only for this user; nothing was written"),  # READONLY
    13: (StoreFull, "the disk holding the database is full; nothing was written"),  # FULL
    10: (StoreBroken, "the database cannot be read or written (I/O error)"),  # IOERR
    11: (StoreBroken, "the database file is corrupt"),  # CORRUPT
    14: (StoreBroken, "the database file cannot be opened"),  # CANTOPEN
    26: (StoreBroken, "the file is not a SQLite database"),  # NOTADB
}
_READONLY_DBMOVED = 8 | (4 << 8)


def classify(exc: sqlite3.Error, path: object = "") -> StoreError:
    """The StoreError an sqlite3 error stands for, with a one-line message that keeps SQLite's own words."""
    code = getattr(exc, "sqlite_errorcode", None)
    where = f"{path}: " if path else ""
    if code == _READONLY_DBMOVED:
        return StoreGone(f"{where}the database file was moved or deleted ({exc})")
    if code is not None and code & 0xFF in _CLASSES:
        cls, what = _CLASSES[code & 0xFF]
        return cls(f"{where}{what} ({exc})")
    return StoreError(f"{where}database error: {exc}")


def first_cause(error: BaseException) -> BaseException:
    """The first real error inside (nested) task groups: a deleted database under a duty, say."""
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


def rollback(conn: sqlite3.Connection) -> None:
    """Roll back if a transaction is still open; SQLite may already have (after SQLITE_FULL, say).

    A failing ROLLBACK is logged, never raised: it would hide the error that caused it.
    """
    if not conn.in_transaction:
        return
    try:
        conn.execute("ROLLBACK")
    except sqlite3.Error:
        log.warning("rollback failed", exc_info=True)


def file_id(path: Path) -> tuple[int, int] | None:
    """The (device, inode) of a database path, or None when nothing is there."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


def share_mode(path: Path) -> None:
    """Give a database this process just created mode 0666 less the umask, as the operator's shell would.

    SQLite creates files 0644 less the umask, so with the README's shared setup (a setgid folder,
    `umask 007`) the file was -rw-r----- and other operators could not write it. Its -wal and -shm
    were made with the same mode, so they are fixed too; later ones take the database file's mode.
    """
    mode = safefile.default_mode()
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            if p.stat().st_uid == os.geteuid():
                os.chmod(p, mode)
        except OSError:  # gone already (the -wal of a closed file) or not ours: nothing to widen
            pass


# What a caller outside the database layer treats as a database failure (the CLI's exit code 3): the
# store's own errors, and SQLite's from a connection handed to a report.
DATABASE_ERRORS: tuple[type[Exception], ...] = (StoreError, sqlite3.Error)
