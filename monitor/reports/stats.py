"""Response-time statistics a supervisor can trust.

One pass over the period's mentions (selected by first_seen_at), with the stored first response, the
standing escalation of each mention from the action log, and business time from monitor.core.business.
Rows are accumulated per combination of (source, terms, operator, priority, service) and per local
hour of the week; each breakdown merges those, so the hot loop touches a row once whatever the
number of breakdowns. Definitions: see EXPLAIN (printed by `monitor stats --explain`).
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from monitor.core.business import BusinessCalendar
from monitor.core.config import WEEKDAYS, Watchlist
from monitor.core.models import TERM_SEP, Priority
from monitor.core.timeutil import floor_local_hour, fmt_duration, fmt_local, iso_utc, local, now_ms
from monitor.db.store import BUSY_TIMEOUT_MS

DIMENSIONS = ("source", "term", "service", "operator", "priority", "hour", "weekday")
HOUR_MS = 3_600_000
DAY_NAMES = tuple(d[:3].capitalize() for d in WEEKDAYS)
# Response-time histogram bins, in seconds: [edge, next edge).
HIST_EDGES = (0, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400)
HIST_LABELS = ("<5m", "5-15m", "15-30m", "30m-1h", "1-2h", "2-4h", "4-8h", "8-24h", ">=24h")
NONE_KEY = "(none)"

EXPLAIN = """\
How the numbers are computed

Period
    Mentions are selected by when monitor first saw them (first_seen_at), in
    [since, until). Hours and weekdays are local time in the watchlist's time
    zone.

First response
    From first_seen_at (when monitor first saw the mention) to the first
    public reply, escalation or dismissal (first_response_at, stored when it
    happens). Not from the post's own publication time: we cannot answer
    before we see it, and feeds and backfills deliver posts late, which would
    charge the desk for time it never had. Credited to the operator who acted
    (first_response_by), not to an assignee. Notes do not stop the clock.
    Reopening never restarts it: the first response stays. A mention still
    waiting is "open": counted, with the age of the oldest (now), and left out
    of the percentiles. An open mention already past the target counts as a
    breach in "within target"; one not yet past it is left out (it may still
    make it).

Resolution
    From the mention's standing escalation (the first escalate action not
    undone by a reopen) to its closing: the service's fix (resolve), or a
    reply or dismissal after the escalation. A mention reopened and closed
    again counts to its final closing (when it reached the closed status it is
    in now). Still escalated: open.

Business time
    Each clock is also measured counting only the desk's opening hours
    (business_hours in the watchlist, per weekday, in its time zone), less
    public holidays (the holidays package, for the configured country and
    subdivision) and extra_holidays. A mention that arrives while the desk is
    closed starts its business clock at the next opening. With no opening
    hours configured, business time is calendar time.

Deleted, edited, reopened
    A mention deleted by its author still counts if it was answered. One
    deleted before any response leaves the open backlog when it was deleted
    and is counted apart ("deleted before response"). An edited mention is one
    mention: counted once. A reopened mention keeps its first response; its
    resolution runs to its final closing.

Percentiles
    Linear interpolation between closest ranks (Hyndman-Fan type 7, the
    default of numpy, R and Excel's PERCENTILE.INC): sort the n durations
    x[0..n-1], h = (n-1)*p, value = x[floor h] + (h - floor h) * (x[floor h +
    1] - x[floor h]). The median is p = 0.5 (the mean of the two middle values
    when n is even). Durations are counted in whole seconds, rounded up, so
    "within target" is exact and never flatters.

Within target
    Finished within the target / (finished + open already past it). The same
    target (targets.first_response, targets.resolution) applies to calendar
    and business time.

Addressed to us
    Mentions of, replies to and quotes of the city's own accounts (the
    Mastodon token's account, the Bluesky source's handle): the network says
    so (a mention notification, a reply or quote of our post), whatever the
    text. They are kept even when no watch term matches. Share: addressed to
    us / all mentions of the period.

Backlog and volume
    For each hour of the period, how many mentions were waiting for a first
    response at the end of that hour (or now, for the current hour), including
    mentions seen before the period and still waiting in it. Volume: how many
    were first seen in each hour.
"""


# -- result types ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Dist:
    """The distribution of one clock's finished durations (seconds)."""

    n: int
    median: float | None
    p90: float | None
    p95: float | None
    max: int | None
    within: int  # finished within the target
    late_open: int  # still running and already past the target
    target: int | None
    histogram: tuple[int, ...]

    @property
    def share(self) -> float | None:
        """Finished within target / (finished + open already late); None without a target or data."""
        if self.target is None:
            return None
        total = self.n + self.late_open
        return self.within / total if total else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "n": self.n, "median_s": self.median, "p90_s": self.p90, "p95_s": self.p95, "max_s": self.max,
            "within_target": self.within, "open_past_target": self.late_open, "target_s": self.target,
            "share_within_target": self.share,
            "histogram": dict(zip(HIST_LABELS, self.histogram, strict=True)),
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class Clock:
    """One clock (first response or resolution), in calendar and business time."""

    calendar: Dist
    business: Dist
    open: int  # still running
    oldest_open: int | None  # seconds, calendar age now
    oldest_open_business: int | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "calendar": self.calendar.as_dict(),
            "business": self.business.as_dict(),
            "open": self.open,
            "oldest_open_s": self.oldest_open,
            "oldest_open_business_s": self.oldest_open_business,
        }


