"""Exit codes, the same for every command (README, "Exit codes"; `monitor --help`), and the one mapping to them."""

from __future__ import annotations

import re

from monitor.core.config import ConfigError
from monitor.core.paths import DatabaseUnavailable, InstallIncomplete, WatchlistNotFound
from monitor.db.faults import DATABASE_ERRORS
from monitor.db.permissions import UnsafePermissions

EXIT_OK = 0
EXIT_FAILED = 1  # a source or a delivery failed
EXIT_CONFIG = 2  # usage or config error (argparse exits 2 too)
EXIT_DATABASE = 3  # the database is missing, unreadable, unsafe or at another schema
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """A mistake on the command line that argparse cannot see (exit 2)."""


def exit_code(exc: BaseException) -> int | None:
    """The one mapping from an error to an exit code (None: not ours, let it raise)."""
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(exc, DATABASE_ERRORS) or isinstance(exc, DatabaseUnavailable | UnsafePermissions):
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
