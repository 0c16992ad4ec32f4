"""Two operators on one mention: claims, explicit take-over, and the traffic cop on send."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from monitor.core.config import Watchlist
from monitor.core.models import ActionKind, Status
from monitor.db.permissions import UnsafePermissions, check_shared_path
from monitor.db.presence import Presence
from monitor.db.store import Store
from monitor.ui.screens.dialogs import ComposeDialog, ConfirmDialog
from monitor.ui.screens.main import MainScreen
from tests.conftest import record_notices
from tests.test_app import actions, make_app, selected, started, status_of, wait_for


async def test_replying_claims_the_mention_and_others_see_it(watchlist: Watchlist) -> None:
    app = make_app(watchlist)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, target = await selected(pilot)
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ComposeDialog))
        bob = Presence(await Store.open(watchlist.database), "bob", "elsewhere:1")
        claims = await bob.claims()
        assert claims[target.id].operator == "alice" and claims[target.id].kind == "replying"
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))

        async def released() -> bool:  # the claim is released when the dialog closes
            return await bob.claims() == {}

        await wait_for(pilot, released)
        await bob.store.close()


async def test_a_claim_by_someone_else_asks_before_taking_over(watchlist: Watchlist) -> None:
    app = make_app(watchlist)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, target = await selected(pilot)
        bob = Presence(await Store.open(watchlist.database), "bob", "elsewhere:1")
        assert await bob.claim(target.id) is None
        await wait_for(pilot, lambda: screen.pane().claimed.get(target.id) == "bob")  # the row shows it
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        assert "bob has been replying" in app.export_screenshot().replace("&#160;", " ")
        await pilot.press("n")  # leave it to bob
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        assert (await bob.claims())[target.id].operator == "bob"
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")  # take it over explicitly
        await wait_for(pilot, lambda: isinstance(app.screen, ComposeDialog))
        assert (await bob.claims())[target.id].operator == "alice"
        await pilot.press("escape")
        await bob.store.close()


async def test_sending_after_someone_else_acted_asks_and_shows_what_changed(watchlist: Watchlist) -> None:
    app = make_app(watchlist)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, target = await selected(pilot)
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ComposeDialog))
        await pilot.press(*"merci")
        other = await Store.open(watchlist.database)
        await other.act(target.id, ActionKind.DISMISS, "bob", {"reason": "duplicate"})
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        shot = app.export_screenshot().replace("&#160;", " ")
        assert "changed while you were writing" in shot and "bob: dismissed: duplicate" in shot
        await pilot.press("n")  # not sent
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        assert [a[1:3] for a in actions(watchlist.database)] == [("dismiss", "bob")]
        await other.close()


async def test_a_dismiss_on_a_mention_someone_else_just_moved_does_nothing(watchlist: Watchlist) -> None:
    app = make_app(watchlist)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, target = await selected(pilot)
        other = await Store.open(watchlist.database)
        await other.act(target.id, ActionKind.ESCALATE, "bob", {"service": "voirie"})
        screen._refreshing = True  # as if the pane had not caught up yet: alice still sees it as new
        notices = record_notices(app)
        await pilot.press("d", "enter")
        await wait_for(pilot, lambda: any("someone else already moved it" in n for n in notices))
        screen._refreshing = False
        assert [a[1:3] for a in actions(watchlist.database)] == [("escalate", "bob")]
        assert status_of(watchlist.database, target.id) == Status.ESCALATED.value
        await other.close()


async def test_on_duty_shows_the_other_operators(watchlist: Watchlist) -> None:
    app = make_app(watchlist)
    async with app.run_test(size=(100, 24)) as pilot:
        screen = await started(pilot, 5)
        bob = Presence(await Store.open(watchlist.database), "bob", "elsewhere:1")

        async def shown() -> bool:
            await bob.heartbeat()  # bob's app stays open however long alice's takes to look
            return "on duty: bob" in screen.sub_title

        await wait_for(pilot, shown)
        await bob.store.close()


def test_a_world_writable_database_folder_is_refused_with_the_reason(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    with pytest.raises(UnsafePermissions, match="writable by every user"):
        check_shared_path(shared / "monitor.db")
    os.chmod(shared, 0o2770)  # the documented setup: group-owned, setgid
    check_shared_path(shared / "monitor.db")
    db = shared / "monitor.db"
    db.write_bytes(b"")
    os.chmod(db, 0o666)
    with pytest.raises(UnsafePermissions, match="chmod o-w"):
        check_shared_path(db)
    os.chmod(db, stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IWGRP)
    check_shared_path(db)


async def test_an_app_that_does_not_collect_leaves_the_collector_lease_and_says_nobody_collects(
    watchlist: Watchlist,
) -> None:
    import sqlite3

    app = make_app(watchlist, collect=False)
    async with app.run_test(size=(120, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        leases = lambda: dict(sqlite3.connect(watchlist.database).execute("SELECT name, holder FROM leases"))  # noqa: E731
        await wait_for(pilot, lambda: "delivery" in leases())
        assert "collector" not in leases()  # a collector service can still start and collect
        await wait_for(pilot, lambda: "NOBODY IS COLLECTING" in str(app.screen.query_one("#sources").render()))
