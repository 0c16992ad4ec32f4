"""Each source's state is visible at a glance: live, polling, backing off until HH:MM, failing, last success."""

from __future__ import annotations

from datetime import UTC, datetime

from monitor.collector import Collector, backoff_delay
from monitor.config import Watchlist
from monitor.models import Batch, Mention
from monitor.sources import SourceError
from monitor.store import Store
from tests.test_app import make_app, wait_for


class Flaky:
    """A source that fails as told, then recovers."""

    def __init__(self, name: str, errors: list[SourceError]) -> None:
        self.name = name
        self.errors = errors
        self.polls = 0

    async def poll(self, cursor: str | None) -> Batch:
        self.polls += 1
        if self.errors:
            raise self.errors.pop(0)
        m = Mention(self.name, f"f{self.polls}", "mastodon", "@a@b.c", "Tisséo en panne", datetime.now(tz=UTC))
        return Batch([m], cursor=str(self.polls))

    async def aclose(self) -> None:
        return None


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    import random

    rng = random.Random(1)
    delays = [backoff_delay(n, SourceError("x"), rng) for n in range(1, 12)]
    assert delays[0] <= 2.0 and delays[3] > delays[0]
    assert max(delays) <= 300.0
    assert backoff_delay(1, SourceError("x", "rate", retry_after=42)) == 42
    assert backoff_delay(1, SourceError("x", "auth")) >= 600


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
    flaky = Flaky("masto", [SourceError("server error 502"), SourceError("credentials rejected (401)", "auth")])
    app = make_app(watchlist, sources=[flaky])
    async with app.run_test(size=(120, 24)) as pilot:
        await wait_for(pilot, lambda: app.source_statuses.get("masto") is not None)
        await wait_for(pilot, lambda: app.source_statuses["masto"].state == "backoff")
        await wait_for(pilot, lambda: "backing off until" in str(app.screen.query_one("#sources").render()))
        assert "server error 502" in str(app.screen.query_one("#sources").render())
        # The next poll (within the 1-2 s backoff) is refused: an auth failure shows as failing, not a crash.
        await wait_for(pilot, lambda: app.source_statuses["masto"].state == "failing")
        await wait_for(pilot, lambda: "credentials rejected" in str(app.screen.query_one("#sources").render()))
        assert app.is_running
