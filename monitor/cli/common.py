"""What every command needs: who operates, the watchlist, the database's path, and where logs go."""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import TYPE_CHECKING, overload

from monitor.cli.exits import UsageError
from monitor.core import config, logredact
from monitor.core.config import Watchlist
from monitor.core.dburl import is_database_url, url_problem
from monitor.core.paths import APP_LOG_NAME, DB_ENV, check_database, find_watchlist, state_dir
from monitor.db.permissions import check_shared_path

if TYPE_CHECKING:
    from monitor.db.connect import ReadConnection as FileConnection
    from monitor.db.reading import ReadConnection

APP_LOG_BYTES, APP_LOG_BACKUPS = 1_000_000, 3


def operator_name(explicit: str | None) -> str:
    if explicit:
        return explicit
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "operator"


def load(args: argparse.Namespace, sources: bool = True) -> Watchlist:
    """The watchlist; `sources=False` for the commands that never open a source (the reports): they leave
    the sources unread (monitor.core.config.load_watchlist) and never import the networks."""
    path = find_watchlist(args.watchlist)
    if not sources:
        return config.load_watchlist(path, None)
    from monitor.networks import load_watchlist

    return load_watchlist(path)


def db_target(args: argparse.Namespace, watchlist: Watchlist) -> str | Path:
    """The database: --db, else $MONITOR_DB, else `database:` in the watchlist. A path is a SQLite file (the
    default), a postgresql:// URL a PostgreSQL database (checked: never with a password)."""
    given = args.db or os.environ.get(DB_ENV)
    if given and is_database_url(given):
        problem = url_problem(given)
        if problem:
            raise UsageError(f"{'--db' if args.db else DB_ENV}: {problem}")
        return str(given)
    if given:
        return Path(given)
    return watchlist.database_url or watchlist.database


def checked_target(args: argparse.Namespace, watchlist: Watchlist) -> str | Path:
    """`db_target`, for a command that writes: a SQLite file's folder and modes are checked first (a server
    guards its own)."""
    target = db_target(args, watchlist)
    if isinstance(target, Path):
        check_database(target, write=True)
        check_shared_path(target)
    return target


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


@overload
def open_for_reading(target: Path) -> FileConnection: ...
@overload
def open_for_reading(target: str | Path) -> ReadConnection: ...
def open_for_reading(target: str | Path) -> ReadConnection:
    """Reports never create, migrate or alter the database (a SQLite file, or a PostgreSQL one read-only)."""
    from monitor.db.reading import open_reader

    if isinstance(target, Path):
        check_database(target, write=False)
        check_shared_path(target)
    return open_reader(target)
