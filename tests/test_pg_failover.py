"""A PostgreSQL desk through a server restart and a failover: its collector and deliverer reconnect by
themselves, show the outage as a state, and lose or double nothing.

Each test has clusters of its own (tests/pg_server.py): it restarts them, kills them and promotes a
streaming standby, which the session's shared server must never suffer. The collector reads a source that
serves numbered mentions after the stored cursor; the deliverer answers on a loopback Mastodon that
honours idempotency keys but counts every status it creates.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from monitor.core.config import Watchlist
from monitor.core.models import ActionKind, Batch, MatchResult, Mention, Priority, SourceState
from monitor.db.faults import StoreUnreachable
from monitor.db.pg.store import PgStore
from monitor.db.presence import Presence
from monitor.engine import actions
from monitor.engine.collector import Collector
from monitor.engine.delivery import DeliveryWorker
from monitor.engine.leader import run_as_leader
from tests.conftest import WAIT, wait_until
from tests.engines import stored_rows
from tests.fakes_delivery import TOKEN, FakeMastodon, mastodon_status, seed, serving
from tests.fakes_delivery import watchlist as delivery_watchlist
from tests.pg_server import Cluster, own_cluster, start_cluster, start_standby, stop_cluster

TOTAL = 240  # mentions the source serves in a shift, PER_POLL at a time
PER_POLL = 3
REPLIES = 8  # replies queued before the outage, as many after
MATCH = MatchResult(("toulouse",), Priority.NORMAL)


class Numbered:
    """A source of numbered mentions: the cursor is the last number served, as a real source's would be."""

    name = "numbered"

    def __init__(self, text: str) -> None:
        self.text = text
        self.served: set[str] = set()

    async def poll(self, cursor: str | None) -> Batch:
        start = int(cursor or 0)
        numbers = range(start + 1, min(start + PER_POLL, TOTAL) + 1)
        mentions = [self.mention(n) for n in numbers]
        self.served.update(m.remote_id for m in mentions)
        return Batch(mentions, str(numbers[-1]) if numbers else cursor)

    def mention(self, n: int) -> Mention:
        return Mention(
            source=self.name, remote_id=f"n{n:05d}", network="mastodon", author=f"@c{n}@piaille.fr",
            text=f"{self.text} ({n})", published_at=datetime(2026, 11, 30, 8, 0, tzinfo=UTC),
        )  # fmt: skip

    async def aclose(self) -> None:
        return None


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    yield from own_cluster()


class Shift:
    """`monitor collect` as a service, in this process: the collector and the deliverer under their leases."""

    def __init__(self, url: str, store: PgStore, watchlist: Watchlist, masto: FakeMastodon, tmp: Path) -> None:
        self.url, self.store, self.masto = url, store, masto
        self.source = Numbered("Nid de poule énorme avenue de Muret à Toulouse")
        self.collector = Collector(watchlist, store, sources=[self.source])
        self.collector._sleep = lambda s: asyncio.sleep(min(s, 0.05))  # poll again soon, back off briefly
        self.wl = delivery_watchlist(tmp, mastodon_url=masto.url)
        self.delivery = DeliveryWorker(store, self.wl, idle=0.05, lease=60.0)
        self.presence = Presence(store, "collector")
        self.collector.fence = self.presence.fence()
        self.replied: list[int] = []

    def status(self) -> Any:
        return self.collector.status[self.source.name]

    def stored(self) -> list[dict[str, Any]]:
        return [r for r in stored_rows(self.store, "mentions") if r["source"] == self.source.name]

    async def reply(self, mention_ids: list[int]) -> None:
        for mid in mention_ids:
            self.replied.append(
                await actions.act(self.store, self.wl, mid, ActionKind.REPLY, "alice", {"text": "Merci"})
            )
            self.delivery.wake()

    def check(self, mentions: list[int]) -> None:
        """Every mention served stored once, with the cursor of the last; every reply created once, sent."""
        rows = self.stored()
        assert sorted(r["remote_id"] for r in rows) == sorted(self.source.served)
        assert len(self.source.served) == TOTAL
        cursors = {r["source"]: r["cursor"] for r in stored_rows(self.store, "cursors")}
        assert cursors[self.source.name] == str(TOTAL)
        for n in range(len(mentions)):
            assert len(self.masto.created_for(str(110_000 + n))) == 1  # sent exactly once
        assert [r["state"] for r in stored_rows(self.store, "outbox")] == ["sent"] * len(mentions)
        assert len(stored_rows(self.store, "actions")) == len(mentions)  # no action doubled


