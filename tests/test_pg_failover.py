"""A PostgreSQL desk through a server restart and a failover: its collector and deliverer reconnect by
themselves, show the outage as a state, and lose or double nothing.

Each test has clusters of its own (tests/pg_server.py): it restarts them, kills them and promotes a
streaming standby, which the session's shared server must never suffer. The collector reads a source that
serves numbered mentions after the stored cursor; the deliverer answers on a loopback Mastodon that
honours idempotency keys but counts every status it creates.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from monitor.core.config import Watchlist
from monitor.core.models import ActionKind, Batch, MatchResult, Mention, Priority, SourceState
from monitor.db.faults import CommitUnknown, StoreUnreachable
from monitor.db.pg import connect as pg_connect
from monitor.db.pg import link as link_module
from monitor.db.pg.store import PgStore
from monitor.db.presence import Presence
from monitor.db.writekey import ATTEMPT, Attempt
from monitor.engine import actions
from monitor.engine.collector import Collector
from monitor.engine.delivery import DeliveryWorker
from monitor.engine.leader import run_as_leader
from monitor.ui import app as app_module
from tests.conftest import WAIT, record_notices, wait_until
from tests.engines import stored_rows
from tests.fakes_delivery import TOKEN, FakeMastodon, mastodon_status, seed, serving
from tests.fakes_delivery import watchlist as delivery_watchlist
from tests.pg_server import Cluster, start_cluster, start_standby, stop_cluster
from tests.test_app import make_app, selected
from tests.test_storage_faults import dismiss

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
    own = start_cluster()
    try:
        yield own
    finally:
        stop_cluster(own)


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


async def test_an_operators_write_whose_commit_reply_was_lost_is_made_once_on_retry(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection drops after the server committed, before the client heard: the app retries the same
    accepted action (the same key), which must find it done rather than act (and queue a reply) twice; and
    while the server stays away, a refusal must not claim that nothing was saved."""
    store = await PgStore.open(cluster.url(cluster.new_database()))
    wl = delivery_watchlist(tmp_path)
    [mid] = await seed(store, "masto", "mastodon", [mastodon_status(1, host="127.0.0.1")])
    conn = await store._link.get()
    real = conn.transaction

    @asynccontextmanager
    async def reply_lost(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        async with real(*args, **kwargs) as tx:
            yield tx
        await conn.close()  # committed; the answer never arrives
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(conn, "transaction", reply_lost)
    key = Attempt().key

    async def attempt() -> int:  # as MonitorApp._save runs each attempt: under the accepted action's key
        ATTEMPT.set(Attempt(key))
        return await actions.act(store, wl, mid, ActionKind.REPLY, "alice", {"text": "Merci"})

    with pytest.raises(CommitUnknown, match="dropped during the commit: it may have been saved"):
        await asyncio.create_task(attempt())
    monkeypatch.undo()
    await asyncio.to_thread(cluster.stop, "fast")
    with pytest.raises(CommitUnknown, match="cannot be reached.*an earlier attempt may have been saved"):
        await asyncio.create_task(attempt())
    await asyncio.to_thread(cluster.start)
    await wait_until(lambda: reachable(store), what="the server is back")
    first = await asyncio.create_task(attempt())  # a new connection: the retry finds its key committed
    assert len(stored_rows(store, "actions")) == 1
    assert [(r["id"], r["state"]) for r in stored_rows(store, "outbox")] == [(1, "pending")]
    assert first == stored_rows(store, "actions")[0]["id"]
    other = await actions.act(store, wl, mid, ActionKind.NOTE, "alice", {"text": "vu"})  # no key: a new write
    assert other != first and len(stored_rows(store, "actions")) == 2
    await store.close()


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


# -- the desk: an action accepted while the server restarts ------------------------------------------------


@pytest.fixture
def desk_on(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> str:
    """The desk opens PostgreSQL where it would open its SQLite file (until `monitor run` selects it itself)."""
    url = cluster.url(cluster.new_database())

    class OnServer:
        @staticmethod
        async def open(path: Path) -> PgStore:
            return await PgStore.open(url)

    monkeypatch.setattr(app_module, "Store", OnServer)
    return url


def dismissals(url: str, mention_id: int) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM actions WHERE mention_id = %s AND kind = 'dismiss'", (mention_id,)
        ).fetchone()
    return int(row[0]) if row else 0


async def test_a_dismissal_accepted_while_the_server_restarts_says_saving_then_commits_once(
    cluster: Cluster, desk_on: str, watchlist: Watchlist
) -> None:
    app = make_app(watchlist)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, target = await selected(pilot)
        await asyncio.to_thread(cluster.stop, "fast")
        await dismiss(pilot)
        await wait_until(lambda: "saving 1 action" in app.storage_state and "unavailable" in app.storage_state)
        assert "saving 1 action" in str(screen.title)
        await asyncio.to_thread(cluster.start)
        await wait_until(lambda: app.pending_saves == 0 and not app.storage_state, what="the action committed")
        assert dismissals(desk_on, target.id) == 1
        await pilot.pause()


async def test_a_dismissal_while_the_server_is_down_past_the_limit_is_refused_and_never_written(
    cluster: Cluster, desk_on: str, watchlist: Watchlist
) -> None:
    app = make_app(watchlist)
    async with app.run_test(size=(80, 24)) as pilot:
        _, target = await selected(pilot)
        notices = record_notices(app)
        app.save_give_up_s = 0.0
        await asyncio.to_thread(cluster.stop, "fast")
        await dismiss(pilot)
        await wait_until(lambda: any(n.startswith("Not saved") for n in notices), what="the refusal")
        assert any("cannot be reached" in n for n in notices if n.startswith("Not saved"))
        assert app.is_running
        await asyncio.to_thread(cluster.start)
        await wait_until(lambda: not app.pending_saves)
        assert dismissals(desk_on, target.id) == 0
        await pilot.pause()


# -- the store's connection: bounded, spaced out, listening again --------------------------------------------


async def test_a_server_that_accepts_but_never_answers_is_an_outage_within_the_connect_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A dead host behind a live network (no RST) must not hold the desk's writes for minutes."""
    monkeypatch.setattr(pg_connect, "CONNECT_TIMEOUT_S", 1)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # the kernel completes the handshake; nothing ever answers libpq's startup packet
    try:
        url = f"postgresql://desk@127.0.0.1:{silent.getsockname()[1]}/monitor"
        with pytest.raises(StoreUnreachable, match="cannot be reached"):
            await asyncio.wait_for(PgStore.open(url), WAIT)
    finally:
        silent.close()


async def test_an_unreachable_server_is_asked_again_after_a_bounded_pause_not_on_every_call(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[str] = []
    real = link_module.connect

    async def counted(url: str) -> Any:
        attempts.append(url)
        return await real(url)

    monkeypatch.setattr(link_module, "connect", counted)
    link = link_module.Link(f"postgresql://desk@/monitor?host={tmp_path}")  # no server in that folder
    now = [1000.0]
    link.clock = lambda: now[0]

    async def next_attempt() -> float:
        """How far the clock moves before the link asks the server again; every call in between fails."""
        before, start = len(attempts), now[0]
        while len(attempts) == before:
            with pytest.raises(StoreUnreachable, match="cannot be reached"):
                await link.get()
            now[0] += 0.05
        return round(now[0] - 0.05 - start, 2)

    assert await next_attempt() == 0.0  # the first call asks at once
    pauses = [await next_attempt() for _ in range(6)]
    assert pauses == [0.25, 0.5, 1.0, 2.0, 4.0, 4.0]  # doubled, up to the bound
    link.url = pg_url  # the server is back (here: found at another address)
    now[0] += link_module.MAX_RETRY_S
    conn = await link.get()
    assert (await link.get()) is conn and len(attempts) == 8  # kept: the next call asks nobody
    await link.close()


async def test_a_screen_waiting_for_commits_listens_again_after_the_server_restarted(cluster: Cluster) -> None:
    """A notification missed during the outage only delays: the rev is read again after LISTEN."""
    url = cluster.url(cluster.new_database())
    mine, theirs = await PgStore.open(url), await PgStore.open(url)
    numbered = Numbered("Toulouse")
    await theirs.ingest(numbered.name, [(numbered.mention(1), MATCH)], "1")
    waiting = asyncio.create_task(mine.wait_change(after=1, within=3600))
    await wait_until(lambda: listening(url), what="the screen listens")
    await asyncio.to_thread(cluster.stop, "fast")
    with pytest.raises(StoreUnreachable):
        await asyncio.wait_for(waiting, WAIT)  # the outage is told, not a wait that never ends
    await asyncio.to_thread(cluster.start)
    await wait_until(lambda: reachable(theirs), what="the server is back")
    await theirs.ingest(numbered.name, [(numbered.mention(2), MATCH)], "2")  # while nobody listened
    assert await asyncio.wait_for(mine.wait_change(after=1, within=3600), WAIT) == 2
    waiting = asyncio.create_task(mine.wait_change(after=2, within=3600))  # only a notification ends it
    await wait_until(lambda: listening(url), what="the screen listens again")
    await theirs.ingest(numbered.name, [(numbered.mention(3), MATCH)], "3")
    assert await asyncio.wait_for(waiting, WAIT) == 3
    await mine.close()
    await theirs.close()


def listening(url: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN %%'"
            " AND application_name = 'monitor'"
        ).fetchone()
    return bool(row and row[0])


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
