"""A failing database never ends the desk: every UI path says so, keeps running, and recovers."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from monitor.core.config import Watchlist
from monitor.core.models import MatchResult, Mention, Priority, Status
from monitor.core.timeutil import now_ms, utcnow
from monitor.db.presence import Presence
from monitor.db.store import Store, ingest_sync, open_sync
from monitor.reports import stats
from monitor.ui.screens.main import MainScreen
from monitor.ui.widgets.sources_bar import SourcesBar
from tests.conftest import record_notices
from tests.test_app import actions, make_app, selected, wait_for


def bar(screen: MainScreen) -> str:
    return str(screen.query_one(SourcesBar).render())


async def test_a_locked_database_on_every_ui_path_is_a_notice_and_the_desk_recovers(
    watchlist: Watchlist, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(watchlist)
    seen = record_notices(app)  # kept: Textual's own list forgets a notice after its timeout
    async with app.run_test(size=(80, 24)) as pilot:
        screen, target = await selected(pilot)

        async def locked(*args: Any, **kwargs: Any) -> Any:
            raise sqlite3.OperationalError("database is locked")

        def stats_locked(*args: Any, **kwargs: Any) -> Any:
            raise sqlite3.OperationalError("database is locked")

        monkeypatch.setattr(Store, "read", locked)
        monkeypatch.setattr(Store, "write", locked)
        monkeypatch.setattr(stats, "compute", stats_locked)
        # The refresh timer and the clock tick: a state kept on screen, and the app runs on.
        await wait_for(pilot, lambda: "database is locked — retrying" in bar(screen))
        ticks = screen._ticks
        await wait_for(pilot, lambda: screen._ticks >= ticks + 3)  # the clock read the database and failed
        assert app.is_running and "database is locked — retrying" in bar(screen)

        def saw(what: str) -> bool:
            return any(m.startswith(what) and "database is locked" in m for m in seen)

        # Each key whose path reads or writes the database: a notice names what failed.
        paths: list[tuple[tuple[str, ...], str]] = [
            (("j",), "detail"),  # highlight: the detail panel
            (("u",), "action not saved"),  # reopen
            (("h",), "handover"),
            (("slash", *"jaures", "enter"), "filter"),
            (("d", "enter"), "action not saved"),  # act
            (("n", *"appel", "ctrl+s"), "action not saved"),
            (("r",), "reply"),  # the claim before writing
            (("ctrl+r",), "retry send"),
            (("3",), "switching pane"),
        ]
        for keys, what in paths:
            seen.clear()
            await pilot.press(*keys)
            try:
                await wait_for(pilot, lambda what=what: saw(what))  # type: ignore[misc]
            except AssertionError:
                raise AssertionError(f"{keys}: no notice {what!r} in {seen}") from None
            assert app.is_running
            await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        await pilot.press("s")
        await wait_for(pilot, lambda: "statistics unavailable: database is locked" in str(app.screen.query_one(
            "#stats-numbers").render()))  # fmt: skip
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        assert actions(watchlist.database) == []
        assert app.is_running

        # The database answers again: the next tick clears the state, and actions work.
        monkeypatch.undo()
        await wait_for(pilot, lambda: app.fault == "" and "retrying" not in bar(screen))
        assert "The database answers again." in seen
        # The filter asked for while the database was locked now holds in the panes.
        await wait_for(pilot, lambda: screen.filter_query == "jaures" and screen.pane(Status.NEW).row_count == 1)
        await pilot.press("1")
        await wait_for(pilot, lambda: screen.current_row() is not None)
        await pilot.press("d", "enter")
        await wait_for(pilot, lambda: [a[1] for a in actions(watchlist.database)] == ["dismiss"])


async def test_changes_read_during_a_failing_refresh_are_not_lost(
    watchlist: Watchlist, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(watchlist, collect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        screen = app.screen
        assert isinstance(screen, MainScreen)

        async def locked(*args: Any, **kwargs: Any) -> Any:
            raise sqlite3.OperationalError("database is locked")

        monkeypatch.setattr(Presence, "claims", locked)  # fails after the changes were read
        conn = open_sync(watchlist.database)
        conn.execute("BEGIN IMMEDIATE")
        mention = Mention("other", "x1", "mastodon", "@b", "Toulouse: feu rouge en panne", utcnow())
        ingest_sync(conn, "other", [(mention, MatchResult(("ville",), Priority.NORMAL))], None, [], [], now_ms())
        conn.execute("COMMIT")
        conn.close()
        await wait_for(pilot, lambda: "database is locked — retrying" in bar(screen))
        monkeypatch.undo()
        await wait_for(pilot, lambda: any("feu rouge" in r.text for r in screen.pane(Status.NEW).mentions.values()))
