"""Several operators on one database: who is on duty, who holds the collector lease, who is replying.

All of it lives in SQLite so that every process sees it; nothing here knows of the UI.
"""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

from monitor.core.dburl import is_database_url
from monitor.core.timeutil import now_ms
from monitor.db.api import Fence, LeaseLost
from monitor.db.faults import rollback
from monitor.db.leases import LEASE_TTL_MS, acquire_lease_sync, check_lease_sync
from monitor.db.store import Store

if TYPE_CHECKING:
    from monitor.db.api import Database

__all__ = [
    "CLAIM_TTL_MS", "HEARTBEAT_S", "LEASE_RENEW_S", "LEASE_TTL_MS", "SESSION_TTL_MS", "Claim", "LeaseLost",
    "Presence", "acquire_lease_sync", "check_lease_sync", "leave_sync", "process_id", "release_on_hangup",
]  # fmt: skip

log = logging.getLogger(__name__)

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


def leave_sync(c: sqlite3.Connection, holder: str, leases: bool = False) -> None:
    """This process goes off duty: its session ends, its claims go (and, on a hard exit, its leases)."""
    now = now_ms()
    c.execute("UPDATE sessions SET ended_at = ?, heartbeat_at = ? WHERE holder = ?", (now, now, holder))
    c.execute("DELETE FROM claims WHERE holder = ?", (holder,))
    if leases:
        c.execute("DELETE FROM leases WHERE holder = ?", (holder,))


def release_on_hangup(db_path: str | Path, holder: str, timeout_s: float) -> None:
    """A process about to end hard: its session, claims and leases go now, through a short connection of
    its own (the store's thread may be stuck). Locked past `timeout_s`, they expire as designed instead.
    `db_path` may name a PostgreSQL database (monitor.db.pg.presence does the same there)."""
    if is_database_url(db_path):
        from monitor.db.pg.presence import release_on_hangup as release_on_server

        release_on_server(str(db_path), holder, timeout_s)
        return
    try:
        conn = sqlite3.connect(str(db_path), timeout=timeout_s, isolation_level=None)
    except sqlite3.Error:
        return
    try:
        conn.execute("BEGIN IMMEDIATE")
        leave_sync(conn, holder, leases=True)
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        rollback(conn)
        log.warning("could not release on hang-up: %s", exc)
    finally:
        conn.close()


