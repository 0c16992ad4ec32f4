"""What paid networks cost, per source and month: added in the transaction of what was paid for."""

from __future__ import annotations

import sqlite3

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
