"""Small things a new user sees: marks, clocks, colours and the filter line at 80x24."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from rich.console import Console
from textual_plotext import PlotextPlot

from monitor.core.config import Watchlist
from monitor.core.models import Priority, Status
from monitor.db.presence import Presence
from monitor.db.store import Store
from monitor.ui.screens.main import MainScreen
from monitor.ui.widgets.header import CityClock
from monitor.ui.widgets.sources_bar import SourcesBar
from tests.test_app import make_app, started, wait_for


@pytest.fixture
def new_york_process() -> Iterator[None]:
    """The process runs in another zone than the city's (as on a server in UTC, or a laptop abroad)."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"
    time.tzset()
    yield
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


async def test_a_claimed_row_keeps_its_priority_mark(watchlist: Watchlist) -> None:
    app = make_app(watchlist)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await started(pilot, 5)
        table = screen.pane(Status.NEW)
        urgent = next(r for r in table.mentions.values() if r.priority is Priority.URGENT)
        bob = await Store.open(watchlist.database)
        try:
            assert await Presence(bob, "bob").claim(urgent.id) is None
            await wait_for(pilot, lambda: urgent.id in table.claimed)
            await wait_for(pilot, lambda: "✎" in table.get_cell(str(urgent.id), "prio").plain)
            assert table.get_cell(str(urgent.id), "prio").plain == "!!✎"
        finally:
            await bob.close()


async def test_the_header_clock_shows_the_citys_time(watchlist: Watchlist, new_york_process: None) -> None:
    app = make_app(watchlist, collect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        clock = app.screen.query_one(CityClock)
        zone = ZoneInfo(watchlist.timezone)
        hours = {datetime.now(zone).strftime("%H")}
        shown = str(clock.render())
        hours.add(datetime.now(zone).strftime("%H"))  # the hour may turn while rendering
        assert shown[:2] in hours, (shown, hours)
        assert datetime.now(ZoneInfo("America/New_York")).strftime("%H") not in hours  # the process's zone differs


async def test_the_active_filter_is_fully_visible_at_80_columns(watchlist: Watchlist) -> None:
    app = make_app(watchlist)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await started(pilot, 5)
        await pilot.press("slash", *"ville prio:high source:mastodon", "enter")
        await wait_for(pilot, lambda: screen.filter.active)
        bar = screen.query_one(SourcesBar)
        shown = str(bar.render())[: bar.content_region.width]
        assert f"filter: {screen.filter.describe()} (Esc clears)" in shown, shown


async def test_stats_plots_are_readable_in_16_colours(watchlist: Watchlist) -> None:
    app = make_app(watchlist)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, 5)
        app.theme = "ansi-dark"
        await pilot.press("s")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "StatsScreen")
        plot = app.screen.query_one("#plot-histogram", PlotextPlot)
        await wait_for(pilot, lambda: "First response" in plot.render().plain)  # type: ignore[union-attr]
        text = plot.render()
        console = Console(color_system="standard")
        for word in ("First response", "5m"):  # the title and an axis label
            style = text.get_style_at_offset(console, text.plain.index(word))  # type: ignore[union-attr]
            assert style.color is None or style.color != style.bgcolor, (word, style)
            assert style.color is None or style.color.name not in ("black", "color(0)"), (word, style)
