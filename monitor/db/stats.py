"""Loading for the statistics: every query they run, and the period's mentions as integer columns.

Everything comes from the mentions table, its per-mention clocks and the integer ids of its texts (monitor.db.
clocks), never from the action log. Whole columns come back as one group_concat string each, parsed by numpy in
C: a million rows cost one narrow index scan of integers (mentions_stats covers them), not a million Python
tuples. Computing and rendering live in monitor.reports.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from monitor.db.connect import BUSY_TIMEOUT_MS, open_sync
from monitor.db.statsdays import DAY_MS, DIGESTS_SQL, ints, narrow, row_columns, unpack

# What a caller hands in: a connection from monitor.db.store (open_sync, open_readonly).
ReadConnection = sqlite3.Connection
ConnectionFactory = Callable[[], ReadConnection]


def reader(path: Path) -> ConnectionFactory:
    """Opens the file for the statistics screen, one connection per refresh (each on its worker thread)."""
    return lambda: open_sync(path, readonly=True)


NONE_KEY = "(none)"  # the label of a mention without the text (a term list without a term, a service of '')
Ints = npt.NDArray[np.int64]
Part = tuple[int, int, list[npt.NDArray[Any]], int]  # a slice: count, radix of its ids, columns (narrow), start

# One row per mention as a few integers, short to write as text, with no aggregate beside them (each costs as
# much as a column): times as offsets from the mention's first seen, shifted left with flags in the low bits
# (bit 0 set: absent); first seen as its offset in the slice, with the priority and whether it is addressed to
# us; the status in the closing's column (bit 1: dismissed; 1 new, 3 escalated); whether it was edited in the
# deletion's; the ids of its texts (migration 7) in pairs, mixed radix on one more than the largest id (read
# in the same statement, so in the same snapshot as the rows).
_PERIOD = " FROM mentions INDEXED BY mentions_stats WHERE first_seen_at >= :since AND first_seen_at < :until"
_ROWS_SQL = f"SELECT {row_columns(':since')}" + _PERIOD
NO_END = 1 << 60  # a carried mention still waiting now
# Mentions seen before the period and still waiting at its start (the backlog it inherits), as when each
# stopped waiting: never answered, or answered after the start. The answered ones are found from whichever
# end is shorter: a recent period by its responses, an old one by the mentions seen before it.
_CARRY_SQL = (
    "SELECT count(*), group_concat(ends) FROM (SELECT min(ifnull(deleted_at, :no_end),"
    " CASE WHEN status IN ('done', 'dismissed') THEN status_at ELSE :no_end END) AS ends"
    " FROM mentions INDEXED BY mentions_response WHERE first_response_at IS NULL AND first_seen_at < :since"
    " UNION ALL SELECT min(first_response_at, ifnull(deleted_at, :no_end))"
)
_CARRY_BY_SEEN = " FROM mentions INDEXED BY mentions_stats WHERE first_seen_at < :since AND first_response_at >= :since"
_CARRY_BY_RESPONSE = (
    " FROM mentions INDEXED BY mentions_response WHERE first_response_at >= :since AND first_seen_at < :since"
)
_SPANS_SQL = "SELECT (SELECT min(first_seen_at) FROM mentions), (SELECT max(first_response_at) FROM mentions)"


@dataclass
class Columns:
    """The period's mentions as columns, one entry per mention."""

    seen: Ints
    priority: Ints
    fr: Ints  # -1: no first response yet
    closed: Ints  # status_at when done or dismissed, else -1
    deleted: Ints  # -1: not deleted
    esc_at: Ints  # the standing escalation, -1: none
    resolved: Ints  # when the standing escalation was resolved, -1: not (yet)
    source: Ints  # codes into source_names ...
    terms: Ints
    operator: Ints
    service: Ints  # the standing escalation's, meaningful where esc_at >= 0
    source_names: list[str]
    terms_names: list[str]  # primary terms; NONE_KEY for a mention without a term
    operator_names: list[str]  # '': nobody yet
    service_names: list[str]


