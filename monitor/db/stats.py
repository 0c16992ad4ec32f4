"""Loading for the statistics: every query they run, and the period's mentions as integer columns.

Whole columns come back as one group_concat string each, parsed by numpy in C: a million rows cost one
narrow index scan (mentions_stats covers them), not a million Python tuples. Text columns become small
integer codes inside SQLite (monitor.db.statscodes writes the SQL), so rows travel as integers only.
Computing and rendering live in monitor.reports.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from monitor.db.statscodes import Codes, Ints, exact_case, primary, primary_case
from monitor.db.store import BUSY_TIMEOUT_MS

# What a caller hands in: a connection from monitor.db.store (open_sync, open_readonly).
ReadConnection = sqlite3.Connection
ConnectionFactory = Callable[[], ReadConnection]

OPERATOR_SEED_ACTIONS = 20_000  # operators of the latest actions: the usual names, read in a blink
OTHER_KEY = "(other)"  # a value that appeared between two of the report's reads
SLICE_MS = 30 * 86_400_000  # one query per 30 days: strings stay small and slices load side by side

# Priority is packed under first_seen_at (first_seen_at * 16 + priority): one column less to carry.
# When the mention was closed, with its kind in the lowest bit: status_at * 2 (+ 1 if dismissed), or -1.
_CLOSED = "CASE status WHEN 'done' THEN status_at * 2 WHEN 'dismissed' THEN status_at * 2 + 1 ELSE -1 END"
_PERIOD = " FROM mentions WHERE first_seen_at >= ? AND first_seen_at < ?"
# The text columns a breakdown needs, as SQL; terms is the whole '\x1f'-joined list (its primary term
# is its prefix up to the first separator).
_TEXT_COLUMNS = ("source", "terms", "ifnull(first_response_by, '')")
_DISTINCT_SQLS = tuple(f"SELECT DISTINCT {column}" + _PERIOD for column in _TEXT_COLUMNS)
_IDS_SQL = "SELECT min(id), max(id)" + _PERIOD
_STANDING = (
    " FROM actions WHERE kind = 'escalate' AND mention_id BETWEEN ? AND ?"
    " AND id NOT IN (SELECT json_extract(payload, '$.undid') FROM actions WHERE kind = 'reopen'"
    " AND mention_id BETWEEN ? AND ? AND json_extract(payload, '$.undid') IS NOT NULL)"
)
_ESC_SQL = (
    "SELECT count(*), group_concat(mention_id), group_concat(at), group_concat(id),"
    " group_concat(ifnull(payload ->> '$.service', ''), '\x1e')" + _STANDING
)
_ESC_ROWS_SQL = "SELECT mention_id, at, id, ifnull(json_extract(payload, '$.service'), '')" + _STANDING
# Mentions seen before the period and still waiting at its start (the backlog it inherits).
_CARRY_SQL = (
    "SELECT first_seen_at, first_response_at, deleted_at,"
    " CASE WHEN status IN ('done', 'dismissed') THEN status_at END"
    " FROM mentions WHERE first_response_at IS NULL AND first_seen_at < ?"
    " UNION ALL"
    " SELECT first_seen_at, first_response_at, deleted_at, NULL"
    " FROM mentions WHERE first_response_at >= ? AND first_seen_at < ?"
)
Carried = list[tuple[int, int | None, int | None, int | None]]  # seen, first response, deleted, closed


@dataclass
class Columns:
    """The period's mentions as columns, one entry per mention."""

    ids: Ints
    seen: Ints
    priority: Ints
    fr: Ints  # -1: no first response yet
    closed: Ints  # status_at when done or dismissed, else -1
    deleted: Ints  # -1: not deleted
    source: Ints  # codes into source_names ...
    terms: Ints
    operator: Ints
    source_names: list[str]
    terms_names: list[str]
    operator_names: list[str]


@dataclass
class Period:
    """Everything the statistics of a period read from the database."""

    rows: Columns
    tallies: list[int]  # new, escalated, done, dismissed, edited, to us
    esc_at: Ints  # per row: the standing escalation's time, -1: none
    esc_service: Ints  # per row: its service's code in `services`, -1: none
    services: list[str]
    carried: Carried


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

    def submit(self, sql: str, params: Sequence[Any], one: bool = True) -> Future[Any]:
        def run(conn: sqlite3.Connection) -> Any:
            cursor = conn.execute(sql, params)
            return cursor.fetchone() if one else cursor.fetchall()

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


