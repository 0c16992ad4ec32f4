"""The storm the benchmarks and the hang-up test run: the rate it asks for is the rate the collector stores."""

from __future__ import annotations

from pathlib import Path

from monitor.core.models import Batch
from monitor.db.store import Store
from monitor.engine.collector import Collector
from monitor.networks import SourceContext, load_watchlist
from monitor.networks.demo import DemoOptions, DemoSource
from tests._storm_proc import Storm
from tests.conftest import write_watchlist


async def test_every_mention_the_storm_hands_the_collector_is_stored(tmp_path: Path, store: Store) -> None:
    source = DemoSource("storm", DemoOptions(loop=True), SourceContext())
    collector = Collector(load_watchlist(write_watchlist(tmp_path)), store, sources=[source])
    storm = Storm(source, collector.matcher)
    asked = 0
    for count in (50, 2 * len(source.items)):  # a tick, then more than the file: the replay loops, ids stay new
        batch = storm.take(count)
        assert len(batch) == count
        assert await collector.ingest(source, Batch(mentions=batch, cursor=str(storm.sent))) == count
        asked += count
    assert collector.status["storm"].filtered == 0
    assert sum((await store.counts()).values()) == asked
