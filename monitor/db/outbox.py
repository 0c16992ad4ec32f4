"""The outbox queue: replies and escalations that must leave, written in the same transaction as the action.

An item is planned when the operator acts (engine.actions), stored as `pending` with the action, then
claimed by the delivery worker (`sending`, with a lease), and ends `sent`, `failed` (with a reason the
operator can read, retry or cancel) or `cancelled`. The idempotency key is generated once, when the draft
is planned, and sent with every attempt, so a retry after a crash does not post twice.

Only the queue's SQL is here: what an item carries for each network is the networks' business.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, cast

from monitor.core.models import ActionKind, MentionRow, Spend, Status
from monitor.core.outbox import DRY_RUN_URL, NewItem, OutboxItem, OutboxState
from monitor.core.timeutil import now_ms
from monitor.db.rows import OUTBOX_COLUMNS, row_to_outbox
from monitor.db.spend import add_spend_sync
from monitor.db.store import Store, mention_sync

if TYPE_CHECKING:
    from monitor.db.api import Database
    from monitor.db.pg.store import PgStore

__all__ = [
    "DRY_RUN_URL", "Outbox", "OutboxItem", "Planner", "act", "cancel_sync", "claim_sync", "defer_sync", "enqueue_sync",
    "for_mention_sync", "mark_failed_sync", "mark_sent_sync", "mention_raw_sync", "next_due_sync", "renew_sync",
    "retry_later_sync", "retry_sync", "sent_since_sync", "set_remote_status_sync", "to_check_sync",
]  # fmt: skip

COLUMNS = OUTBOX_COLUMNS

# What an action sends, decided inside its transaction from the mention as stored and its raw payload.
Planner = Callable[[MentionRow, dict[str, Any] | None], Sequence[NewItem]]


_row = row_to_outbox


def mention_raw_sync(c: sqlite3.Connection, mention_id: int) -> dict[str, Any] | None:
    r = c.execute("SELECT raw FROM mentions WHERE id = ?", (mention_id,)).fetchone()
    try:
        raw = json.loads(r[0]) if r and r[0] else None
    except ValueError:
        return None
    return raw if isinstance(raw, dict) else None


# -- writes (each called inside a BEGIN IMMEDIATE transaction) -------------------------------


def _touch_mention(c: sqlite3.Connection, mention_id: int) -> None:
    """Bump the mention's rev so open screens redraw its delivery state."""
    c.execute(
        "UPDATE mentions SET rev = (SELECT coalesce(max(rev), 0) + 1 FROM mentions) WHERE id = ?",
        (mention_id,),
    )


def enqueue_sync(c: sqlite3.Connection, action_id: int, mention_id: int, items: Sequence[NewItem]) -> list[int]:
    now = now_ms()
    ids = []
    for item in items:
        cur = c.execute(
            "INSERT INTO outbox (action_id, mention_id, kind, target, idem_key, payload, state,"
            " next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (action_id, mention_id, item.kind, item.target, item.idem_key,
             json.dumps(item.payload, ensure_ascii=False), OutboxState.PENDING, now, now, now),
        )  # fmt: skip
        ids.append(int(cur.lastrowid or 0))
    return ids


def claim_sync(
    c: sqlite3.Connection, now: int, lease_ms: int, limit: int = 16, busy: Sequence[int] = ()
) -> list[OutboxItem]:
    """Due pending items, and `sending` ones whose lease ran out (their worker died): now ours.

    `busy` are the caller's own items still in flight: never taken again, however long they take.
    Each claim's `claimed_at` is its token: later than any before it on that item (at least by 1 ms, whatever
    the clocks say), so a worker whose claim was taken over holds a token that no longer matches.
    """
    skip = f" AND id NOT IN ({', '.join('?' * len(busy))})" if busy else ""
    rows = c.execute(
        f"SELECT {COLUMNS} FROM outbox WHERE ((state = ? AND next_attempt_at <= ?)"
        f" OR (state = ? AND claimed_at <= ?)){skip} ORDER BY next_attempt_at, id LIMIT ?",
        (OutboxState.PENDING, now, OutboxState.SENDING, now - lease_ms, *busy, limit),
    ).fetchall()
    out = []
    for r in rows:
        (token,) = c.execute(
            "UPDATE outbox SET state = ?, attempts = attempts + 1, claimed_at = max(?, coalesce(claimed_at, 0) + 1),"
            " updated_at = ? WHERE id = ? RETURNING claimed_at",
            (OutboxState.SENDING, now, now, r[0]),
        ).fetchone()
        item = _row(r)
        out.append(replace(item, state=OutboxState.SENDING, attempts=item.attempts + 1, claimed_at=token))
    return out


def renew_sync(c: sqlite3.Connection, item_id: int, token: int, now: int) -> int | None:
    """Extend a claim still ours (its token matches); its new token, or None when another worker took it over."""
    r = c.execute(
        "UPDATE outbox SET claimed_at = max(?, claimed_at + 1) WHERE id = ? AND state = ? AND claimed_at = ?"
        " RETURNING claimed_at",
        (now, item_id, OutboxState.SENDING, token),
    ).fetchone()
    return int(r[0]) if r else None


