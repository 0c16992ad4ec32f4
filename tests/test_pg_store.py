"""What PostgreSQL does with row locks where SQLite locks the whole file: each pinned with a second connection
holding a lock at a known moment, so the interleaving is forced, not hoped for."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import psycopg
import pytest

from monitor.core.dburl import describe
from monitor.core.models import ActionKind, MatchResult, Mention, Priority, Status
from monitor.db import outbox
from monitor.db.api import Conflict, Fence, LeaseLost
from monitor.db.leases import LEASE_TTL_MS
from monitor.db.pg.leases import acquire_lease, check_lease
from monitor.db.pg.store import PgStore
from monitor.db.presence import Presence
from monitor.engine import actions
from tests.conftest import WAIT, wait_until
from tests.fakes_delivery import mastodon_status, seed, watchlist

MATCH = MatchResult(("ville",), Priority.NORMAL)


def mention(i: int) -> Mention:
    return Mention(
        source="demo", remote_id=f"r{i}", network="mastodon", author=f"@a{i}", text=f"texte {i}",
        published_at=datetime(2026, 11, 1, 12, 0, tzinfo=UTC),
    )  # fmt: skip


async def waiting_on_a_lock(url: str) -> bool:
    """Whether some other session of this database waits for a row lock right now."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        row = await cur.fetchone()
    return bool(row and row[0])


async def test_an_action_waits_for_the_other_operators_and_is_refused_as_stale(pg_url: str) -> None:
    store = await PgStore.open(pg_url)
    try:
        await store.ingest("demo", [(mention(1), MATCH)], "1")
        async with await psycopg.AsyncConnection.connect(pg_url) as other:  # another operator, mid-transaction
            await other.execute("SELECT status FROM mentions WHERE id = 1 FOR UPDATE")
            await other.execute("UPDATE mentions SET status = 'dismissed' WHERE id = 1")
            mine = asyncio.create_task(store.act(1, ActionKind.RESOLVE, "alice", expect_status=Status.NEW))
            await wait_until(lambda: waiting_on_a_lock(pg_url), what="the action waits on the row lock")
            assert not mine.done()
            await other.commit()
        with pytest.raises(Conflict, match="dismissed"):
            await mine
        assert await store.actions(1) == []
    finally:
        await store.close()


async def test_a_claim_skips_what_another_worker_is_claiming_without_waiting(tmp_path, pg_url: str) -> None:  # type: ignore[no-untyped-def]
    store = await PgStore.open(pg_url)
    try:
        wl = watchlist(tmp_path)
        ids = await seed(store, "masto", "mastodon", [mastodon_status(i) for i in (1, 2, 3)])
        for m in ids:
            await actions.act(store, wl, m, ActionKind.REPLY, "alice", {"text": "x"})
        async with await psycopg.AsyncConnection.connect(pg_url) as other:  # another machine's worker, mid-claim
            cur = await other.execute("SELECT id FROM outbox ORDER BY id LIMIT 2 FOR UPDATE")
            theirs = {r[0] for r in await cur.fetchall()}
            mine = await outbox.Outbox(store).claim(lease_ms=60_000)
            await other.rollback()
        assert len(theirs) == 2 and [i.id for i in mine] != [] and not {i.id for i in mine} & theirs
    finally:
        await store.close()


async def test_two_processes_racing_for_a_free_lease_get_one_holder(pg_url: str) -> None:
    stores = [await PgStore.open(pg_url) for _ in range(4)]
    try:
        won = await asyncio.gather(*(Presence(s, "collector", f"host:{i}").acquire() for i, s in enumerate(stores)))
        assert sorted(won) == [False, False, False, True]
    finally:
        for s in stores:
            await s.close()


async def test_a_fenced_ingest_from_a_former_holder_is_refused(pg_url: str) -> None:
    store = await PgStore.open(pg_url)
    try:
        old, new = Presence(store, "collector", "host:1"), Presence(store, "collector", "host:2")
        assert await old.acquire()
        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
            await conn.execute("UPDATE leases SET expires_at = 0")  # host:1 stopped renewing
        assert await new.acquire()
        with pytest.raises(LeaseLost, match="host:2"):
            await store.ingest("demo", [(mention(1), MATCH)], "1", fence=Fence("collector", "host:1"))
        assert await store.cursor("demo") is None and await store.max_rev() == 0
        await store.ingest("demo", [(mention(1), MATCH)], "1", fence=new.fence())
        assert await store.cursor("demo") == "1"
    finally:
        await store.close()


