"""Command line: `monitor` (the app), `collect`, `stats`, `report`, `export`, `check`, `init`, `completion`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import logging
import os
import re
import sqlite3
import sys
from collections.abc import Sequence, Sized
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import TYPE_CHECKING

import shtab

from monitor import __version__
from monitor.core import logredact, safefile
from monitor.core.config import ConfigError, Watchlist, load_watchlist
from monitor.core.paths import (
    APP_LOG_NAME,
    DB_ENV,
    WATCHLIST_NAME,
    InstallIncomplete,
    WatchlistNotFound,
    check_database,
    check_install,
    find_watchlist,
    sample_watchlist,
    state_dir,
)
from monitor.db.permissions import UnsafePermissions, check_shared_path
from monitor.db.store import StoreError, first_cause

if TYPE_CHECKING:
    from monitor.reports.stats import Report
    from monitor.ui.app import MonitorApp

# Exit codes, the same for every command (README, "Exit codes"; `monitor --help`).
EXIT_OK = 0
EXIT_FAILED = 1  # a source or a delivery failed
EXIT_CONFIG = 2  # usage or config error (argparse exits 2 too)
EXIT_DATABASE = 3  # the database is missing, unreadable, unsafe or at another schema
EXIT_INTERRUPTED = 130
APP_LOG_BYTES, APP_LOG_BACKUPS = 1_000_000, 3
LOG_LEVELS = ("debug", "info", "warning", "error")


class UsageError(Exception):
    """A mistake on the command line that argparse cannot see (exit 2)."""


def exit_code(exc: BaseException) -> int | None:
    """The one mapping from an error to an exit code (None: not ours, let it raise)."""
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(exc, StoreError | sqlite3.Error | UnsafePermissions):
        return EXIT_DATABASE
    if isinstance(exc, ConfigError | WatchlistNotFound | UsageError | InstallIncomplete | ValueError | re.error):
        return EXIT_CONFIG  # re.error: patterns that clash
    if isinstance(exc, OSError):  # a file named in the watchlist that cannot be read, a folder not writable
        return EXIT_FAILED
    return None


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    return str(exc)


EPILOG = """\
examples:
  monitor init ~/.config/monitor       write a sample watchlist to edit for your city
  monitor check                        validate the watchlist and the database path
  monitor                              open the duty desk
  monitor collect                      collect and deliver as a service (logs to stderr)
  monitor completion bash > ~/.local/share/bash-completion/completions/monitor

the watchlist is --watchlist, else $MONITOR_WATCHLIST, else the first found of ./watchlist.yaml,
$XDG_CONFIG_HOME/monitor/watchlist.yaml (~/.config), /etc/monitor/watchlist.yaml.
the database is --db, else $MONITOR_DB, else `database:` in the watchlist.

exit codes (every command): 0 ok; 1 a source or a delivery failed; 2 usage or config error;
3 database error (missing, unreadable, unsafe permissions, other schema); 130 interrupted.
"""


def _common(p: argparse.ArgumentParser, top: bool = False) -> None:
    """Options every command takes; a subcommand's copy keeps what was given before the subcommand."""

    def default(value: object) -> object:
        return value if top else argparse.SUPPRESS

    p.add_argument(
        "--watchlist", "-w", default=default(None),
        help="the watchlist file (default: $MONITOR_WATCHLIST, ./watchlist.yaml, ~/.config/monitor/, /etc/monitor/)",
    ).complete = shtab.FILE  # type: ignore[attr-defined]  # fmt: skip
    p.add_argument(
        "--db", default=default(None), help="the SQLite file (default: $MONITOR_DB, else `database:` in the watchlist)"
    ).complete = shtab.FILE  # type: ignore[attr-defined]
    p.add_argument(
        "--log", default=default(None),
        help="log to this file (default: stderr; the app keeps a rotating log in the state directory)",
    ).complete = shtab.FILE  # type: ignore[attr-defined]  # fmt: skip
    p.add_argument(
        "--log-level", choices=LOG_LEVELS, default=default(None),
        help="least level logged (default: warning on stderr, info in a file)",
    )  # fmt: skip


