"""A storm: demo mentions written into the database through the collector path at a steady rate.

  python tests/_storm_proc.py DB WATCHLIST [--rate 1000]

Runs until killed. Prints "storming" once the first batch is committed. Used by the hang-up test and
benchmarks/bench_typeahead.py. Not a test module (no test_ prefix): pytest does not collect it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.core.models import Batch  # noqa: E402
from monitor.db.store import Store  # noqa: E402
from monitor.engine.collector import Collector  # noqa: E402
from monitor.networks import SourceContext, load_watchlist  # noqa: E402
from monitor.networks.demo import DemoOptions, DemoSource  # noqa: E402

TICK_S = 0.05


async def storm(db: Path, watchlist: Path, rate: int) -> None:
    source = DemoSource("storm", DemoOptions(loop=True), SourceContext())
    store = await Store.open(db)
    collector = Collector(load_watchlist(watchlist), store, sources=[source])
    per_tick, i, start, ticks = max(1, int(rate * TICK_S)), 1_000_000, time.monotonic(), 0
    while True:
        mentions = [m for j in range(i, i + per_tick) if (m := source._mention(j)) is not None]
        i += per_tick
        await collector.ingest(source, Batch(mentions=mentions, cursor=str(i)))
        if ticks == 0:
            print("storming", flush=True)
        ticks += 1
        await asyncio.sleep(max(0.0, start + ticks * TICK_S - time.monotonic()))  # pace: `rate` a second


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("db", type=Path)
    ap.add_argument("watchlist", type=Path)
    ap.add_argument("--rate", type=int, default=1000)
    args = ap.parse_args()
    asyncio.run(storm(args.db, args.watchlist, args.rate))


if __name__ == "__main__":
    main()