@dataclass
class Period:
    """Everything the statistics of a period read from the database."""

    rows: Columns
    tallies: list[int]  # new, escalated, done, dismissed, edited, to us
    carried: Ints  # mentions seen before the period, waiting at its start: when each stopped waiting, or NO_END


def first_seen(conn: ReadConnection) -> int | None:
    """When the oldest mention was first seen (None: no mention yet)."""
    value = conn.execute("SELECT min(first_seen_at) FROM mentions").fetchone()[0]
    return None if value is None else int(value)


class Reader:
    """Read queries run side by side on extra connections to the same file: SQLite releases the GIL
    while it steps, so the loading uses both cores. An in-memory database uses the caller's connection.

    Each connection reads its own snapshot; a write landing during the few hundred milliseconds of
    a report may show in one part and not another (it is counted on the next refresh).
    """

    def __init__(self, conn: ReadConnection) -> None:
        self.conn = conn
        file = next((row[2] for row in conn.execute("PRAGMA database_list") if row[1] == "main"), "")
        self.path: str = file or ""
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="stats") if self.path else None
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        c = getattr(self._local, "conn", None)
        if c is None:
            c = sqlite3.connect(self.path, check_same_thread=False)
            c.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            self._local.conn = c
            with self._lock:
                self._opened.append(c)
        return c

    def submit(
        self, sql: str, params: Sequence[Any] | dict[str, Any], then: Callable[[Any], Any] | None = None
    ) -> Future[Any]:
        """The query's one row, through `then` on the same thread (parsing there overlaps the other queries)."""

        def run(conn: sqlite3.Connection) -> Any:
            row = conn.execute(sql, params).fetchone()
            return then(row) if then is not None else row

        if self.pool is None:
            done: Future[Any] = Future()
            done.set_result(run(self.conn))
            return done
        return self.pool.submit(lambda: run(self._connection()))

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)
        for c in self._opened:
            c.close()


def load_period(conn: ReadConnection, since: int, until: int) -> Period:
    """The mentions first seen in [since, until), with their clocks, and the backlog inherited from before.

    Whole UTC days come from their digests (monitor.db.statsdays), a dirty day and the period's partial
    days at its ends from the mentions, each on a reader thread."""
    reader = Reader(conn)
    try:
        first, last = -(-since // DAY_MS), until // DAY_MS
        if first >= last:
            first = last = until // DAY_MS + 1  # no whole day: the period is one partial range
        edges = [(since, min(until, first * DAY_MS)), (max(since, last * DAY_MS), until)]
        digests = conn.execute(DIGESTS_SQL, {"first": first, "last": last}).fetchall() if first < last else []
        bounds = [(s, u) for s, u in edges if s < u] + [(d * DAY_MS, (d + 1) * DAY_MS) for d, n, *_ in digests if n < 0]
        slices = [reader.submit(_ROWS_SQL, {"since": s, "until": u}, then=_parse) for s, u in bounds]
        carry_f = reader.submit(_carry_sql(conn, since), {"since": since, "no_end": NO_END})
        parts = [(n, radix, [unpack(b, n) for b in blobs], day * DAY_MS) for day, n, radix, *blobs in digests if n > 0]
        parts += [(*f.result(), s) for f, (s, _u) in zip(slices, bounds, strict=True)]
        parts.sort(key=lambda part: part[3])
        # Read last: names are only ever added, so every id the slices carry is there.
        names = dict(conn.execute("SELECT id, name FROM names").fetchall())
        rows, tallies = _columns([part for part in parts if part[0]], names)
        count, ends = carry_f.result()
        return Period(rows, tallies, ints(ends, count))
    finally:
        reader.close()


def _carry_sql(conn: ReadConnection, since: int) -> str:
    oldest_seen, latest_response = conn.execute(_SPANS_SQL).fetchone()
    by_seen = oldest_seen is None or latest_response is None or since - oldest_seen <= latest_response - since
    return carry_query(by_seen)


def carry_query(by_seen: bool) -> str:
    return _CARRY_SQL + (_CARRY_BY_SEEN if by_seen else _CARRY_BY_RESPONSE) + ")"


def _at(seen: Ints, offsets: npt.NDArray[Any], shift: int) -> Ints:
    """Times from their offsets to first seen (shifted left by `shift`, odd when absent): -1 when absent."""
    at = seen + (offsets >> shift)
    np.putmask(at, (offsets & 1) != 0, -1)  # in place: one array of a million fewer than np.where
    return at


def _dense(ids: npt.NDArray[Any], names: dict[int, str], label: Callable[[str], str]) -> tuple[Ints, list[str]]:
    """Ids (0: none) as codes 0..n-1 over the ids present, with each code's label."""
    present = np.flatnonzero(np.bincount(ids)) if ids.size else np.zeros(0, dtype=np.int64)
    lookup = np.zeros(int(present[-1]) + 1 if present.size else 1, dtype=np.int64)
    lookup[present] = np.arange(present.size)
    return lookup[ids], [label(names.get(int(i), "")) for i in present]


def _parse(result: tuple[Any, ...]) -> tuple[int, int, list[npt.NDArray[Any]]]:
    """One slice's row: how many mentions, the radix of its ids, its columns as integers, narrow as the
    digests' (so they do not widen the whole period's columns)."""
    count, radix, *texts = result
    return count, radix, [narrow(ints(text, count)) for text in texts]


def _split(pairs: npt.NDArray[Any], radix: int) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """A slice's paired ids (low + radix * high) as the two ids, by its one radix (a scalar divisor: cheap),
    in the slice's own narrow type."""
    if radix > np.iinfo(pairs.dtype).max:  # every pair is below the radix: no high id
        return pairs, np.zeros_like(pairs)
    high, low = np.divmod(pairs, pairs.dtype.type(radix))
    return low, high


def _concat(arrays: list[npt.NDArray[Any]]) -> npt.NDArray[Any]:
    """One column from the slices' (narrow) parts, in the narrowest type that holds them all."""
    return np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64)


