"""Command line: `monitor` (the app), `collect`, `stats`, `report`, `export`, `check`, `auth`, `init`, `migrate`,
`completion`.

One module per command, imported when its command runs (`monitor stats` never loads the screens or the
networks); `main` is the entry point (`monitor.cli:main`).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import sys
from collections.abc import Sequence

from monitor.cli.common import _setup_logging, load
from monitor.cli.exits import EXIT_INTERRUPTED, EXIT_OK, UsageError, _one_line, exit_code
from monitor.cli.parser import build_parser, completing

REPORTS = ("stats", "report", "export")  # read the database only: no source, no network imported

__all__ = ["UsageError", "_setup_logging", "build_parser", "exit_code", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if (args.command or "run") == "run":
            gc.disable()  # the desk's start (its imports among it) frees little: the app collects once drawn
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
    finally:
        gc.enable()


def _dispatch(args: argparse.Namespace, command: str) -> int:
    if command == "init":
        from monitor.cli.init import cmd_init

        return cmd_init(args)
    if command == "migrate":  # between two databases: no watchlist needed
        from monitor.cli.migrate import cmd_migrate

        return cmd_migrate(args)
    if command == "completion":
        import shtab

        sys.stdout.write(shtab.complete(completing(build_parser()), shell=args.shell))
        return EXIT_OK
    watchlist = load(args, sources=command not in REPORTS)
    if command in ("check", "run"):  # the commands that open the screens, whose keys may be remapped
        from monitor.ui.screens.keycheck import check_keys

        check_keys(watchlist)
    log_file = _setup_logging(args, command, watchlist)
    if command == "check":
        from monitor.cli.check import cmd_check

        return cmd_check(args, watchlist)
    if command == "auth":
        from monitor.cli.auth import cmd_auth

        return cmd_auth(args, watchlist)
    if command == "collect":
        import asyncio

        from monitor.cli.collect import cmd_collect

        return asyncio.run(cmd_collect(args, watchlist))
    if command == "stats":
        from monitor.cli.reports import cmd_stats

        return cmd_stats(args, watchlist)
    if command == "report":
        from monitor.cli.reports import cmd_report

        return cmd_report(args, watchlist)
    if command == "export":
        from monitor.cli.reports import cmd_export

        return cmd_export(args, watchlist)
    from monitor.cli.run import cmd_run

    return cmd_run(args, watchlist, log_file)