@dataclass(frozen=True, slots=True)
class GroupRow:
    key: str
    mentions: int
    first_response: Clock
    resolution: Clock

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "mentions": self.mentions,
            "first_response": self.first_response.as_dict(),
            "resolution": self.resolution.as_dict(),
        }


@dataclass(frozen=True)
class Report:
    city: str
    timezone: str
    since: int  # epoch ms, inclusive
    until: int  # epoch ms, exclusive
    generated_at: int
    target_first_response: int  # seconds
    target_resolution: int | None
    counts: dict[str, int]
    first_response: Clock
    resolution: Clock
    breakdowns: dict[str, list[GroupRow]]
    series_start: int  # epoch ms of the first hour bucket (a local hour)
    volume: list[int] = field(default_factory=list)  # mentions first seen per hour
    backlog: list[int] = field(default_factory=list)  # waiting at the end of each hour (or now)
    series_step: int = HOUR_MS

    def as_dict(self) -> dict[str, Any]:
        return {
            "city": self.city,
            "timezone": self.timezone,
            "since": iso_utc(self.since),
            "until": iso_utc(self.until),
            "generated_at": iso_utc(self.generated_at),
            "targets": {
                "first_response_s": self.target_first_response,
                "resolution_s": self.target_resolution,
            },
            "counts": self.counts,
            "first_response": self.first_response.as_dict(),
            "resolution": self.resolution.as_dict(),
            "breakdowns": {dim: [row.as_dict() for row in rows] for dim, rows in self.breakdowns.items()},
            "series": {
                "start": iso_utc(self.series_start),
                "step_s": self.series_step // 1000,
                "volume": self.volume,
                "backlog": self.backlog,
            },
        }


# -- percentiles -------------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float] | np.ndarray, pct: int) -> float | None:
    """Linear interpolation between closest ranks (type 7) on an already sorted sequence."""
    n = len(sorted_values)
    if n == 0:
        return None
    lo, rem = divmod((n - 1) * pct, 100)  # integer arithmetic: no float drift in the rank
    low = float(sorted_values[lo])
    if rem == 0 or lo + 1 >= n:
        return low
    return low + rem / 100 * (float(sorted_values[lo + 1]) - low)


def _dist(values: np.ndarray, target: int | None, late_open: int) -> Dist:
    """A distribution from one group's durations, already sorted (whole seconds)."""
    n = int(values.size)
    if n == 0:
        return Dist(0, None, None, None, None, 0, late_open, target, (0,) * len(HIST_LABELS))
    within = int(np.searchsorted(values, target, side="right")) if target is not None else 0
    below = np.searchsorted(values, HIST_EDGES[1:], side="left").tolist()
    hist = tuple(b - a for a, b in zip([0, *below], [*below, n], strict=True))
    return Dist(
        n, percentile(values, 50), percentile(values, 90), percentile(values, 95), int(values[-1]),
        within, late_open, target, hist,
    )  # fmt: skip


# -- loading -----------------------------------------------------------------------------------

# Whole columns come back as one group_concat string each, parsed by numpy or str.split in C: a
# million rows cost one narrow index scan (mentions_stats covers them), not a million Python tuples.
# Priority is packed under first_seen_at (first_seen_at * 16 + priority): one column less to carry.
# When the mention was closed, with its kind in the lowest bit: status_at * 2 (+ 1 if dismissed), or -1.
_CLOSED = "CASE status WHEN 'done' THEN status_at * 2 WHEN 'dismissed' THEN status_at * 2 + 1 ELSE -1 END"
_PERIOD = " FROM mentions WHERE first_seen_at >= ? AND first_seen_at < ?"
# The text columns a breakdown needs, as SQL; terms is the whole '\x1f'-joined list (its primary term
# is its prefix up to the first separator).
_TEXT_COLUMNS = ("source", "terms", "ifnull(first_response_by, '')")
_DISTINCT_SQLS = tuple(f"SELECT DISTINCT {column}" + _PERIOD for column in _TEXT_COLUMNS)
OPERATOR_SEED_ACTIONS = 20_000  # operators of the latest actions: the usual names, read in a blink
OTHER_KEY = "(other)"  # a value that appeared between two of the report's reads
_IDS_SQL = "SELECT min(id), max(id)" + _PERIOD
_ESC_SQL = (
    "SELECT count(*), group_concat(mention_id), group_concat(at), group_concat(id),"
    " group_concat(ifnull(payload ->> '$.service', ''), '\x1e')"
    " FROM actions WHERE kind = 'escalate' AND mention_id BETWEEN ? AND ?"
    " AND id NOT IN (SELECT json_extract(payload, '$.undid') FROM actions WHERE kind = 'reopen'"
    " AND mention_id BETWEEN ? AND ? AND json_extract(payload, '$.undid') IS NOT NULL)"
)
_ESC_ROWS_SQL = (
    "SELECT mention_id, at, id, ifnull(json_extract(payload, '$.service'), '')"
    " FROM actions WHERE kind = 'escalate' AND mention_id BETWEEN ? AND ?"
    " AND id NOT IN (SELECT json_extract(payload, '$.undid') FROM actions WHERE kind = 'reopen'"
    " AND mention_id BETWEEN ? AND ? AND json_extract(payload, '$.undid') IS NOT NULL)"
)
# Mentions seen before the period and still waiting at its start (the backlog it inherits).
_CARRY_SQL = (
    "SELECT first_seen_at, first_response_at, deleted_at,"
    " CASE WHEN status IN ('done', 'dismissed') THEN status_at END"
    " FROM mentions WHERE first_response_at IS NULL AND first_seen_at < ?"
    " UNION ALL"
    " SELECT first_seen_at, first_response_at, deleted_at, NULL"
    " FROM mentions WHERE first_response_at >= ? AND first_seen_at < ?"
)
SLICE_MS = 30 * 86_400_000  # one query per 30 days: strings stay small and slices load side by side


