"""The outbox queue in PostgreSQL: claimed with FOR UPDATE SKIP LOCKED, so that delivery workers on several
machines never take the same item, and none waits behind another's claim.

`PgOutbox` answers to the same calls as monitor.db.outbox.Outbox (which hands one out for a PostgreSQL store).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any, cast

from psycopg.types.json import Jsonb

from monitor.core.models import ActionKind, Spend, Status
from monitor.core.outbox import DRY_RUN_URL, NewItem, OutboxItem, OutboxState
from monitor.core.timeutil import now_ms
from monitor.db.api import Database
from monitor.db.outbox import Outbox, Planner
from monitor.db.pg.mentions import Conn, every, mention, one, touch
from monitor.db.pg.spend import add_spend
from monitor.db.pg.store import PgStore
from monitor.db.rows import OUTBOX_COLUMNS, loads, row_to_outbox


async def mention_raw(c: Conn, mention_id: int) -> dict[str, Any] | None:
    r = await one(c, "SELECT raw FROM mentions WHERE id = %s", (mention_id,))
    try:
        raw = loads(r[0]) if r and r[0] else None
    except ValueError:
        return None
    return raw if isinstance(raw, dict) else None


async def enqueue(c: Conn, action_id: int, mention_id: int, items: Sequence[NewItem]) -> list[int]:
    now = now_ms()
    ids = []
    for item in items:
        row = await one(
            c,
            "INSERT INTO outbox (action_id, mention_id, kind, target, idem_key, payload, state,"
            " next_attempt_at, created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (action_id, mention_id, str(item.kind), item.target, item.idem_key, Jsonb(item.payload),
             str(OutboxState.PENDING), now, now, now),
        )  # fmt: skip
        assert row is not None
        ids.append(int(row[0]))
    return ids


async def claim(c: Conn, now: int, lease_ms: int, limit: int, busy: Sequence[int]) -> list[OutboxItem]:
    """As monitor.db.outbox.claim_sync; rows another worker is claiming right now are skipped, not waited for."""
    rows = await every(
        c,
        f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE ((state = %s AND next_attempt_at <= %s)"
        " OR (state = %s AND claimed_at <= %s)) AND NOT (id = ANY(%s))"
        " ORDER BY next_attempt_at, id LIMIT %s FOR UPDATE SKIP LOCKED",
        (str(OutboxState.PENDING), now, str(OutboxState.SENDING), now - lease_ms, list(busy), limit),
    )
    out = []
    for r in rows:
        token = await one(
            c,
            "UPDATE outbox SET state = %s, attempts = attempts + 1, claimed_at = greatest(%s, coalesce(claimed_at, 0)"
            " + 1), updated_at = %s WHERE id = %s RETURNING claimed_at",
            (str(OutboxState.SENDING), now, now, r[0]),
        )
        assert token is not None
        item = row_to_outbox(r)
        out.append(replace(item, state=OutboxState.SENDING, attempts=item.attempts + 1, claimed_at=int(token[0])))
    return out


async def renew(c: Conn, item_id: int, token: int, now: int) -> int | None:
    """As monitor.db.outbox.renew_sync. A claim racing it waits for the row lock, then finds the token changed."""
    r = await one(
        c,
        "UPDATE outbox SET claimed_at = greatest(%s, claimed_at + 1) WHERE id = %s AND state = %s AND claimed_at = %s"
        " RETURNING claimed_at",
        (now, item_id, str(OutboxState.SENDING), token),
    )
    return int(r[0]) if r else None


async def _settle(c: Conn, item_id: int, assignments: str, params: Sequence[Any], token: int | None = None) -> bool:
    """As monitor.db.outbox._settle: only from `sending`, and with a `token` only under that claim."""
    fenced = " AND claimed_at = %s" if token is not None else ""
    r = await one(
        c,
        f"UPDATE outbox SET {assignments}, updated_at = %s WHERE id = %s AND state = %s{fenced} RETURNING mention_id",
        (*params, now_ms(), item_id, str(OutboxState.SENDING), *([token] if token is not None else [])),
    )
    if r:
        await touch(c, r[0])
    return r is not None


async def for_mention(c: Conn, mention_id: int) -> list[OutboxItem]:
    sql = f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE mention_id = %s ORDER BY id"
    return [row_to_outbox(r) for r in await every(c, sql, (mention_id,))]


async def act(
    store: PgStore,
    mention_id: int,
    kind: ActionKind,
    operator: str,
    payload: dict[str, Any],
    plan: Planner,
    expect_status: Status | None = None,
) -> int:
    """Log an action and queue what `plan` says it sends, in one transaction; returns the action id."""

    async def then(c: Conn, action_id: int) -> None:
        row = await mention(c, mention_id)  # read inside the transaction: the row as the action left it
        await enqueue(c, action_id, mention_id, plan(row, await mention_raw(c, mention_id)))

    return await store.act(mention_id, kind, operator, payload, then=then, expect_status=expect_status)


class PgOutbox(Outbox):
    """The queue over a PostgreSQL store: the same calls as the SQLite one."""

    def __init__(self, store: Database) -> None:
        super().__init__(store)
        self.pg = cast(PgStore, store)

    async def claim(
        self, lease_ms: int, limit: int = 16, busy: Iterable[int] = (), now: int | None = None
    ) -> list[OutboxItem]:
        mine, at = tuple(busy), now_ms() if now is None else now
        return await self.pg.write(lambda c: claim(c, at, lease_ms, limit, mine), "outbox:claim")

    async def renew(self, item_id: int, token: int, now: int | None = None) -> int | None:
        at = now_ms() if now is None else now
        return await self.pg.write(lambda c: renew(c, item_id, token, at), "outbox:renew")

    async def mark_sent(self, item_id: int, remote_id: str | None, remote_url: str | None,
                        remote_status: str | None = None, spend: tuple[str, Spend] | None = None,
                        token: int | None = None) -> bool:  # fmt: skip
        assignments = (
            "state = %s, remote_id = %s, remote_url = %s, remote_status = %s, last_error = '', checked_at = %s"
        )
        params = (str(OutboxState.SENT), remote_id, remote_url, remote_status, now_ms())

        async def write(c: Conn) -> bool:
            done = await _settle(c, item_id, assignments, params, token)
            # Its cost once: a retry after a COMMIT lost with the connection finds the item settled already.
            if done and spend is not None:
                await add_spend(c, *spend)
            return done

        return await self.pg.write(write, "outbox:sent")

    async def defer(self, item_id: int, until: int, token: int | None = None) -> bool:
        """As monitor.db.outbox.defer_sync: back to pending, the claim's attempt not counted."""
        assignments = "state = %s, attempts = greatest(attempts - 1, 0), next_attempt_at = %s"
        params = (str(OutboxState.PENDING), until)
        return await self.pg.write(lambda c: _settle(c, item_id, assignments, params, token), "outbox:defer")

    async def sent_since(self, target: str, since: int) -> list[int]:
        sql = "SELECT updated_at FROM outbox WHERE target = %s AND state = %s AND updated_at >= %s"
        rows = await self.pg.read(lambda c: every(c, sql, (target, str(OutboxState.SENT), since)))
        return [int(r[0]) for r in rows]

    async def mark_failed(self, item_id: int, reason: str, token: int | None = None) -> bool:
        params = (str(OutboxState.FAILED), reason)
        return await self.pg.write(
            lambda c: _settle(c, item_id, "state = %s, last_error = %s", params, token), "outbox:failed"
        )

    async def retry_later(self, item_id: int, reason: str, delay_ms: int, token: int | None = None) -> bool:
        assignments = "state = %s, last_error = %s, next_attempt_at = %s"
        params = (str(OutboxState.PENDING), reason, now_ms() + delay_ms)
        return await self.pg.write(lambda c: _settle(c, item_id, assignments, params, token), "outbox:later")

    async def retry(self, mention_id: int) -> int:
        async def w(c: Conn) -> int:
            now = now_ms()
            cur = await c.execute(
                "UPDATE outbox SET state = %s, next_attempt_at = %s, updated_at = %s"
                " WHERE mention_id = %s AND state = %s",
                (str(OutboxState.PENDING), now, now, mention_id, str(OutboxState.FAILED)),
            )
            if cur.rowcount:
                await touch(c, mention_id)
            return cur.rowcount

        return await self.pg.write(w, "outbox:retry")

    async def cancel(self, mention_id: int) -> int:
        async def w(c: Conn) -> int:
            cur = await c.execute(
                "UPDATE outbox SET state = %s, updated_at = %s WHERE mention_id = %s AND state IN (%s, %s)",
                (str(OutboxState.CANCELLED), now_ms(), mention_id, str(OutboxState.FAILED), str(OutboxState.PENDING)),
            )
            if cur.rowcount:
                await touch(c, mention_id)
            return cur.rowcount

        return await self.pg.write(w, "outbox:cancel")

    async def next_due(self) -> int | None:
        async def q(c: Conn) -> int | None:
            r = await one(c, "SELECT min(next_attempt_at) FROM outbox WHERE state = %s", (str(OutboxState.PENDING),))
            return int(r[0]) if r and r[0] is not None else None

        return await self.pg.read(q)

    async def to_check(self, prefix: str, older_than: int) -> list[OutboxItem]:
        async def q(c: Conn) -> list[OutboxItem]:
            rows = await every(
                c,
                f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE state = %s AND target LIKE %s AND remote_id IS NOT NULL"
                " AND remote_id != %s AND coalesce(remote_status, '') != 'closed' AND coalesce(checked_at, 0) <= %s",
                (str(OutboxState.SENT), prefix + "%", DRY_RUN_URL, older_than),
            )
            return [row_to_outbox(r) for r in rows]

        return await self.pg.read(q)

    async def set_remote_status(self, item_id: int, status: str, notes: str = "") -> None:
        async def w(c: Conn) -> None:
            now = now_ms()
            r = await one(
                c,
                "UPDATE outbox SET remote_status = %s, last_error = %s, checked_at = %s, updated_at = %s WHERE id = %s"
                " AND (remote_status IS DISTINCT FROM %s OR last_error != %s) RETURNING mention_id",
                (status, notes, now, now, item_id, status, notes),
            )
            if r:
                await touch(c, r[0])
            else:
                await c.execute("UPDATE outbox SET checked_at = %s WHERE id = %s", (now, item_id))

        await self.pg.write(w, "outbox:status")
