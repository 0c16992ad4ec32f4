"""The outbox data layer on both engines (a SQLite file, a PostgreSQL database): planning, the shared transaction,
claims and leases."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from monitor.core.config import ServiceTarget
from monitor.core.models import ActionKind, Spend
from monitor.core.timeutil import now_ms
from monitor.db import outbox
from monitor.db.pg import outbox as pg_outbox
from monitor.db.pg.mentions import Conn
from monitor.db.pg.store import PgStore
from monitor.db.store import StoreError
from monitor.engine import actions
from monitor.networks.bluesky.sender import tid
from tests.engines import AnyStore, raw_execute, stored_rows
from tests.fakes_delivery import bluesky_view, mastodon_status, payload_of, seed, watchlist


async def test_a_reply_answered_elsewhere_or_on_a_feed_enqueues_nothing(tmp_path: Path, database: AnyStore) -> None:
    store = database
    wl = watchlist(tmp_path)
    [m] = await seed(store, "masto", "mastodon", [mastodon_status(1)])
    await actions.act(store, wl, m, ActionKind.REPLY, "alice", {"text": "ok", "elsewhere": "phoned back"})
    [d] = await seed(store, "demo", "mastodon", [mastodon_status(2)])
    await actions.act(store, wl, d, ActionKind.REPLY, "alice", {"text": "ok"})  # demo, not dry-run
    await actions.act(store, wl, m, ActionKind.NOTE, "alice", {"text": "internal"})
    assert stored_rows(store, "outbox") == []


async def test_an_escalation_plans_one_item_per_target_with_distinct_keys(tmp_path: Path, database: AnyStore) -> None:
    store = database
    targets = (ServiceTarget("webhook", url="http://127.0.0.1:9/a"), ServiceTarget("apprise", url="json://x"))
    wl = watchlist(tmp_path, targets=targets)
    [m] = await seed(store, "masto", "mastodon", [mastodon_status(1)])
    await actions.act(store, wl, m, ActionKind.ESCALATE, "alice", {"service": "voirie", "note": ""})
    rows = stored_rows(store, "outbox")
    assert [r["target"] for r in rows] == ["service:voirie#0", "service:voirie#1"]
    assert len({r["idem_key"] for r in rows}) == 2
    assert all(r["state"] == "pending" and r["action_id"] == rows[0]["action_id"] for r in rows)


async def test_a_resolve_with_a_follow_up_plans_a_followup_reply(tmp_path: Path, database: AnyStore) -> None:
    store = database
    wl = watchlist(tmp_path)
    [b] = await seed(store, "sky", "bluesky", [bluesky_view(1)])
    await actions.act(store, wl, b, ActionKind.ESCALATE, "alice", {"service": "voirie"})
    await actions.act(store, wl, b, ActionKind.RESOLVE, "alice", {"note": "fixed", "reply": "C'est réparé"})
    [row] = stored_rows(store, "outbox")
    p = payload_of(row)
    assert row["kind"] == "followup" and p["text"] == "C'est réparé"
    assert p["parent"] == {"uri": bluesky_view(1)["uri"], "cid": bluesky_view(1)["cid"]}


async def test_the_action_and_its_items_commit_or_roll_back_together(tmp_path: Path, database: AnyStore) -> None:
    store = database
    wl = watchlist(tmp_path)
    [m] = await seed(store, "masto", "mastodon", [mastodon_status(1)])
    mention = await store.mention(m)

    items = actions.plan(wl, mention, ActionKind.REPLY, {"text": "x"}, "alice")

    def broken(c: sqlite3.Connection, action_id: int) -> None:
        outbox.enqueue_sync(c, action_id, m, items)
        raise StoreError("disk full")

    async def broken_pg(c: Conn, action_id: int) -> None:
        await pg_outbox.enqueue(c, action_id, m, items)
        raise StoreError("disk full")

    with pytest.raises(StoreError):
        if isinstance(store, PgStore):
            await store.act(m, ActionKind.REPLY, "alice", {"text": "x"}, then=broken_pg)
        else:
            await store.act(m, ActionKind.REPLY, "alice", {"text": "x"}, then=broken)
    assert stored_rows(store, "outbox") == [] and await store.actions(m) == []


async def test_a_claim_takes_due_items_once_and_a_dead_workers_items_after_the_lease(
    tmp_path: Path, database: AnyStore
) -> None:
    store = database
    wl = watchlist(tmp_path)
    [m] = await seed(store, "masto", "mastodon", [mastodon_status(1)])
    await actions.act(store, wl, m, ActionKind.REPLY, "alice", {"text": "x"})
    box = outbox.Outbox(store)
    [item] = await box.claim(lease_ms=60_000)
    assert (item.state, item.attempts) == ("sending", 1)
    assert await box.claim(lease_ms=60_000) == []  # leased
    assert await box.claim(lease_ms=0, busy=[item.id]) == []  # our own, still in flight
    [again] = await box.claim(lease_ms=0)  # a worker that never came back: taken over
    assert again.id == item.id and again.attempts == 2 and again.idem_key == item.idem_key


async def test_marks_only_apply_to_an_item_being_sent(tmp_path: Path, database: AnyStore) -> None:
    store = database
    wl = watchlist(tmp_path)
    [m] = await seed(store, "masto", "mastodon", [mastodon_status(1)])
    await actions.act(store, wl, m, ActionKind.REPLY, "alice", {"text": "x"})
    box = outbox.Outbox(store)
    [item] = await box.claim(lease_ms=60_000)
    assert await box.cancel(m) == 0  # never cancel what is on the wire
    rev = (await store.mention(m)).rev
    await box.retry_later(item.id, "timed out", 5_000)
    [row] = stored_rows(store, "outbox")
    assert row["state"] == "pending" and row["next_attempt_at"] >= now_ms() + 4_000
    assert (await store.mention(m)).rev > rev  # screens redraw the delivery state
    await box.mark_sent(item.id, "1", "https://x")  # stale: it is pending again, not ours to mark
    assert stored_rows(store, "outbox")[0]["state"] == "pending"


async def test_a_rate_limited_item_waits_uncounted_and_a_sent_one_adds_its_cost(
    tmp_path: Path, database: AnyStore
) -> None:
    store = database
    wl = watchlist(tmp_path)
    [m] = await seed(store, "masto", "mastodon", [mastodon_status(1)])
    await actions.act(store, wl, m, ActionKind.REPLY, "alice", {"text": "x"})
    box = outbox.Outbox(store)
    [item] = await box.claim(lease_ms=60_000)
    until = now_ms() + 60_000
    await box.defer(item.id, until)  # the network's rate limit: not a failed attempt
    [row] = stored_rows(store, "outbox")
    assert (row["state"], row["attempts"], row["next_attempt_at"]) == ("pending", 0, until)
    assert await box.claim(lease_ms=60_000) == []  # not due before then
    await raw_set_due(store, item.id)
    [item] = await box.claim(lease_ms=60_000)
    since = now_ms()
    await box.mark_sent(item.id, "1", "https://x", spend=("x", Spend("2026-11", writes_usd=0.015, writes=1)))
    assert [s.writes for s in await store.spend("2026-11")] == [1]  # in the same transaction as the mark
    assert len(await box.sent_since(item.target, since)) == 1 and await box.sent_since(item.target, now_ms() + 1) == []


async def raw_set_due(store: AnyStore, item_id: int) -> None:
    raw_execute(store, f"UPDATE outbox SET next_attempt_at = 0 WHERE id = {int(item_id)}")


def test_tids_are_13_sortable_base32_characters() -> None:
    a, b = tid(1_700_000_000_000_000, 0), tid(1_700_000_000_000_001, 0)
    assert len(a) == 13 and a < b and set(a) <= set("234567abcdefghijklmnopqrstuvwxyz")
    assert a[0] in "234567abcdefghij"  # the top bit is always 0
