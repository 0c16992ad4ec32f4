"""`monitor collect`: the sources and the delivery, headless (once, or as a service under the leases)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from monitor.cli.common import checked_target
from monitor.core.config import Watchlist
from monitor.core.paths import state_dir
from monitor.db.faults import first_cause


async def cmd_collect(args: argparse.Namespace, watchlist: Watchlist) -> int:
    from monitor.db.engines import open_database
    from monitor.engine.collector import Collector
    from monitor.networks import SourceContext

    store = await open_database(checked_target(args, watchlist))
    try:  # whatever fails from here, the store closes (its thread would keep the process alive)
        context = SourceContext(replay_all=args.once, speed=args.speed, state_dir=state_dir(watchlist.state_dir))
        collector = Collector(watchlist, store, context)
        delivery = None
        if not args.no_deliver:
            from monitor.engine.delivery import DeliveryWorker

            all_demo = all(s.type == "demo" for s in watchlist.sources)
            dry_run = args.dry_run if args.dry_run is not None else all_demo
            delivery = DeliveryWorker(store, watchlist, context, dry_run=dry_run)
        if args.once:
            results = await collector.run_once()
            await collector.aclose()
            if delivery is not None:
                await delivery.run_once()
                await delivery.aclose()
            for name, error in results.items():
                st = collector.status[name]
                if error:
                    print(f"{name}: FAILED — {error}", file=sys.stderr)
                else:
                    print(f"{name}: ok — {st.stored} new, {st.filtered} filtered out, {st.skipped} malformed")
            return 1 if any(results.values()) else 0
        # As a service: collect and deliver while holding each lease; wait to take over otherwise.
        from monitor.db.presence import Presence
        from monitor.engine.leader import run_as_leader

        presence = Presence(store, "collector")
        collector.fence = presence.fence()
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(run_as_leader(presence, [collector.run], name="collector"))
                if delivery is not None:
                    group.create_task(run_as_leader(presence, [delivery.run], name="delivery"))
        except ExceptionGroup as group_error:  # a deleted database, say: one line, not a group's traceback
            raise first_cause(group_error) from group_error
        return 0
    finally:
        await store.close()
