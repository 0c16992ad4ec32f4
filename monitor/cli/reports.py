"""`monitor stats`, `report` and `export`: read-only commands over the database."""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import TYPE_CHECKING

from monitor.cli.common import db_target, open_for_reading
from monitor.core import heap, safefile
from monitor.core.config import Watchlist

if TYPE_CHECKING:
    from monitor.reports.incidents import IncidentFigures
    from monitor.reports.stats import Report


def _stats_report(args: argparse.Namespace, watchlist: Watchlist, by: list[str] | None = None) -> Report:
    from monitor.core.timeutil import local_zone, parse_when
    from monitor.reports import stats

    zone = local_zone(watchlist.timezone)
    conn = open_for_reading(db_target(args, watchlist))
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


def _incidents(args: argparse.Namespace, watchlist: Watchlist) -> IncidentFigures:
    from monitor.reports import incidents

    since, until = _period(args, watchlist)
    conn = open_for_reading(db_target(args, watchlist))
    try:
        return incidents.compute(conn, since, until)
    finally:
        conn.close()


def _period(args: argparse.Namespace, watchlist: Watchlist) -> tuple[int, int]:
    """[since, until) in epoch ms; open ends are the beginning and the end of time."""
    from monitor.core.timeutil import local_zone, parse_when

    zone = local_zone(watchlist.timezone)
    since = parse_when(args.since, zone) if args.since else 0
    return since, parse_when(args.until, zone) if args.until else 2**62


def cmd_stats(args: argparse.Namespace, watchlist: Watchlist) -> int:
    heap.for_arrays()  # first: before numpy is imported
    from monitor.reports import incidents, stats

    by = [name for group in args.by for name in group] if args.by else None
    report = _stats_report(args, watchlist, by)
    sys.stdout.write(stats.render(report, args.format))
    if args.format == "table":  # machine formats keep their shape: incidents have `monitor export incidents`
        sys.stdout.write("\n" + incidents.render_text(_incidents(args, watchlist)))
    if args.explain:
        # Machine formats stay parseable: the definitions go beside them, on stderr.
        out = sys.stdout if args.format == "table" else sys.stderr
        print("\n" + stats.EXPLAIN + "\n" + incidents.EXPLAIN, end="", file=out)
    return 0


def cmd_report(args: argparse.Namespace, watchlist: Watchlist) -> int:
    heap.for_arrays()  # first: before numpy is imported
    from monitor.reports.html import render_html
    from monitor.reports.incidents import with_section

    report = _stats_report(args, watchlist)
    html = with_section(render_html(report), _incidents(args, watchlist))
    safefile.write_text(args.html, html, safefile.default_mode())
    print(f"report written to {args.html}", file=sys.stderr)
    return 0


def cmd_export(args: argparse.Namespace, watchlist: Watchlist) -> int:
    from monitor.core.timeutil import local_zone, parse_when
    from monitor.reports import export

    zone = local_zone(watchlist.timezone)
    conn = open_for_reading(db_target(args, watchlist))
    try:
        with (
            safefile.atomic_writer(args.output, safefile.default_mode(), newline="")
            if args.output
            else contextlib.nullcontext(sys.stdout)
        ) as out:
            if args.what == "incidents":
                from monitor.reports import incidents

                count = incidents.export(conn, args.format, out, *_period(args, watchlist), raw_csv=args.raw_csv)
            else:
                count = export.write(
                    conn, args.what, args.format, out,
                    since=parse_when(args.since, zone) if args.since else None,
                    until=parse_when(args.until, zone) if args.until else None, raw_csv=args.raw_csv,
                )  # fmt: skip
    finally:
        conn.close()
    print(f"{count} {args.what} exported", file=sys.stderr)
    return 0
