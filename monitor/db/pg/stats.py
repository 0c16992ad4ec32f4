"""Statistics on PostgreSQL: the same `Period` as monitor.db.stats reads from SQLite, so monitor.reports
computes the same figures from it.

Whole UTC days come from their digests (monitor.db.pg.statsdays: each day's rows as fixed-width integers, read
by numpy with no parsing), a dirty day and the period's partial days at its ends from the mentions by the same
statement. The texts the statistics group by come as codes into each day's sorted names (SQLite keeps global
integer ids in `names` instead), mapped here onto the period's. Everything reads one snapshot.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import psycopg

from monitor.core.dburl import describe
from monitor.db.faults import StoreError
from monitor.db.pg.connect import classify
from monitor.db.pg.schema import MIGRATIONS
from monitor.db.pg.statsdays import DAY_MS, IN_RANGES, clean_and_dirty, digests_sql, ranges
from monitor.db.stats import NO_END, NONE_KEY, Columns, Ints, Period

PgReadConnection = psycopg.Connection[tuple[Any, ...]]
_FIELDS = ("seen", "fr", "closed", "deleted", "esc", "flags", "codes")  # statsdays.ROW_FIELDS
# The backlog a period inherits, as monitor.db.stats reads it: when each mention seen before it stopped waiting.
_CARRY_SQL = (
    "SELECT array_agg(ends) FROM (SELECT least(coalesce(deleted_at, %(no_end)s),"
    " CASE WHEN status IN ('done', 'dismissed') THEN status_at ELSE %(no_end)s END) AS ends"
    " FROM mentions WHERE first_response_at IS NULL AND first_seen_at < %(since)s"
    " UNION ALL SELECT least(first_response_at, coalesce(deleted_at, %(no_end)s))"
    " FROM mentions WHERE first_response_at >= %(since)s AND first_seen_at < %(since)s) carried"
)


def connect(url: str) -> PgReadConnection:
    """A read-only connection whose reads share one snapshot until it is closed (a report's consistency).
    Reports never create or migrate: a database at another schema is refused with why."""
    try:
        conn = psycopg.connect(
            url, application_name="monitor-stats", options="-c jit=off -c default_transaction_read_only=on"
            " -c default_transaction_isolation=repeatable\\ read",
        )  # fmt: skip
    except psycopg.Error as exc:
        raise classify(exc, url) from exc
    with errors(conn):
        exists = _one(conn, "SELECT to_regclass('schema_version') IS NOT NULL")[0]
        version = int(_one(conn, "SELECT coalesce(max(version), 0) FROM schema_version")[0]) if exists else 0
    if version != len(MIGRATIONS):
        conn.close()
        raise StoreError(f"{describe(url)}: {_schema_problem(version)}")
    return conn


def _schema_problem(version: int) -> str:
    if version == 0:
        return "empty: the app or `monitor collect` creates the tables"
    if version > len(MIGRATIONS):
        return f"the database schema is version {version}, newer than this program knows: upgrade monitor"
    return f"schema {version} of {len(MIGRATIONS)}: read-only commands do not upgrade it: run `monitor collect --once`"


def first_seen(conn: PgReadConnection) -> int | None:
    with errors(conn):
        row = _one(conn, "SELECT min(first_seen_at) FROM mentions")
    return None if row[0] is None else int(row[0])


def load_period(conn: PgReadConnection, since: int, until: int) -> Period:
    """The mentions first seen in [since, until), with their clocks, and the backlog inherited from before."""
    first, last = -(-since // DAY_MS), until // DAY_MS
    if first >= last:
        first = last = until // DAY_MS + 1  # no whole day: the period is one partial range
    edges = [(since, min(until, first * DAY_MS)), (max(since, last * DAY_MS), until)]
    with errors(conn):
        digests, dirty = clean_and_dirty(conn, first, last) if first < last else ([], [])
        live = [(s, u) for s, u in edges if s < u] + [(d * DAY_MS, (d + 1) * DAY_MS) for d in dirty]
        digests += conn.execute(digests_sql(IN_RANGES), ranges(live)).fetchall() if live else []
        carried = _one(conn, _CARRY_SQL, {"since": since, "no_end": NO_END})[0]
    digests.sort(key=lambda digest: digest[0])
    return Period(*_columns(digests), np.array(carried or [], dtype=np.int64))


def _columns(digests: list[tuple[Any, ...]]) -> tuple[Columns, list[int]]:
    """The days' rows as db.stats' Columns, and the tallies: new, escalated, done, dismissed, edited, to us."""
    counts = [int(digest[1]) for digest in digests]
    table = np.empty((sum(counts), len(_FIELDS)), dtype=np.int64)
    at = 0
    for digest, n in zip(digests, counts, strict=True):  # byte order swapped in the one copy
        table[at : at + n] = np.frombuffer(digest[6], dtype=">i8").reshape(n, len(_FIELDS))
        at += n
    seen, fr, closed, deleted, esc_at, flags, packed = table.T.copy()  # each column contiguous
    names, codes = [], []
    for k in range(4):  # each day's codes onto the period's names, sorted
        day_names = [list(digest[2 + k]) for digest in digests]
        merged = sorted({name for names_of_day in day_names for name in names_of_day})
        index = {name: i for i, name in enumerate(merged)}
        lookups = [np.array([index[name] for name in n], dtype=np.int64) for n in day_names]
        codes.append(_remap((packed >> (16 * k)) & 0xFFFF, lookups, counts))
        names.append(merged)
    resolved = np.where((esc_at >= 0) & (closed >= esc_at), closed, -1)
    status = (flags >> 5) & 7
    columns = Columns(
        seen, flags & 15, fr, closed, deleted, esc_at, resolved, codes[0], codes[1], codes[2], codes[3],
        names[0], [t or NONE_KEY for t in names[1]], names[2], names[3],
    )  # fmt: skip
    tallies = [int(np.count_nonzero(status == s)) for s in (0, 1, 2, 3)]
    tallies += [int(np.count_nonzero(flags & 256)), int(np.count_nonzero(flags & 16))]
    return columns, tallies


def _remap(codes: Ints, lookups: list[Ints], counts: list[int]) -> Ints:
    """Codes into each day's names (days one after the other, `counts` rows each) as codes into the period's."""
    out = np.empty_like(codes)
    at = 0
    for lookup, n in zip(lookups, counts, strict=True):
        out[at : at + n] = lookup[codes[at : at + n]] if n else 0
        at += n
    return out


def _one(conn: PgReadConnection, sql: str, params: dict[str, Any] | None = None) -> tuple[Any, ...]:
    row = conn.execute(sql, params).fetchone()
    assert row is not None, "an aggregate always returns a row"
    return row


@contextmanager
def errors(conn: PgReadConnection) -> Iterator[None]:
    """A driver error as the store's (one line, the exit code of a database error)."""
    try:
        yield
    except psycopg.Error as exc:
        info = conn.info
        raise classify(exc, f"postgresql://{info.user}@/{info.dbname}?host={info.host}") from exc