def load_period(conn: ReadConnection, since: int, until: int, sources: Sequence[str], terms: Sequence[str]) -> Period:
    """The mentions first seen in [since, until), their standing escalations and the inherited backlog.

    `sources` and `terms` (the watchlist's) seed the names the codes are built from."""
    reader = Reader(conn)
    try:
        # The slices go to the two workers first; the id range the escalations need is read here
        # meanwhile, then the escalations queue behind the slices.
        loading = _load(reader, since, until, seeds(conn, sources, terms))
        lo, hi = conn.execute(_IDS_SQL, (since, until)).fetchone()
        esc_f = reader.submit(_ESC_SQL, (lo, hi, lo, hi)) if lo is not None else None
        carry_f = reader.submit(_CARRY_SQL, (since, since, since), one=False)
        rows, tallies = loading()
        esc_at, esc_service, services = _escalations(esc_f, reader, rows, (lo or 0, hi or 0))
        return Period(rows, tallies, esc_at, esc_service, services, carry_f.result())
    finally:
        reader.close()


def seeds(conn: ReadConnection, sources: Sequence[str], terms: Sequence[str]) -> list[Codes]:
    """Names known before reading: a first guess, corrected per slice when a row proves it wrong."""
    known = set(sources)
    for table in ("cursors", "source_state"):
        known.update(row[0] for row in conn.execute(f"SELECT source FROM {table}"))
    top = conn.execute("SELECT max(id) FROM actions").fetchone()[0] or 0
    operators = {
        row[0]
        for row in conn.execute("SELECT DISTINCT operator FROM actions WHERE id > ?", (top - OPERATOR_SEED_ACTIONS,))
    }
    return [Codes(known), Codes(terms), Codes({"", *operators})]


def _ints(text: str | None, count: int) -> Ints:
    if count == 0 or text is None:
        return np.zeros(0, dtype=np.int64)
    values = np.fromstring(text, dtype=np.int64, sep=",")  # text mode: C parsing, not deprecated
    if values.size != count:
        raise ValueError("statistics: a column did not parse")  # integers only: never expected
    return values


Radix = tuple[int, int, int]
Query = Callable[[], tuple[str, list[str], Radix]]


class _Slices:
    """The period read one slice at a time: one query per slice, text columns as codes."""

    def __init__(self, reader: Reader, names: list[Codes]) -> None:
        self.reader = reader
        self.names = names

    def query(self) -> tuple[str, list[str], Radix]:
        src_names, term_names, op_names = self.names
        radix = (len(src_names.names) + 1, len(term_names.names) + 1, len(op_names.names) + 1)
        (src_sql, sp), (term_sql, tp), (op_sql, op_p) = (
            exact_case("source", src_names),
            primary_case("terms", term_names),
            exact_case(_TEXT_COLUMNS[2], op_names),
        )
        # Each code + 1 (0 is "unknown"), packed in mixed radix: one integer column for three texts.
        code = f"((({op_sql}) + 1) * {radix[1]} + ({term_sql}) + 1) * {radix[0]} + ({src_sql}) + 1"
        sql = (
            "SELECT count(*), group_concat(id), group_concat(first_seen_at * 16 + (priority & 15)),"
            f" group_concat(ifnull(first_response_at, -1)), group_concat({_CLOSED}), group_concat({code}),"
            " group_concat(CASE WHEN deleted_at IS NOT NULL THEN id || ',' || deleted_at END),"
            " total(status = 'new'), total(status = 'escalated'), count(edited_at), total(to_us)" + _PERIOD
        )
        return sql, [*op_p, *tp, *sp], radix

    @staticmethod
    def decode(result: tuple[Any, ...], radix: Radix) -> tuple[Any, ...]:
        count, ids, seen_priority, fr, closed, code, pairs, new, escalated, edited, to_us = result
        packed = _ints(code, count)
        rest, src = np.divmod(packed, radix[0])
        op, term = np.divmod(rest, radix[1])
        ints = [_ints(x, count) for x in (ids, seen_priority, fr, closed)]
        deleted_pairs = np.fromstring(pairs or "", dtype=np.int64, sep=",")
        return (*ints, src - 1, term - 1, op - 1, deleted_pairs, (new, escalated, edited, to_us))

    def part(self, bounds: tuple[int, int], result: tuple[Any, ...], radix: Radix) -> tuple[Any, ...] | None:
        """One slice's columns; a slice with a name not known in advance learns its names and is read again."""
        if not result[0]:
            return None
        part = self.decode(result, radix)
        if not any(bool((codes < 0).any()) for codes in part[4:7]):
            return part
        for column_names, distinct_sql in zip(self.names, _DISTINCT_SQLS, strict=True):
            for (value,) in self.reader.submit(distinct_sql, bounds, one=False).result():
                column_names.add(primary(value) if column_names is self.names[1] else value)
        sql, params, radix = self.query()
        result = self.reader.submit(sql, (*params, *bounds)).result()
        return self.decode(result, radix) if result[0] else None


