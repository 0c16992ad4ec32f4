"""The reports' reads on either engine: a read connection is a SQLite one or a PostgreSQL one, and each read
goes to its engine's twin (the SQLite ones in monitor.db.stats, export, incident_stats, spend, clocks; the
PostgreSQL ones in monitor.db.pg.stats and reads). psycopg is imported only for a PostgreSQL target.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from monitor.core.dburl import is_database_url

if TYPE_CHECKING:
    from monitor.db.clocks import Difference
    from monitor.db.pg.stats import PgReadConnection
    from monitor.db.stats import Period

ReadConnection = Union[sqlite3.Connection, "PgReadConnection"]  # noqa: UP007 (a forward reference)
ConnectionFactory = Callable[[], ReadConnection]


def open_reader(target: str | Path) -> ReadConnection:
    """A read-only connection to the database `target` names (a SQLite file must exist: never created)."""
    if is_database_url(target):
        from monitor.db.pg.stats import connect

        return connect(str(target))
    from monitor.db.connect import open_readonly

    return open_readonly(Path(target))


def reader(target: str | Path) -> ConnectionFactory:
    """Opens the database for the statistics screen, one connection per refresh (each on its worker thread)."""
    if is_database_url(target):
        return lambda: open_reader(target)
    from monitor.db.stats import reader as sqlite_reader

    return sqlite_reader(Path(target))


def first_seen(conn: ReadConnection) -> int | None:
    if isinstance(conn, sqlite3.Connection):
        from monitor.db.stats import first_seen as lite

        return lite(conn)
    from monitor.db.pg.stats import first_seen as pg

    return pg(conn)


def load_period(conn: ReadConnection, since: int, until: int) -> Period:
    if isinstance(conn, sqlite3.Connection):
        from monitor.db.stats import load_period as lite

        return lite(conn, since, until)
    from monitor.db.pg.stats import load_period as pg

    return pg(conn, since, until)


def spend_for_period(conn: ReadConnection, since: int, until: int) -> list[tuple[str, float, float, int, int]]:
    if isinstance(conn, sqlite3.Connection):
        from monitor.db.spend import spend_for_period_sync

        return spend_for_period_sync(conn, since, until)
    from monitor.db.pg.reads import spend_for_period as pg

    return pg(conn, since, until)


def export_rows(
    conn: ReadConnection,
    what: str,
    since: int | None = None,
    until: int | None = None,
    ids: Sequence[int] | None = None,
) -> Iterator[tuple[Any, ...]]:
    """monitor.db.export.rows on either engine."""
    if isinstance(conn, sqlite3.Connection):
        from monitor.db.export import rows

        return rows(conn, what, since, until, ids)
    from monitor.db.pg.reads import rows as pg

    return pg(conn, what, since, until, ids)


def incidents(conn: ReadConnection, since: int, until: int) -> Iterator[tuple[Any, ...]]:
    if isinstance(conn, sqlite3.Connection):
        from monitor.db.incident_stats import incidents as lite

        return lite(conn, since, until)
    from monitor.db.pg.reads import incidents as pg

    return pg(conn, since, until)


def reports(conn: ReadConnection, since: int, until: int) -> list[tuple[int, int, int | None, int | None]]:
    if isinstance(conn, sqlite3.Connection):
        from monitor.db.incident_stats import reports as lite

        return lite(conn, since, until)
    from monitor.db.pg.reads import reports as pg

    return pg(conn, since, until)


def clock_differences(conn: ReadConnection) -> list[Difference]:
    """The stored clocks (and, on SQLite, the texts' ids) that the action log does not give."""
    if isinstance(conn, sqlite3.Connection):
        from monitor.db.clocks import differences

        return differences(conn)
    from monitor.db.pg.reads import differences as pg

    return pg(conn)


def stale_days(conn: ReadConnection) -> list[int]:
    """The clean days whose digest is not what their mentions give now."""
    if isinstance(conn, sqlite3.Connection):
        from monitor.db.statsdays import stale_days as lite

        return lite(conn)
    from monitor.db.pg.statsdays import stale_days as pg

    return pg(conn)
