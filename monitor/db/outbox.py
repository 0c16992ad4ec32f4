"""The outbox: replies and escalations that must leave, written in the same transaction as the action.

An item is planned when the operator acts, stored as `pending` with the action, then claimed by the
delivery worker (`sending`, with a lease), and ends `sent`, `failed` (with a reason the operator can
read, retry or cancel) or `cancelled`. The idempotency key is generated once, when the draft is
planned, and sent with every attempt, so a retry after a crash does not post twice.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from monitor.core import templates as tpl
from monitor.core.config import Watchlist
from monitor.core.models import ActionKind, MentionRow, Status
from monitor.core.sanitize import safe_url
from monitor.core.timeutil import now_ms
from monitor.db.store import mention_sync

if TYPE_CHECKING:
    from monitor.db.store import Store

PENDING, SENDING, SENT, FAILED, CANCELLED = "pending", "sending", "sent", "failed", "cancelled"
REPLY_NETWORKS = ("mastodon", "bluesky")
DRY_RUN_URL = "dry-run"
COLUMNS = (
    "id, action_id, mention_id, kind, target, idem_key, payload, state, attempts, next_attempt_at,"
    " claimed_at, last_error, remote_id, remote_url, remote_status, checked_at, created_at, updated_at"
)


@dataclass(frozen=True, slots=True)
class NewItem:
    kind: str  # reply | escalation | followup
    target: str  # source:<name> | service:<id>#<index>
    idem_key: str
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    action_id: int
    mention_id: int
    kind: str
    target: str
    idem_key: str
    payload: dict[str, Any]
    state: str
    attempts: int
    next_attempt_at: int
    claimed_at: int | None
    last_error: str
    remote_id: str | None
    remote_url: str | None
    remote_status: str | None
    checked_at: int | None
    created_at: int
    updated_at: int

    @property
    def source(self) -> str | None:
        return self.target.removeprefix("source:") if self.target.startswith("source:") else None

    @property
    def service(self) -> tuple[str, int] | None:
        if not self.target.startswith("service:"):
            return None
        sid, _, index = self.target.removeprefix("service:").rpartition("#")
        return sid, int(index)


def _row(r: Sequence[Any]) -> OutboxItem:
    return OutboxItem(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), *r[7:])


# -- identifiers ---------------------------------------------------------------------------

_B32 = "234567abcdefghijklmnopqrstuvwxyz"  # atproto's base32-sortable alphabet


def tid(micros: int | None = None, clock_id: int | None = None) -> str:
    """An atproto TID: 53 bits of microseconds then 10 bits of clock id, 13 base32-sortable chars."""
    micros = micros if micros is not None else time.time_ns() // 1000
    clock_id = clock_id if clock_id is not None else secrets.randbelow(1024)
    n = (micros << 10) | clock_id
    return "".join(_B32[(n >> (5 * i)) & 31] for i in reversed(range(13)))


# -- planning: what an action sends ----------------------------------------------------------


def _source_type(watchlist: Watchlist, source: str) -> str | None:
    spec = watchlist.source(source)
    return spec.type if spec else None


def _reply_payload(row: MentionRow, raw: dict[str, Any] | None, text: str) -> dict[str, Any]:
    """What a reply needs about the original, taken now so the worker never reads the mention again."""
    raw = raw or {}
    payload: dict[str, Any] = {
        "text": text, "network": row.network, "remote_id": row.remote_id, "url": row.url,
        "lang": row.lang, "author": row.author, "mention_ref": tpl.reference(row.id),
    }  # fmt: skip
    if row.network == "mastodon":
        account = found if isinstance(found := raw.get("account"), dict) else {}
        payload.update(
            status_id=str(raw.get("id") or row.remote_id),
            uri=str(raw.get("uri") or row.url or ""),
            visibility=str(raw.get("visibility") or "public"),
            acct=str(account.get("acct") or row.author).lstrip("@"),
        )
    elif row.network == "bluesky":
        record = found if isinstance(found := raw.get("record"), dict) else {}
        author = found if isinstance(found := raw.get("author"), dict) else {}
        uri = str(raw.get("uri") or (row.remote_id if row.remote_id.startswith("at://") else ""))
        payload.update(
            parent={"uri": uri, "cid": str(raw.get("cid") or "")},
            root=(record.get("reply") or {}).get("root"),
            author_did=str(author.get("did") or ""),
            author_handle=str(author.get("handle") or row.author).lstrip("@"),
            rkey=tid(),
        )
    return payload


def plan(
    watchlist: Watchlist,
    row: MentionRow,
    kind: ActionKind,
    payload: dict[str, Any],
    operator: str,
    dry_run: bool = False,
    raw: dict[str, Any] | None = None,
) -> list[NewItem]:
    """The items an action must deliver. Sources without a reply API answer elsewhere: nothing here."""
    items: list[NewItem] = []
    reply_text = payload.get("text") if kind is ActionKind.REPLY else payload.get("reply")
    if kind in (ActionKind.REPLY, ActionKind.RESOLVE) and reply_text and not payload.get("elsewhere"):
        stype = _source_type(watchlist, row.source)
        # A demo mention shaped like Mastodon or Bluesky goes through the outbox in dry-run, to show the flow.
        if row.network in REPLY_NETWORKS and (stype == row.network or (stype == "demo" and dry_run)):
            items.append(
                NewItem(
                    "reply" if kind is ActionKind.REPLY else "followup",
                    f"source:{row.source}",
                    uuid.uuid4().hex,
                    _reply_payload(row, raw, str(reply_text)),
                )
            )
    if kind is ActionKind.ESCALATE:
        service = watchlist.service(str(payload.get("service", "")))
        if service is not None:
            link = safe_url(row.url)  # a row stored before links were checked must not forward a script
            body = {
                "mention": {
                    "id": row.id, "source": row.source, "network": row.network, "author": row.author,
                    "text": row.text, "url": link, "first_seen_at": row.first_seen_at,
                },
                "link": link, "note": payload.get("note", ""), "operator": operator,
                "reference": tpl.reference(row.id),
                "service": {"id": service.id, "name": service.name}, "city": watchlist.city,
            }  # fmt: skip
            for index, _target in enumerate(service.targets):
                items.append(NewItem("escalation", f"service:{service.id}#{index}", uuid.uuid4().hex, body))
    return items


def mention_raw_sync(c: sqlite3.Connection, mention_id: int) -> dict[str, Any] | None:
    r = c.execute("SELECT raw FROM mentions WHERE id = ?", (mention_id,)).fetchone()
    try:
        return json.loads(r[0]) if r and r[0] else None
    except ValueError:
        return None


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
            " next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
            (action_id, mention_id, item.kind, item.target, item.idem_key,
             json.dumps(item.payload, ensure_ascii=False), now, now, now),
        )  # fmt: skip
        ids.append(int(cur.lastrowid or 0))
    return ids


def claim_sync(
    c: sqlite3.Connection, now: int, lease_ms: int, limit: int = 16, busy: Sequence[int] = ()
) -> list[OutboxItem]:
    """Due pending items, and `sending` ones whose lease ran out (their worker died): now ours.

    `busy` are the caller's own items still in flight: never taken again, however long they take.
    """
    skip = f" AND id NOT IN ({', '.join('?' * len(busy))})" if busy else ""
    rows = c.execute(
        f"SELECT {COLUMNS} FROM outbox WHERE ((state = 'pending' AND next_attempt_at <= ?)"
        f" OR (state = 'sending' AND claimed_at <= ?)){skip} ORDER BY next_attempt_at, id LIMIT ?",
        (now, now - lease_ms, *busy, limit),
    ).fetchall()
    out = []
    for r in rows:
        c.execute(
            "UPDATE outbox SET state = 'sending', attempts = attempts + 1, claimed_at = ?, updated_at = ? WHERE id = ?",
            (now, now, r[0]),
        )
        item = _row(r)
        out.append(_replace(item, state=SENDING, attempts=item.attempts + 1, claimed_at=now))
    return out


def _replace(item: OutboxItem, **changes: Any) -> OutboxItem:
    from dataclasses import replace

    return replace(item, **changes)


def mark_sent_sync(
    c: sqlite3.Connection, item_id: int, remote_id: str | None, remote_url: str | None,
    remote_status: str | None = None,
) -> None:  # fmt: skip
    now = now_ms()
    r = c.execute(
        "UPDATE outbox SET state = 'sent', remote_id = ?, remote_url = ?, remote_status = ?, last_error = '',"
        " claimed_at = NULL, checked_at = ?, updated_at = ? WHERE id = ? AND state = 'sending'"
        " RETURNING mention_id",
        (remote_id, remote_url, remote_status, now, now, item_id),
    ).fetchone()
    if r:
        _touch_mention(c, r[0])


def mark_failed_sync(c: sqlite3.Connection, item_id: int, reason: str) -> None:
    now = now_ms()
    r = c.execute(
        "UPDATE outbox SET state = 'failed', last_error = ?, claimed_at = NULL, updated_at = ?"
        " WHERE id = ? AND state = 'sending' RETURNING mention_id",
        (reason, now, item_id),
    ).fetchone()
    if r:
        _touch_mention(c, r[0])


def retry_later_sync(c: sqlite3.Connection, item_id: int, reason: str, delay_ms: int) -> None:
    now = now_ms()
    r = c.execute(
        "UPDATE outbox SET state = 'pending', last_error = ?, next_attempt_at = ?, claimed_at = NULL,"
        " updated_at = ? WHERE id = ? AND state = 'sending' RETURNING mention_id",
        (reason, now + delay_ms, now, item_id),
    ).fetchone()
    if r:
        _touch_mention(c, r[0])


def retry_sync(c: sqlite3.Connection, mention_id: int) -> int:
    """The operator asks again: failed items of a mention go back to pending, due now."""
    now = now_ms()
    n = c.execute(
        "UPDATE outbox SET state = 'pending', next_attempt_at = ?, updated_at = ? WHERE mention_id = ?"
        " AND state = 'failed'",
        (now, now, mention_id),
    ).rowcount
    if n:
        _touch_mention(c, mention_id)
    return n


def cancel_sync(c: sqlite3.Connection, mention_id: int) -> int:
    """The operator gives up on what has not left: failed and pending items (never one being sent)."""
    now = now_ms()
    n = c.execute(
        "UPDATE outbox SET state = 'cancelled', updated_at = ? WHERE mention_id = ? AND state IN ('failed', 'pending')",
        (now, mention_id),
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
            f"SELECT {COLUMNS} FROM outbox WHERE state = 'sent' AND target LIKE ? AND remote_id IS NOT NULL"
            " AND remote_id != ? AND coalesce(remote_status, '') != 'closed'"
            " AND coalesce(checked_at, 0) <= ?",
            (prefix + "%", DRY_RUN_URL, older_than),
        )
    ]


def next_due_sync(c: sqlite3.Connection) -> int | None:
    r = c.execute("SELECT min(next_attempt_at) FROM outbox WHERE state = 'pending'").fetchone()
    return r[0] if r else None


async def act(
    store: Store,
    watchlist: Watchlist,
    mention_id: int,
    kind: ActionKind,
    operator: str,
    payload: dict[str, Any],
    dry_run: bool = False,
    expect_status: Status | None = None,
) -> int:
    """Log an action and enqueue what it must deliver, in one transaction; returns the action id."""

    def enqueue(c: sqlite3.Connection, action_id: int) -> None:
        row = mention_sync(c, mention_id)  # read inside the transaction: one hop, and no stale row
        items = plan(watchlist, row, kind, payload, operator, dry_run, mention_raw_sync(c, mention_id))
        enqueue_sync(c, action_id, mention_id, items)

    return await store.act(mention_id, kind, operator, payload, then=enqueue, expect_status=expect_status)


class Outbox:
    """Async access through the store's single connection (every write one short transaction)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def claim(self, lease_ms: int, limit: int = 16, busy: Iterable[int] = ()) -> list[OutboxItem]:
        busy = tuple(busy)
        return await self.store._write(lambda c: claim_sync(c, now_ms(), lease_ms, limit, busy), "outbox:claim")

    async def mark_sent(self, item_id: int, remote_id: str | None, remote_url: str | None,
                        remote_status: str | None = None) -> None:  # fmt: skip
        await self.store._write(
            lambda c: mark_sent_sync(c, item_id, remote_id, remote_url, remote_status), "outbox:sent"
        )

    async def mark_failed(self, item_id: int, reason: str) -> None:
        await self.store._write(lambda c: mark_failed_sync(c, item_id, reason), "outbox:failed")

    async def retry_later(self, item_id: int, reason: str, delay_ms: int) -> None:
        await self.store._write(lambda c: retry_later_sync(c, item_id, reason, delay_ms), "outbox:later")

    async def retry(self, mention_id: int) -> int:
        return await self.store._write(lambda c: retry_sync(c, mention_id), "outbox:retry")

    async def cancel(self, mention_id: int) -> int:
        return await self.store._write(lambda c: cancel_sync(c, mention_id), "outbox:cancel")

    async def next_due(self) -> int | None:
        return await self.store._read(next_due_sync)

    async def to_check(self, prefix: str, older_than: int) -> list[OutboxItem]:
        return await self.store._read(lambda c: to_check_sync(c, prefix, older_than))

    async def set_remote_status(self, item_id: int, status: str, notes: str = "") -> None:
        await self.store._write(lambda c: set_remote_status_sync(c, item_id, status, notes), "outbox:status")


def pause_after_send() -> float:
    """Test hook (crash test): seconds to wait between the remote accepting and our commit."""
    try:
        return float(os.environ.get("MONITOR_TEST_PAUSE_AFTER_SEND", "0") or 0)
    except ValueError:
        return 0.0
