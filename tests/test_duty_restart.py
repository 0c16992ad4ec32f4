"""A crashed duty (collection, delivery) is restarted while this process leads, and the bar says so meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from monitor.core.config import Watchlist
from monitor.core.models import Batch, Mention
from monitor.db.presence import Presence
from monitor.db.store import Store
from monitor.engine.collector import Collector
from monitor.engine.leader import run_as_leader
from monitor.networks import SourceError
from tests.conftest import wait_until


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_a_crashed_duty_is_restarted_while_we_lead(store: Store) -> None:
    starts: list[int] = []

    async def duty() -> None:
        starts.append(1)
        if len(starts) == 1:
            raise RuntimeError("a bug on the first run")
        await asyncio.Event().wait()

    leader = asyncio.create_task(run_as_leader(Presence(store, "alice"), [duty], renew_every=0.05))
    try:
        await wait_until(lambda: len(starts) >= 2 or leader.done())
        assert not leader.done(), leader.exception()
        assert len(starts) == 2
    finally:
        await stop(leader)


class Once:
    """A source that yields one mention per poll."""

    def __init__(self, name: str, error: SourceError | None = None) -> None:
        self.name, self.error, self.polls = name, error, 0

    async def poll(self, cursor: str | None) -> Batch:
        self.polls += 1
        if self.error is not None:
            raise self.error
        m = Mention(self.name, f"m{self.polls}", "mastodon", "@a@b.c", "Tisséo en panne", datetime.now(tz=UTC))
        return Batch([m], cursor=str(self.polls))

    async def aclose(self) -> None:
        return None


async def test_a_source_asking_for_an_infinite_wait_never_stops_the_others(watchlist: Watchlist) -> None:
    store = await Store.open(watchlist.database)
    bad = Once("bad", SourceError("rate limited (429)", "rate", retry_after=float("inf")))
    good = Once("good")
    collector = Collector(watchlist, store, sources=[bad, good])
    run = asyncio.create_task(collector.run())
    try:
        # The good source's poll returns before its state is set: wait for the state, not the poll count.
        await wait_until(
            lambda: (
                collector.status["bad"].state == "backoff" and collector.status["good"].state == "polling" or run.done()
            )
        )
        assert not run.done(), run.exception()
        assert good.polls >= 1
    finally:
        await stop(run)
        await store.close()


async def test_the_bar_says_the_collector_crashed_until_it_runs_again(watchlist: Watchlist) -> None:
    store = await Store.open(watchlist.database)
    good = Once("good")
    collector = Collector(watchlist, store, sources=[good])
    crashed = asyncio.Event()
    original = collector._run_source

    async def crash_once(source: Once) -> None:  # type: ignore[override]
        if not crashed.is_set():
            crashed.set()
            raise RuntimeError("a bug outside any source")
        await original(source)

    collector._run_source = crash_once  # type: ignore[method-assign, assignment]
    seen: list[str] = []
    collector.on_status = lambda st: seen.append(f"{st.state}:{st.detail}")
    job: Callable[[], Awaitable[None]] = collector.run
    leader = asyncio.create_task(run_as_leader(Presence(store, "alice"), [job], renew_every=0.05))
    try:
        await wait_until(lambda: good.polls >= 1 and collector.status["good"].state == "polling" or leader.done())
        assert not leader.done(), leader.exception()
        assert any(s.startswith("failing:collector crashed (RuntimeError)") for s in seen)
    finally:
        await stop(leader)
        await store.close()
