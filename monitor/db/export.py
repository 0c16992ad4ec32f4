"""Loading for `monitor export`: mentions or actions straight from an SQLite cursor, one row at a time.

Memory stays flat whatever the size of the period. Mentions are selected by first_seen_at, actions by
their time, both in [since, until); rows come in id order. Converting and writing: monitor.reports.export.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

# What a caller hands in: a connection from monitor.db.store (open_sync, open_readonly).
ReadConnection = sqlite3.Connection

MENTION_COLUMNS = (
    "id", "source", "network", "remote_id", "author", "author_name", "text", "url", "lang", "thread_id",
    "reply_to", "terms", "priority", "status", "published_at", "first_seen_at", "status_at",
    "first_response_at", "first_response_by", "edited_at", "deleted_at",
)  # fmt: skip
ACTION_COLUMNS = ("id", "mention_id", "kind", "operator", "at", "status_before", "status_after", "payload")
_TABLES = {  # what -> (table, the column a period selects on, the columns read)
    "mentions": ("mentions", "first_seen_at", MENTION_COLUMNS),
    "actions": ("actions", "at", ACTION_COLUMNS),
}


def rows(
    conn: ReadConnection,
    what: str,
    since: int | None = None,
    until: int | None = None,
    ids: Sequence[int] | None = None,
) -> Iterator[tuple[Any, ...]]:
    """The stored rows of `what` (mentions or actions), as tuples of MENTION_COLUMNS or ACTION_COLUMNS,
    in id order (only `ids`, when given: a pane's rows)."""
    if what not in _TABLES:
        raise ValueError(f"nothing called {what!r} to export: mentions or actions")
    table, column, columns = _TABLES[what]
    where: list[str] = []
    params: list[Any] = []
    if since is not None:
        where.append(f"{column} >= ?")
        params.append(since)
    if until is not None:
        where.append(f"{column} < ?")
        params.append(until)
    if ids is not None:
        where.append("id IN (SELECT value FROM json_each(?))")
        params.append(json.dumps(list(ids)))
    sql = f"SELECT {', '.join(columns)} FROM {table}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    cursor = conn.execute(sql + " ORDER BY id", params)
    cursor.arraysize = 1000
    yield from cursor
