"""Command line: `monitor` (the app), `collect`, `stats`, `report`, `export`, `check`."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from monitor import logredact
from monitor.config import ConfigError, Watchlist, load_watchlist
from monitor.permissions import UnsafePermissions, check_shared_path
from monitor.store import StoreError

if TYPE_CHECKING:
    from monitor.stats import Report

EXIT_CONFIG = 2
DEFAULT_WATCHLIST = "watchlist.yaml"


def _common(p: argparse.ArgumentParser, top: bool = False) -> None:
    """Options every command takes; a subcommand's copy keeps what was given before the subcommand."""

    def default(value: object) -> object:
        return value if top else argparse.SUPPRESS

    p.add_argument(
        "--watchlist", "-w", default=default(os.environ.get("MONITOR_WATCHLIST", DEFAULT_WATCHLIST)),
        help="the watchlist file (default: ./watchlist.yaml, or $MONITOR_WATCHLIST)",
    )  # fmt: skip
    p.add_argument("--db", default=default(None), help="the SQLite file (default: `database:` in the watchlist)")
    p.add_argument("--log", default=default(None), help="write a log to this file (default: none in the app)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="monitor", description="A terminal console for a city's duty desk.")
    _common(parser, top=True)
    _app_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="open the duty desk (the default)")
    _common(run)
    _app_options(run)

    collect = sub.add_parser("collect", help="run the sources headless into the database")
    _common(collect)
    collect.add_argument("--once", action="store_true", help="poll each source once, then exit (1 if any failed)")
    collect.add_argument("--speed", type=float, default=argparse.SUPPRESS, help="demo replay speed")
    collect.add_argument(
        "--dry-run", action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
        help="deliver nothing (marked sent); --no-dry-run sends even for an all-demo watchlist",
    )  # fmt: skip
    collect.add_argument("--no-deliver", action="store_true", help="do not send replies and escalations here")

    stats = sub.add_parser("stats", help="response-time statistics from the action log")
    _common(stats)
    stats.add_argument("--since", help="ISO date/time (local) or an age like 7d, 12h")
    stats.add_argument("--until", help="ISO date/time (local) or an age like 1d")
    stats.add_argument("--format", choices=("table", "csv", "json"), default="table")
    stats.add_argument(
        "--by", action="append", default=None, type=_breakdowns, metavar="DIM[,DIM]",
        help="breakdowns: source, term, service, operator, priority, hour, weekday (repeatable; default all)",
    )  # fmt: skip
    stats.add_argument("--explain", action="store_true", help="also print how each figure is defined")

    report = sub.add_parser("report", help="a self-contained HTML report (tables and charts)")
    _common(report)
    report.add_argument("--html", required=True, metavar="FILE", help="write the page to this file")
    report.add_argument("--since", help="ISO date/time (local) or an age like 7d, 12h")
    report.add_argument("--until", help="ISO date/time (local) or an age like 1d")

    export = sub.add_parser("export", help="dump mentions or actions for other tools")
    _common(export)
    export.add_argument("what", choices=("mentions", "actions"))
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    export.add_argument("--since", help="ISO date/time (local) or an age like 7d")
    export.add_argument("--until", help="ISO date/time (local) or an age like 1d")
    export.add_argument("--output", "-o", help="write to this file (default: stdout)")

    check = sub.add_parser("check", help="validate the watchlist")
    _common(check)
    check.add_argument("--online", action="store_true", help="also try each configured source once")
    return parser


def _app_options(p: argparse.ArgumentParser, top: bool = False) -> None:
    def default(value: object) -> object:
        return value if top else argparse.SUPPRESS

    p.add_argument("--operator", default=default(None), help="who acts (default: the login user)")
    p.add_argument("--speed", type=float, default=default(1.0), help="demo replay speed (2 = twice as fast)")
    p.add_argument("--no-collect", action="store_true", default=default(False), help="do not run the sources here")
    p.add_argument(
        "--dry-run", action="store_true", default=default(None),
        help="send nothing: replies and escalations are marked sent as 'dry-run' (the demo's default)",
    )  # fmt: skip
    p.add_argument("--read-only", action="store_true", default=default(False), help="see everything, act on nothing")


def operator_name(explicit: str | None) -> str:
    if explicit:
        return explicit
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "operator"


def load(args: argparse.Namespace) -> Watchlist:
    return load_watchlist(args.watchlist)


