"""The pane on screen comes first: the other open pane loads after the first paint, never under the operator."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Tab, Tabs

from monitor.core.config import Watchlist
from monitor.core.models import ActionKind, MatchResult, Mention, Priority, Status
from monitor.core.timeutil import utcnow
from monitor.db.api import PaneEntry
from monitor.db.presence import Presence
from monitor.db.store import Store, act_sync, ingest_sync, open_sync
from monitor.networks import load_watchlist
from monitor.ui.screens.main import MainScreen
from monitor.ui.widgets.pane import MentionTable
from tests.conftest import write_demo, write_watchlist
from tests.test_app import make_app, started, wait_for
from tests.test_typeahead import burst


@dataclass
class HeldRead:
    """The desk's first read of the Escalated pane waits until the test releases it."""

    release: asyncio.Event = field(default_factory=asyncio.Event)
    held: bool = False
    returned: bool = False


@pytest.fixture
async def escalated_read(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[HeldRead]:
    hold = HeldRead()
    original = Store.pane_entries  # the desk's read of an unfiltered pane (grouped by incident)

    async def pane(self: Store, status: Status, *args: Any, **kwargs: Any) -> list[PaneEntry]:
        if status is not Status.ESCALATED or hold.held:
            return await original(self, status, *args, **kwargs)
        hold.held = True
        rows = await original(self, status, *args, **kwargs)  # read now, handed over later: a slow read
        await hold.release.wait()
        hold.returned = True  # the caller goes on in this same step: it has acted on the rows once this is seen
        return rows

    monkeypatch.setattr(Store, "pane_entries", pane)
    yield hold
    hold.release.set()


def desk_with(tmp_path: Path, new: int, escalated: int) -> Watchlist:
    watchlist = load_watchlist(write_watchlist(tmp_path, write_demo(tmp_path / "d.jsonl", ["Toulouse"])))
    conn = open_sync(watchlist.database)
    match = MatchResult(("ville",), Priority.NORMAL)
    texts = [f"voirie {i}" for i in range(new + escalated)]
    conn.execute("BEGIN IMMEDIATE")
    ingest_sync(conn, "old", [(Mention("old", f"o{i}", "mastodon", "@a", t, utcnow()), match)
                              for i, t in enumerate(texts)], None, [], [], 1_000)  # fmt: skip
    for mention_id in range(new + 1, new + escalated + 1):
        act_sync(conn, mention_id, ActionKind.ESCALATE, "bob", {"service": "voirie"}, at=2_000 + mention_id)
    conn.execute("COMMIT")
    conn.close()
    return watchlist


async def test_the_shown_pane_is_live_while_the_escalated_pane_still_loads(
    tmp_path: Path, escalated_read: HeldRead
) -> None:
    watchlist = desk_with(tmp_path, new=3, escalated=2)
    app = make_app(watchlist, collect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await started(pilot, 3)
        await wait_for(pilot, lambda: escalated_read.held)
        other = await Store.open(watchlist.database)  # another operator, while the Escalated read is slow
        try:
            late = Mention("old", "late", "mastodon", "@b", "voirie late", utcnow())
            await other.ingest("old", [(late, MatchResult(("ville",), Priority.NORMAL))], None)
            await other.act(1, ActionKind.ESCALATE, "bob", {"service": "voirie"})
        finally:
            await other.close()
        new = screen.pane(Status.NEW)
        await wait_for(pilot, lambda: set(new.mentions) == {2, 3, 6})  # refreshed: the desk did not wait
        assert Status.ESCALATED not in screen.loaded
        escalated_read.release.set()
        # The slow read predates the escalation that the refresh has already passed: it is read again.
        await wait_for(pilot, lambda: Status.ESCALATED in screen.loaded)
        assert set(screen.pane(Status.ESCALATED).mentions) == {1, 4, 5}


async def test_a_pane_the_operator_switched_to_is_not_reloaded_under_the_cursor(
    tmp_path: Path, escalated_read: HeldRead
) -> None:
    watchlist = desk_with(tmp_path, new=3, escalated=3)
    app = make_app(watchlist, collect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await started(pilot, 3)
        await wait_for(pilot, lambda: escalated_read.held)
        await pilot.press("2")
        table = screen.pane(Status.ESCALATED)
        await wait_for(pilot, lambda: table.row_count == 3 and screen.pane() is table)
        await pilot.press("j", "j")
        await wait_for(pilot, lambda: table.cursor_row == 2)
        chosen = screen.current_row()
        escalated_read.release.set()
        await wait_for(pilot, lambda: escalated_read.returned)
        await pilot.pause()
        assert (table.cursor_row, screen.current_row()) == (2, chosen)


async def test_the_desk_shows_its_rows_before_counting_and_the_tabs_count_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Counting every status scans a million index entries on a big desk: the first screen does not wait for it.
    release = asyncio.Event()
    original = Store.counts

    async def counts(self: Store) -> dict[Status, int]:
        await release.wait()
        return await original(self)

    monkeypatch.setattr(Store, "counts", counts)
    watchlist = desk_with(tmp_path, new=3, escalated=2)
    app = make_app(watchlist, collect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await started(pilot, 3)  # the rows are there while the count is still held
        tabs = screen.query_one(Tabs)
        assert [tabs.query_one(f"#{s}", Tab).label.plain for s in ("new", "escalated")] == ["New", "Escalated"]
        release.set()
        await wait_for(pilot, lambda: tabs.query_one("#new", Tab).label.plain == "New 3")
        assert tabs.query_one("#escalated", Tab).label.plain == "Escalated 2"


async def test_the_desk_shows_its_rows_before_presence_collecting_and_delivering_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Joining the roster is a write, and the collector and the deliverer start after it: none holds the screen up.
    release = asyncio.Event()
    original = Presence.heartbeat

    async def heartbeat(self: Presence) -> None:
        await release.wait()
        await original(self)

    monkeypatch.setattr(Presence, "heartbeat", heartbeat)
    watchlist = desk_with(tmp_path, new=3, escalated=0)
    app = make_app(watchlist)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, 3)
        await wait_for(pilot, lambda: [w.name for w in app.workers if w.group == "duty"] == ["joining"])
        assert not app.leading  # no duty runs before the heartbeat
        release.set()
        await wait_for(pilot, lambda: app.leading)  # and it collects


async def test_the_desk_collects_no_garbage_before_its_first_screen_and_as_usual_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Start-up allocates much and frees little: a tenth of its CPU went to collections (a full one among them).
    loading: list[bool] = []
    original = MentionTable.load

    def load(self: MentionTable, rows: Any, now: int) -> None:
        loading.append(gc.isenabled())
        original(self, rows, now)

    monkeypatch.setattr(MentionTable, "load", load)
    watchlist = desk_with(tmp_path, new=3, escalated=0)
    app = make_app(watchlist, collect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, 3)
        assert loading[0] is False  # the first rows went in with the collector off
        await wait_for(pilot, gc.isenabled)  # and it is back once they are drawn


def notes_for_a_database(tmp_path: Path) -> Watchlist:
    watchlist = desk_with(tmp_path, new=1, escalated=0)
    Path(watchlist.database).write_text("these are my notes, not a database\n" * 100, encoding="utf-8")
    return watchlist


async def test_a_desk_that_cannot_start_leaves_the_collector_on(tmp_path: Path) -> None:
    app = make_app(notes_for_a_database(tmp_path), collect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.fatal is not None)
    assert app.fatal is not None and gc.isenabled()


async def test_a_16_colour_desk_gets_its_theme_before_its_widgets_are_styled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A new theme restyles every widget there is: chosen once the desk was mounted, that was a second styling
    # pass over all of it (0.035 s of the start). The headless test terminal has 16 colours, as many SSH ones do.
    from textual.app import App

    restyled: list[int] = []
    original = App.refresh_css

    def refresh_css(self: App[Any], animate: bool = True) -> None:
        restyled.append(sum(1 for screen in self.screen_stack for _ in screen.walk_children()))
        original(self, animate)

    monkeypatch.setattr(App, "refresh_css", refresh_css)
    app = make_app(desk_with(tmp_path, new=3, escalated=0), collect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, 3)
        assert app.console.color_system == "standard" and app.theme == "ansi-dark"
        assert "-theme-ansi-dark" in app.classes
    assert restyled and max(restyled) == 0  # no widget was there to restyle


async def test_the_desk_counts_only_once_its_first_screen_is_drawn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A refresh that draws nothing comes before the first screen: counting a million rows after *it* competed
    # with drawing the rows on a busy machine (issue 13).
    painted_when_counted: list[bool] = []
    original = Store.counts

    async def counts(self: Store) -> dict[Status, int]:
        painted_when_counted.append(app.painted)
        return await original(self)

    monkeypatch.setattr(Store, "counts", counts)
    app = make_app(desk_with(tmp_path, new=3, escalated=2), collect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await started(pilot, 3)
        await wait_for(pilot, lambda: screen.query_one(Tabs).query_one("#escalated", Tab).label.plain == "Escalated 2")
    assert painted_when_counted[0] is True


async def test_keys_typed_while_the_desk_starts_move_the_highlight_and_the_detail_as_if_typed_slowly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """j j j, j k in one burst while presence, the counts (then the Escalated pane) and the first row's detail
    are all still being read (held here): once they are in, the 4th row is highlighted and in the detail."""
    release = asyncio.Event()
    held: list[str] = []

    def hold(cls: Any, name: str, first_only: bool = False) -> None:
        original = getattr(cls, name)

        async def slow(self: Any, *args: Any, **kwargs: Any) -> Any:
            if not release.is_set() and not (first_only and name in held):
                held.append(name)
                await release.wait()
            return await original(self, *args, **kwargs)

        monkeypatch.setattr(cls, name, slow)

    hold(Presence, "heartbeat")
    hold(Store, "counts")
    hold(Store, "detail", first_only=True)  # the first row's, asked for by the first load
    watchlist = desk_with(tmp_path, new=8, escalated=2)
    app = make_app(watchlist, collect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        burst(app, "jjj", "jk")
        await wait_for(pilot, lambda: {"heartbeat", "counts", "detail"} <= set(held))
        release.set()
        screen = app.screen
        assert isinstance(screen, MainScreen)
        await wait_for(pilot, lambda: app.keys_idle() and Status.ESCALATED in screen.loaded and screen.counts)
        table = screen.pane(Status.NEW)
        await wait_for(pilot, lambda: screen.detail_for is not None and screen.detail_for.id == table.ids()[3])
        await pilot.pause()
        assert (table.cursor_row, screen.current_row()) == (3, screen.detail_for)