async def test_revs_become_visible_in_order(pg_url: str) -> None:
    """A writer holding rev r+1 uncommitted makes the next writer wait: a reader never sees r+2 before r+1."""
    store, other_store = await PgStore.open(pg_url), await PgStore.open(pg_url)
    try:
        await store.ingest("demo", [(mention(1), MATCH), (mention(2), MATCH)], "2")
        async with await psycopg.AsyncConnection.connect(pg_url) as slow:
            await slow.execute("UPDATE rev_counter SET rev = rev + 1")  # a write in progress
            fast = asyncio.create_task(other_store.act(2, ActionKind.NOTE, "bob", {"text": "vu"}))
            await wait_until(lambda: waiting_on_a_lock(pg_url), what="the second writer waits its turn")
            assert [r.id for r in await store.changes_since(2)] == []
            await slow.rollback()
        await fast
        assert [r.id for r in await store.changes_since(2)] == [2]
    finally:
        await store.close()
        await other_store.close()


def test_messages_name_the_server_never_a_password() -> None:
    assert describe("postgresql://desk@db.example:5433/monitor") == "postgresql://desk@db.example:5433/monitor"
    assert describe("postgresql://desk:hunter2@db.example/monitor") == "postgresql://desk@db.example/monitor"
    assert describe("postgresql:///monitor?host=/run/pg") == "postgresql://[/run/pg]/monitor"


async def test_a_lease_is_exclusive_until_it_expires(pg_url: str) -> None:
    store = await PgStore.open(pg_url)

    async def acquire(holder: str, now: int) -> bool:
        return await store.write(lambda c: acquire_lease(c, "collector", holder, now), "lease")

    try:
        assert await acquire("a", 1_000)
        assert not await acquire("b", 1_000 + LEASE_TTL_MS - 1)
        assert await acquire("a", 2_000)  # renewal
        assert await acquire("b", 2_000 + LEASE_TTL_MS + 1)  # a stopped renewing
        with pytest.raises(LeaseLost, match="held by b"):
            await store.write(lambda c: check_lease(c, "collector", "a"), "fence")
        await store.write(lambda c: check_lease(c, "collector", "b"), "fence")
    finally:
        await store.close()


async def test_a_connection_the_server_dropped_is_opened_again_by_the_next_call(pg_url: str) -> None:
    """The server is up: the dead connection is found at BEGIN, nothing was sent, so a new one serves the call
    (an outage is shown only while the server cannot be reached: tests/test_pg_failover.py)."""
    store = await PgStore.open(pg_url)
    try:
        await store.ingest("demo", [(mention(1), MATCH)], "1")
        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as admin:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
                " AND application_name = 'monitor'"
            )
        assert (await store.counts())[Status.NEW] == 1  # not "unavailable": a new connection
        await store.act(1, ActionKind.RESOLVE, "alice", expect_status=Status.NEW)
        assert (await store.mention(1)).status is Status.DONE
    finally:
        await store.close()


async def test_a_commit_in_another_process_wakes_a_waiting_screen_by_notification(pg_url: str) -> None:
    mine, theirs = await PgStore.open(pg_url), await PgStore.open(pg_url)
    try:
        await theirs.ingest("demo", [(mention(1), MATCH)], "1")
        assert await mine.wait_change(after=0, within=3600) == 1  # already past: no notification needed
        waiting = asyncio.create_task(mine.wait_change(after=1, within=3600))  # only a notification ends it
        await wait_until(lambda: mine._listener.usable, what="the listener is open")
        await theirs.act(1, ActionKind.NOTE, "bob", {"text": "vu"})
        assert await asyncio.wait_for(waiting, WAIT) == 2
        rolled_back = asyncio.create_task(mine.wait_change(after=2, within=3600))
        with pytest.raises(Conflict):  # refused: rolled back, so nobody is told of it
            await theirs.act(1, ActionKind.RESOLVE, "bob", expect_status=Status.DONE)
        await theirs.act(1, ActionKind.RESOLVE, "bob")
        assert await asyncio.wait_for(rolled_back, WAIT) == 3
    finally:
        await mine.close()
        await theirs.close()
