"""Leases in PostgreSQL: one conditional upsert takes a lease, a shared row lock fences a holder's write."""

from __future__ import annotations

from monitor.core.timeutil import now_ms
from monitor.db.api import LeaseLost
from monitor.db.leases import LEASE_TTL_MS
from monitor.db.pg.mentions import Conn, one


async def acquire_lease(c: Conn, name: str, holder: str, now: int, ttl: int = LEASE_TTL_MS) -> bool:
    """Take or renew the lease if it is free, expired, or already ours: one statement, so two processes
    racing for a free lease cannot both win (the loser's upsert finds the winner's row and its WHERE fails)."""
    row = await one(
        c,
        "INSERT INTO leases (name, holder, acquired_at, expires_at) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at,"
        " acquired_at = CASE WHEN leases.holder = excluded.holder THEN leases.acquired_at"
        " ELSE excluded.acquired_at END"
        " WHERE leases.holder = excluded.holder OR leases.expires_at <= %s RETURNING holder",
        (name, holder, now, now + ttl, now),
    )
    return row is not None


async def check_lease(c: Conn, name: str, holder: str) -> None:
    """Fencing: refuse a write from a process whose lease has passed to someone else. FOR SHARE holds the
    lease's row until this write commits: nobody takes it over in between."""
    row = await one(c, "SELECT holder FROM leases WHERE name = %s FOR SHARE", (name,))
    if row is None or row[0] != holder:
        raise LeaseLost(f"lease {name!r} is held by {row[0] if row else 'nobody'}")


async def lease_holder(c: Conn, name: str) -> tuple[str, int] | None:
    row = await one(c, "SELECT holder, expires_at FROM leases WHERE name = %s", (name,))
    return (str(row[0]), int(row[1])) if row and row[1] > now_ms() else None
