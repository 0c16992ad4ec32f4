"""A database named by URL (PostgreSQL) rather than by a file path (SQLite, the default): what makes one valid.

The password is never part of it: a watchlist is shared and versioned, and a URL ends up in logs and on
screens. libpq reads the password from PGPASSWORD or ~/.pgpass, as every PostgreSQL tool does.
Several hosts (a primary and its standbys) are one URL with target_session_attrs=read-write: libpq then
connects to whichever of them is the primary now.
"""

from __future__ import annotations

from urllib.parse import SplitResult, parse_qs, urlsplit

SCHEMES = ("postgresql://", "postgres://")
PRIMARY_ONLY = ("read-write", "primary")  # libpq's target_session_attrs that never land on a standby
NO_PASSWORD = "the password goes in PGPASSWORD or ~/.pgpass, never in the database URL"


def is_database_url(target: object) -> bool:
    """Whether `target` names a PostgreSQL database (a URL) rather than a SQLite file."""
    return isinstance(target, str) and target.startswith(SCHEMES)


def url_problem(url: str) -> str | None:
    """What is wrong with a PostgreSQL URL, in one line, or None when it can be used."""
    try:
        parts = urlsplit(url)
        hosts = _hosts(parts)
    except ValueError as exc:
        return f"not a usable PostgreSQL URL ({exc})"
    query = parse_qs(parts.query)
    if parts.password is not None or "password" in query:
        return NO_PASSWORD
    if not parts.path.strip("/") and "dbname" not in query:
        return "the URL names no database (postgresql://user@host/DATABASE)"
    if len(hosts) > 1 and query.get("target_session_attrs", [""])[0] not in PRIMARY_ONLY:
        return (
            "a URL with several hosts needs target_session_attrs=read-write: without it the desk may connect to "
            "a read-only standby"
        )
    return None


def _hosts(parts: SplitResult) -> list[str]:
    """The hosts a URL names, in the authority (h1:5432,h2:5433) or in `host=` (/socket1,/socket2)."""
    hostinfo = parts.netloc.rpartition("@")[2]
    if "," not in hostinfo:
        parts.port  # noqa: B018 - parsed here so that a bad port is refused here
    for host in hostinfo.split(","):  # libpq's own list: each host with its optional port
        port = host.rsplit(":", 1)[1] if ":" in host and not host.endswith("]") else ""
        if port and not port.isdigit():
            raise ValueError(f"Port could not be cast to integer value as {port!r}")
    given = [h for h in hostinfo.split(",") if h]
    return given + [h for h in parse_qs(parts.query).get("host", [""])[0].split(",") if h]


def describe(url: str) -> str:
    """The URL as messages show it: user, host, port and database, never a password."""
    parts = urlsplit(url)
    hostinfo = parts.netloc.rpartition("@")[2]
    host = parts.hostname or parse_qs(parts.query).get("host", [""])[0]
    user = f"{parts.username}@" if parts.username else ""
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    if "," in hostinfo:  # a primary and its standbys: each host with its port, as given
        host, port = hostinfo, ""
    where = host if not host.startswith("/") else f"[{host}]"  # a Unix socket's folder
    return f"postgresql://{user}{where}{port}{parts.path}"
