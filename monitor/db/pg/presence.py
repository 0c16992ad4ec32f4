"""Several operators over PostgreSQL: sessions, claims and leases, with the same calls as monitor.db.presence."""

from __future__ import annotations

import logging
from math import ceil
from typing import cast

import psycopg

from monitor.core.timeutil import now_ms
from monitor.db.api import Database
from monitor.db.pg.leases import acquire_lease, lease_holder
from monitor.db.pg.mentions import Conn, every, one, touch
from monitor.db.pg.store import PgStore
from monitor.db.presence import CLAIM_TTL_MS, SESSION_TTL_MS, Claim, Presence

log = logging.getLogger(__name__)


def _leaving(leases: bool) -> list[str]:
    """As monitor.db.presence.leave_sync: the session ends, the claims go (and, on a hard exit, the leases)."""
    sql = [
        "UPDATE sessions SET ended_at = %(now)s, heartbeat_at = %(now)s WHERE holder = %(holder)s",
        "DELETE FROM claims WHERE holder = %(holder)s",
    ]
    return [*sql, "DELETE FROM leases WHERE holder = %(holder)s"] if leases else sql


async def leave(c: Conn, holder: str, leases: bool = False) -> None:
    params = {"now": now_ms(), "holder": holder}
    for sql in _leaving(leases):
        await c.execute(sql, params)


def release_on_hangup(url: str, holder: str, timeout_s: float) -> None:
    """As monitor.db.presence.release_on_hangup, over a short blocking connection of its own (the store's
    event loop may be stuck). A server that does not answer within about `timeout_s` (libpq counts whole
    seconds to connect): the claims and leases expire as designed instead."""
    params = {"now": now_ms(), "holder": holder}
    limit = f"{max(1, int(timeout_s * 1000))}ms"
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=max(2, ceil(timeout_s))) as conn:
            with conn.transaction():
                conn.execute("SELECT set_config('statement_timeout', %s, true), set_config('lock_timeout', %s, true)",
                             (limit, limit))  # fmt: skip
                for sql in _leaving(leases=True):
                    conn.execute(sql, params)
    except psycopg.Error as exc:
        log.warning("could not release on hang-up: %s", exc)