def _examples(*lines: str) -> str:
    return "example:\n" + "\n".join(f"  {line}" for line in lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="monitor", description="A terminal console for a city's duty desk.", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--version", action="version", version=f"monitor {__version__}")
    _common(parser, top=True)
    _app_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, summary: str, *examples: str) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name, help=summary, description=summary[0].upper() + summary[1:] + ".", epilog=_examples(*examples),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )  # fmt: skip
        _common(p)
        return p

    run = command("run", "open the duty desk (the default)", "monitor run --operator alice --read-only")
    _app_options(run)

    collect = command(
        "collect", "run the sources headless into the database",
        "monitor collect --once -w /etc/monitor/watchlist.yaml   # cron: poll each source once",
    )  # fmt: skip
    collect.add_argument("--once", action="store_true", help="poll each source once, then exit (1 if any failed)")
    collect.add_argument("--speed", type=float, default=argparse.SUPPRESS, help="demo replay speed")
    collect.add_argument(
        "--dry-run", action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
        help="deliver nothing (marked sent); --no-dry-run sends even for an all-demo watchlist",
    )  # fmt: skip
    collect.add_argument("--no-deliver", action="store_true", help="do not send replies and escalations here")

    stats = command("stats", "response-time statistics from the action log", "monitor stats --since 7d --by source")
    stats.add_argument("--since", help="ISO date/time (local) or an age like 7d, 12h")
    stats.add_argument("--until", help="ISO date/time (local) or an age like 1d")
    stats.add_argument("--format", choices=("table", "csv", "json"), default="table")
    stats.add_argument(
        "--by", action="append", default=None, type=_breakdowns, metavar="DIM[,DIM]",
        help="breakdowns: source, term, service, operator, priority, hour, weekday (repeatable; default all)",
    )  # fmt: skip
    stats.add_argument("--explain", action="store_true", help="also print how each figure is defined")

    report = command(
        "report", "a self-contained HTML report (tables and charts)", "monitor report --since 30d --html month.html"
    )
    report.add_argument("--html", required=True, metavar="FILE", help="write the page to this file")
    report.add_argument("--since", help="ISO date/time (local) or an age like 7d, 12h")
    report.add_argument("--until", help="ISO date/time (local) or an age like 1d")

    export = command(
        "export", "dump mentions or actions for other tools", "monitor export actions --format csv -o actions.csv"
    )
    export.add_argument("what", choices=("mentions", "actions"))
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    export.add_argument("--since", help="ISO date/time (local) or an age like 7d")
    export.add_argument("--until", help="ISO date/time (local) or an age like 1d")
    export.add_argument("--output", "-o", help="write to this file (default: stdout)")
    export.add_argument(
        "--raw-csv", action="store_true",
        help="write CSV cells as stored; by default a cell starting with = + - @ gets a leading ' (no live formulas)",
    )  # fmt: skip

    check = command("check", "validate the watchlist and the database path", "monitor check --online")
    check.add_argument("--online", action="store_true", help="also try each configured source once")
    check.add_argument(
        "--clocks", action="store_true",
        help="also recompute each mention's clocks from the action log (seconds per million mentions)",
    )  # fmt: skip

    init = command(
        "init", "write the commented sample watchlist, to edit for your city",
        "monitor init ~/.config/monitor   # then: monitor check",
    )  # fmt: skip
    init.add_argument("dir", nargs="?", default=".", help="the folder to write watchlist.yaml in (default: here)")
    init.add_argument("--force", action="store_true", help="replace an existing watchlist.yaml")

    completion = command("completion", "print a shell completion script", "monitor completion zsh > ~/.zfunc/_monitor")
    completion.add_argument("shell", choices=("bash", "zsh", "fish"))
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
    p.add_argument(
        "--smoke", action="store_true", default=default(False),
        help="start without a terminal, wait for the first painted screen, exit (0: it starts; for install checks)",
    )  # fmt: skip


def operator_name(explicit: str | None) -> str:
    if explicit:
        return explicit
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "operator"


def load(args: argparse.Namespace) -> Watchlist:
    return load_watchlist(find_watchlist(args.watchlist))


def db_path(args: argparse.Namespace, watchlist: Watchlist) -> Path:
    given = args.db or os.environ.get(DB_ENV)
    return Path(given) if given else watchlist.database


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args, args.command or "run")
    except BrokenPipeError:  # `monitor export … | head`: the reader has what it wanted; not an error
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        return EXIT_OK
    except BaseException as exc:
        code = exit_code(exc)
        if code is None:
            raise
        if code != EXIT_INTERRUPTED:
            print(f"monitor: {_one_line(exc)}", file=sys.stderr)
        return code


