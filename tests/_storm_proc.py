"""A storm: demo mentions written into the database through the collector path at a steady rate.

  python tests/_storm_proc.py DB WATCHLIST [--rate 1000]

Runs until killed. Prints "storming" once the first batch is committed. Used by the hang-up test and
benchmarks/bench_storm.py and bench_typeahead.py. Not a test module (no test_ prefix): pytest does not collect it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.core.matching import Matcher  # noqa: E402
from monitor.core.models import Batch, Mention  # noqa: E402
from monitor.db.store import Store  # noqa: E402
from monitor.engine.collector import Collector  # noqa: E402
from monitor.networks import SourceContext, load_watchlist  # noqa: E402
from monitor.networks.demo import DemoOptions, DemoSource  # noqa: E402

TICK_S = 0.05
FIRST_LOOP = 2_500  # the demo file replayed from this loop on: its ids (id~loop) are the storm's own


class Storm:
    """The demo file's posts that the watchlist keeps, replayed loop after loop with fresh ids.

    Every mention it hands the collector is one the collector stores: the file also holds posts on nothing
    watched (12% of it), which the matcher filters out, and a storm of them would make the asked rate a lie.
    """

    def __init__(self, source: DemoSource, matcher: Matcher) -> None:
        self.source, self.size = source, len(source.items)
        self.kept = [i for i in range(self.size) if (m := source._mention(i)) is not None and matcher.match(m)]
        if not self.kept:
            raise SystemExit("storm: the watchlist keeps none of the demo file's posts")
        self.sent = 0

    def take(self, count: int) -> list[Mention]:
        """The next `count` mentions, each matching the watchlist and never sent before."""
        out = []
        for k in range(self.sent, self.sent + count):
            loop, i = divmod(k, len(self.kept))
            if (m := self.source._mention((FIRST_LOOP + loop) * self.size + self.kept[i])) is not None:
                out.append(m)
        self.sent += count
        return out


async def storm(db: Path, watchlist: Path, rate: int) -> None:
    source = DemoSource("storm", DemoOptions(loop=True), SourceContext())
    store = await Store.open(db)
    collector = Collector(load_watchlist(watchlist), store, sources=[source])
    mentions = Storm(source, collector.matcher)
    per_tick, start, ticks = max(1, int(rate * TICK_S)), time.monotonic(), 0
    while True:
        batch = mentions.take(per_tick)
        await collector.ingest(source, Batch(mentions=batch, cursor=str(mentions.sent)))
        if ticks == 0:
            print("storming", flush=True)
        ticks += 1
        # Paced on the start, not on the last tick: a late tick is made up by the next ones, never lost.
        await asyncio.sleep(max(0.0, start + ticks * TICK_S - time.monotonic()))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("db", type=Path)
    ap.add_argument("watchlist", type=Path)
    ap.add_argument("--rate", type=int, default=1000, help="mentions stored per second")
    args = ap.parse_args()
    asyncio.run(storm(args.db, args.watchlist, args.rate))


if __name__ == "__main__":
    main()
