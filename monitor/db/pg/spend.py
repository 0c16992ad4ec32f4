"""What paid networks cost in PostgreSQL (as monitor.db.spend): added in the transaction of what was paid for."""

from __future__ import annotations

from monitor.core.models import Spend
from monitor.db.pg.mentions import Conn, every


async def add_spend(c: Conn, source: str, spend: Spend) -> None:
    if not (spend.reads_usd or spend.writes_usd or spend.writes):
        return
    await c.execute(
        "INSERT INTO spend (source, month, reads_usd, writes_usd, writes) VALUES (%s, %s, %s, %s, %s)"
        " ON CONFLICT (source, month) DO UPDATE SET reads_usd = spend.reads_usd + excluded.reads_usd,"
        " writes_usd = spend.writes_usd + excluded.writes_usd, writes = spend.writes + excluded.writes",
        (source, spend.month, spend.reads_usd, spend.writes_usd, spend.writes),
    )


async def spend(c: Conn, month: str | None = None) -> list[Spend]:
    """Every source's spend in `month` ('YYYY-MM'), or all months."""
    sql = "SELECT source, month, reads_usd, writes_usd, writes FROM spend"
    rows = await (every(c, sql + " WHERE month = %s ORDER BY source", (month,)) if month
                  else every(c, sql + " ORDER BY month, source"))  # fmt: skip
    return [Spend(month=r[1], reads_usd=r[2], writes_usd=r[3], writes=r[4], source=r[0]) for r in rows]