def _columns(parts: list[Part], names: dict[int, str]) -> tuple[Columns, list[int]]:
    """The slices' columns (each slice with its count, radix and start) as one, decoded; and the tallies:
    new, escalated, done, dismissed, edited, to us. The flags are read on the digests' narrow integers;
    only the times are widened."""
    counts = np.array([count for count, *_rest in parts], dtype=np.int64)
    seen_flags, fr2, status4, deleted4, esc2 = (_concat([p[2][i] for p in parts]) for i in range(5))
    ids = [_split(p[2][5], p[1]) + _split(p[2][6], p[1]) for p in parts]
    seen = (seen_flags >> 5).astype(np.int64)
    seen += np.repeat(np.array([p[3] for p in parts], dtype=np.int64), counts)
    closed, esc_at = _at(seen, status4, 2), _at(seen, esc2, 1)
    is_closed = closed >= 0
    dismissed = int(np.count_nonzero(is_closed & ((status4 & 3) == 2)))
    closed_n = int(np.count_nonzero(is_closed))
    # Resolved: closed at or after the standing escalation (migrations.RESOLVED, which resolved_at stores).
    resolved = closed.copy()
    np.putmask(resolved, (esc_at < 0) | (closed < esc_at), -1)
    labels: tuple[Callable[[str], str], ...] = (str, _term_label, str, str)
    (src, src_n), (term, term_n), (op, op_n), (svc, svc_n) = (
        _dense(_concat([p[k] for p in ids]), names, label) for k, label in enumerate(labels)
    )
    priority = ((seen_flags >> 1) & 15).astype(np.int64)
    rows = Columns(
        seen, priority, _at(seen, fr2, 1), closed, _at(seen, deleted4, 2), esc_at, resolved,
        src, term, op, svc, src_n, term_n, op_n, svc_n,
    )  # fmt: skip
    new, escalated, edited, to_us = (
        int(np.count_nonzero(t)) for t in (status4 == 1, status4 == 3, (deleted4 & 2) == 2, (seen_flags & 1) == 1)
    )
    return rows, [new, escalated, closed_n - dismissed, dismissed, edited, to_us]


def _term_label(term: str) -> str:
    return term or NONE_KEY
