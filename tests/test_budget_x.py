"""The X budget: a month compressed in time (a clock the test moves), spend counted per call, polling
paced to stay under the month's amount, and a visible state instead of overspending."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fakes_x import CITY_ID, FakeX, tweet

from monitor.core.config import Term
from monitor.core.retry import ErrorKind
from monitor.networks import SourceContext, SourceError
from monitor.networks.x.budget import Meter
from monitor.networks.x.options import Budget, XOptions
from monitor.networks.x.source import XSource

ENV = "TEST_X_BEARER"
START = datetime(2026, 11, 1, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeX:
    monkeypatch.setenv(ENV, "bearer")
    return FakeX()


def x_source(fake: FakeX, monthly: float, clock: Clock) -> XSource:
    options = XOptions(user_id=CITY_ID, bearer_token_env=ENV, budget=Budget(monthly), max_pages=2)
    source = XSource("x", options, SourceContext(http_factory=fake.factory))
    source.meter.clock = clock

    async def no_wait(seconds: float) -> None:
        return None

    source.sleep = no_wait
    return source


async def test_a_month_of_polling_stays_under_the_budget_and_uses_it(fake: FakeX) -> None:
    clock = Clock(START)
    source = x_source(fake, 20.0, clock)
    committed, cursor, polls_that_paid = 0.0, None, 0
    arrived = 0
    try:
        while clock.now < START + timedelta(days=30):
            fake.add(*[tweet(f"@toulouse n°{arrived + i}") for i in range(20)], mention=True)  # 20 an hour
            arrived += 20
            source.restore_spend(source.billing_month(), committed)  # what the collector hands in
            batch = await source.poll(cursor)
            cursor = batch.cursor or cursor
            if batch.spend:
                committed += batch.spend.total
                polls_that_paid += 1
            assert committed <= 20.0  # never over, at any moment of the month
            clock.now += timedelta(hours=1)
    finally:
        await source.aclose()
    assert committed > 0.6 * 20.0  # paced, not starved: most of the month's money listened
    assert 10 < polls_that_paid < 30 * 24  # slower than the hourly ticks


async def test_a_spent_budget_is_a_visible_state_until_the_next_month(fake: FakeX) -> None:
    clock = Clock(datetime(2026, 11, 30, 12, tzinfo=UTC))
    source = x_source(fake, 10.0, clock)
    source.restore_spend("2026-11", 9.99)
    try:
        with pytest.raises(SourceError) as caught:
            await source.poll(None)
        assert str(caught.value).startswith("budget reached until 1 Dec ($9.99 of $10.00 this month)")
        assert caught.value.kind is ErrorKind.RATE and caught.value.retry_after == 12 * 3600  # until 1 Dec
        assert fake.requests == []  # not a cent more
        clock.now = datetime(2026, 12, 1, 0, 1, tzinfo=UTC)  # a new month: listening again
        fake.add(tweet("@toulouse bonjour"), mention=True)
        source.restore_spend(source.billing_month(), 0.0)
        batch = await source.poll(None)
        assert [m.text for m in batch.mentions] == ["@toulouse bonjour"]
        assert batch.spend is not None and batch.spend.month == "2026-12"
    finally:
        await source.aclose()


async def test_a_failed_polls_calls_are_counted_with_the_next_batch(fake: FakeX) -> None:
    clock = Clock(START)
    options = XOptions(user_id=CITY_ID, bearer_token_env=ENV, budget=Budget(100.0))
    source = XSource("x", options, SourceContext(http_factory=fake.factory, terms=(Term("v", ("Toulouse",)),)))
    source.meter.clock = clock
    fake.add(tweet("@toulouse a", ("7", "a", "A")), mention=True)
    fake.failures_at["/2/tweets/search/recent"] = [httpx.Response(503)]
    try:
        with pytest.raises(SourceError):
            await source.poll(None)  # the mentions page was paid for, then the search failed
        batch = await source.poll(None)
        assert batch.spend is not None
        assert batch.spend.reads_usd == pytest.approx(2 * (0.005 + 0.010))  # that page twice, both paid
    finally:
        await source.aclose()


def test_pacing_spreads_what_is_left_over_what_is_left_of_the_month() -> None:
    clock = Clock(datetime(2026, 11, 16, tzinfo=UTC))  # 15 days left
    meter = Meter(Budget(10.0), clock)
    meter.restore("2026-11", 5.0)
    meter.paced(cost=0.5, interval=60.0)  # $5 left, $0.50 a poll: 10 polls in 15 days
    assert meter.next_due == clock.now + timedelta(days=1.5)


async def spent_watchlist(tmp_path: Any) -> Any:
    """An X source that read for $0.985 and paid $0.215 for two replies this month, to two of four mentions."""
    from monitor.core.models import ActionKind, Spend
    from monitor.db.store import Store
    from monitor.engine import actions
    from tests.test_delivery_crash_x import seed, x_watchlist

    wl = x_watchlist(tmp_path, "http://127.0.0.1:9")
    store = await Store.open(wl.database)
    try:
        seeded = await seed(store)  # four mentions to the city
        month = datetime.now(UTC).strftime("%Y-%m")
        await store.add_spend("x", Spend(month, reads_usd=0.985))
        for mid, _ in seeded[:2]:
            await actions.act(store, wl, mid, ActionKind.REPLY, "alice", {"text": f"Merci {mid}"})
        await store.add_spend("x", Spend(month, writes_usd=0.215, writes=2))  # one plain reply, one with a link
    finally:
        await store.close()
    return wl


async def test_stats_and_the_report_show_spend_per_source_and_cost_per_answered_mention(tmp_path: Any) -> None:
    import sqlite3

    from monitor.reports import stats
    from monitor.reports.html import render_html

    wl = await spent_watchlist(tmp_path)
    conn = sqlite3.connect(wl.database)
    try:
        report = stats.compute(conn, wl)
    finally:
        conn.close()
    table = stats.render(report)
    assert "Spend on paid networks" in table
    lines = table.splitlines()
    line = lines[lines.index("Spend on paid networks (the whole UTC months this period touches)") + 2]
    assert line.split() == ["x", "$0.985", "$0.215", "2", "$1.20", "2", "$0.600"]
    assert report.as_dict()["spend"] == [{"source": "x", "reads_usd": 0.985, "writes_usd": 0.215, "replies_paid": 2,
                                          "total_usd": 1.2, "answered": 2, "per_answered_usd": 0.6}]  # fmt: skip
    assert "per answered mention" in render_html(report) and "$0.600" in render_html(report)
    assert "spend,source,x,per_answered_usd,0.6" in stats.render(report, "csv")


async def test_the_statistics_screen_shows_the_spend_per_source_as_monitor_stats_does(tmp_path: Any) -> None:
    from textual.app import App

    from monitor.ui.screens.stats import StatsScreen
    from tests.conftest import wait_for

    wl = await spent_watchlist(tmp_path)

    class Host(App[None]):
        def on_mount(self) -> None:
            self.push_screen(StatsScreen(wl.database, wl, period="week"))

    app = Host()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, StatsScreen)
        await wait_for(pilot, lambda: screen.snapshot is not None)
        numbers = str(screen.query_one("#stats-numbers").render())
    assert "Spend x: $1.20 · reads $0.985 · 2 replies $0.215 · $0.600/answer" in numbers.splitlines()
    assert all(len(line) <= 78 for line in numbers.splitlines())