class _Reader:
    """Read queries run side by side on extra connections to the same file: SQLite releases the GIL
    while it steps, so the loading uses both cores. An in-memory database uses the caller's connection.

    Each connection reads its own snapshot; a write landing during the few hundred milliseconds of
    a report may show in one part and not another (it is counted on the next refresh).
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
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


def _ints(text: str | None, count: int) -> np.ndarray:
    if count == 0 or text is None:
        return np.zeros(0, dtype=np.int64)
    values = np.fromstring(text, dtype=np.int64, sep=",")  # text mode: C parsing, not deprecated
    if values.size != count:
        raise ValueError("statistics: a column did not parse")  # integers only: never expected
    return values


class _Codes:
    """Strings to dense integer codes, in order of first appearance."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}

    def encode(self, parts: Sequence[str]) -> np.ndarray:
        for new in dict.fromkeys(parts).keys() - self.index.keys():
            self.index[new] = len(self.index)
        return np.fromiter(map(self.index.__getitem__, parts), dtype=np.int64, count=len(parts))

    @property
    def names(self) -> list[str]:
        return list(self.index)


@dataclass
class _Rows:
    """The period's mentions as columns, one entry per mention."""

    ids: np.ndarray
    seen: np.ndarray
    priority: np.ndarray
    fr: np.ndarray  # -1: no first response yet
    closed: np.ndarray  # status_at when done or dismissed, else -1
    deleted: np.ndarray  # -1: not deleted
    source: np.ndarray  # codes into source_names ...
    terms: np.ndarray
    operator: np.ndarray
    source_names: list[str]
    terms_names: list[str]
    operator_names: list[str]


class _Names:
    """The names of one text column, append-only so that codes already given stay valid."""

    def __init__(self, seeds: Iterable[str] = ()) -> None:
        self.names: list[str] = []
        self.index: dict[str, int] = {}
        for name in sorted(set(seeds)):
            self.add(name)

    def add(self, name: str) -> int:
        if name not in self.index:
            self.index[name] = len(self.names)
            self.names.append(name)
        return self.index[name]


def _tree(column: str, bounds: list[tuple[str, int]], tail: int) -> tuple[str, list[str]]:
    """A binary search of CASEs over sorted breakpoints: [bounds[i], bounds[i+1]) gives its code.
    log2(n) text comparisons a row (SQLite compares UTF-8 bytes: the order of Python's str)."""

    def build(lo: int, hi: int) -> tuple[str, list[str]]:
        if hi - lo == 1:
            return str(bounds[lo][1]), []
        mid = (lo + hi) // 2
        (left, lp), (right, rp) = build(lo, mid), build(mid, hi)
        return f"CASE WHEN {column} < ? THEN {left} ELSE {right} END", [bounds[mid][0], *lp, *rp]

    if not bounds:
        return str(tail), []
    sql, params = build(0, len(bounds))
    return f"CASE WHEN {column} < ? THEN {tail} ELSE {sql} END", [bounds[0][0], *params]


def _exact_case(column: str, names: _Names) -> tuple[str, list[str]]:
    """SQL giving a value's code, -1 when it is not a known name (a plain CASE for a few names: it
    beats the search tree below a dozen)."""
    if len(names.names) <= 12:
        whens = " ".join(f"WHEN ? THEN {i}" for i in range(len(names.names)))
        return (f"CASE {column} {whens} ELSE -1 END" if whens else "-1"), list(names.names)
    bounds: list[tuple[str, int]] = []
    for name in sorted(names.names):
        bounds += [(name, names.index[name]), (name + "\x00", -1)]  # exactly `name`, nothing after it
    return _tree(column, bounds, -1)


def _primary_case(column: str, names: _Names) -> tuple[str, list[str]]:
    """SQL giving the code of a terms list's primary term: the values from `name` up to `name` + ' '
    are `name` and `name` followed by '\x1f' and more terms (sanitised names have no control
    characters), so each primary term is one range."""
    bounds: list[tuple[str, int]] = []
    for name in sorted(names.names):
        bounds += [(name, names.index[name]), (name + " ", -1)]
    return _tree(column, bounds, -1)


def _seeds(conn: sqlite3.Connection, watchlist: Watchlist) -> list[_Names]:
    """Names known before reading: a first guess, corrected per slice when a row proves it wrong."""
    sources = {s.name for s in watchlist.sources}
    for table in ("cursors", "source_state"):
        sources.update(row[0] for row in conn.execute(f"SELECT source FROM {table}"))
    top = conn.execute("SELECT max(id) FROM actions").fetchone()[0] or 0
    operators = {
        row[0]
        for row in conn.execute("SELECT DISTINCT operator FROM actions WHERE id > ?", (top - OPERATOR_SEED_ACTIONS,))
    }
    return [_Names(sources), _Names(t.name for t in watchlist.terms), _Names({"", *operators})]


