"""Opening a SQLite file: its PRAGMAs, its schema version (PRAGMA user_version) and the read-only opening.

SQLite-only: another engine has its own way to connect and to migrate.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from monitor.db.faults import StoreError, StoreReadOnly, classify, file_id, rollback, share_mode
from monitor.db.migrations import MIGRATIONS
from monitor.db.statsdays import refresh

BUSY_TIMEOUT_MS = 10_000


def configure(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys=ON")


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection) -> int:
    """Bring a file up to the newest schema, one numbered step per transaction."""
    conn.isolation_level = None
    version = schema_version(conn)
    if version > len(MIGRATIONS):
        raise StoreError(
            f"the database schema is version {version}, newer than this program knows "
            f"({len(MIGRATIONS)}): upgrade monitor"
        )
    for number in range(version + 1, len(MIGRATIONS) + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have migrated while we waited for the lock.
            if schema_version(conn) >= number:
                conn.execute("COMMIT")
                continue
            for statement in _statements(MIGRATIONS[number - 1]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version={number}")
            conn.execute("COMMIT")
        except BaseException:
            rollback(conn)
            raise
    if version < len(MIGRATIONS):
        refresh(conn)  # migration 11 leaves every day dirty: only Python builds the digests' blobs
    return len(MIGRATIONS)


def _statements(script: str) -> list[str]:
    out, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out


def open_sync(path: str | Path, readonly: bool = False) -> sqlite3.Connection:
    """A plain sqlite3 connection (CLI reports, benchmarks), configured and migrated.

    Any SQLite failure becomes a classified StoreError naming the file.
    """
    created = not readonly and prepare(Path(path))
    try:
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise classify(exc, path) from exc
    try:
        configure(conn)
        if not readonly:
            migrate(conn)
    except sqlite3.Error as exc:
        conn.close()
        raise classify(exc, path) from exc
    except BaseException:
        conn.close()
        raise
    if created:
        share_mode(Path(path))
    return conn


def open_readonly(path: str | Path) -> sqlite3.Connection:
    """A connection that cannot write (reports, exports, check): never creates, migrates or alters the file.

    A missing file, or one at another schema version, is refused with the reason.
    """
    uri = Path(path).absolute().as_uri() + "?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise classify(exc, path) from exc
    try:
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        version = schema_version(conn)
    except sqlite3.Error as exc:
        conn.close()
        raise classify(exc, path) from exc
    if version != len(MIGRATIONS):
        conn.close()
        if version == 0:
            raise StoreError(f"{path}: not a monitor database (no schema)")
        if version > len(MIGRATIONS):
            raise StoreError(
                f"{path}: the database schema is version {version}, newer than this program knows "
                f"({len(MIGRATIONS)}): upgrade monitor"
            )
        raise StoreError(
            f"{path}: the database schema is version {version}, older than this program's ({len(MIGRATIONS)}); "
            "read-only commands do not upgrade it: run the app or `monitor collect --once` once"
        )
    return conn


def prepare(path: Path) -> bool:
    """Make the database's folder if needed; True when there is no database there yet (we create it)."""
    if str(path) == ":memory:":
        return False
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreReadOnly(f"{path}: cannot create the database's folder ({exc.strerror})") from exc
    return file_id(path) is None


# A read-only connection as handed to the reports (they run their own SQL): a name for it outside monitor.db.
ReadConnection = sqlite3.Connection
