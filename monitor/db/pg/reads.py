"""The reports' other reads on PostgreSQL, twins of SQLite's: export rows (monitor.db.export), incidents
(monitor.db.incident_stats), spend (monitor.db.spend) and the clocks' check (monitor.db.clocks).

Each returns what its SQLite twin returns, row for row, so monitor.reports writes the same output. One
difference stays: an action's payload is JSONB here, whose text orders an object's keys by length then
bytes, where SQLite keeps them as written (the same JSON value).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from monitor.core.models import RESPONSE_KINDS
from monitor.db.clocks import CLOCKS, Difference
from monitor.db.export import ACTION_COLUMNS, MENTION_COLUMNS
from monitor.db.incident_stats import INCIDENT_COLUMNS
from monitor.db.migrations import REOPENED, RESOLVED
from monitor.db.pg.schema import SERVICE, STANDING
from monitor.db.pg.stats import PgReadConnection, errors
from monitor.db.spend import month_of

_TABLES = {  # what -> (table, the column a period selects on, the columns read)
    "mentions": ("mentions", "first_seen_at", ", ".join(MENTION_COLUMNS)),
    "actions": ("actions", "at", ", ".join(ACTION_COLUMNS).replace("payload", "payload::text")),
}
_INCIDENTS = """
SELECT i.id, i.reference, i.title, i.status, i.service, i.created_at, i.created_by, i.closed_at,
    count(m.id), coalesce(string_agg(DISTINCT m.network, ','), ''), min(m.first_seen_at), min(m.first_response_at),
    count(m.id) FILTER (WHERE m.first_response_at IS NULL)
FROM incidents i LEFT JOIN mentions m ON m.incident_id = i.id
WHERE i.created_at >= %s AND i.created_at < %s
GROUP BY i.id ORDER BY i.id
"""
_REPORTS = """
SELECT m.incident_id, m.first_seen_at, m.first_response_at, m.deleted_at
FROM mentions m JOIN incidents i ON i.id = m.incident_id
WHERE i.created_at >= %s AND i.created_at < %s
"""
_SPEND = """
SELECT s.source, sum(s.reads_usd), sum(s.writes_usd), sum(s.writes),
    (SELECT count(*) FROM mentions m WHERE m.source = s.source AND m.first_seen_at >= %s AND m.first_seen_at < %s
     AND EXISTS (SELECT 1 FROM actions a WHERE a.mention_id = m.id AND a.kind = 'reply'))
FROM spend s WHERE s.month BETWEEN %s AND %s GROUP BY s.source ORDER BY s.source
"""
_KINDS = ", ".join(sorted(f"'{kind.value}'" for kind in RESPONSE_KINDS))  # our own constants, not data
_FIRST_RESPONSE = f"FROM actions f WHERE f.mention_id = mentions.id AND f.kind IN ({_KINDS}) ORDER BY f.id LIMIT 1"
# monitor.db.clocks' check without the ids (PostgreSQL groups by the texts themselves).
_EXPECTED = f"""
WITH log AS (
    SELECT id, status, status_at, {", ".join(CLOCKS)},
        (SELECT f.at {_FIRST_RESPONSE}) AS e_fr_at, (SELECT f.operator {_FIRST_RESPONSE}) AS e_fr_by,
        (SELECT a.at {STANDING}) AS e_esc_at, (SELECT {SERVICE} {STANDING}) AS e_esc_to, {REOPENED} AS e_reopened
    FROM mentions
)
SELECT id, {", ".join(CLOCKS)}, e_fr_at, e_fr_by, e_esc_at, e_esc_to, e_resolved, e_reopened FROM (
    SELECT *, {RESOLVED.replace("escalated_at", "e_esc_at")} AS e_resolved FROM log
) checked WHERE first_response_at IS DISTINCT FROM e_fr_at OR first_response_by IS DISTINCT FROM e_fr_by
    OR escalated_at IS DISTINCT FROM e_esc_at OR escalated_to IS DISTINCT FROM e_esc_to
    OR resolved_at IS DISTINCT FROM e_resolved OR reopened IS DISTINCT FROM e_reopened
ORDER BY id LIMIT %s
"""


def rows(
    conn: PgReadConnection, what: str, since: int | None, until: int | None, ids: Sequence[int] | None
) -> Iterator[tuple[Any, ...]]:
    """As monitor.db.export.rows: tuples of MENTION_COLUMNS or ACTION_COLUMNS in id order, streamed."""
    if what not in _TABLES:
        raise ValueError(f"nothing called {what!r} to export: mentions or actions")
    table, column, columns = _TABLES[what]
    where, params = ["true"], list[Any]()
    for test, value in ((f"{column} >= %s", since), (f"{column} < %s", until), ("id = ANY(%s)", ids)):
        if value is not None:
            where.append(test)
            params.append(list(value) if isinstance(value, Sequence) else value)
    with errors(conn), conn.cursor(name="export") as cursor:  # server-side: memory stays flat
        cursor.itersize = 100  # rows of a few KB each: memory stays well under 1 MB
        cursor.execute(f"SELECT {columns} FROM {table} WHERE {' AND '.join(where)} ORDER BY id", params)
        yield from cursor


def incidents(conn: PgReadConnection, since: int, until: int) -> Iterator[tuple[Any, ...]]:
    """As monitor.db.incident_stats.incidents: one tuple of INCIDENT_COLUMNS per incident, in id order."""
    with errors(conn):
        found = conn.execute(_INCIDENTS, (since, until)).fetchall()
    assert not found or len(found[0]) == len(INCIDENT_COLUMNS)
    yield from found


def reports(conn: PgReadConnection, since: int, until: int) -> list[tuple[int, int, int | None, int | None]]:
    with errors(conn):
        return conn.execute(_REPORTS, (since, until)).fetchall()


def spend_for_period(conn: PgReadConnection, since: int, until: int) -> list[tuple[str, float, float, int, int]]:
    """As monitor.db.spend.spend_for_period_sync."""
    with errors(conn):
        found = conn.execute(_SPEND, (since, until, month_of(since), month_of(max(since, until - 1)))).fetchall()
    return [(str(r[0]), float(r[1]), float(r[2]), int(r[3]), int(r[4])) for r in found]


def differences(conn: PgReadConnection, limit: int = 20) -> list[Difference]:
    """As monitor.db.clocks.differences: the stored clocks the action log does not give (at most `limit`
    mentions)."""
    out: list[Difference] = []
    with errors(conn):
        found = conn.execute(_EXPECTED, (limit,)).fetchall()
    for row in found:
        stored, expected = row[1 : 1 + len(CLOCKS)], row[1 + len(CLOCKS) :]
        out += [Difference(row[0], name, s, e) for name, s, e in zip(CLOCKS, stored, expected, strict=True) if s != e]
    return out