def _load(reader: Reader, since: int, until: int, names: list[Codes]) -> Callable[[], tuple[Columns, list[int]]]:
    """Start reading the period's mentions, one query per slice; returns what waits for the result.

    The codes come from names known in advance; a slice where a row had another name reads that
    slice's distinct names and is read again.
    """
    slices = _Slices(reader, names)
    sql, params, radix = slices.query()
    bounds = [(s, min(until, s + SLICE_MS)) for s in range(since, until, SLICE_MS)]
    futures = [reader.submit(sql, (*params, *b)) for b in bounds]

    def wait() -> tuple[Columns, list[int]]:
        parts = [slices.part(b, f.result(), radix) for b, f in zip(bounds, futures, strict=True)]
        return _columns([p for p in parts if p is not None], names)

    return wait


def _columns(parts: list[tuple[Any, ...]], names: list[Codes]) -> tuple[Columns, list[int]]:
    columns = [np.concatenate([p[i] for p in parts]) if parts else np.zeros(0, dtype=np.int64) for i in range(8)]
    ids, seen_priority, fr, closed2, src, term, op, pairs = columns
    tallies = [sum(int(p[8][i]) for p in parts) for i in range(4)]  # new, escalated, edited, to us
    deleted = np.full(ids.size, -1, dtype=np.int64)
    if pairs.size:
        found, rows_of = lookup(ids, pairs[0::2])
        deleted[rows_of[found]] = pairs[1::2][found]
    closed = np.where(closed2 >= 0, closed2 >> 1, -1)
    dismissed = int(np.count_nonzero((closed2 >= 0) & (closed2 & 1 == 1)))
    closed_n = int(np.count_nonzero(closed2 >= 0))
    # Still unknown (a value written between two reads): the last code, shown as "(other)".
    lists = [[*n.names, OTHER_KEY] for n in names]
    src, term, op = (np.where(c < 0, len(n.names), c) for c, n in zip((src, term, op), names, strict=True))
    rows = Columns(
        ids, seen_priority >> 4, seen_priority & 15, fr, closed, deleted, src, term, op, *lists,
    )  # fmt: skip
    return rows, [tallies[0], tallies[1], closed_n - dismissed, dismissed, tallies[2], tallies[3]]


def lookup(ids: Ints, wanted: Ints) -> tuple[np.ndarray, Ints]:
    """For each wanted id: whether it is one of `ids`, and its row (valid where found)."""
    if ids.size == 0:
        return np.zeros(wanted.size, dtype=bool), np.zeros(wanted.size, dtype=np.int64)
    sorter = np.argsort(ids)
    pos = np.minimum(np.searchsorted(ids, wanted, sorter=sorter), ids.size - 1)
    rows = sorter[pos]
    return ids[rows] == wanted, rows


def _escalations(
    future: Future[Any] | None, reader: Reader, rows: Columns, id_range: tuple[int, int]
) -> tuple[Ints, Ints, list[str]]:
    """Each mention's standing escalation (the first escalate action not undone by a reopen):
    per row, its time (-1: none) and its service's code in the returned names (-1: none)."""
    n = rows.ids.size
    esc_at = np.full(n, -1, dtype=np.int64)
    esc_service = np.full(n, -1, dtype=np.int64)
    if future is None or n == 0:
        return esc_at, esc_service, []
    count, mids, ats, aids, services = future.result()
    if not count:
        return esc_at, esc_service, []
    codes = Codes()
    parts = services.split("\x1e")
    if len(parts) == count:
        mid, at, aid = _ints(mids, count), _ints(ats, count), _ints(aids, count)
        service = codes.encode(parts)
    else:  # a service name holding the separator: read the rows one by one
        lo, hi = id_range
        found = reader.submit(_ESC_ROWS_SQL, (lo, hi, lo, hi), one=False).result()
        mid, at, aid = (np.array([r[i] for r in found], dtype=np.int64) for i in range(3))
        service = codes.encode([str(r[3]) for r in found])
    order = np.lexsort((aid, at, mid))
    uniq, first = np.unique(mid[order], return_index=True)
    chosen = order[first]
    found_mask, row = lookup(rows.ids, uniq)  # the id range also holds mentions outside the period
    esc_at[row[found_mask]] = at[chosen[found_mask]]
    esc_service[row[found_mask]] = service[chosen[found_mask]]
    return esc_at, esc_service, codes.names
