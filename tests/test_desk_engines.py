"""The duty desk on either engine: one database target (a SQLite file or a postgresql:// URL) and every key works
the same way. What the keys committed is read back through a second store, as another process would."""

from __future__ import annotations

import asyncio
import csv
import itertools
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from monitor.core.config import Watchlist
from monitor.core.models import ActionKind, Status
from monitor.db import presence
from monitor.db.api import Database
from monitor.db.engines import open_database
from monitor.db.pg.store import PgStore
from monitor.db.presence import Presence
from monitor.networks import SourceContext
from monitor.ui.app import MonitorApp
from monitor.ui.screens import main as main_screen
from monitor.ui.screens.dialogs import ComposeDialog
from monitor.ui.screens.main import MainScreen
from tests.conftest import WAIT, record_notices, wait_for
from tests.test_app import selected, started
from tests.test_store import MATCH, mention


def desk(watchlist: Watchlist, target: str | Path, operator: str = "alice", **kwargs: Any) -> MonitorApp:
    kwargs.setdefault("context", SourceContext(replay_all=True))
    return MonitorApp(watchlist, db_path=target, operator=operator, **kwargs)


@pytest.fixture
async def other(db_target: str | Path) -> AsyncIterator[Database]:
    """The same database, opened apart from the app: what another process would read and write."""
    store = await open_database(db_target)
    yield store
    await store.close()


async def kinds(store: Database, mention_id: int) -> list[str]:
    return [a.kind for a in await store.actions(mention_id)]


async def test_the_desk_opens_on_either_engine_and_shows_the_mentions(
    watchlist: Watchlist, db_target: str | Path, other: Database
) -> None:
    app = desk(watchlist, db_target)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await started(pilot, 5)  # "Toulouse FC" is excluded
        assert screen.pane().mentions[screen.pane().ids()[0]].text.startswith("Accident")
        assert (await other.counts())[Status.NEW] == 5
        assert app.storage_state == ""
    assert isinstance(db_target, Path) or not watchlist.database.exists()  # no SQLite file on the side


async def test_reply_escalate_dismiss_and_undo_commit_on_either_engine(
    watchlist: Watchlist, db_target: str | Path, other: Database
) -> None:
    app = desk(watchlist, db_target)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, first = await selected(pilot)
        await pilot.press("d", "j", "enter")  # dismissed as off-topic
        await wait_for(pilot, lambda: screen.pane(Status.NEW).row_count == 4)
        second = screen.current_row()
        assert second is not None
        await pilot.press("e", "enter", *"equipe sur place", "enter")
        await wait_for(pilot, lambda: screen.pane(Status.NEW).row_count == 3)
        third = screen.current_row()
        assert third is not None
        await pilot.press("r", "ctrl+t", "enter", "ctrl+s")  # the first template
        await wait_for(pilot, lambda: screen.pane(Status.NEW).row_count == 2)
        await pilot.press("3")  # Done: the reply is undone from there
        await wait_for(pilot, lambda: screen.pane().status is Status.DONE and screen.pane().row_count == 1)
        await pilot.press("u")
        await wait_for(pilot, lambda: screen.pane(Status.NEW).row_count == 3)

    assert (await other.mention(first.id)).status is Status.DISMISSED
    assert [(a.kind, a.payload) for a in await other.actions(first.id)] == [("dismiss", {"reason": "off-topic"})]
    [escalation] = await other.actions(second.id)
    assert (escalation.kind, escalation.payload["note"]) == ("escalate", "equipe sur place")
    assert (await other.mention(second.id)).status is Status.ESCALATED
    assert await kinds(other, third.id) == ["reply", "reopen"]
    assert (await other.mention(third.id)).status is Status.NEW


