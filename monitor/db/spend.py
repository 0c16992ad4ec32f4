"""What paid networks cost, per source and month: added in the transaction of what was paid for."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from monitor.core.models import Spend


def add_spend_sync(c: sqlite3.Connection, source: str, spend: Spend) -> None:
    if not (spend.reads_usd or spend.writes_usd or spend.writes):
        return
    c.execute(
        "INSERT INTO spend (source, month, reads_usd, writes_usd, writes) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (source, month) DO UPDATE SET reads_usd = reads_usd + excluded.reads_usd,"
        " writes_usd = writes_usd + excluded.writes_usd, writes = writes + excluded.writes",
        (source, spend.month, spend.reads_usd, spend.writes_usd, spend.writes),
    )


def spend_sync(c: sqlite3.Connection, month: str | None = None) -> list[Spend]:
    """Every source's spend in `month` ('YYYY-MM'), or all months."""
    sql = "SELECT source, month, reads_usd, writes_usd, writes FROM spend"
    rows = c.execute(sql + " WHERE month = ? ORDER BY source" if month else sql + " ORDER BY month, source",
                     (month,) if month else ()).fetchall()  # fmt: skip
    return [Spend(month=r[1], reads_usd=r[2], writes_usd=r[3], writes=r[4], source=r[0]) for r in rows]


def spend_for_period_sync(c: sqlite3.Connection, since: int, until: int) -> list[tuple[str, float, float, int, int]]:
    """Per paid source: reads and writes (USD) and replies paid in the UTC months [since, until) touches, and
    how many of its mentions first seen in [since, until) were answered with a reply."""
    first, last = month_of(since), month_of(max(since, until - 1))
    rows = c.execute(
        "SELECT s.source, sum(s.reads_usd), sum(s.writes_usd), sum(s.writes),"
        " (SELECT count(*) FROM mentions m WHERE m.source = s.source AND m.first_seen_at >= ? AND m.first_seen_at < ?"
        "  AND EXISTS (SELECT 1 FROM actions a WHERE a.mention_id = m.id AND a.kind = 'reply'))"
        " FROM spend s WHERE s.month BETWEEN ? AND ? GROUP BY s.source ORDER BY s.source",
        (since, until, first, last),
    ).fetchall()
    return [(str(r[0]), float(r[1]), float(r[2]), int(r[3]), int(r[4])) for r in rows]


def month_of(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m")
