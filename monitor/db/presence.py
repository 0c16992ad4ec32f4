"""Several operators on one database: who is on duty, who holds the collector lease, who is replying.

All of it lives in SQLite so that every process sees it; nothing here knows of the UI.
"""

from __future__ import annotations

import os
import socket
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from monitor.core.timeutil import now_ms
from monitor.db.store import Store

LEASE_TTL_MS = 6_000  # a collector that stops renewing is replaced within this (plus one renew period)
LEASE_RENEW_S = 2.0
SESSION_TTL_MS = 15_000  # an app that stops heartbeating leaves the on-duty list after this
HEARTBEAT_S = 5.0
CLAIM_TTL_MS = 3 * 60_000  # a claim with no heartbeat for 3 minutes has expired


def process_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Claim:
    mention_id: int
    operator: str
    kind: str
    since: int
    heartbeat_at: int


class LeaseLost(Exception):
    """This process no longer holds the collector lease: another one took over."""


def acquire_lease_sync(c: sqlite3.Connection, name: str, holder: str, now: int, ttl: int = LEASE_TTL_MS) -> bool:
    """Take or renew the lease if it is free, expired, or already ours (inside BEGIN IMMEDIATE)."""
    row = c.execute("SELECT holder, expires_at FROM leases WHERE name = ?", (name,)).fetchone()
    if row is not None and row[0] != holder and row[1] > now:
        return False
    c.execute(
        "INSERT INTO leases (name, holder, acquired_at, expires_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at,"
        " acquired_at = CASE WHEN leases.holder = excluded.holder THEN leases.acquired_at"
        " ELSE excluded.acquired_at END",
        (name, holder, now, now + ttl),
    )
    return True


def check_lease_sync(c: sqlite3.Connection, name: str, holder: str, now: int) -> None:
    """Fencing: refuse a write from a process whose lease has passed to someone else."""
    row = c.execute("SELECT holder, expires_at FROM leases WHERE name = ?", (name,)).fetchone()
    if row is None or row[0] != holder:
        raise LeaseLost(f"lease {name!r} is held by {row[0] if row else 'nobody'}")


def leave_sync(c: sqlite3.Connection, holder: str, leases: bool = False) -> None:
    """This process goes off duty: its session ends, its claims go (and, on a hard exit, its leases)."""
    now = now_ms()
    c.execute("UPDATE sessions SET ended_at = ?, heartbeat_at = ? WHERE holder = ?", (now, now, holder))
    c.execute("DELETE FROM claims WHERE holder = ?", (holder,))
    if leases:
        c.execute("DELETE FROM leases WHERE holder = ?", (holder,))


class Presence:
    """Sessions, claims and the collector lease, over the shared store."""

    def __init__(self, store: Store, operator: str, holder: str | None = None) -> None:
        self.store = store
        self.operator = operator
        self.holder = holder or process_id()

    # -- lease ----------------------------------------------------------------------------

    async def acquire(self, name: str = "collector") -> bool:
        return await self.store._write(lambda c: acquire_lease_sync(c, name, self.holder, now_ms()), "lease")

    def fence(self, name: str = "collector") -> Callable[[sqlite3.Connection], None]:
        """A check to run inside a write transaction: refuse it if the lease is no longer ours."""
        return lambda c: check_lease_sync(c, name, self.holder, now_ms())

    async def release(self, name: str = "collector") -> None:
        await self.store._write(
            lambda c: c.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, self.holder)),
            "lease",
        )

    async def lease_holder(self, name: str = "collector") -> tuple[str, int] | None:
        def q(c: sqlite3.Connection) -> tuple[str, int] | None:
            row = c.execute("SELECT holder, expires_at FROM leases WHERE name = ?", (name,)).fetchone()
            return (row[0], row[1]) if row and row[1] > now_ms() else None

        return await self.store._read(q)

    # -- sessions (who is on duty) --------------------------------------------------------

    async def heartbeat(self) -> None:
        def w(c: sqlite3.Connection) -> None:
            now = now_ms()
            c.execute(
                "INSERT INTO sessions (holder, operator, started_at, heartbeat_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (holder) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, ended_at = NULL",
                (self.holder, self.operator, now, now),
            )
            # Claims held by this operator while the app is alive stay fresh.
            c.execute("UPDATE claims SET heartbeat_at = ? WHERE holder = ?", (now, self.holder))

        await self.store._write(w, "presence")

    async def leave(self) -> None:
        await self.store._write(lambda c: leave_sync(c, self.holder), "presence")

    async def on_duty(self) -> list[str]:
        def q(c: sqlite3.Connection) -> list[str]:
            rows = c.execute(
                "SELECT DISTINCT operator FROM sessions WHERE ended_at IS NULL AND heartbeat_at > ? ORDER BY operator",
                (now_ms() - SESSION_TTL_MS,),
            ).fetchall()
            return [r[0] for r in rows]

        return await self.store._read(q)

    async def last_left(self) -> int | None:
        """When this operator last closed an app (the start of their handover view)."""

        def q(c: sqlite3.Connection) -> int | None:
            row = c.execute(
                "SELECT max(coalesce(ended_at, heartbeat_at)) FROM sessions WHERE operator = ? AND holder != ?",
                (self.operator, self.holder),
            ).fetchone()
            return row[0] if row else None

        return await self.store._read(q)

    # -- claims (who is replying) ---------------------------------------------------------

    async def claim(self, mention_id: int, kind: str = "replying", take_over: bool = False) -> Claim | None:
        """Claim a mention; returns the other operator's live claim instead if there is one (and no take-over)."""

        def w(c: sqlite3.Connection) -> Claim | None:
            now = now_ms()
            row = c.execute(
                "SELECT mention_id, operator, kind, since, heartbeat_at, holder FROM claims WHERE mention_id = ?",
                (mention_id,),
            ).fetchone()
            live = row is not None and row[4] > now - CLAIM_TTL_MS and row[5] != self.holder
            if live and not take_over:
                return Claim(*row[:5])
            c.execute(
                "INSERT INTO claims (mention_id, operator, holder, kind, since, heartbeat_at) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (mention_id) DO UPDATE SET operator = excluded.operator, holder = excluded.holder,"
                " kind = excluded.kind, since = excluded.since, heartbeat_at = excluded.heartbeat_at",
                (mention_id, self.operator, self.holder, kind, now, now),
            )
            _touch(c, mention_id)
            return None

        return await self.store._write(w, "claim")

    async def unclaim(self, mention_id: int) -> None:
        def w(c: sqlite3.Connection) -> None:
            if c.execute("DELETE FROM claims WHERE mention_id = ? AND holder = ?", (mention_id, self.holder)).rowcount:
                _touch(c, mention_id)

        await self.store._write(w, "claim")

    async def claims(self) -> dict[int, Claim]:
        """Live claims by mention (expired ones are ignored)."""

        def q(c: sqlite3.Connection) -> dict[int, Claim]:
            rows = c.execute(
                "SELECT mention_id, operator, kind, since, heartbeat_at FROM claims WHERE heartbeat_at > ?",
                (now_ms() - CLAIM_TTL_MS,),
            ).fetchall()
            return {r[0]: Claim(*r) for r in rows}

        return await self.store._read(q)


def _touch(c: sqlite3.Connection, mention_id: int) -> None:
    """Bump the mention's change sequence so that every open app redraws it (claims show on the row)."""
    c.execute(
        "UPDATE mentions SET rev = (SELECT coalesce(max(rev), 0) + 1 FROM mentions) WHERE id = ?",
        (mention_id,),
    )