def db_path(args: argparse.Namespace, watchlist: Watchlist) -> Path:
    return Path(args.db) if args.db else watchlist.database


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = args.command or "run"
    _setup_logging(args, command)
    try:
        watchlist = load(args)
    except ConfigError as exc:
        print(f"monitor: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        if command == "check":
            return cmd_check(args, watchlist)
        if command == "collect":
            return asyncio.run(cmd_collect(args, watchlist))
        if command == "stats":
            return cmd_stats(args, watchlist)
        if command == "report":
            return cmd_report(args, watchlist)
        if command == "export":
            return cmd_export(args, watchlist)
        return cmd_run(args, watchlist)
    except KeyboardInterrupt:
        return 130
    except (ValueError, UnsafePermissions, StoreError) as exc:
        print(f"monitor: {exc}", file=sys.stderr)
        return EXIT_CONFIG


def _setup_logging(args: argparse.Namespace, command: str) -> None:
    if args.log:
        logging.basicConfig(filename=args.log, level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    elif command != "run":
        logging.basicConfig(level=logging.WARNING, format="monitor: %(name)s: %(message)s")
    else:
        logging.getLogger().addHandler(logging.NullHandler())  # never print over the screen
    logredact.install()


def cmd_check(args: argparse.Namespace, watchlist: Watchlist) -> int:
    from monitor.matching import Matcher

    Matcher(watchlist)
    print(
        f"{watchlist.path}: ok — {len(watchlist.terms)} terms, {len(watchlist.sources)} sources, "
        f"{len(watchlist.services)} services, {len(watchlist.templates)} templates; "
        f"database {db_path(args, watchlist)}"
    )
    if args.online:
        return asyncio.run(_check_online(args, watchlist))
    return 0


async def _check_online(args: argparse.Namespace, watchlist: Watchlist) -> int:
    from monitor.sources import SourceContext, SourceError, build_source

    failed = 0
    context = SourceContext(state_dir=db_path(args, watchlist).parent)
    for spec in watchlist.sources:
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


async def cmd_collect(args: argparse.Namespace, watchlist: Watchlist) -> int:
    from monitor.collector import Collector
    from monitor.sources import SourceContext
    from monitor.store import Store

    path = db_path(args, watchlist)
    check_shared_path(path)
    store = await Store.open(path)
    context = SourceContext(replay_all=args.once, speed=args.speed, state_dir=path.parent)
    collector = Collector(watchlist, store, context)
    delivery = None
    if not args.no_deliver:
        from monitor.delivery.worker import DeliveryWorker

        all_demo = all(s.type == "demo" for s in watchlist.sources)
        dry_run = args.dry_run if args.dry_run is not None else all_demo
        delivery = DeliveryWorker(store, watchlist, context, dry_run=dry_run)
    try:
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
        from monitor.leader import run_as_leader
        from monitor.presence import Presence

        presence = Presence(store, "collector")
        collector.fence = presence.fence()
        async with asyncio.TaskGroup() as group:
            group.create_task(run_as_leader(presence, [collector.run], name="collector"))
            if delivery is not None:
                group.create_task(run_as_leader(presence, [delivery.run], name="delivery"))
        return 0
    finally:
        await store.close()


def _breakdowns(text: str) -> list[str]:
    from monitor.stats import DIMENSIONS

    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in DIMENSIONS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"{text!r}: choose from {', '.join(DIMENSIONS)}")
    return names


def _stats_report(args: argparse.Namespace, watchlist: Watchlist, by: list[str] | None = None) -> Report:
    from monitor import stats
    from monitor.store import open_sync
    from monitor.timeutil import local_zone, parse_when

    zone = local_zone(watchlist.timezone)
    conn = open_sync(db_path(args, watchlist))
    try:
        return stats.compute(
            conn,
            watchlist,
            since=parse_when(args.since, zone) if args.since else None,
            until=parse_when(args.until, zone) if args.until else None,
            by=by,
        )
    finally:
        conn.close()


def cmd_stats(args: argparse.Namespace, watchlist: Watchlist) -> int:
    from monitor import stats

    by = [name for group in args.by for name in group] if args.by else None
    report = _stats_report(args, watchlist, by)
    sys.stdout.write(stats.render(report, args.format))
    if args.explain:
        # Machine formats stay parseable: the definitions go beside them, on stderr.
        print("\n" + stats.EXPLAIN, end="", file=sys.stdout if args.format == "table" else sys.stderr)
    return 0


def cmd_report(args: argparse.Namespace, watchlist: Watchlist) -> int:
    from monitor.report_html import render_html

    report = _stats_report(args, watchlist)
    Path(args.html).write_text(render_html(report), encoding="utf-8")
    print(f"report written to {args.html}", file=sys.stderr)
    return 0


def cmd_export(args: argparse.Namespace, watchlist: Watchlist) -> int:
    from monitor import export
    from monitor.store import open_sync
    from monitor.timeutil import local_zone, parse_when

    zone = local_zone(watchlist.timezone)
    conn = open_sync(db_path(args, watchlist))
    out = open(args.output, "w", encoding="utf-8", newline="") if args.output else sys.stdout
    try:
        count = export.write(
            conn, args.what, args.format, out,
            since=parse_when(args.since, zone) if args.since else None,
            until=parse_when(args.until, zone) if args.until else None,
        )  # fmt: skip
    finally:
        conn.close()
        if out is not sys.stdout:
            out.close()
    print(f"{count} {args.what} exported", file=sys.stderr)
    return 0


def cmd_run(args: argparse.Namespace, watchlist: Watchlist) -> int:
    from monitor.app import MonitorApp

    check_shared_path(db_path(args, watchlist))
    app = MonitorApp(
        watchlist,
        db_path=db_path(args, watchlist),
        operator=operator_name(args.operator),
        speed=args.speed,
        collect=not args.no_collect,
        read_only=args.read_only,
        dry_run=args.dry_run,
    )
    app.run()
    return app.return_code or 0
