"""Loading for the statistics: every query they run, and the period's mentions as integer columns.

Everything comes from the mentions table and its per-mention clocks (monitor.db.clocks), never from the
action log. Whole columns come back as one group_concat string each, parsed by numpy in C: a million rows
cost one narrow index scan (mentions_stats covers them), not a million Python tuples. Text columns become
small integer codes inside SQLite (monitor.db.statscodes writes the SQL), so rows travel as integers only.
Computing and rendering live in monitor.reports.
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

from monitor.db.connect import open_sync
from monitor.db.statscodes import Codes, Ints, exact_case, primary, primary_case
from monitor.db.store import BUSY_TIMEOUT_MS

# What a caller hands in: a connection from monitor.db.store (open_sync, open_readonly).
ReadConnection = sqlite3.Connection
ConnectionFactory = Callable[[], ReadConnection]


def reader(path: Path) -> ConnectionFactory:
    """Opens the file for the statistics screen, one connection per refresh (each on its worker thread)."""
    return lambda: open_sync(path, readonly=True)


OPERATOR_SEED_ACTIONS = 20_000  # operators of the latest actions: the usual names, read in a blink
OTHER_KEY = "(other)"  # a value that appeared between two of the report's reads
SLICE_MS = 30 * 86_400_000  # one query per 30 days: strings stay small and slices load side by side

# Priority is packed under first_seen_at (first_seen_at * 16 + priority): one column less to carry.
# When the mention was closed, with its kind in the lowest bit: status_at * 2 (+ 1 if dismissed), or -1.
_CLOSED = "CASE status WHEN 'done' THEN status_at * 2 WHEN 'dismissed' THEN status_at * 2 + 1 ELSE -1 END"
_PERIOD = " FROM mentions WHERE first_seen_at >= ? AND first_seen_at < ?"
# The text columns a breakdown needs, as SQL, and how each becomes a code: terms is the whole
# '\x1f'-joined list (its primary term is its prefix up to the first separator); the service is the
# standing escalation's ('' without one).
_TEXTS = (
    ("source", exact_case),
    ("terms", primary_case),
    ("ifnull(first_response_by, '')", exact_case),
    ("ifnull(escalated_to, '')", exact_case),
)
_DISTINCT_SQLS = tuple(f"SELECT DISTINCT {column}" + _PERIOD for column, _case in _TEXTS)
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
    terms_names: list[str]
    operator_names: list[str]
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

    def submit(self, sql: str, params: Sequence[Any] | dict[str, Any], one: bool = True) -> Future[Any]:
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


def load_period(
    conn: ReadConnection, since: int, until: int, sources: Sequence[str], terms: Sequence[str], services: Sequence[str]
) -> Period:
    """The mentions first seen in [since, until), with their clocks, and the backlog inherited from before.

    `sources`, `terms` and `services` (the watchlist's) seed the names the codes are built from."""
    reader = Reader(conn)
    try:
        loading = _load(reader, since, until, seeds(conn, sources, terms, services))
        carry_f = reader.submit(_carry_sql(conn, since), {"since": since, "no_end": NO_END})
        rows, tallies = loading()
        count, ends = carry_f.result()
        return Period(rows, tallies, _ints(ends, count))
    finally:
        reader.close()


def _carry_sql(conn: ReadConnection, since: int) -> str:
    oldest_seen, latest_response = conn.execute(_SPANS_SQL).fetchone()
    by_seen = oldest_seen is None or latest_response is None or since - oldest_seen <= latest_response - since
    return carry_query(by_seen)


def carry_query(by_seen: bool) -> str:
    return _CARRY_SQL + (_CARRY_BY_SEEN if by_seen else _CARRY_BY_RESPONSE) + ")"


def seeds(conn: ReadConnection, sources: Sequence[str], terms: Sequence[str], services: Sequence[str]) -> list[Codes]:
    """Names known before reading: a first guess, corrected per slice when a row proves it wrong."""
    known = set(sources)
    for table in ("cursors", "source_state"):
        known.update(row[0] for row in conn.execute(f"SELECT source FROM {table}"))
    top = conn.execute("SELECT max(id) FROM actions").fetchone()[0] or 0
    operators = {
        row[0]
        for row in conn.execute("SELECT DISTINCT operator FROM actions WHERE id > ?", (top - OPERATOR_SEED_ACTIONS,))
    }
    return [Codes(known), Codes(terms), Codes({"", *operators}), Codes({"", *services})]


def _ints(text: str | None, count: int) -> Ints:
    if count == 0 or text is None:
        return np.zeros(0, dtype=np.int64)
    values = np.fromstring(text, dtype=np.int64, sep=",")  # text mode: C parsing, not deprecated
    if values.size != count:
        raise ValueError("statistics: a column did not parse")  # integers only: never expected
    return values


_INTS = 6  # integer columns before the codes: first seen and priority, first response, closed, deleted,
# standing escalation, resolved


class _Slices:
    """The period read one slice at a time: one query per slice, text columns as codes."""

    def __init__(self, reader: Reader, names: list[Codes]) -> None:
        self.reader = reader
        self.names = names

    def query(self) -> tuple[str, list[str], list[int]]:
        radix = [len(n.names) + 1 for n in self.names]
        cases = [case(column, names) for (column, case), names in zip(_TEXTS, self.names, strict=True)]
        # Each code + 1 (0 is "unknown"), packed in mixed radix, the first text in the lowest digit: one
        # integer column for all the texts.
        code, params = f"({cases[-1][0]}) + 1", list(cases[-1][1])
        for (case_sql, case_params), r in zip(cases[-2::-1], radix[-2::-1], strict=True):
            code, params = f"({code}) * {r} + ({case_sql}) + 1", [*params, *case_params]
        sql = (
            "SELECT count(*), group_concat(first_seen_at * 16 + (priority & 15)),"
            f" group_concat(ifnull(first_response_at, -1)), group_concat({_CLOSED}),"
            " group_concat(ifnull(deleted_at, -1)), group_concat(ifnull(escalated_at, -1)),"
            f" group_concat(ifnull(resolved_at, -1)), group_concat({code}),"
            " total(status = 'new'), total(status = 'escalated'), count(edited_at), total(to_us)" + _PERIOD
        )
        return sql, params, radix

    @staticmethod
    def decode(result: tuple[Any, ...], radix: list[int]) -> tuple[Any, ...]:
        count, *ints, code, new, escalated, edited, to_us = result
        rest = _ints(code, count)
        codes = []
        for r in radix[:-1]:
            rest, c = np.divmod(rest, r)
            codes.append(c - 1)
        codes.append(rest - 1)
        return (*[_ints(x, count) for x in ints], *codes, (new, escalated, edited, to_us))

    def part(self, bounds: tuple[int, int], result: tuple[Any, ...], radix: list[int]) -> tuple[Any, ...] | None:
        """One slice's columns; a slice with a name not known in advance learns its names and is read again."""
        if not result[0]:
            return None
        part = self.decode(result, radix)
        if not any(bool((codes < 0).any()) for codes in part[_INTS : _INTS + len(_TEXTS)]):
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
    width = _INTS + len(_TEXTS)
    columns = [np.concatenate([p[i] for p in parts]) if parts else np.zeros(0, dtype=np.int64) for i in range(width)]
    seen_priority, fr, closed2, deleted, esc_at, resolved, *codes = columns
    tallies = [sum(int(p[width][i]) for p in parts) for i in range(4)]  # new, escalated, edited, to us
    closed = np.where(closed2 >= 0, closed2 >> 1, -1)
    dismissed = int(np.count_nonzero((closed2 >= 0) & (closed2 & 1 == 1)))
    closed_n = int(np.count_nonzero(closed2 >= 0))
    # Still unknown (a value written between two reads): the last code, shown as "(other)".
    src_n, term_n, op_n, svc_n = ([*n.names, OTHER_KEY] for n in names)
    src, term, op, svc = (np.where(c < 0, len(n.names), c) for c, n in zip(codes, names, strict=True))
    rows = Columns(
        seen_priority >> 4, seen_priority & 15, fr, closed, deleted, esc_at, resolved, src, term, op, svc,
        src_n, term_n, op_n, svc_n,
    )  # fmt: skip
    return rows, [tallies[0], tallies[1], closed_n - dismissed, dismissed, tallies[2], tallies[3]]
