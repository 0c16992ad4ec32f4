"""Command line: `monitor` (the app), `collect`, `stats`, `report`, `export`, `check`, `auth`, `init`, `migrate`,
`completion`.

One module per command; `main` is the entry point (`monitor.cli:main`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Sequence

import shtab

from monitor.cli.auth import cmd_auth
from monitor.cli.check import cmd_check
from monitor.cli.collect import cmd_collect
from monitor.cli.common import _setup_logging, load
from monitor.cli.exits import EXIT_INTERRUPTED, EXIT_OK, UsageError, _one_line, exit_code
from monitor.cli.init import cmd_init
from monitor.cli.migrate import cmd_migrate
from monitor.cli.parser import build_parser
from monitor.cli.reports import cmd_export, cmd_report, cmd_stats
from monitor.cli.run import cmd_run

__all__ = ["UsageError", "_setup_logging", "build_parser", "exit_code", "main"]


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
    if command == "migrate":  # between two databases: no watchlist needed
        return cmd_migrate(args)
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
    if command == "auth":
        return cmd_auth(args, watchlist)
    if command == "collect":
        return asyncio.run(cmd_collect(args, watchlist))
    if command == "stats":
        return cmd_stats(args, watchlist)
    if command == "report":
        return cmd_report(args, watchlist)
    if command == "export":
        return cmd_export(args, watchlist)
    return cmd_run(args, watchlist, log_file)
