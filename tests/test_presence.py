"""Several operators on one database (a SQLite file, or PostgreSQL through `db_target`/`database`): the collector
lease, who is on duty, and who is replying."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path

import pytest

from monitor.db.engines import open_database
from monitor.db.presence import (
    CLAIM_TTL_MS,
    LEASE_TTL_MS,
    LeaseLost,
    Presence,
    acquire_lease_sync,
    check_lease_sync,
    release_on_hangup,
)
from monitor.db.store import Store, open_sync
from monitor.engine.leader import run_as_leader
from tests.conftest import wait_until
from tests.engines import AnyStore, raw_execute


def test_lease_is_exclusive_until_it_expires(tmp_path: Path) -> None:
    c = open_sync(tmp_path / "m.db")
    assert acquire_lease_sync(c, "collector", "a", now=1_000)
    assert not acquire_lease_sync(c, "collector", "b", now=1_000 + LEASE_TTL_MS - 1)
    assert acquire_lease_sync(c, "collector", "a", now=2_000)  # renewal
    assert acquire_lease_sync(c, "collector", "b", now=2_000 + LEASE_TTL_MS + 1)  # a stopped renewing
    with pytest.raises(LeaseLost):
        check_lease_sync(c, "collector", "a", now=2_000 + LEASE_TTL_MS + 2)
    check_lease_sync(c, "collector", "b", now=2_000 + LEASE_TTL_MS + 2)


async def test_only_one_leader_runs_the_jobs_and_another_takes_over(db_target: str | Path) -> None:
    stores = [await open_database(db_target) for _ in range(2)]
    a, b = Presence(stores[0], "alice", "host:1"), Presence(stores[1], "bob", "host:2")
    running: list[str] = []

    def job(name: str):  # type: ignore[no-untyped-def]
        async def run() -> None:
            running.append(name)
            try:
                await asyncio.Event().wait()
            finally:
                running.remove(name)

        return run

    refused = 0  # b's attempts to take the lease that found it held

    async def b_acquire(name: str = "collector") -> bool:
        nonlocal refused
        held = await type(b).acquire(b, name)  # the engine's own
        refused += not held
        return held

    b.acquire = b_acquire  # type: ignore[method-assign]
    ta = asyncio.create_task(run_as_leader(a, [job("a")], renew_every=0.05))
    await wait_until(lambda: running == ["a"])
    tb = asyncio.create_task(run_as_leader(b, [job("b")], renew_every=0.05))
    await wait_until(lambda: refused >= 5)  # b has tried, again and again, while a holds the lease
    assert running == ["a"]
    ta.cancel()  # a leaves cleanly and releases the lease
    await asyncio.gather(ta, return_exceptions=True)
    await wait_until(lambda: running == ["b"])
    tb.cancel()
    await asyncio.gather(tb, return_exceptions=True)
    for s in stores:
        await s.close()


async def test_a_lease_taken_by_an_acquire_in_flight_when_cancelled_is_given_back(database: AnyStore) -> None:
    store = database
    taken = asyncio.Event()

    class Interrupted(type(Presence(store, "x"))):  # type: ignore[misc]  # the engine's own Presence
        async def acquire(self, name: str = "collector") -> bool:
            held = await super().acquire(name)  # the write commits...
            taken.set()
            await asyncio.Event().wait()  # ...and the app quits before the caller hears of it
            return held

    follower = Interrupted(store, "bob", "host:2")
    task = asyncio.create_task(run_as_leader(follower, [], renew_every=0.05))
    await wait_until(taken.is_set)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert await follower.lease_holder() is None  # not left for others to wait out


async def test_on_duty_lists_operators_with_an_open_app(database: AnyStore) -> None:
    store = database
    alice, bob = Presence(store, "alice", "h:1"), Presence(store, "bob", "h:2")
    await alice.heartbeat()
    await bob.heartbeat()
    assert await alice.on_duty() == ["alice", "bob"]
    await bob.leave()
    assert await alice.on_duty() == ["alice"]
    later = Presence(store, "bob", "h:3")
    assert await later.last_left() is not None


async def test_a_claim_is_seen_by_others_taken_over_explicitly_and_expires(database: AnyStore) -> None:
    from tests.test_store import MATCH, mention

    store = database
    await store.ingest("demo", [(mention(1), MATCH)], "1")
    alice, bob = Presence(store, "alice", "h:1"), Presence(store, "bob", "h:2")
    assert await alice.claim(1) is None
    assert (await store.mention(1)).rev > 1  # every open app redraws the row
    theirs = await bob.claim(1)
    assert theirs is not None and theirs.operator == "alice"
    assert (await bob.claims())[1].operator == "alice"
    assert await bob.claim(1, take_over=True) is None
    assert (await alice.claims())[1].operator == "bob"
    raw_execute(store, f"UPDATE claims SET heartbeat_at = heartbeat_at - {CLAIM_TTL_MS + 1}")
    assert await alice.claims() == {}
    assert await alice.claim(1) is None  # an expired claim can be taken without asking
    await alice.unclaim(1)
    assert await bob.claims() == {}


async def test_a_fenced_ingest_is_refused_once_another_process_holds_the_lease(database: AnyStore) -> None:
    from tests.test_store import MATCH, mention

    store = database

    me, other = Presence(store, "alice", "host:1"), Presence(store, "bob", "host:2")
    assert await me.acquire()
    assert await store.ingest("demo", [(mention(1), MATCH)], "1", fence=me.fence()) == 1
    await me.release()
    assert await other.acquire()
    with pytest.raises(LeaseLost, match="host:2"):
        await store.ingest("demo", [(mention(2), MATCH)], "2", fence=me.fence())
    assert await store.cursor("demo") == "1" and await store.max_rev() == 1  # nothing of the refused write


def holdings(db: Path, holder: str) -> tuple[int, int, int]:
    """This holder's open sessions, claims and leases."""
    c = sqlite3.connect(db)
    try:
        return tuple(  # type: ignore[return-value]
            c.execute(sql, (holder,)).fetchone()[0]
            for sql in (
                "SELECT count(*) FROM sessions WHERE holder = ? AND ended_at IS NULL",
                "SELECT count(*) FROM claims WHERE holder = ?",
                "SELECT count(*) FROM leases WHERE holder = ?",
            )
        )
    finally:
        c.close()