def _settle(
    c: sqlite3.Connection, item_id: int, assignments: str, params: Sequence[Any], token: int | None = None
) -> bool:
    """Leave `sending` (only from there: a stale worker never overwrites a newer outcome), and with a `token`
    only under that claim (a worker whose claim was taken over never overwrites its successor's). Whether it did.

    `claimed_at` stays: the next claim's token must be later than this one's.
    """
    fenced = " AND claimed_at = ?" if token is not None else ""
    r = c.execute(
        f"UPDATE outbox SET {assignments}, updated_at = ? WHERE id = ? AND state = ?{fenced} RETURNING mention_id",
        (*params, now_ms(), item_id, OutboxState.SENDING, *([token] if token is not None else [])),
    ).fetchone()
    if r:
        _touch_mention(c, r[0])
    return r is not None


def mark_sent_sync(
    c: sqlite3.Connection, item_id: int, remote_id: str | None, remote_url: str | None,
    remote_status: str | None = None, token: int | None = None,
) -> bool:  # fmt: skip
    return _settle(
        c, item_id, "state = ?, remote_id = ?, remote_url = ?, remote_status = ?, last_error = '', checked_at = ?",
        (OutboxState.SENT, remote_id, remote_url, remote_status, now_ms()), token,
    )  # fmt: skip


def mark_failed_sync(c: sqlite3.Connection, item_id: int, reason: str, token: int | None = None) -> bool:
    return _settle(c, item_id, "state = ?, last_error = ?", (OutboxState.FAILED, reason), token)


def retry_later_sync(
    c: sqlite3.Connection, item_id: int, reason: str, delay_ms: int, token: int | None = None
) -> bool:  # fmt: skip
    assignments = "state = ?, last_error = ?, next_attempt_at = ?"
    return _settle(c, item_id, assignments, (OutboxState.PENDING, reason, now_ms() + delay_ms), token)


def defer_sync(c: sqlite3.Connection, item_id: int, until: int, token: int | None = None) -> bool:
    """Back to pending until `until`, the claim's attempt not counted: the network's rate limit, not a failure
    (and a claim given back unsent, due at once)."""
    assignments = "state = ?, attempts = max(attempts - 1, 0), next_attempt_at = ?"
    return _settle(c, item_id, assignments, (OutboxState.PENDING, until), token)


def sent_since_sync(c: sqlite3.Connection, target: str, since: int) -> list[int]:
    """When the items sent through `target` since `since` were sent (a rate limit's window after a restart)."""
    sql = "SELECT updated_at FROM outbox WHERE target = ? AND state = ? AND updated_at >= ?"
    return [int(r[0]) for r in c.execute(sql, (target, OutboxState.SENT, since))]


def retry_sync(c: sqlite3.Connection, mention_id: int) -> int:
    """The operator asks again: failed items of a mention go back to pending, due now."""
    now = now_ms()
    n: int = c.execute(
        "UPDATE outbox SET state = ?, next_attempt_at = ?, updated_at = ? WHERE mention_id = ? AND state = ?",
        (OutboxState.PENDING, now, now, mention_id, OutboxState.FAILED),
    ).rowcount
    if n:
        _touch_mention(c, mention_id)
    return n


def cancel_sync(c: sqlite3.Connection, mention_id: int) -> int:
    """The operator gives up on what has not left: failed and pending items (never one being sent)."""
    n: int = c.execute(
        "UPDATE outbox SET state = ?, updated_at = ? WHERE mention_id = ? AND state IN (?, ?)",
        (OutboxState.CANCELLED, now_ms(), mention_id, OutboxState.FAILED, OutboxState.PENDING),
    ).rowcount
    if n:
        _touch_mention(c, mention_id)
    return n


def set_remote_status_sync(c: sqlite3.Connection, item_id: int, status: str, notes: str = "") -> None:
    now = now_ms()
    r = c.execute(
        "UPDATE outbox SET remote_status = ?, last_error = ?, checked_at = ?, updated_at = ? WHERE id = ?"
        " AND (remote_status IS NOT ? OR last_error != ?) RETURNING mention_id",
        (status, notes, now, now, item_id, status, notes),
    ).fetchone()
    if r:
        _touch_mention(c, r[0])
    else:
        c.execute("UPDATE outbox SET checked_at = ? WHERE id = ?", (now, item_id))


# -- reads ---------------------------------------------------------------------------------


def for_mention_sync(c: sqlite3.Connection, mention_id: int) -> list[OutboxItem]:
    return [_row(r) for r in c.execute(f"SELECT {COLUMNS} FROM outbox WHERE mention_id = ? ORDER BY id", (mention_id,))]


def to_check_sync(c: sqlite3.Connection, prefix: str, older_than: int) -> list[OutboxItem]:
    """Sent items of a target family whose remote status is still open and not checked lately."""
    return [
        _row(r)
        for r in c.execute(
            f"SELECT {COLUMNS} FROM outbox WHERE state = ? AND target LIKE ? AND remote_id IS NOT NULL"
            " AND remote_id != ? AND coalesce(remote_status, '') != 'closed'"
            " AND coalesce(checked_at, 0) <= ?",
            (OutboxState.SENT, prefix + "%", DRY_RUN_URL, older_than),
        )
    ]


