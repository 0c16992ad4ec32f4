"""Per-day digests of the statistics' rows (migration 8): a year reads ~365 rows, not a million.

Each UTC day's mentions (by first seen) are kept as the very columns the statistics' period query returns
(monitor.db.stats), relative to the day's start. Triggers mark a day dirty in the transaction of any write
that changes one of its mentions' figures; a dirty day's digest is never read (it is computed from the
mentions instead) until a writer rebuilds it (refresh). Since migration 11 each column is a blob of
little-endian signed integers of the narrowest width that holds it (its length over n gives the width),
read with no parsing: SQL cannot build them, so refresh does, in Python (numpy imported only then).
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

DAY_MS = 86_400_000
_DAY = f"first_seen_at / {DAY_MS}"
RADIX = "(SELECT ifnull(max(id), 0) + 1 FROM names)"
COLUMN_NAMES = ("seen", "fr", "status", "deleted", "esc", "source_term", "responder_service")


def row_columns(since: str) -> str:
    """The period query's select list: count, radix of the ids, then the seven columns (db.stats explains them)."""
    return (
        f"count(*), {RADIX}, group_concat(((first_seen_at - {since}) * 16 + (priority & 15)) * 2 + (to_us != 0)),"
        " group_concat(ifnull((first_response_at - first_seen_at) * 2, 1)),"
        " group_concat(CASE status WHEN 'done' THEN (status_at - first_seen_at) * 4"
        " WHEN 'dismissed' THEN (status_at - first_seen_at) * 4 + 2 WHEN 'new' THEN 1 WHEN 'escalated' THEN 3"
        " ELSE 5 END),"
        " group_concat(ifnull((deleted_at - first_seen_at) * 4, 1) + 2 * (edited_at IS NOT NULL)),"
        " group_concat(ifnull((escalated_at - first_seen_at) * 2, 1)),"
        f" group_concat(ifnull(source_id, 0) + {RADIX} * ifnull(term_id, 0)),"
        f" group_concat(ifnull(responder_id, 0) + {RADIX} * ifnull(service_id, 0))"
    )


# Migration 8's rebuild of every dirty day, as text: part of a shipped migration, never changed.
REFRESH = f"""
    DELETE FROM stats_days WHERE day IN (SELECT day FROM stats_dirty);
    INSERT INTO stats_days SELECT {_DAY}, {row_columns(f"({_DAY} * {DAY_MS})")}
        FROM mentions INDEXED BY mentions_stats WHERE {_DAY} IN (SELECT day FROM stats_dirty) GROUP BY 1;
    DELETE FROM stats_dirty;
"""
_FIGURES = (
    "first_seen_at, first_response_at, status, status_at, priority, deleted_at, edited_at, to_us, escalated_at,"
    " source_id, term_id, responder_id, service_id"
)
MIGRATION = f"""
    CREATE TABLE stats_days (
        day INTEGER PRIMARY KEY,            -- first_seen_at / 86400000 (UTC days)
        n INTEGER NOT NULL, radix INTEGER NOT NULL,
        seen TEXT, fr TEXT, status TEXT, deleted TEXT, esc TEXT, source_term TEXT, responder_service TEXT
    );
    CREATE TABLE stats_dirty (day INTEGER PRIMARY KEY);
    CREATE TRIGGER stats_dirty_insert AFTER INSERT ON mentions BEGIN
        INSERT OR IGNORE INTO stats_dirty VALUES (NEW.first_seen_at / {DAY_MS});
    END;
    CREATE TRIGGER stats_dirty_delete AFTER DELETE ON mentions BEGIN
        INSERT OR IGNORE INTO stats_dirty VALUES (OLD.first_seen_at / {DAY_MS});
    END;
    CREATE TRIGGER stats_dirty_update AFTER UPDATE OF {_FIGURES} ON mentions BEGIN
        INSERT OR IGNORE INTO stats_dirty VALUES (OLD.first_seen_at / {DAY_MS}), (NEW.first_seen_at / {DAY_MS});
    END;
    INSERT OR IGNORE INTO stats_dirty SELECT DISTINCT {_DAY} FROM mentions WHERE first_seen_at IS NOT NULL;
    {REFRESH}
"""

# Migration 11: the digests as blobs (built by the first writer to open the file: connect.migrate).
BLOBS_MIGRATION = f"""
    DROP TABLE stats_days;
    CREATE TABLE stats_days (
        day INTEGER PRIMARY KEY,            -- first_seen_at / 86400000 (UTC days)
        n INTEGER NOT NULL, radix INTEGER NOT NULL,
        seen BLOB, fr BLOB, status BLOB, deleted BLOB, esc BLOB, source_term BLOB, responder_service BLOB
    );
    INSERT OR IGNORE INTO stats_dirty SELECT DISTINCT {_DAY} FROM mentions WHERE first_seen_at IS NOT NULL;
"""
_DIRTY_ROWS = (
    f"SELECT {_DAY}, {row_columns(f'({_DAY} * {DAY_MS})')} FROM mentions INDEXED BY mentions_stats"
    f" WHERE {_DAY} IN (SELECT day FROM stats_dirty) GROUP BY 1"
)
_WIDTHS = {1: "<i1", 2: "<i2", 4: "<i4", 8: "<i8"}