def _dispatch(args: argparse.Namespace, command: str) -> int:
    if command == "init":
        return cmd_init(args)
    if command == "completion":
        sys.stdout.write(shtab.complete(build_parser(), shell=args.shell))
        return EXIT_OK
    watchlist = load(args)
    if command in ("check", "run"):  # the commands that open the screens, whose keys may be remapped
        from monitor.ui.screens.keycheck import check_keys

        check_keys(watchlist)
    log_file = _setup_logging(args, command, watchlist)
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
    return cmd_run(args, watchlist, log_file)


def _setup_logging(args: argparse.Namespace, command: str, watchlist: Watchlist) -> Path | None:
    """The one place logging is configured; a filter for every record (e.g. redaction) goes on `handler`.

    Commands log to stderr, which journald keeps under systemd. The app owns the terminal, so it writes a
    small rotating file in the state directory instead. Returns the log file, if any.
    """
    log_file = Path(args.log) if args.log else None
    if log_file is None and command == "run":
        log_file = state_dir(watchlist.state_dir) / APP_LOG_NAME
    handler: logging.Handler
    if log_file is not None:
        try:
            handler = RotatingFileHandler(
                log_file, maxBytes=APP_LOG_BYTES, backupCount=APP_LOG_BACKUPS, encoding="utf-8"
            )
        except OSError as exc:
            raise UsageError(f"{log_file}: cannot write the log ({exc.strerror})") from exc
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("monitor: %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    logredact.install()
    root.setLevel((args.log_level or ("info" if log_file else "warning")).upper())
    return log_file


INIT_NEXT = """\
wrote {path}: a commented sample (the demo source, Toulouse's terms). Edit, for your city:
  city, timezone        its name and time zone
  terms, ignore         the words, hashtags and accounts to watch, and spam to drop
  sources               replace the demo with mastodon, bluesky or feed sources (README)
  services, templates   where escalations go, and canned replies
  business_hours        the desk's hours and public holidays
then check it: monitor check -w {path}
"""


def cmd_init(args: argparse.Namespace) -> int:
    path = Path(args.dir) / WATCHLIST_NAME
    if path.exists() and not args.force:
        raise UsageError(f"{path}: already exists (edit it, or --force to replace it with the sample)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(sample_watchlist(), encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: cannot write ({exc.strerror})") from exc
    print(INIT_NEXT.format(path=path), end="")
    return EXIT_OK


def _check_database_path(path: Path) -> str:
    """What the database path allows, or DatabaseUnavailable when no command could use it."""
    try:
        check_database(path, write=True)
        check_shared_path(path)
        return "writable" if path.exists() else "will be created"
    except StoreError:
        check_database(path, write=False)  # the folder is read-only: fine for reports, if the file is there
        return "read-only (stats, report, export; the app and collect need to write in its folder)"


def _count(items: Sized, noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def cmd_check(args: argparse.Namespace, watchlist: Watchlist) -> int:
    from monitor.core.matching import Matcher

    Matcher(watchlist)
    check_install()
    path = db_path(args, watchlist)
    access = _check_database_path(path)
    print(
        f"{watchlist.path}: ok — {_count(watchlist.terms, 'term')}, {_count(watchlist.sources, 'source')}, "
        f"{_count(watchlist.services, 'service')}, {_count(watchlist.templates, 'template')}; "
        f"database {path} ({access})"
    )
    failed = _check_clocks(path) if args.clocks else EXIT_OK
    if args.online:
        return asyncio.run(_check_online(args, watchlist)) or failed
    return failed


def _check_clocks(path: Path) -> int:
    """The statistics read each mention's stored clocks: they must be what the action log says."""
    from monitor.db.clocks import differences

    conn = _open_for_reading(path)
    try:
        found = differences(conn)
    finally:
        conn.close()
    for difference in found:
        print(f"  {difference}")
    print("clocks: as the action log says" if not found else "clocks: these differ from the action log")
    return EXIT_FAILED if found else EXIT_OK


async def _check_online(args: argparse.Namespace, watchlist: Watchlist) -> int:
    from monitor.networks import SourceContext, SourceError, build_source

    failed = 0
    context = SourceContext(state_dir=state_dir(watchlist.state_dir))
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
    from monitor.db.store import Store
    from monitor.engine.collector import Collector
    from monitor.networks import SourceContext

    path = db_path(args, watchlist)
    check_database(path, write=True)
    check_shared_path(path)
    store = await Store.open(path)
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


def _breakdowns(text: str) -> list[str]:
    from monitor.reports.stats import DIMENSIONS

    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in DIMENSIONS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"{text!r}: choose from {', '.join(DIMENSIONS)}")
    return names


def _stats_report(args: argparse.Namespace, watchlist: Watchlist, by: list[str] | None = None) -> Report:
    from monitor.core.timeutil import local_zone, parse_when
    from monitor.reports import stats

    zone = local_zone(watchlist.timezone)
    conn = _open_for_reading(db_path(args, watchlist))
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


def _open_for_reading(path: Path) -> sqlite3.Connection:
    """Reports never create, migrate or alter the database."""
    from monitor.db.store import open_readonly

    check_database(path, write=False)
    check_shared_path(path)
    return open_readonly(path)


def cmd_stats(args: argparse.Namespace, watchlist: Watchlist) -> int:
    from monitor.reports import stats

    by = [name for group in args.by for name in group] if args.by else None
    report = _stats_report(args, watchlist, by)
    sys.stdout.write(stats.render(report, args.format))
    if args.explain:
        # Machine formats stay parseable: the definitions go beside them, on stderr.
        print("\n" + stats.EXPLAIN, end="", file=sys.stdout if args.format == "table" else sys.stderr)
    return 0


def cmd_report(args: argparse.Namespace, watchlist: Watchlist) -> int:
    from monitor.reports.html import render_html

    report = _stats_report(args, watchlist)
    safefile.write_text(args.html, render_html(report), safefile.default_mode())
    print(f"report written to {args.html}", file=sys.stderr)
    return 0


def cmd_export(args: argparse.Namespace, watchlist: Watchlist) -> int:
    from monitor.core.timeutil import local_zone, parse_when
    from monitor.reports import export

    zone = local_zone(watchlist.timezone)
    conn = _open_for_reading(db_path(args, watchlist))
    try:
        with (
            safefile.atomic_writer(args.output, safefile.default_mode(), newline="")
            if args.output
            else contextlib.nullcontext(sys.stdout)
        ) as out:
            count = export.write(
                conn, args.what, args.format, out,
                since=parse_when(args.since, zone) if args.since else None,
                until=parse_when(args.until, zone) if args.until else None, raw_csv=args.raw_csv,
            )  # fmt: skip
    finally:
        conn.close()
    print(f"{count} {args.what} exported", file=sys.stderr)
    return 0


def cmd_run(args: argparse.Namespace, watchlist: Watchlist, log_file: Path | None = None) -> int:
    from monitor.ui.app import MonitorApp

    check_database(db_path(args, watchlist), write=True)
    check_shared_path(db_path(args, watchlist))
    asyncio.run(_open_and_close(db_path(args, watchlist)))  # a database that cannot open fails before the screen
    app = MonitorApp(
        watchlist,
        db_path=db_path(args, watchlist),
        operator=operator_name(args.operator),
        speed=args.speed,
        collect=not args.no_collect,
        read_only=args.read_only,
        dry_run=args.dry_run,
    )
    app.log_path = log_file
    if args.smoke:
        return _smoke(app)
    app.run()
    if isinstance(app.fatal, StoreError | OSError | ValueError | UnsafePermissions | re.error):
        raise app.fatal  # printed in one line by main(), after the terminal is restored
    if app.fatal is not None:  # the traceback is in the log (--log)
        raise SystemExit(f"monitor: cannot start: {type(app.fatal).__name__}: {app.fatal}")
    if app.unsaved:
        print(f"monitor: {app.unsaved} action(s) were still waiting for the database when the desk closed:"
              " check them in the desk", file=sys.stderr)  # fmt: skip
        return 1
    return app.return_code or 0


def _smoke(app: MonitorApp) -> int:
    """--smoke: run without a terminal at 80x24 until the desk has painted once, then leave.

    Fails (non-zero) if the app cannot start, e.g. when the stylesheet is missing from the install.
    """
    from textual.pilot import Pilot

    from monitor.ui.screens.main import MainScreen

    painted: list[str] = []

    async def first_paint(pilot: Pilot[object]) -> None:
        while not isinstance(pilot.app.screen, MainScreen):
            await pilot.pause(0.05)
        await pilot.pause()
        painted.append(pilot.app.export_screenshot())
        pilot.app.exit(EXIT_OK)

    app.run(headless=True, size=(80, 24), auto_pilot=first_paint)
    if painted and not app.return_code:
        print(f"monitor: the desk started and painted its first screen ({len(painted[0])} bytes of SVG)")
        return EXIT_OK
    return app.return_code or EXIT_FAILED


async def _open_and_close(path: Path) -> None:
    from monitor.db.store import Store

    await (await Store.open(path)).close()
