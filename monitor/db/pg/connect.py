"""Connecting to PostgreSQL: the URL, its errors as the store's states, and the numbered migrations.

The password never comes from the URL (a watchlist is shared and versioned): libpq reads it from
PGPASSWORD or ~/.pgpass, as every PostgreSQL tool does. A URL may name several hosts (a primary and its
standbys) with `target_session_attrs=read-write`: libpq then connects to whichever is the primary now.
"""

from __future__ import annotations

import psycopg
from psycopg import errors

from monitor.core.dburl import describe
from monitor.core.timeutil import now_ms
from monitor.db.faults import (
    CommitUnknown,
    StoreBroken,
    StoreError,
    StoreFull,
    StoreLocked,
    StoreReadOnly,
    StoreUnreachable,
)
from monitor.db.pg.schema import MIGRATIONS

_MIGRATE_LOCK = 7_465_283  # an advisory lock's key: one migrating process at a time
# Per host tried, unless the URL says otherwise: a dead host (no RST, a partition) must not hold the
# desk's writes for the kernel's TCP timeout of minutes. A Unix socket or a refused port fails at once.
CONNECT_TIMEOUT_S = 5


def classify(exc: psycopg.Error, url: str, committing: bool = False) -> StoreError:
    """The store error a psycopg error stands for: a state to show (unreachable, read-only standby...).

    `committing`: the error came while the COMMIT was under way, whose outcome the client cannot know."""
    where = f"{describe(url)}: "
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if committing and isinstance(exc, psycopg.OperationalError):
        return CommitUnknown(f"{where}the connection dropped during the commit: it may have been saved ({first})")
    if isinstance(exc, errors.ReadOnlySqlTransaction):
        return StoreReadOnly(f"{where}the server is a read-only standby; nothing was written ({first})")
    if isinstance(exc, errors.DiskFull):
        return StoreFull(f"{where}the server's disk is full; nothing was written ({first})")
    if isinstance(exc, errors.LockNotAvailable | errors.DeadlockDetected | errors.SerializationFailure):
        return StoreLocked(f"{where}the rows are locked by another operator; nothing was written ({first})")
    if isinstance(exc, errors.InvalidPassword | errors.InvalidAuthorizationSpecification):
        return StoreBroken(f"{where}the server refused the login ({first})")
    if isinstance(exc, psycopg.OperationalError):  # refused, restarting, shut down, or no primary among the hosts
        return StoreUnreachable(f"{where}the server cannot be reached ({first})")
    return StoreError(f"{where}database error: {first}")


async def connect(url: str) -> psycopg.AsyncConnection[tuple[object, ...]]:
    """A connection in autocommit mode: each write opens its own transaction (`conn.transaction()`)."""
    timeout = None if "connect_timeout" in url else CONNECT_TIMEOUT_S  # None: the URL's own (psycopg drops it)
    try:
        return await psycopg.AsyncConnection.connect(
            url, autocommit=True, application_name="monitor", connect_timeout=timeout
        )
    except psycopg.Error as exc:
        raise classify(exc, url) from exc


async def schema_version(conn: psycopg.AsyncConnection[tuple[object, ...]]) -> int:
    cur = await conn.execute("SELECT to_regclass('schema_version') IS NOT NULL")
    row = await cur.fetchone()
    if not row or not row[0]:
        return 0
    cur = await conn.execute("SELECT coalesce(max(version), 0) FROM schema_version")
    row = await cur.fetchone()
    return int(row[0]) if row else 0  # type: ignore[call-overload]


async def migrate(conn: psycopg.AsyncConnection[tuple[object, ...]], url: str) -> int:
    """Bring the database to the newest schema, one numbered step per transaction, one process at a time."""
    for number in range(1, len(MIGRATIONS) + 1):
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATE_LOCK,))
            version = await schema_version(conn)
            if version > len(MIGRATIONS):
                raise StoreError(
                    f"{describe(url)}: the database schema is version {version}, newer than this program knows "
                    f"({len(MIGRATIONS)}): upgrade monitor"
                )
            if version >= number:  # already there (or another process migrated while we waited)
                continue
            if version == 0:
                await conn.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at BIGINT)")
            await conn.execute(MIGRATIONS[number - 1].encode())  # several statements: the simple protocol
            await conn.execute("INSERT INTO schema_version (version, applied_at) VALUES (%s, %s)", (number, now_ms()))
    return len(MIGRATIONS)


async def probe(url: str) -> str:
    """What `monitor check` says of a PostgreSQL database: reachable, and at which schema (nothing is changed)."""
    conn = await connect(url)
    try:
        version = await schema_version(conn)
    except psycopg.Error as exc:
        raise classify(exc, url) from exc
    finally:
        await conn.close()
    if version > len(MIGRATIONS):
        raise StoreError(f"{describe(url)}: the database schema is version {version}, newer than this program knows")
    if version == 0:
        return "PostgreSQL, reachable; empty: the app or `monitor collect` creates the tables"
    return f"PostgreSQL, reachable, schema {version} of {len(MIGRATIONS)}"