# The clean digests of days [first, last), and the dirty days there (computed from the mentions instead), in
# one statement: one snapshot, so a digest read is never one its day's writes have made stale.
DIGESTS_SQL = (
    "SELECT day, n, radix, seen, fr, status, deleted, esc, source_term, responder_service FROM stats_days"
    " WHERE day >= :first AND day < :last AND day NOT IN (SELECT day FROM stats_dirty)"
    " UNION ALL SELECT day, -1, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM stats_dirty"
    " WHERE day >= :first AND day < :last ORDER BY 1"
)


def ints(text: str | None, count: int) -> npt.NDArray[np.int64]:
    """A group_concat of `count` integers as an array (parsed by numpy in C)."""
    import numpy as np

    if count == 0 or text is None:
        return np.zeros(0, dtype=np.int64)
    values = np.fromstring(text, dtype=np.int64, sep=",")  # text mode: C parsing, not deprecated
    if values.size != count:
        raise ValueError("statistics: a column did not parse")  # integers only: never expected
    return values


def narrow(values: npt.NDArray[np.int64]) -> npt.NDArray[Any]:
    """Integers in the narrowest little-endian signed width that holds them all."""
    import numpy as np

    lo, hi = (int(values.min()), int(values.max())) if values.size else (0, 0)
    width = next(w for w in (1, 2, 4, 8) if np.iinfo(_WIDTHS[w]).min <= lo and hi <= np.iinfo(_WIDTHS[w]).max)
    return values.astype(_WIDTHS[width])


def pack(values: npt.NDArray[np.int64]) -> bytes:
    """Integers as a blob of the narrowest width that holds them all (unpack reads it back)."""
    return narrow(values).tobytes()


def unpack(blob: bytes, count: int) -> npt.NDArray[Any]:
    """A pack()ed blob of `count` integers, as a view on it (widen with the concatenation)."""
    import numpy as np

    width, rest = divmod(len(blob), count) if count > 0 else (0, 1)
    if rest or width not in _WIDTHS:
        raise ValueError("statistics: a day's digest is damaged (monitor check --clocks)")
    return np.frombuffer(blob, dtype=_WIDTHS[width])


def refresh_sync(conn: sqlite3.Connection) -> int:
    """Rebuild the dirty days' digests, inside the caller's write transaction; how many days were dirty.
    A day left without mentions loses its digest."""
    dirty = int(conn.execute("SELECT count(*) FROM stats_dirty").fetchone()[0])
    if dirty:
        conn.execute("DELETE FROM stats_days WHERE day IN (SELECT day FROM stats_dirty)")
        rows = conn.execute(_DIRTY_ROWS).fetchall()
        conn.executemany(
            "INSERT INTO stats_days VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(day, n, radix, *(pack(ints(text, n)) for text in texts)) for day, n, radix, *texts in rows],
        )
        conn.execute("DELETE FROM stats_dirty")
    return dirty


def refresh(conn: sqlite3.Connection) -> int:
    """refresh_sync in its own write transaction (a plain connection outside the store)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        dirty = refresh_sync(conn)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return dirty


_RECOMPUTED = f"SELECT {_DAY}, {row_columns(f'({_DAY} * {DAY_MS})')} FROM mentions INDEXED BY mentions_stats GROUP BY 1"
_STORED = (
    "SELECT day, n, radix, seen, fr, status, deleted, esc, source_term, responder_service FROM stats_days"
    " WHERE day NOT IN (SELECT day FROM stats_dirty)"
)


def stale_days(conn: sqlite3.Connection, limit: int = 20) -> list[int]:
    """The clean days whose digest is not what their mentions give now (at most `limit`), none when all is
    well: a day with mentions has a digest or is dirty, and a digest holds its day's rows, in any order."""
    conn.execute("BEGIN")  # one snapshot for both reads
    try:
        stored = {row[0]: _stored_rows(row[1:]) for row in conn.execute(_STORED)}
        dirty = {row[0] for row in conn.execute("SELECT day FROM stats_dirty")}
        fresh = {row[0]: _rows(row[1:], ints) for row in conn.execute(_RECOMPUTED) if row[0] not in dirty}
    finally:
        conn.execute("COMMIT")
    return sorted(day for day in stored.keys() | fresh.keys() if stored.get(day) != fresh.get(day))[:limit]


def _stored_rows(row: tuple[Any, ...]) -> list[tuple[int, ...]] | None:
    """A stored digest's rows; None (never what the mentions give) when its blobs do not decode."""
    try:
        return _rows(row, unpack)
    except (ValueError, TypeError):
        return None


def _rows(row: tuple[Any, ...], decode: Any) -> list[tuple[int, ...]]:
    """A day's digest (blobs, or texts as recomputed) as its rows, sorted, with the ids unpacked (the radix
    grows with the names)."""
    n, radix, *values = row
    columns = [decode(value, n).tolist() for value in values]
    r = int(radix)
    return sorted((*rest, st % r, st // r, rs % r, rs // r) for *rest, st, rs in zip(*columns, strict=True))