async def test_a_hang_up_releases_session_claims_and_leases_through_its_own_connection(tmp_path: Path) -> None:
    from tests.test_store import MATCH, mention

    db = tmp_path / "m.db"
    store = await Store.open(db)
    try:
        await store.ingest("demo", [(mention(1), MATCH)], "1")
        gone, staying = Presence(store, "alice", "host:1"), Presence(store, "bob", "host:2")
        for p in (gone, staying):
            await p.heartbeat()
        assert await gone.acquire() and await gone.claim(1) is None
        assert holdings(db, "host:1") == (1, 1, 1)
        release_on_hangup(db, "host:1", timeout_s=5.0)
        assert holdings(db, "host:1") == (0, 0, 0)
        assert holdings(db, "host:2") == (1, 0, 0)  # another process's session is not touched
    finally:
        await store.close()


def test_a_hang_up_on_a_locked_database_leaves_the_claims_to_expire(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "m.db"
    c = open_sync(db)
    acquire_lease_sync(c, "collector", "host:1", now=1_000)
    c.execute("BEGIN IMMEDIATE")  # another process holds the write lock past the release's timeout
    try:
        with caplog.at_level(logging.WARNING):
            release_on_hangup(db, "host:1", timeout_s=0.05)
    finally:
        c.execute("ROLLBACK")
    assert "could not release on hang-up" in caplog.text
    assert holdings(db, "host:1") == (0, 0, 1)
    c.close()