async def test_a_read_only_desk_on_either_engine_writes_nothing(
    watchlist: Watchlist, db_target: str | Path, other: Database
) -> None:
    app = desk(watchlist, db_target, read_only=True)
    seen = record_notices(app)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, target = await selected(pilot)
        await pilot.press("d")
        await wait_for(pilot, lambda: "Read-only: no actions." in seen)
        assert isinstance(app.screen, MainScreen) and screen.pane(Status.NEW).row_count == 5
    assert (await other.counts())[Status.NEW] == 5  # collected into this database, and nothing else done
    assert await other.actions(target.id) == [] and (await other.mention(target.id)).text == target.text


async def test_the_pane_exports_from_either_engine(
    watchlist: Watchlist, db_target: str | Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.chdir(out)
    app = desk(watchlist, db_target)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await started(pilot, 5)
        await screen.export_pane()
        await wait_for(pilot, lambda: len(list(out.glob("monitor-new-*.csv"))) == 1)
        [path] = out.glob("monitor-new-*.csv")
        await wait_for(pilot, lambda: path.stat().st_size > 0 and path.read_bytes().count(b"\r\n") == 6)
        with path.open(encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        assert sorted(int(r["id"]) for r in rows) == sorted(screen.pane().mentions)
        assert {r["status"] for r in rows} == {"new"} and any("métro" in r["text"] for r in rows)


# -- two operators, two apps, one database -------------------------------------------------------------------


async def operate(app: MonitorApp, script: Callable[[Pilot[Any]], Awaitable[None]]) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await script(pilot)


async def test_two_operators_see_each_others_actions_claims_and_presence(
    watchlist: Watchlist,
    db_target: str | Path,
    other: Database,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    """Alice's desk collects; Bob's does not. Each one's dismissal leaves the other's screen, Bob sees Alice
    replying to a mention, and each lists the other on duty."""
    holders = itertools.count(1)  # two apps in one process: each its own holder, as two processes would be
    monkeypatch.setattr(presence, "process_id", lambda: f"host:{next(holders)}")
    hang_up = signal.getsignal(signal.SIGHUP)  # each app installs its own: put back what was there
    request.addfinalizer(lambda: signal.signal(signal.SIGHUP, hang_up))
    alice = desk(watchlist, db_target, "alice")
    bob = desk(watchlist, db_target, "bob", collect=False, context=SourceContext())
    both_ready, bob_done = asyncio.Event(), asyncio.Event()
    state: dict[str, Any] = {}

    async def as_alice(pilot: Pilot[Any]) -> None:
        screen = await started(pilot, 5)
        both_ready.set()
        await wait_for(pilot, lambda: "bob" in screen.on_duty)
        await wait_for(pilot, lambda: "bob_dismissed" in state)
        gone = state["bob_dismissed"]
        await wait_for(pilot, lambda: gone not in screen.pane(Status.NEW).mentions)  # Bob's action, live
        target = screen.current_row()
        assert target is not None and target.id != gone
        state["alice_replying"] = target.id
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(alice.screen, ComposeDialog))
        await bob_done.wait()
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(alice.screen, MainScreen))
        await pilot.press("d", "enter")  # now Alice dismisses one: Bob must see it go
        await wait_for(pilot, lambda: screen.pane(Status.NEW).row_count == 3)
        state["alice_dismissed"] = target.id
        await wait_for(pilot, lambda: state.get("bob_saw_alice_dismiss"))

    async def as_bob(pilot: Pilot[Any]) -> None:
        await both_ready.wait()
        screen = await started(pilot, 5)
        await wait_for(pilot, lambda: "alice" in screen.on_duty)
        target = screen.current_row()
        assert target is not None
        await pilot.press("d", "enter")
        await wait_for(pilot, lambda: screen.pane(Status.NEW).row_count == 4)
        state["bob_dismissed"] = target.id
        await wait_for(pilot, lambda: "alice_replying" in state)
        replying = state["alice_replying"]
        await wait_for(pilot, lambda: screen.pane(Status.NEW).claimed.get(replying) == "alice")  # her claim shows
        bob_done.set()
        await wait_for(pilot, lambda: "alice_dismissed" in state)
        await wait_for(pilot, lambda: state["alice_dismissed"] not in screen.pane(Status.NEW).mentions)
        state["bob_saw_alice_dismiss"] = True

    async with asyncio.timeout(4 * WAIT), asyncio.TaskGroup() as group:  # one failing ends the other
        group.create_task(operate(alice, as_alice))
        group.create_task(operate(bob, as_bob))
    assert [a.operator for a in await other.actions(state["bob_dismissed"])] == ["bob"]  # in that very database
    assert [a.operator for a in await other.actions(state["alice_dismissed"])] == ["alice"]


# -- PostgreSQL only: notification, a lost connection, the hang-up -------------------------------------------


async def test_on_postgresql_another_operators_commit_reaches_the_desk_by_notification(
    watchlist: Watchlist, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the refresh tick out of the way, only the notification can bring Bob's dismissal to Alice's pane."""
    monkeypatch.setattr(main_screen, "REFRESH_SECONDS", 3600.0)
    app = desk(watchlist, pg_url, collect=False, context=SourceContext())
    writer = await open_database(pg_url)
    try:
        from tests.test_store import MATCH, mention

        await writer.ingest("demo", [(mention(i), MATCH) for i in (1, 2, 3)], "3")
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await started(pilot, 3)
            await wait_for(pilot, lambda: any(w.name == "watching for commits" for w in app.workers))
            [target, *_] = screen.pane(Status.NEW).ids()
            await writer.act(target, ActionKind.DISMISS, "bob", {"reason": "spam"})
            await wait_for(pilot, lambda: target not in screen.pane(Status.NEW).mentions)
            assert screen.pane(Status.NEW).row_count == 2
    finally:
        await writer.close()


async def test_on_postgresql_a_cut_connection_is_replaced_by_itself_and_the_desk_goes_on(
    watchlist: Watchlist, pg_url: str
) -> None:
    """The server is up, only the desk's connection was cut: a new one is opened by itself, and the desk reads
    on. (A read in flight at the cut may fail and show the outage for a moment; a call that finds the
    connection dead before it starts does not: test_pg_store.py. A server really down: test_pg_reconnect.py.)"""
    app = desk(watchlist, pg_url, collect=False, context=SourceContext())
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await started(pilot, 0)
        store = app.store
        assert isinstance(store, PgStore) and store._link.conn is not None
        pid = store._link.conn.info.backend_pid  # the desk's own connection, not its listener
        killer = await open_database(pg_url)
        assert isinstance(killer, PgStore)
        try:
            await killer.read(lambda c: c.execute("SELECT pg_terminate_backend(%s)", (pid,)))
            await killer.ingest("demo", [(mention(1), MATCH)], "1")
        finally:
            await killer.close()
        await wait_for(pilot, lambda: screen.pane(Status.NEW).row_count == 1)  # read on a new connection
        assert store._link.conn is not None and store._link.conn.info.backend_pid != pid
        await wait_for(pilot, lambda: app.storage_state == "" and screen.title == "monitor")


async def test_a_hang_up_releases_claims_and_presence_on_either_engine(
    database: Database, db_target: str | Path
) -> None:
    from monitor.db.presence import release_on_hangup
    from tests.test_store import MATCH, mention

    await database.ingest("demo", [(mention(1), MATCH)], "1")
    gone, staying = Presence(database, "alice", "host:1"), Presence(database, "bob", "host:2")
    for p in (gone, staying):
        await p.heartbeat()
    assert await gone.acquire() and await gone.claim(1) is None
    assert await staying.on_duty() == ["alice", "bob"] and (await staying.claims())[1].operator == "alice"
    await asyncio.to_thread(release_on_hangup, db_target, "host:1", 5.0)  # what the hang-up's watchdog calls
    assert await staying.on_duty() == ["bob"]
    assert await staying.claims() == {} and await staying.lease_holder() is None
