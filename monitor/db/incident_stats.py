"""Loading for the incidents' statistics and export: one row per incident, one per report, read-only.

A file from before incidents (no `incidents` table; reports never migrate) reads as having none.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

INCIDENT_COLUMNS = (
    "id", "reference", "title", "status", "service", "created_at", "created_by", "closed_at",
    "reports", "networks", "first_seen_at", "first_response_at", "unanswered",
)  # fmt: skip
_INCIDENTS = """
SELECT i.id, i.reference, i.title, i.status, i.service, i.created_at, i.created_by, i.closed_at,
    count(m.id), ifnull(group_concat(DISTINCT m.network), ''), min(m.first_seen_at), min(m.first_response_at),
    ifnull(sum(m.id IS NOT NULL AND m.first_response_at IS NULL), 0)
FROM incidents i LEFT JOIN mentions m ON m.incident_id = i.id
WHERE i.created_at >= ? AND i.created_at < ?
GROUP BY i.id ORDER BY i.id
"""
# Every report of an incident created in the period: when seen, when first answered (an acknowledgement
# counts), whether deleted before that.
_REPORTS = """
SELECT m.incident_id, m.first_seen_at, m.first_response_at, m.deleted_at
FROM mentions m JOIN incidents i ON i.id = m.incident_id
WHERE i.created_at >= ? AND i.created_at < ?
"""


def has_incidents(conn: sqlite3.Connection) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'incidents'").fetchone()
    return row is not None


def incidents(conn: sqlite3.Connection, since: int, until: int) -> Iterator[tuple[Any, ...]]:
    """One tuple of INCIDENT_COLUMNS per incident created in [since, until), in id order."""
    if has_incidents(conn):
        yield from conn.execute(_INCIDENTS, (since, until))


def reports(conn: sqlite3.Connection, since: int, until: int) -> list[tuple[int, int, int | None, int | None]]:
    """(incident id, first_seen_at, first_response_at, deleted_at) of each report of those incidents."""
    return conn.execute(_REPORTS, (since, until)).fetchall() if has_incidents(conn) else []
