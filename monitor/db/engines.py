"""Which engine a database target names: a path is a SQLite file (the default), a postgresql:// URL a server."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from monitor.core.dburl import is_database_url
from monitor.db.store import Store

if TYPE_CHECKING:
    from monitor.db.pg.store import PgStore


async def open_database(target: str | Path) -> Store | PgStore:
    """Open (creating or migrating as needed) the store `target` names; a failure is a StoreError."""
    if is_database_url(target):
        from monitor.db.pg.store import PgStore  # psycopg is loaded only for a PostgreSQL desk

        return await PgStore.open(str(target))
    return await Store.open(target)