def _load(reader: _Reader, since: int, until: int, names: list[_Names]) -> Callable[[], tuple[_Rows, list[int]]]:
    """Start reading the period's mentions, one query per slice; returns what waits for the result.

    Text columns become small integer codes inside SQLite, so rows travel as integers only. The
    codes come from names known in advance; a slice where a row had another name reads that
    slice's distinct names and is read again.
    """
    src_names, term_names, op_names = names

    def query() -> tuple[str, list[str], tuple[int, int, int]]:
        radix = (len(src_names.names) + 1, len(term_names.names) + 1, len(op_names.names) + 1)
        (src_sql, sp), (term_sql, tp), (op_sql, op_p) = (
            _exact_case("source", src_names),
            _primary_case("terms", term_names),
            _exact_case(_TEXT_COLUMNS[2], op_names),
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

    def decode(result: tuple[Any, ...], radix: tuple[int, int, int]) -> tuple[Any, ...]:
        count, ids, seen_priority, fr, closed, code, pairs, new, escalated, edited, to_us = result
        packed = _ints(code, count)
        rest, src = np.divmod(packed, radix[0])
        op, term = np.divmod(rest, radix[1])
        ints = [_ints(x, count) for x in (ids, seen_priority, fr, closed)]
        deleted_pairs = np.fromstring(pairs or "", dtype=np.int64, sep=",")
        return (*ints, src - 1, term - 1, op - 1, deleted_pairs, (new, escalated, edited, to_us))

    sql, params, radix = query()
    bounds = [(s, min(until, s + SLICE_MS)) for s in range(since, until, SLICE_MS)]
    futures = [reader.submit(sql, (*params, *b)) for b in bounds]
    return lambda: _collect(reader, bounds, futures, radix, names, query, decode)


def _collect(
    reader: _Reader,
    bounds: list[tuple[int, int]],
    futures: list[Future[Any]],
    radix: tuple[int, int, int],
    names: list[_Names],
    query: Callable[[], tuple[str, list[str], tuple[int, int, int]]],
    decode: Callable[[tuple[Any, ...], tuple[int, int, int]], tuple[Any, ...]],
) -> tuple[_Rows, list[int]]:
    term_names = names[1]
    parts: list[tuple[Any, ...]] = []
    for b, future in zip(bounds, futures, strict=True):
        result, used = future.result(), radix
        if not result[0]:
            continue
        part = decode(result, used)
        if any(bool((codes < 0).any()) for codes in part[4:7]):
            # A name not known in advance: learn this slice's names and read it again.
            for column_names, distinct_sql in zip(names, _DISTINCT_SQLS, strict=True):
                for (value,) in reader.submit(distinct_sql, b, one=False).result():
                    column_names.add(_primary(value) if column_names is term_names else value)
            sql, params, radix = query()
            result = reader.submit(sql, (*params, *b)).result()
            if not result[0]:
                continue
            part = decode(result, radix)
        parts.append(part)
    columns = [np.concatenate([p[i] for p in parts]) if parts else np.zeros(0, dtype=np.int64) for i in range(8)]
    ids, seen_priority, fr, closed2, src, term, op, pairs = columns
    tallies = [sum(int(p[8][i]) for p in parts) for i in range(4)]  # new, escalated, edited, to us
    deleted = np.full(ids.size, -1, dtype=np.int64)
    if pairs.size:
        found, rows_of = _lookup(ids, pairs[0::2])
        deleted[rows_of[found]] = pairs[1::2][found]
    closed = np.where(closed2 >= 0, closed2 >> 1, -1)
    dismissed = int(np.count_nonzero((closed2 >= 0) & (closed2 & 1 == 1)))
    closed_n = int(np.count_nonzero(closed2 >= 0))
    # Still unknown (a value written between two reads): the last code, shown as "(other)".
    lists = [[*n.names, OTHER_KEY] for n in names]
    src, term, op = (np.where(c < 0, len(n.names), c) for c, n in zip((src, term, op), names, strict=True))
    rows = _Rows(
        ids, seen_priority >> 4, seen_priority & 15, fr, closed, deleted, src, term, op, *lists,
    )  # fmt: skip
    return rows, [tallies[0], tallies[1], closed_n - dismissed, dismissed, tallies[2], tallies[3]]


def _lookup(ids: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each wanted id: whether it is one of `ids`, and its row (valid where found)."""
    if ids.size == 0:
        return np.zeros(wanted.size, dtype=bool), np.zeros(wanted.size, dtype=np.int64)
    sorter = np.argsort(ids)
    pos = np.minimum(np.searchsorted(ids, wanted, sorter=sorter), ids.size - 1)
    rows = sorter[pos]
    return ids[rows] == wanted, rows


def _escalations(
    future: Future[Any] | None, reader: _Reader, rows: _Rows, id_range: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, list[str]]:
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
    codes = _Codes()
    parts = services.split("\x1e")
    if len(parts) == count:
        mid, at, aid = _ints(mids, count), _ints(ats, count), _ints(aids, count)
        service = codes.encode(parts)
    else:
        lo, hi = id_range
        found = reader.submit(_ESC_ROWS_SQL, (lo, hi, lo, hi), one=False).result()
        mid, at, aid = (np.array([r[i] for r in found], dtype=np.int64) for i in range(3))
        service = codes.encode([str(r[3]) for r in found])
    order = np.lexsort((aid, at, mid))
    uniq, first = np.unique(mid[order], return_index=True)
    chosen = order[first]
    found_mask, row = _lookup(rows.ids, uniq)  # the id range also holds mentions outside the period
    esc_at[row[found_mask]] = at[chosen[found_mask]]
    esc_service[row[found_mask]] = service[chosen[found_mask]]
    return esc_at, esc_service, codes.names


def _carry_over(rows: list[tuple[Any, ...]], base: int, nb: int, diff: np.ndarray) -> None:
    """Mentions seen before the period and still waiting in it join the backlog from its first hour."""
    for _seen, fr, deleted, closed in rows:
        ends = [t for t in (fr, deleted, closed) if t is not None]
        if not ends:
            diff[0] += 1
            continue
        ke = (min(ends) - base - 1) // HOUR_MS
        if ke > 0:
            diff[0] += 1
            diff[min(ke, nb)] -= 1


# -- computing ---------------------------------------------------------------------------------


def _ceil_s(ms: np.ndarray) -> np.ndarray:
    """Milliseconds to whole seconds, rounded up, never negative (a clock skew is not a negative wait)."""
    return np.maximum((ms + 999) // 1000, 0)


class _Clocks:
    """Per-row material of one clock: finished durations (whole seconds) and running ages (ms).

    Finished durations are sorted once; a breakdown then only partitions them by group with a stable
    radix sort of the small group codes, so every group's values come out already sorted.
    """

    def __init__(
        self,
        done_rows: np.ndarray,
        done_c: np.ndarray,
        done_b: np.ndarray,
        run_rows: np.ndarray,
        run_c: np.ndarray,
        run_b: np.ndarray,
    ) -> None:
        self.rows_c, self.values_c = _sort_with_rows(done_rows, done_c)
        self.rows_b, self.values_b = _sort_with_rows(done_rows, done_b)
        self.run_rows, self.run_c, self.run_b = run_rows, run_c, run_b

    def by_group(self, g: np.ndarray, n_groups: int, target: int | None) -> list[Clock]:
        """One Clock per group; g gives each row's group (-1: not in this breakdown)."""
        sorted_c = _partition(g[self.rows_c], self.values_c, n_groups)
        sorted_b = _partition(g[self.rows_b], self.values_b, n_groups)
        gr = g[self.run_rows]
        keep = gr >= 0
        gr, rc, rb = gr[keep], self.run_c[keep], self.run_b[keep]
        running = np.bincount(gr, minlength=n_groups)
        tms = target * 1000 if target is not None else None
        late_c = np.bincount(gr[rc > tms], minlength=n_groups) if tms is not None else running * 0
        late_b = np.bincount(gr[rb > tms], minlength=n_groups) if tms is not None else running * 0
        oldest_c = np.full(n_groups, -1, dtype=np.int64)
        oldest_b = np.full(n_groups, -1, dtype=np.int64)
        np.maximum.at(oldest_c, gr, rc)
        np.maximum.at(oldest_b, gr, rb)
        return [
            Clock(
                calendar=_dist(sorted_c[i], target, int(late_c[i])),
                business=_dist(sorted_b[i], target, int(late_b[i])),
                open=int(running[i]),
                oldest_open=int(oldest_c[i]) // 1000 if running[i] else None,
                oldest_open_business=int(oldest_b[i]) // 1000 if running[i] else None,
            )
            for i in range(n_groups)
        ]


def _sort_with_rows(rows: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Values sorted, with their rows: one sort of value << bits | row (cheaper than an argsort)."""
    bits = max(1, int(rows.max()).bit_length()) if rows.size else 1
    key = (np.minimum(values, (1 << (62 - bits)) - 1) << bits) | rows
    key.sort()
    return key & ((1 << bits) - 1), key >> bits


def _partition(groups: np.ndarray, values: np.ndarray, n_groups: int) -> list[np.ndarray]:
    """Split sorted values by group (-1: left out); each part stays sorted (stable radix sort)."""
    if n_groups == 1:  # the whole period: already sorted
        return [values[groups >= 0]]
    keep = groups >= 0
    groups, values = groups[keep], values[keep]
    small = np.int8 if n_groups < 2**7 else np.int16 if n_groups < 2**15 else np.int64
    values = values[np.argsort(groups.astype(small), kind="stable")]  # radix sort for small ints
    bounds = np.concatenate(([0], np.cumsum(np.bincount(groups, minlength=n_groups)))).tolist()
    return [values[bounds[i] : bounds[i + 1]] for i in range(n_groups)]


def compute(
    conn: sqlite3.Connection,
    watchlist: Watchlist,
    since: int | None = None,
    until: int | None = None,
    by: Iterable[str] | None = None,
    now: int | None = None,
) -> Report:
    """The statistics of mentions first seen in [since, until); `now` dates the open clocks."""
    dims = _dimensions(by)
    zone = ZoneInfo(watchlist.timezone)
    now = now_ms() if now is None else now
    if since is None:
        first = conn.execute("SELECT min(first_seen_at) FROM mentions").fetchone()[0]
        since = first if first is not None else now
    until = now + 1 if until is None else until
    if until <= since:
        raise ValueError("--until must come after --since")
    t_fr = int(watchlist.targets.first_response.total_seconds())
    t_res_td = watchlist.targets.resolution
    t_res = int(t_res_td.total_seconds()) if t_res_td is not None else None
    calendar = BusinessCalendar.from_watchlist(watchlist)

    reader = _Reader(conn)
    try:
        # The slices go to the two workers first; the id range the escalations need is read here
        # meanwhile, then the escalations queue behind the slices.
        loading = _load(reader, since, until, _seeds(conn, watchlist))
        lo, hi = conn.execute(_IDS_SQL, (since, until)).fetchone()
        esc_f = reader.submit(_ESC_SQL, (lo, hi, lo, hi)) if lo is not None else None
        carry_f = reader.submit(_CARRY_SQL, (since, since, since), one=False)
        rows, (*by_status, edited_n, to_us_n) = loading()
        esc_at, esc_service, services = _escalations(esc_f, reader, rows, (lo or 0, hi or 0))
        carried = carry_f.result()
    finally:
        reader.close()
    n = rows.ids.size

    # Hour buckets from the local hour containing `since` to the end of the period (or now).
    base = floor_local_hour(since, zone)
    series_end = max(min(until, now + 1), since + 1)
    nb = max(1, -(-(series_end - base) // HOUR_MS))
    how_table = np.array(
        [(lambda t: t.weekday() * 24 + t.hour)(local(base + k * HOUR_MS, zone)) for k in range(nb)],
        dtype=np.int64,
    )

    # Business time: F(t) is the open time before t, so business(a, b) = F(b) - F(a).
    timeline = calendar.timeline(base, max(now, until))
    instants = [rows.seen, rows.fr[rows.fr >= 0], rows.closed[rows.closed >= 0], esc_at[esc_at >= 0]]
    present = [a for a in instants if a.size]
    timeline.ensure(min([int(a.min()) for a in present] + [base, since, now]))
    timeline.ensure(max([int(a.max()) for a in present] + [now, until]))  # one origin for every F
    business = timeline.business_before_array
    f_now = int(business(np.array([now], dtype=np.int64))[0])

    seen, fr, closed, deleted = rows.seen, rows.fr, rows.closed, rows.deleted
    answered = fr >= 0
    is_deleted = deleted >= 0
    is_closed = closed >= 0
    deleted_unanswered = ~answered & is_deleted
    closed_unanswered = ~answered & ~is_deleted & is_closed
    waiting = ~answered & ~is_deleted & ~is_closed

    a_rows = np.flatnonzero(answered)
    f_seen = business(seen)
    w_rows = np.flatnonzero(waiting)
    first_response = _Clocks(
        a_rows,
        _ceil_s(fr[a_rows] - seen[a_rows]),
        _ceil_s(business(fr[a_rows]) - f_seen[a_rows]),
        w_rows,
        np.maximum(now - seen[w_rows], 0),
        np.maximum(f_now - f_seen[w_rows], 0),
    )
    escalated = esc_at >= 0
    r_rows = np.flatnonzero(escalated & is_closed & (closed >= esc_at))
    o_rows = np.flatnonzero(escalated & ~is_closed)
    resolution = _Clocks(
        r_rows,
        _ceil_s(closed[r_rows] - esc_at[r_rows]),
        _ceil_s(business(closed[r_rows]) - business(esc_at[r_rows])),
        o_rows,
        np.maximum(now - esc_at[o_rows], 0),
        np.maximum(f_now - business(esc_at[o_rows]), 0),
    )

    # Volume and backlog per hour: a mention waits from first seen until its first response (or its
    # deletion, or a close without response); it counts at the end of each hour it is still waiting.
    k = np.clip((seen - base) // HOUR_MS, 0, nb - 1)
    volume = np.bincount(k, minlength=nb)
    end = np.full(n, np.iinfo(np.int64).max // 2, dtype=np.int64)
    end[answered] = np.where(is_deleted & (deleted < fr), deleted, fr)[answered]
    end[deleted_unanswered] = deleted[deleted_unanswered]
    end[closed_unanswered] = closed[closed_unanswered]
    ks = np.clip((seen - base - 1) // HOUR_MS, 0, nb)
    ke = np.clip((end - base - 1) // HOUR_MS, 0, nb)
    counted = ke > ks
    diff = np.bincount(ks[counted], minlength=nb + 1) - np.bincount(ke[counted], minlength=nb + 1)
    _carry_over(carried, base, nb, diff)

    counts = {
        "mentions": int(n),
        **{status: int(c or 0) for status, c in zip(("new", "escalated", "done", "dismissed"), by_status, strict=True)},
        "edited": int(edited_n),
        "deleted": int(np.count_nonzero(is_deleted)),
        "deleted_before_response": int(np.count_nonzero(deleted_unanswered)),
        "closed_without_response": int(np.count_nonzero(closed_unanswered)),
        "to_us": int(to_us_n),
    }

    groups = _Groups(rows, esc_service, services, how_table[k], first_response, resolution, (t_fr, t_res))
    total = groups.rows("all", np.zeros(n, dtype=np.int64), ["all"], keep_empty=True)[0]
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="stats") as pool:  # numpy sorts drop the GIL
        breakdowns = dict(zip(dims, pool.map(groups.breakdown, dims), strict=True))
    return Report(
        city=watchlist.city,
        timezone=watchlist.timezone,
        since=since,
        until=until,
        generated_at=now,
        target_first_response=t_fr,
        target_resolution=t_res,
        counts=counts,
        first_response=total.first_response,
        resolution=total.resolution,
        breakdowns=breakdowns,
        series_start=base,
        volume=volume.tolist(),
        backlog=np.cumsum(diff[:nb]).tolist(),
    )


class _Groups:
    """Breakdowns: each is a group code per row, then the same clocks per group."""

    def __init__(
        self,
        rows: _Rows,
        esc_service: np.ndarray,
        services: list[str],
        how: np.ndarray,
        first_response: _Clocks,
        resolution: _Clocks,
        targets: tuple[int, int | None],
    ) -> None:
        self.data = rows
        self.esc_service = esc_service
        self.services = services
        self.how = how
        self.first_response = first_response
        self.resolution = resolution
        self.targets = targets

    def rows(self, dim: str, g: np.ndarray, labels: list[str], keep_empty: bool = False) -> list[GroupRow]:
        n_groups = len(labels)
        mentions = np.bincount(g[g >= 0], minlength=n_groups)
        fr = self.first_response.by_group(g, n_groups, self.targets[0])
        res = self.resolution.by_group(g, n_groups, self.targets[1])
        out = [
            GroupRow(labels[i], int(mentions[i]), fr[i], res[i]) for i in range(n_groups) if mentions[i] or keep_empty
        ]
        if dim in ("source", "term", "operator", "service"):
            out.sort(key=lambda r: (-r.mentions, r.key))
        return out

    def breakdown(self, dim: str) -> list[GroupRow]:
        data = self.data
        if dim == "hour":
            return self.rows(dim, self.how % 24, [f"{h:02d}h" for h in range(24)])
        if dim == "weekday":
            return self.rows(dim, self.how // 24, list(DAY_NAMES))
        if dim == "priority":
            return self.rows(dim, data.priority, [_priority_label(p) for p in range(16)])
        if dim == "service":
            return self.rows(dim, self.esc_service, [s or NONE_KEY for s in self.services])
        if dim == "source":
            return self.rows(dim, data.source, data.source_names)
        if dim == "operator":  # only who answered: '' is "nobody yet"
            names = data.operator_names
            keep = np.array([-1 if not name else i for i, name in enumerate(names)] or [0], dtype=np.int64)
            return self.rows(dim, keep[data.operator] if data.operator.size else data.operator, names)
        return self.rows(dim, data.terms, data.terms_names)  # primary terms already


def _dimensions(by: Iterable[str] | None) -> tuple[str, ...]:
    if by is None:
        return DIMENSIONS
    names = [n.strip() for item in by for n in item.split(",") if n.strip()]
    unknown = [n for n in names if n not in DIMENSIONS]
    if unknown:
        raise ValueError(f"unknown breakdown {', '.join(unknown)}: choose from {', '.join(DIMENSIONS)}")
    return tuple(dict.fromkeys(names))


def _primary(terms: str | None) -> str:
    return terms.split(TERM_SEP, 1)[0] if terms else NONE_KEY


def _priority_label(level: int) -> str:
    try:
        return Priority(level).label
    except ValueError:
        return str(level)


# -- rendering ---------------------------------------------------------------------------------


def render(report: Report, fmt: str = "table") -> str:
    if fmt == "json":
        return json.dumps(report.as_dict(), ensure_ascii=False, indent=2) + "\n"
    if fmt == "csv":
        return render_csv(report)
    if fmt == "table":
        return render_table(report)
    raise ValueError(f"unknown format {fmt!r}: table, csv or json")


def fmt_share(share: float | None) -> str:
    return "—" if share is None else f"{share * 100:.1f}%"


def fmt_secs(seconds: float | None) -> str:
    """5m00s, 2h05m; past two days 3d04h (hours of waiting in the thousands read badly)."""
    if seconds is not None and seconds >= 172_800:
        days, rest = divmod(int(round(seconds)), 86_400)
        return f"{days}d{rest // 3600:02d}h"
    return fmt_duration(None if seconds is None else seconds * 1000)


def period_text(report: Report) -> str:
    zone = ZoneInfo(report.timezone)
    until = min(report.until, report.generated_at)
    return f"{fmt_local(report.since, zone)} → {fmt_local(until, zone)} ({report.timezone})"


def clock_lines(title: str, clock: Clock, target: int | None) -> list[str]:
    """A clock as text lines of at most 80 columns."""
    head = f"{title} (target {fmt_secs(target) if target is not None else 'none'})"
    lines = [f"{head:<36}{'calendar':>14}{'business':>14}"]
    cal, bus = clock.calendar, clock.business
    for name, a, b in (
        ("finished", str(cal.n), ""),
        ("median", fmt_secs(cal.median), fmt_secs(bus.median)),
        ("p90", fmt_secs(cal.p90), fmt_secs(bus.p90)),
        ("p95", fmt_secs(cal.p95), fmt_secs(bus.p95)),
        ("max", fmt_secs(cal.max), fmt_secs(bus.max)),
        ("within target", fmt_share(cal.share), fmt_share(bus.share)),
        ("open past target", str(cal.late_open), str(bus.late_open)),
    ):
        lines.append(f"  {name:<34}{a:>14}{b:>14}")
    oldest = ""
    if clock.open:
        oldest = f", oldest {fmt_secs(clock.oldest_open)} (business {fmt_secs(clock.oldest_open_business)})"
    lines.append(f"  open now: {clock.open}{oldest}")
    return lines


BREAKDOWN_HEADER = f"{'':<16}{'mentions':>8}{'answered':>9}{'open':>6}{'median':>9}{'p90':>9}"
BREAKDOWN_HEADER += f"{'in tgt':>7}{'biz':>7}{'resolved':>9}"


def breakdown_line(row: GroupRow) -> str:
    fr, res = row.first_response, row.resolution
    key = row.key if len(row.key) <= 15 else row.key[:14] + "…"
    return (
        f"{key:<16}{row.mentions:>8}{fr.calendar.n:>9}{fr.open:>6}{fmt_secs(fr.calendar.median):>9}"
        f"{fmt_secs(fr.calendar.p90):>9}{fmt_share(fr.calendar.share):>7}{fmt_share(fr.business.share):>7}"
        f"{fmt_secs(res.calendar.median):>9}"
    )


def render_table(report: Report) -> str:
    c = report.counts
    out = [
        f"{report.city}: statistics",
        period_text(report),
        "",
        f"Mentions {c['mentions']}: new {c['new']}, escalated {c['escalated']}, done {c['done']}, "
        f"dismissed {c['dismissed']}",
        f"  edited {c['edited']}, deleted {c['deleted']} ({c['deleted_before_response']} before any"
        f" response), closed without response {c['closed_without_response']}",
        f"  addressed to us {c['to_us']} ({fmt_share(c['to_us'] / c['mentions'] if c['mentions'] else None)})",
        "",
        *clock_lines("First response", report.first_response, report.target_first_response),
        "",
        *clock_lines("Resolution", report.resolution, report.target_resolution),
        "",
        "First response histogram (calendar / business)",
    ]
    hc, hb = report.first_response.calendar.histogram, report.first_response.business.histogram
    for label, a, b in zip(HIST_LABELS, hc, hb, strict=True):
        out.append(f"  {label:<8}{a:>9}{b:>9}")
    if report.breakdowns:
        out += [
            "",
            "Breakdowns: median and p90 of the first response; in tgt / biz: within target in",
            "calendar / business time; resolved: median resolution.",
        ]
    for dim, rows in report.breakdowns.items():
        out += ["", f"By {dim}"]
        out.append(BREAKDOWN_HEADER)
        out += [breakdown_line(row) for row in rows] or ["  (nothing)"]
    out += ["", *series_lines(report)]
    return "\n".join(out) + "\n"


def series_rows(report: Report) -> list[tuple[int, int, int]]:
    """(bucket start ms, volume, backlog): hourly for up to two days, else daily (volume summed, backlog at
    the end of the day) so the table stays readable."""
    zone = ZoneInfo(report.timezone)
    pairs = zip(report.volume, report.backlog, strict=True)
    rows = [(report.series_start + i * HOUR_MS, v, b) for i, (v, b) in enumerate(pairs)]
    if len(rows) <= 48:
        return rows
    days: dict[Any, list[int]] = {}
    for start, v, b in rows:
        day = local(start, zone).date()
        if day not in days:
            days[day] = [start, 0, 0]
        days[day][1] += v
        days[day][2] = b
    return [(s, v, b) for s, v, b in days.values()]


def series_lines(report: Report) -> list[str]:
    zone = ZoneInfo(report.timezone)
    rows = series_rows(report)
    hourly = len(rows) == len(report.volume)
    unit = "hour" if hourly else "day"
    out = [f"{unit:<18}{'seen':>8}{'waiting':>9}  (waiting: at the end of the {unit})"]
    for start, v, b in rows:
        when = fmt_local(start, zone)[:16] if hourly else fmt_local(start, zone)[:10]
        out.append(f"{when:<18}{v:>8}{b:>9}")
    return out


def csv_rows(report: Report) -> Iterator[tuple[str, str, str, str, Any]]:
    """Long format: section, dimension, key, metric, value (one figure a line, for spreadsheets)."""
    yield ("period", "", "", "since", iso_utc(report.since))
    yield ("period", "", "", "until", iso_utc(report.until))
    yield ("period", "", "", "timezone", report.timezone)
    for name, n in report.counts.items():
        yield ("counts", "", "", name, n)

    def clock(section: str, dim: str, key: str, c: Clock) -> Iterator[tuple[str, str, str, str, Any]]:
        for kind, d in (("calendar", c.calendar), ("business", c.business)):
            for metric, value in (
                ("n", d.n), ("median_s", d.median), ("p90_s", d.p90), ("p95_s", d.p95), ("max_s", d.max),
                ("share_within_target", d.share), ("open_past_target", d.late_open),
            ):  # fmt: skip
                yield (section, dim, key, f"{kind}_{metric}", "" if value is None else value)
        yield (section, dim, key, "open", c.open)
        yield (section, dim, key, "oldest_open_s", "" if c.oldest_open is None else c.oldest_open)

    yield from clock("first_response", "", "all", report.first_response)
    yield from clock("resolution", "", "all", report.resolution)
    for dim, rows in report.breakdowns.items():
        for row in rows:
            yield ("breakdown", dim, row.key, "mentions", row.mentions)
            yield from clock("breakdown_first_response", dim, row.key, row.first_response)
            yield from clock("breakdown_resolution", dim, row.key, row.resolution)
    for i, (v, b) in enumerate(zip(report.volume, report.backlog, strict=True)):
        at = iso_utc(report.series_start + i * HOUR_MS) or ""
        yield ("series", "hour", at, "volume", v)
        yield ("series", "hour", at, "backlog", b)


def render_csv(report: Report) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(("section", "dimension", "key", "metric", "value"))
    writer.writerows(csv_rows(report))
    return buf.getvalue()