class PgPresence(Presence):
    """Sessions, claims and the collector lease over a PostgreSQL store (monitor.db.presence hands it out)."""

    def __init__(self, store: Database, operator: str, holder: str | None = None) -> None:
        super().__init__(store, operator, holder)
        self.pg = cast(PgStore, store)

    async def acquire(self, name: str = "collector") -> bool:
        return await self.pg.write(lambda c: acquire_lease(c, name, self.holder, now_ms()), "lease")

    async def release(self, name: str = "collector") -> None:
        async def w(c: Conn) -> None:
            await c.execute("DELETE FROM leases WHERE name = %s AND holder = %s", (name, self.holder))

        await self.pg.write(w, "lease")

    async def lease_holder(self, name: str = "collector") -> tuple[str, int] | None:
        return await self.pg.read(lambda c: lease_holder(c, name))

    async def heartbeat(self) -> None:
        async def w(c: Conn) -> None:
            now = now_ms()
            await c.execute(
                "INSERT INTO sessions (holder, operator, started_at, heartbeat_at) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (holder) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, ended_at = NULL",
                (self.holder, self.operator, now, now),
            )
            await c.execute("UPDATE claims SET heartbeat_at = %s WHERE holder = %s", (now, self.holder))

        await self.pg.write(w, "presence")

    async def leave(self) -> None:
        await self.pg.write(lambda c: leave(c, self.holder), "presence")

    async def on_duty(self) -> list[str]:
        async def q(c: Conn) -> list[str]:
            rows = await every(
                c,
                "SELECT DISTINCT operator FROM sessions WHERE ended_at IS NULL AND heartbeat_at > %s ORDER BY operator",
                (now_ms() - SESSION_TTL_MS,),
            )
            return [str(r[0]) for r in rows]

        return await self.pg.read(q)

    async def last_left(self) -> int | None:
        async def q(c: Conn) -> int | None:
            row = await one(
                c,
                "SELECT max(coalesce(ended_at, heartbeat_at)) FROM sessions WHERE operator = %s AND holder != %s",
                (self.operator, self.holder),
            )
            return int(row[0]) if row and row[0] is not None else None

        return await self.pg.read(q)

    async def claim(self, mention_id: int, kind: str = "replying", take_over: bool = False) -> Claim | None:
        """As Presence.claim. The mention's row lock makes two operators' claims of it take turns: the second
        sees the first's claim instead of overwriting it."""

        async def w(c: Conn) -> Claim | None:
            await c.execute("SELECT 1 FROM mentions WHERE id = %s FOR UPDATE", (mention_id,))
            now = now_ms()
            row = await one(
                c,
                "SELECT mention_id, operator, kind, since, heartbeat_at, holder FROM claims WHERE mention_id = %s",
                (mention_id,),
            )
            live = row is not None and row[4] > now - CLAIM_TTL_MS and row[5] != self.holder
            if row is not None and live and not take_over:
                return Claim(*row[:5])
            await c.execute(
                "INSERT INTO claims (mention_id, operator, holder, kind, since, heartbeat_at)"
                " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (mention_id) DO UPDATE SET operator = excluded.operator,"
                " holder = excluded.holder, kind = excluded.kind, since = excluded.since,"
                " heartbeat_at = excluded.heartbeat_at",
                (mention_id, self.operator, self.holder, kind, now, now),
            )
            await touch(c, mention_id)
            return None

        return await self.pg.write(w, "claim")

    async def claim_incident(self, incident_id: int, kind: str = "replying", take_over: bool = False) -> Claim | None:
        """As Presence.claim_incident (all or none). Its reports' rows are locked in id order first: two
        operators claiming one incident take turns, and the second sees the first's claims."""

        async def w(c: Conn) -> Claim | None:
            now = now_ms()
            rows = await every(
                c, "SELECT id FROM mentions WHERE incident_id = %s ORDER BY id FOR UPDATE", (incident_id,)
            )
            ids = [int(r[0]) for r in rows]
            if not take_over:
                row = await one(
                    c,
                    "SELECT mention_id, operator, kind, since, heartbeat_at FROM claims WHERE mention_id = ANY(%s)"
                    " AND heartbeat_at > %s AND holder != %s LIMIT 1",
                    (ids, now - CLAIM_TTL_MS, self.holder),
                )
                if row is not None:
                    return Claim(*row)
            for mention_id in ids:
                await c.execute(
                    "INSERT INTO claims (mention_id, operator, holder, kind, since, heartbeat_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (mention_id) DO UPDATE SET"
                    " operator = excluded.operator, holder = excluded.holder, kind = excluded.kind,"
                    " since = excluded.since, heartbeat_at = excluded.heartbeat_at",
                    (mention_id, self.operator, self.holder, kind, now, now),
                )
                await touch(c, mention_id)
            return None

        return await self.pg.write(w, "claim")

    async def unclaim_incident(self, incident_id: int) -> None:
        async def w(c: Conn) -> None:
            for (mention_id,) in await every(
                c,
                "DELETE FROM claims WHERE holder = %s"
                " AND mention_id IN (SELECT id FROM mentions WHERE incident_id = %s) RETURNING mention_id",
                (self.holder, incident_id),
            ):
                await touch(c, mention_id)

        await self.pg.write(w, "claim")

    async def unclaim(self, mention_id: int) -> None:
        async def w(c: Conn) -> None:
            cur = await c.execute("DELETE FROM claims WHERE mention_id = %s AND holder = %s", (mention_id, self.holder))
            if cur.rowcount:
                await touch(c, mention_id)

        await self.pg.write(w, "claim")

    async def claims(self) -> dict[int, Claim]:
        async def q(c: Conn) -> dict[int, Claim]:
            rows = await every(
                c,
                "SELECT mention_id, operator, kind, since, heartbeat_at FROM claims WHERE heartbeat_at > %s",
                (now_ms() - CLAIM_TTL_MS,),
            )
            return {int(r[0]): Claim(*r) for r in rows}

        return await self.pg.read(q)