def next_due_sync(c: sqlite3.Connection) -> int | None:
    r = c.execute("SELECT min(next_attempt_at) FROM outbox WHERE state = ?", (OutboxState.PENDING,)).fetchone()
    return int(r[0]) if r and r[0] is not None else None


async def act(
    store: Database,
    mention_id: int,
    kind: ActionKind,
    operator: str,
    payload: dict[str, Any],
    plan: Planner,
    expect_status: Status | None = None,
) -> int:
    """Log an action and queue what `plan` says it sends, in one transaction; returns the action id."""
    if not isinstance(store, Store):
        from monitor.db.pg.outbox import act as pg_act  # the same transaction, in PostgreSQL

        return await pg_act(cast("PgStore", store), mention_id, kind, operator, payload, plan, expect_status)

    def enqueue(c: sqlite3.Connection, action_id: int) -> None:
        row = mention_sync(c, mention_id)  # read inside the transaction: one hop, and no stale row
        enqueue_sync(c, action_id, mention_id, plan(row, mention_raw_sync(c, mention_id)))

    return await store.act(mention_id, kind, operator, payload, then=enqueue, expect_status=expect_status)


class Outbox:
    """Async access through the store's single connection (every write one short transaction).

    Over a PostgreSQL store, `Outbox(store)` is a monitor.db.pg.outbox.PgOutbox: the callers never choose.
    """

    def __new__(cls, store: Database) -> Outbox:
        if cls is Outbox and not isinstance(store, Store):
            from monitor.db.pg.outbox import PgOutbox

            return object.__new__(PgOutbox)
        return object.__new__(cls)

    def __init__(self, store: Database) -> None:
        self.store = cast("Store", store)  # PgOutbox overrides every call that uses it

    async def claim(
        self, lease_ms: int, limit: int = 16, busy: Iterable[int] = (), now: int | None = None
    ) -> list[OutboxItem]:
        mine, at = tuple(busy), now_ms() if now is None else now
        items: list[OutboxItem] = await self.store.write(
            lambda c: claim_sync(c, at, lease_ms, limit, mine), "outbox:claim"
        )
        return items

    async def renew(self, item_id: int, token: int, now: int | None = None) -> int | None:
        """The claim `token` extended from `now`: its new token, or None when it is no longer ours."""
        at = now_ms() if now is None else now
        new: int | None = await self.store.write(lambda c: renew_sync(c, item_id, token, at), "outbox:renew")
        return new

    # Each settling call below applies only to an item being sent and, given the claim's `token`, only under
    # that claim; each says whether it applied.

    async def mark_sent(self, item_id: int, remote_id: str | None, remote_url: str | None,
                        remote_status: str | None = None, spend: tuple[str, Spend] | None = None,
                        token: int | None = None) -> bool:  # fmt: skip
        """Sent, and what it cost (source, spend) in the same transaction: paid even when the mark is refused."""

        def write(c: sqlite3.Connection) -> bool:
            done = mark_sent_sync(c, item_id, remote_id, remote_url, remote_status, token)
            if spend is not None:
                add_spend_sync(c, *spend)
            return done

        done: bool = await self.store.write(write, "outbox:sent")
        return done

    async def mark_failed(self, item_id: int, reason: str, token: int | None = None) -> bool:
        done: bool = await self.store.write(lambda c: mark_failed_sync(c, item_id, reason, token), "outbox:failed")
        return done

    async def retry_later(self, item_id: int, reason: str, delay_ms: int, token: int | None = None) -> bool:
        done: bool = await self.store.write(
            lambda c: retry_later_sync(c, item_id, reason, delay_ms, token), "outbox:later"
        )
        return done

    async def defer(self, item_id: int, until: int, token: int | None = None) -> bool:
        done: bool = await self.store.write(lambda c: defer_sync(c, item_id, until, token), "outbox:defer")
        return done

    async def sent_since(self, target: str, since: int) -> list[int]:
        times: list[int] = await self.store.read(lambda c: sent_since_sync(c, target, since))
        return times

    async def retry(self, mention_id: int) -> int:
        n: int = await self.store.write(lambda c: retry_sync(c, mention_id), "outbox:retry")
        return n

    async def cancel(self, mention_id: int) -> int:
        n: int = await self.store.write(lambda c: cancel_sync(c, mention_id), "outbox:cancel")
        return n

    async def next_due(self) -> int | None:
        due: int | None = await self.store.read(next_due_sync)
        return due

    async def to_check(self, prefix: str, older_than: int) -> list[OutboxItem]:
        items: list[OutboxItem] = await self.store.read(lambda c: to_check_sync(c, prefix, older_than))
        return items

    async def set_remote_status(self, item_id: int, status: str, notes: str = "") -> None:
        await self.store.write(lambda c: set_remote_status_sync(c, item_id, status, notes), "outbox:status")
