"""Each source's state is visible at a glance: live, polling, backing off until HH:MM, failing, last success."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from monitor.core.config import Watchlist
from monitor.core.models import Batch, Mention
from monitor.db.presence import Presence
from monitor.db.store import Store
from monitor.engine.collector import Collector
from monitor.networks import SourceError
from tests.conftest import wait_until
from tests.test_app import make_app, wait_for


class Flaky:
    """A source that fails as told, then recovers."""

    def __init__(self, name: str, errors: list[SourceError], gate: asyncio.Event | None = None) -> None:
        self.name = name
        self.errors = errors
        self.polls = 0
        self.gate = gate  # when given, polls after the first wait for it: the test sees each state in turn

    async def poll(self, cursor: str | None) -> Batch:
        self.polls += 1
        if self.gate is not None and self.polls > 1:
            await self.gate.wait()
        if self.errors:
            raise self.errors.pop(0)
        m = Mention(self.name, f"f{self.polls}", "mastodon", "@a@b.c", "Tisséo en panne", datetime.now(tz=UTC))
        return Batch([m], cursor=str(self.polls))

    async def aclose(self) -> None:
        return None


async def test_collect_once_records_failures_and_success_in_the_database(watchlist: Watchlist) -> None:
    store = await Store.open(watchlist.database)
    bad = Flaky("mastodon-x", [SourceError("server error 503")])
    good = Flaky("other", [])
    collector = Collector(watchlist, store, sources=[bad, good])
    results = await collector.run_once()
    assert results == {"mastodon-x": "server error 503", "other": None}
    states = {name: (state, detail) for name, state, detail, _, _ in await store.source_states()}
    assert states["mastodon-x"] == ("backoff", "server error 503")
    assert states["other"][0] == "polling"
    await store.close()


async def test_the_sources_bar_shows_backoff_then_recovery(watchlist: Watchlist) -> None:
    seen = asyncio.Event()
    errors = [SourceError("server error 502"), SourceError("credentials rejected (401)", "auth")]
    flaky = Flaky("masto", errors, gate=seen)
    app = make_app(watchlist, sources=[flaky])
    async with app.run_test(size=(120, 24)) as pilot:
        await wait_for(pilot, lambda: app.source_statuses.get("masto") is not None)
        await wait_for(pilot, lambda: app.source_statuses["masto"].state == "backoff")
        await wait_for(pilot, lambda: "backing off until" in str(app.screen.query_one("#sources").render()))
        assert "server error 502" in str(app.screen.query_one("#sources").render())
        seen.set()
        # The next poll (within the 1-2 s backoff) is refused: an auth failure shows as failing, not a crash.
        await wait_for(pilot, lambda: app.source_statuses["masto"].state == "failing")
        await wait_for(pilot, lambda: "credentials rejected" in str(app.screen.query_one("#sources").render()))
        assert app.is_running


async def test_a_fenced_write_is_not_a_source_failure(
    watchlist: Watchlist, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """Another process took the lease: the refused ingest is said in one line, not as a crash, and the
    source's state in the database (what every desk shows) is not turned into a failure."""
    source = Flaky("masto", [])
    collector = Collector(watchlist, store, sources=[source])

    assert await Presence(store, "bob", holder="elsewhere:1").acquire()
    collector.fence = Presence(store, "alice", holder="here:1").fence()
    task = asyncio.create_task(collector.run())
    try:
        await wait_until(lambda: any(r.name == "monitor.engine.collector" for r in caplog.records))  # it was refused
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert not [r for r in caplog.records if r.exc_info or "crashed" in r.getMessage()]
    assert any("held by elsewhere:1" in r.getMessage() for r in caplog.records)
    assert [state for name, state, *_ in await store.source_states() if name == "masto"] in ([], ["polling"])