@asynccontextmanager
async def running(shift: Shift) -> AsyncIterator[None]:
    tasks = [
        asyncio.create_task(run_as_leader(shift.presence, [shift.collector.run], renew_every=0.2, name="collector")),
        asyncio.create_task(run_as_leader(shift.presence, [shift.delivery.run], renew_every=0.2, name="delivery")),
    ]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def sent(shift: Shift) -> int:
    return sum(r["state"] == "sent" for r in await asyncio.to_thread(stored_rows, shift.store, "outbox"))


async def test_the_server_restarting_mid_shift_is_an_outage_then_nothing_is_lost_or_doubled(
    cluster: Cluster, tmp_path: Path, watchlist: Watchlist, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_MASTODON_TOKEN", TOKEN)
    url = cluster.url(cluster.new_database())
    store = await PgStore.open(url)
    async with serving(FakeMastodon()) as masto:
        masto.delay = (0.01, 0.05)
        shift = Shift(url, store, watchlist, masto, tmp_path)
        ids = await seed(store, "masto", "mastodon", [mastodon_status(n, host="127.0.0.1") for n in range(2 * REPLIES)])
        async with running(shift):
            await shift.reply(ids[:REPLIES])
            await wait_until(lambda: len(shift.source.served) >= TOTAL // 4, what="a quarter of the shift collected")
            await asyncio.to_thread(cluster.stop, "fast")  # sessions end mid-transaction, as in a real restart

            # The outage is a state: the source says the database cannot be reached, the store raises it.
            await wait_until(
                lambda: shift.status().state is SourceState.BACKOFF and "cannot be reached" in shift.status().detail,
                what="the collector shows the outage",
            )
            with pytest.raises(StoreUnreachable, match="cannot be reached"):
                await store.counts()
            served_while_down = len(shift.source.served)

            await asyncio.to_thread(cluster.start)
            await wait_until(lambda: reachable(store), what="the store reconnects")
            await shift.reply(ids[REPLIES:])  # the desk acts again once the server is back
            await wait_until(lambda: len(shift.source.served) >= TOTAL, what="the whole shift collected")
            await wait_until(lambda: _all_sent(shift, 2 * REPLIES), what="every reply sent")
            await wait_until(lambda: shift.status().state is SourceState.POLLING, what="the source healthy again")
        assert served_while_down < TOTAL  # the outage came mid-shift
        shift.check(ids)
    await store.close()


async def reachable(store: PgStore) -> bool:
    try:
        await store.counts()
    except StoreUnreachable:
        return False
    return True


async def _all_sent(shift: Shift, n: int) -> bool:
    return await sent(shift) == n


@pytest.fixture
def pair() -> Iterator[tuple[Cluster, Cluster]]:
    """A primary and its streaming standby, synchronous: a commit the primary acknowledged is on the standby."""
    primary = start_cluster()
    standby = None
    try:
        standby = start_standby(primary)
        primary.admin("ALTER SYSTEM SET synchronous_standby_names = '*'")
        primary.admin("SELECT pg_reload_conf()")
        yield primary, standby
    finally:
        for cluster in (standby, primary):
            if cluster is not None:
                stop_cluster(cluster)


def streaming(primary: Cluster) -> bool:
    with psycopg.connect(primary.url("postgres")) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'").fetchone()
    return bool(row and row[0])


async def test_the_primary_killed_and_its_standby_promoted_the_shift_goes_on_through_the_multi_host_url(
    pair: tuple[Cluster, Cluster], tmp_path: Path, watchlist: Watchlist, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_MASTODON_TOKEN", TOKEN)
    primary, standby = pair
    await wait_until(lambda: streaming(primary), what="the standby streams synchronously")
    name = primary.new_database()  # replicated: the standby has it too
    url = f"postgresql://{primary.user}@/{name}?host={primary.socket_dir},{standby.socket_dir}"
    url += "&target_session_attrs=read-write"
    store = await PgStore.open(url)
    async with serving(FakeMastodon()) as masto:
        masto.delay = (0.01, 0.05)
        shift = Shift(url, store, watchlist, masto, tmp_path)
        ids = await seed(store, "masto", "mastodon", [mastodon_status(n, host="127.0.0.1") for n in range(2 * REPLIES)])
        async with running(shift):
            await shift.reply(ids[:REPLIES])
            await wait_until(lambda: len(shift.source.served) >= TOTAL // 4, what="a quarter of the shift collected")
            acted_before = list(shift.replied)
            await asyncio.to_thread(primary.kill)  # the machine is gone: no shutdown, no last words
            await wait_until(
                lambda: "cannot be reached" in shift.status().detail, what="the collector shows the outage"
            )
            await asyncio.to_thread(standby.promote)
            await wait_until(lambda: reachable(store), what="the store reaches the new primary")
            await shift.reply(ids[REPLIES:])
            await wait_until(lambda: len(shift.source.served) >= TOTAL, what="the whole shift collected")
            await wait_until(lambda: _all_sent(shift, 2 * REPLIES), what="every reply sent")
        with psycopg.connect(url) as conn:  # the new primary is the standby
            row = conn.execute("SELECT pg_is_in_recovery(), current_setting('unix_socket_directories')").fetchone()
        assert row == (False, str(standby.socket_dir))
        actions_now = {r["id"] for r in stored_rows(store, "actions")}
        assert set(acted_before) <= actions_now  # what the old primary acknowledged survived it
        shift.check(ids)
    await store.close()


async def test_a_reply_the_network_accepted_while_the_server_restarts_is_recorded_then_not_sent_again(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("TEST_MASTODON_TOKEN", TOKEN)
    url = cluster.url(cluster.new_database())
    store = await PgStore.open(url)
    async with serving(FakeMastodon()) as masto:
        wl = delivery_watchlist(tmp_path, mastodon_url=masto.url)
        [mid] = await seed(store, "masto", "mastodon", [mastodon_status(0, host="127.0.0.1")])
        await actions.act(store, wl, mid, ActionKind.REPLY, "alice", {"text": "Merci"})

        async def server_goes(item: object) -> None:  # Mastodon has the reply; the database goes before we record it
            await asyncio.to_thread(cluster.stop, "fast")

        # A claim that outlives the test: only recording across the outage can mark it sent in time.
        worker = DeliveryWorker(store, wl, lease=3600.0, idle=0.05, after_send=server_goes)
        delivering = asyncio.create_task(worker.run_once())
        await wait_until(
            lambda: "sent, not yet recorded" in caplog.text or delivering.done(), what="the mark refused by the outage"
        )
        await asyncio.to_thread(cluster.start)
        assert await asyncio.wait_for(delivering, WAIT) == 1
        assert [r["state"] for r in stored_rows(store, "outbox")] == ["sent"]
        assert len(masto.created_for("110000")) == 1 and len(masto.statuses) == 1
        await worker.aclose()
    await store.close()


async def test_a_lease_renewal_that_cannot_reach_the_server_leaves_the_duties_running(
    cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    """They show the outage and resume by themselves; stopping them would hide it (and drop a reply being
    recorded). Had another process taken the lease meanwhile, its fence would refuse their writes."""
    store = await PgStore.open(cluster.url(cluster.new_database()))
    presence = Presence(store, "collector")
    starts: list[int] = []
    cancelled = asyncio.Event()

    async def duty() -> None:
        starts.append(1)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    leading = asyncio.create_task(run_as_leader(presence, [duty], renew_every=0.05))
    await wait_until(lambda: starts, what="the duty started")
    await asyncio.to_thread(cluster.stop, "fast")
    await wait_until(lambda: caplog.text.count("lease renewal failed") >= 3, what="renewals failing")
    assert not cancelled.is_set()
    await asyncio.to_thread(cluster.start)
    await wait_until(lambda: reachable(store), what="the server is back")
    assert starts == [1] and not cancelled.is_set()
    assert await presence.lease_holder("collector") is not None  # renewed again
    leading.cancel()
    await asyncio.gather(leading, return_exceptions=True)
    await store.close()
