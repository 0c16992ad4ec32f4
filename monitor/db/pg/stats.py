"""Statistics on PostgreSQL: the same `Period` as monitor.db.stats reads from SQLite, so monitor.reports
computes the same figures from it.

The period's mentions come back as one binary COPY of fixed-width integers, read by numpy with no parsing:
every field is a non-null int8, so each row has the same layout. The texts the statistics group by come as
codes into short sorted lists of names, read first in the same snapshot (SQLite keeps integer ids in
`names` for that; PostgreSQL has no need to). Half the period is copied on a second connection sharing the
first one's snapshot, so the server scans with two backends. Everything reads one snapshot.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import numpy as np
import psycopg
import psycopg.sql

from monitor.db.pg.connect import classify
from monitor.db.stats import NO_END, NONE_KEY, Columns, Period

PgReadConnection = psycopg.Connection[tuple[Any, ...]]
_PERIOD = " FROM mentions WHERE first_seen_at >= %(since)s AND first_seen_at < %(until)s"
PRIMARY_TERM = "split_part(terms, chr(31), 1)"  # migrations.PRIMARY_TERM: the text before the first separator
# The texts grouped by, in Columns' order: a NULL responder or service reads as '' (as SQLite's id 0 does).
_TEXTS = ("source", PRIMARY_TERM, "coalesce(first_response_by, '')", "coalesce(escalated_to, '')")
_NAMES_SQL = f"SELECT {', '.join(f'array_agg(DISTINCT {text})' for text in _TEXTS)}" + _PERIOD
# Status codes in the flags (bits 5-7), as db.stats' tallies count them.
_STATUS = "CASE status WHEN 'new' THEN 0 WHEN 'escalated' THEN 1 WHEN 'done' THEN 2 WHEN 'dismissed' THEN 3 ELSE 4 END"
_FIELDS = (
    "first_seen_at",
    "coalesce(first_response_at, -1)",
    "CASE WHEN status IN ('done', 'dismissed') THEN status_at ELSE -1 END",
    "coalesce(deleted_at, -1)",
    "coalesce(escalated_at, -1)",
    # priority (bits 0-3), to us (4), status (5-7), edited (8)
    # (PostgreSQL gives & | << one precedence, left to right: every term in parentheses)
    f"((priority & 15) | ((to_us <> 0)::int << 4) | (({_STATUS}) << 5) | ((edited_at IS NOT NULL)::int << 8))::int8",
    # the four texts' codes, 16 bits each
    " | ".join(f"((array_position(%({name})s::text[], {text}) - 1)::int8 << {16 * i})"
               for i, (name, text) in enumerate(zip(("s", "t", "o", "v"), _TEXTS, strict=True))),
)  # fmt: skip
_COPY_SQL = f"COPY (SELECT {', '.join(_FIELDS)}{_PERIOD}) TO STDOUT (FORMAT BINARY)"
_ROW = np.dtype([("n", ">i2"), *((f, [("len", ">i4"), ("v", ">i8")]) for f in "abcdefg")])
_HEADER, _TRAILER = 19, 2  # COPY BINARY's signature, flags and (empty) extension; the -1 field count at the end
# The backlog a period inherits, as monitor.db.stats reads it: when each mention seen before it stopped waiting.
_CARRY_SQL = (
    "SELECT array_agg(ends) FROM (SELECT least(coalesce(deleted_at, %(no_end)s),"
    " CASE WHEN status IN ('done', 'dismissed') THEN status_at ELSE %(no_end)s END) AS ends"
    " FROM mentions WHERE first_response_at IS NULL AND first_seen_at < %(since)s"
    " UNION ALL SELECT least(first_response_at, coalesce(deleted_at, %(no_end)s))"
    " FROM mentions WHERE first_response_at >= %(since)s AND first_seen_at < %(since)s) carried"
)
_SPLIT = 200_000  # a period with more mentions than this is copied in two halves, side by side


def connect(url: str) -> PgReadConnection:
    """A read-only connection whose reads share one snapshot until it is closed (a report's consistency)."""
    try:
        return psycopg.connect(
            url, application_name="monitor-stats", options="-c default_transaction_read_only=on"
            " -c default_transaction_isolation=repeatable\\ read",
        )  # fmt: skip
    except psycopg.Error as exc:
        raise classify(exc, url) from exc


def first_seen(conn: PgReadConnection) -> int | None:
    with errors(conn):
        row = _one(conn, "SELECT min(first_seen_at) FROM mentions")
    return None if row[0] is None else int(row[0])


def load_period(conn: PgReadConnection, since: int, until: int) -> Period:
    """The mentions first seen in [since, until), with their clocks, and the backlog inherited from before."""
    with errors(conn):
        params: dict[str, Any] = {"since": since, "until": until, "no_end": NO_END}
        names = [list(n or ()) for n in _one(conn, _NAMES_SQL, params)]
        if max(len(n) for n in names) >= 1 << 15:
            raise ValueError("statistics: more than 32767 distinct names in one breakdown")  # 16 bits each
        params |= dict(zip(("s", "t", "o", "v"), names, strict=True))
        halves = _halves(conn, since, until)
        extra = [_sharing_snapshot(conn) for _ in halves[1:]]
        try:
            with ThreadPoolExecutor(max_workers=len(halves)) as pool:
                slices = [{**params, "since": s, "until": u} for s, u in halves]
                parts = list(pool.map(_copy, [conn, *extra], slices))
        finally:
            for c in extra:
                c.close()
        carried = _one(conn, _CARRY_SQL, params)[0]
    return Period(*_columns(np.concatenate(parts), names), np.array(carried or [], dtype=np.int64))


def _halves(conn: PgReadConnection, since: int, until: int) -> list[tuple[int, int]]:
    """The period, cut in two at its median first seen when it is large (each half copied on its own backend)."""
    n = int(_one(conn, "SELECT count(*)" + _PERIOD, {"since": since, "until": until})[0])
    if n < _SPLIT:
        return [(since, until)]
    middle = _one(conn, "SELECT first_seen_at" + _PERIOD + " ORDER BY first_seen_at OFFSET %(n)s LIMIT 1",
                  {"since": since, "until": until, "n": n // 2})[0]  # fmt: skip
    return [(since, int(middle)), (int(middle), until)]


def _sharing_snapshot(conn: PgReadConnection) -> PgReadConnection:
    """Another connection reading `conn`'s snapshot (its transaction is open: every read before began it)."""
    snapshot = _one(conn, "SELECT pg_export_snapshot()")[0]
    extra = psycopg.connect(conn.info.dsn, application_name="monitor-stats", autocommit=True)
    extra.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    extra.execute("SET TRANSACTION SNAPSHOT " + psycopg.sql.quote(snapshot))
    return extra


def _copy(conn: PgReadConnection, params: dict[str, Any]) -> Any:
    """One slice's rows as a structured array (one record per mention)."""
    blocks: list[bytes] = []
    with conn.cursor() as cur, cur.copy(_COPY_SQL, params) as copy:
        blocks.extend(bytes(block) for block in copy)
    data = b"".join(blocks)
    return np.frombuffer(data, dtype=_ROW, offset=_HEADER, count=(len(data) - _HEADER - _TRAILER) // _ROW.itemsize)


def _columns(rows: Any, names: list[list[str]]) -> tuple[Columns, list[int]]:
    """The records as db.stats' Columns, and the tallies: new, escalated, done, dismissed, edited, to us."""
    seen, fr, closed, deleted, esc_at, flags, codes = (rows[f]["v"].astype(np.int64) for f in "abcdefg")
    status = (flags >> 5) & 7
    resolved = np.where((esc_at >= 0) & (closed >= esc_at), closed, -1)
    src, term, op, svc = ((codes >> (16 * i)) & 0xFFFF for i in range(4))
    source_names, term_names, op_names, svc_names = names
    columns = Columns(
        seen, flags & 15, fr, closed, deleted, esc_at, resolved, src, term, op, svc,
        source_names, [t or NONE_KEY for t in term_names], op_names, svc_names,
    )  # fmt: skip
    tallies = [int(np.count_nonzero(status == s)) for s in (0, 1, 2, 3)]
    tallies += [int(np.count_nonzero(flags & 256)), int(np.count_nonzero(flags & 16))]
    return columns, tallies


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
