"""`monitor` / `monitor run`: the duty desk (and --smoke, the install check that it starts)."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from monitor.cli.common import checked_target, operator_name
from monitor.cli.exits import EXIT_FAILED, EXIT_OK
from monitor.core.config import Watchlist
from monitor.db.faults import StoreError
from monitor.db.permissions import UnsafePermissions

if TYPE_CHECKING:
    from monitor.ui.app import MonitorApp


def cmd_run(args: argparse.Namespace, watchlist: Watchlist, log_file: Path | None = None) -> int:
    from monitor.ui.app import MonitorApp

    target = checked_target(args, watchlist)
    asyncio.run(_open_and_close(target))  # a database that cannot open fails before the screen
    app = MonitorApp(
        watchlist,
        db_path=target,
        operator=operator_name(args.operator),
        speed=args.speed,
        collect=not args.no_collect,
        read_only=args.read_only,
        dry_run=args.dry_run,
    )
    app.log_path = log_file
    app.freeze_heap = True
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


async def _open_and_close(target: str | Path) -> None:
    from monitor.db.engines import open_database

    await (await open_database(target)).close()