class Presence:
    """Sessions, claims and the collector lease, over the shared store.

    Over a PostgreSQL store, `Presence(store, ...)` is a monitor.db.pg.presence.PgPresence: callers never choose.
    """

    def __new__(cls, store: Database, operator: str, holder: str | None = None) -> Presence:
        if cls is Presence and not isinstance(store, Store):
            from monitor.db.pg.presence import PgPresence

            return object.__new__(PgPresence)
        return object.__new__(cls)

    def __init__(self, store: Database, operator: str, holder: str | None = None) -> None:
        self.store = cast("Store", store)  # PgPresence overrides every call that uses it
        self.operator = operator
        self.holder = holder or process_id()

    # -- lease ----------------------------------------------------------------------------

    async def acquire(self, name: str = "collector") -> bool:
        return await self.store.write(lambda c: acquire_lease_sync(c, name, self.holder, now_ms()), "lease")

    def fence(self, name: str = "collector") -> Fence:
        """For a write that only this process may make while it holds the lease `name`."""
        return Fence(name, self.holder)

    async def release(self, name: str = "collector") -> None:
        await self.store.write(
            lambda c: c.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, self.holder)),
            "lease",
        )

    async def lease_holder(self, name: str = "collector") -> tuple[str, int] | None:
        def q(c: sqlite3.Connection) -> tuple[str, int] | None:
            row = c.execute("SELECT holder, expires_at FROM leases WHERE name = ?", (name,)).fetchone()
            return (row[0], row[1]) if row and row[1] > now_ms() else None

        return await self.store.read(q)

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

        await self.store.write(w, "presence")

    async def leave(self) -> None:
        await self.store.write(lambda c: leave_sync(c, self.holder), "presence")

    async def on_duty(self) -> list[str]:
        def q(c: sqlite3.Connection) -> list[str]:
            rows = c.execute(
                "SELECT DISTINCT operator FROM sessions WHERE ended_at IS NULL AND heartbeat_at > ? ORDER BY operator",
                (now_ms() - SESSION_TTL_MS,),
            ).fetchall()
            return [r[0] for r in rows]

        return await self.store.read(q)

    async def last_left(self) -> int | None:
        """When this operator last closed an app (the start of their handover view)."""

        def q(c: sqlite3.Connection) -> int | None:
            row = c.execute(
                "SELECT max(coalesce(ended_at, heartbeat_at)) FROM sessions WHERE operator = ? AND holder != ?",
                (self.operator, self.holder),
            ).fetchone()
            return row[0] if row else None

        return await self.store.read(q)

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

        return await self.store.write(w, "claim")

    async def claim_incident(self, incident_id: int, kind: str = "replying", take_over: bool = False) -> Claim | None:
        """Claim every report of an incident at once (all or none); returns another operator's live claim on
        one of them instead, if there is one (and no take-over)."""

        def w(c: sqlite3.Connection) -> Claim | None:
            now = now_ms()
            ids = [r[0] for r in c.execute("SELECT id FROM mentions WHERE incident_id = ?", (incident_id,))]
            if not take_over:
                for row in c.execute(
                    "SELECT mention_id, operator, kind, since, heartbeat_at FROM claims WHERE mention_id IN"
                    " (SELECT id FROM mentions WHERE incident_id = ?) AND heartbeat_at > ? AND holder != ? LIMIT 1",
                    (incident_id, now - CLAIM_TTL_MS, self.holder),
                ):
                    return Claim(*row)
            c.executemany(
                "INSERT INTO claims (mention_id, operator, holder, kind, since, heartbeat_at) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (mention_id) DO UPDATE SET operator = excluded.operator, holder = excluded.holder,"
                " kind = excluded.kind, since = excluded.since, heartbeat_at = excluded.heartbeat_at",
                [(mention_id, self.operator, self.holder, kind, now, now) for mention_id in ids],
            )
            for mention_id in ids:
                _touch(c, mention_id)
            return None

        return await self.store.write(w, "claim")

    async def unclaim_incident(self, incident_id: int) -> None:
        def w(c: sqlite3.Connection) -> None:
            for (mention_id,) in c.execute(
                "DELETE FROM claims WHERE holder = ? AND mention_id IN (SELECT id FROM mentions WHERE incident_id = ?)"
                " RETURNING mention_id",
                (self.holder, incident_id),
            ).fetchall():
                _touch(c, mention_id)

        await self.store.write(w, "claim")

    async def unclaim(self, mention_id: int) -> None:
        def w(c: sqlite3.Connection) -> None:
            if c.execute("DELETE FROM claims WHERE mention_id = ? AND holder = ?", (mention_id, self.holder)).rowcount:
                _touch(c, mention_id)

        await self.store.write(w, "claim")

    async def claims(self) -> dict[int, Claim]:
        """Live claims by mention (expired ones are ignored)."""

        def q(c: sqlite3.Connection) -> dict[int, Claim]:
            rows = c.execute(
                "SELECT mention_id, operator, kind, since, heartbeat_at FROM claims WHERE heartbeat_at > ?",
                (now_ms() - CLAIM_TTL_MS,),
            ).fetchall()
            return {r[0]: Claim(*r) for r in rows}

        return await self.store.read(q)


def _touch(c: sqlite3.Connection, mention_id: int) -> None:
    """Bump the mention's change sequence so that every open app redraws it (claims show on the row)."""
    c.execute(
        "UPDATE mentions SET rev = (SELECT coalesce(max(rev), 0) + 1 FROM mentions) WHERE id = ?",
        (mention_id,),
    )
