"""The PostgreSQL store's connection: bounded, spaced out, listening again after a restart; an operator's
write through a restart or a lost COMMIT, on the desk itself, committed once or clearly refused.

Each test that stops a server has a cluster of its own.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from monitor.core.config import Watchlist
from monitor.core.models import ActionKind
from monitor.db.faults import CommitUnknown, StoreUnreachable
from monitor.db.pg import connect as pg_connect
from monitor.db.pg import link as link_module
from monitor.db.pg.store import PgStore
from monitor.db.writekey import ATTEMPT, Attempt
from monitor.engine import actions
from tests.conftest import WAIT, record_notices, wait_until
from tests.engines import stored_rows
from tests.fakes_delivery import mastodon_status, seed
from tests.fakes_delivery import watchlist as delivery_watchlist
from tests.pg_server import Cluster, own_cluster
from tests.test_app import make_app, selected
from tests.test_pg_failover import MATCH, Numbered, reachable
from tests.test_storage_faults import dismiss


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    yield from own_cluster()


async def lose_commit_replies(store: PgStore, monkeypatch: pytest.MonkeyPatch, writes_only: bool = False) -> None:
    """Every transaction on the store's connection commits, then its answer is lost with the connection
    (`writes_only`: only an operator's keyed write's, not the desk's reads)."""
    conn = await store._link.get()
    real = conn.transaction

    @asynccontextmanager
    async def reply_lost(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        async with real(*args, **kwargs) as tx:
            yield tx
        if not writes_only or ATTEMPT.get() is not None:
            await conn.close()  # committed; the answer never arrives
            raise psycopg.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(conn, "transaction", reply_lost)


async def test_an_operators_write_whose_commit_reply_was_lost_is_made_once_on_retry(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection drops after the server committed, before the client heard: the app retries the same
    accepted action (the same key), which must find it done rather than act (and queue a reply) twice; and
    while the server stays away, a refusal must not claim that nothing was saved."""
    store = await PgStore.open(cluster.url(cluster.new_database()))
    wl = delivery_watchlist(tmp_path)
    [mid] = await seed(store, "masto", "mastodon", [mastodon_status(1, host="127.0.0.1")])
    await lose_commit_replies(store, monkeypatch)
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


# -- the desk: an action accepted while the server restarts ------------------------------------------------


@pytest.fixture
def desk_on(cluster: Cluster) -> str:
    """A database of its own on the cluster the test restarts, for the desk to open."""
    return cluster.url(cluster.new_database())


def dismissals(url: str, mention_id: int) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM actions WHERE mention_id = %s AND kind = 'dismiss'", (mention_id,)
        ).fetchone()
    return int(row[0]) if row else 0


async def test_a_dismissal_accepted_while_the_server_restarts_says_saving_then_commits_once(
    cluster: Cluster, desk_on: str, watchlist: Watchlist
) -> None:
    app = make_app(watchlist, db_path=desk_on)
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
    app = make_app(watchlist, db_path=desk_on)
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


async def test_a_dismissal_whose_commit_reply_was_lost_says_maybe_saved_not_refused(
    cluster: Cluster, desk_on: str, watchlist: Watchlist, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given up on after a COMMIT whose answer never came: the operator is told to check, never "Not saved"
    (acting again would do it twice); and it was indeed saved, once."""
    app = make_app(watchlist, db_path=desk_on)
    async with app.run_test(size=(80, 24)) as pilot:
        _, target = await selected(pilot)
        notices = record_notices(app)
        app.save_give_up_s = 0.0
        store = app.store
        assert isinstance(store, PgStore)
        await lose_commit_replies(store, monkeypatch, writes_only=True)
        await dismiss(pilot)
        await wait_until(lambda: any(n.startswith("Maybe saved") for n in notices), what="the notice")
        assert not any(n.startswith("Not saved") for n in notices)
        assert dismissals(desk_on, target.id) == 1
        await pilot.pause()
