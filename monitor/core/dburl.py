"""A database named by URL (PostgreSQL) rather than by a file path (SQLite, the default): what makes one valid.

The password is never part of it: a watchlist is shared and versioned, and a URL ends up in logs and on
screens. libpq reads the password from PGPASSWORD or ~/.pgpass, as every PostgreSQL tool does.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

SCHEMES = ("postgresql://", "postgres://")
NO_PASSWORD = "the password goes in PGPASSWORD or ~/.pgpass, never in the database URL"


def is_database_url(target: object) -> bool:
    """Whether `target` names a PostgreSQL database (a URL) rather than a SQLite file."""
    return isinstance(target, str) and target.startswith(SCHEMES)


def url_problem(url: str) -> str | None:
    """What is wrong with a PostgreSQL URL, in one line, or None when it can be used."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsed here so that a bad port is refused here
    except ValueError as exc:
        return f"not a usable PostgreSQL URL ({exc})"
    query = parse_qs(parts.query)
    if parts.password is not None or "password" in query:
        return NO_PASSWORD
    if not parts.path.strip("/") and "dbname" not in query:
        return "the URL names no database (postgresql://user@host/DATABASE)"
    return None


def describe(url: str) -> str:
    """The URL as messages show it: user, host, port and database, never a password."""
    parts = urlsplit(url)
    host = parts.hostname or parse_qs(parts.query).get("host", [""])[0]
    user = f"{parts.username}@" if parts.username else ""
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    where = host if not host.startswith("/") else f"[{host}]"  # a Unix socket's folder
    return f"postgresql://{user}{where}{port}{parts.path}"
