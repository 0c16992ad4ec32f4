"""Where things are: the files shipped in the package, the watchlist, per-user state, the database's folder.

Shipped files are found through the installed package (importlib.resources), never through the source tree,
so a wheel installed anywhere finds them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

import platformdirs

WATCHLIST_NAME = "watchlist.yaml"
WATCHLIST_ENV = "MONITOR_WATCHLIST"
DB_ENV = "MONITOR_DB"
APP_LOG_NAME = "monitor.log"


class WatchlistNotFound(Exception):
    """No watchlist where we looked (a usage/config error: exit 2)."""


class InstallIncomplete(Exception):
    """A file the package ships is missing: the install is broken (exit 2, like a config error)."""


class DatabaseUnavailable(Exception):
    """The database file or its folder cannot be used as asked (a database error: exit 3)."""


def stylesheet() -> Path:
    """The app's stylesheet, as installed in the package (styles/ in the repository)."""
    return Path(str(resources.files("monitor.styles").joinpath("app.tcss")))


def check_install() -> None:
    """`monitor check` fails where the app would: without its stylesheet, the app cannot start."""
    if not stylesheet().is_file():
        raise InstallIncomplete(f"{stylesheet()}: the stylesheet is missing from this install: reinstall monitor")


def sample_watchlist() -> str:
    """The commented sample watchlist that `monitor init` writes (the repository's watchlist.yaml)."""
    return resources.files("monitor.data").joinpath(WATCHLIST_NAME).read_text("utf-8")


def config_home(env: Mapping[str, str] = os.environ) -> Path:
    return Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config")


def watchlist_candidates(env: Mapping[str, str] = os.environ) -> list[Path]:
    """The places searched when neither --watchlist nor $MONITOR_WATCHLIST names a file, in order."""
    return [
        Path(WATCHLIST_NAME),
        config_home(env) / "monitor" / WATCHLIST_NAME,
        Path("/etc/monitor") / WATCHLIST_NAME,
    ]


def find_watchlist(explicit: str | None, env: Mapping[str, str] = os.environ) -> Path:
    """--watchlist, then $MONITOR_WATCHLIST, then the first of watchlist_candidates() that exists."""
    for given, origin in ((explicit, "--watchlist"), (env.get(WATCHLIST_ENV), f"${WATCHLIST_ENV}")):
        if given:
            if not Path(given).is_file():
                raise WatchlistNotFound(f"{given}: no such watchlist (given by {origin})")
            return Path(given)
    candidates = watchlist_candidates(env)
    for path in candidates:
        if path.is_file():
            return path
    looked = ", ".join(f"./{p}" if not p.is_absolute() else str(p) for p in candidates)
    raise WatchlistNotFound(
        f"no watchlist found: looked for --watchlist, ${WATCHLIST_ENV}, {looked}. "
        "Create one with `monitor init` (or `monitor init DIR`)."
    )


def state_dir(configured: Path | None) -> Path:
    """Per-user state (service sessions, the app's log): `state_dir:` in the watchlist, else the XDG state
    directory ($XDG_STATE_HOME/monitor, by default ~/.local/state/monitor). Created, private to this user."""
    path = configured or Path(platformdirs.user_state_dir("monitor"))
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def check_database(path: Path, *, write: bool) -> None:
    """The database can be used as asked: its folder exists, and it is writable (write) or the file exists
    and is readable (read-only commands). Raises DatabaseUnavailable with a one-line reason."""
    folder = path.absolute().parent
    if not folder.is_dir():
        raise DatabaseUnavailable(f"{path}: the folder {folder} does not exist")
    if write:
        if not os.access(folder, os.W_OK | os.X_OK):
            raise DatabaseUnavailable(f"{path}: this user cannot write in the folder {folder}")
        if path.exists() and not os.access(path, os.R_OK | os.W_OK):
            raise DatabaseUnavailable(f"{path}: this user cannot write to the database")
        return
    if not path.is_file():
        raise DatabaseUnavailable(
            f"{path}: no such database (the app or `monitor collect` creates it; check --db, $MONITOR_DB "
            "and `database:` in the watchlist)"
        )
    if not os.access(path, os.R_OK):
        raise DatabaseUnavailable(f"{path}: this user cannot read the database")
