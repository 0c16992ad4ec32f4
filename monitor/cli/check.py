"""`monitor check`: the watchlist, the install and the database path (and, --online, each source once)."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sized
from pathlib import Path

from monitor.cli.common import db_target, open_for_reading
from monitor.cli.exits import EXIT_FAILED, EXIT_OK
from monitor.core.config import SourceSpec, Watchlist
from monitor.core.dburl import describe
from monitor.core.paths import DatabaseUnavailable, check_database, check_install, state_dir
from monitor.db.permissions import check_shared_path
from monitor.networks.base import SourceContext


def _check_database_path(path: Path) -> str:
    """What the database path allows, or DatabaseUnavailable when no command could use it."""
    try:
        check_database(path, write=True)
        check_shared_path(path)
        return "writable" if path.exists() else "will be created"
    except DatabaseUnavailable:
        check_database(path, write=False)  # the folder is read-only: fine for reports, if the file is there
        return "read-only (stats, report, export; the app and collect need to write in its folder)"


def _count(items: Sized, noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def cmd_check(args: argparse.Namespace, watchlist: Watchlist) -> int:
    from monitor.core.matching import Matcher

    Matcher(watchlist)
    check_install()
    target = db_target(args, watchlist)
    if isinstance(target, str):
        from monitor.db.pg.connect import probe

        path, access = describe(target), asyncio.run(probe(target))
    else:
        path, access = str(target), _check_database_path(target)
    print(
        f"{watchlist.path}: ok — {_count(watchlist.terms, 'term')}, {_count(watchlist.sources, 'source')}, "
        f"{_count(watchlist.services, 'service')}, {_count(watchlist.templates, 'template')}; "
        f"database {path} ({access})"
    )
    failed = _check_clocks(target) if args.clocks else EXIT_OK
    if args.online:
        return asyncio.run(_check_online(args, watchlist)) or failed
    return failed


def _check_clocks(target: str | Path) -> int:
    """The statistics read each mention's stored clocks: they must be what the action log says."""
    from monitor.db.reading import clock_differences, stale_days

    conn = open_for_reading(target)
    try:
        found, stale = clock_differences(conn), stale_days(conn)
    finally:
        conn.close()
    for difference in found:
        print(f"  {difference}")
    print("clocks: as the action log says" if not found else "clocks: these differ from the action log")
    for day in stale:
        print(f"  day {day} (UTC, days since 1970): its digest is not what its mentions give")
    print("day digests: as the mentions give" if not stale else "day digests: these differ from the mentions")
    return EXIT_FAILED if found or stale else EXIT_OK


async def _check_online(args: argparse.Namespace, watchlist: Watchlist) -> int:
    from monitor.networks import SourceContext, SourceError, build_source

    failed = 0
    context = SourceContext(state_dir=state_dir(watchlist.state_dir), terms=watchlist.terms)
    for spec in watchlist.sources:
        if spec.type == "x":  # a poll would buy a page of posts: two cheap calls instead, and the spend so far
            failed += await _check_x(spec, context, db_target(args, watchlist))
            continue
        source = build_source(spec, context)
        try:
            batch = await source.poll(None)
            print(f"  {spec.name} ({spec.type}): ok, {len(batch.mentions)} items")
        except SourceError as exc:
            failed += 1
            print(f"  {spec.name} ({spec.type}): FAILED — {exc}")
        finally:
            await source.aclose()
    return 1 if failed else 0


async def _check_x(spec: SourceSpec, context: SourceContext, target: str | Path) -> int:
    from monitor.networks import SourceError
    from monitor.networks.x.check import check_online

    try:
        said = await check_online(spec, context)
    except SourceError as exc:
        print(f"  {spec.name} ({spec.type}): FAILED — {exc}")
        return 1
    print(f"  {spec.name} ({spec.type}): ok, {said}; spent this month: {_spent(spec, target)}")
    return 0


def _spent(spec: SourceSpec, target: str | Path) -> str:
    from monitor.core.timeutil import now_ms
    from monitor.db.faults import StoreError
    from monitor.db.reading import spend_for_period
    from monitor.networks.x.budget import money

    if isinstance(target, Path) and not target.exists():
        return "nothing yet (no database)"
    try:
        conn = open_for_reading(target)
    except StoreError as exc:  # a server's database not created yet, or unreachable: the check goes on
        return f"not known ({exc})"
    try:
        now = now_ms()  # this UTC month: the one X bills
        spent = money(sum(reads + writes for source, reads, writes, *_ in spend_for_period(conn, now, now + 1)
                          if source == spec.name))  # fmt: skip
    finally:
        conn.close()
    budget = spec.options.budget
    return spent + (f" of {money(budget.monthly)}" if budget else "")
