"""The same test on both engines: what a test needs to look under the store, whichever it is."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from monitor.db.pg.store import PgStore
from monitor.db.store import Store

AnyStore = Store | PgStore


def target_of(store: AnyStore) -> str | Path:
    return store.url if isinstance(store, PgStore) else store.path


def stored_rows(store: AnyStore, table: str) -> list[dict[str, Any]]:
    """Every row of `table` in key order, read on a connection of its own (JSON columns as stored)."""
    sql = f"SELECT * FROM {table} ORDER BY 1"  # our own table names, never data; 1: the id or the key
    if isinstance(store, PgStore):
        with psycopg.connect(store.url, row_factory=dict_row) as conn:
            return list(conn.execute(sql).fetchall())
    conn = sqlite3.connect(store.path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql)]
    finally:
        conn.close()


def raw_execute(store: AnyStore, sql: str) -> None:
    """Run one statement on a connection of its own, bypassing the store (what a tamperer would do)."""
    if isinstance(store, PgStore):
        with psycopg.connect(store.url, autocommit=True) as conn:
            conn.execute(sql)
        return
    conn = sqlite3.connect(store.path, isolation_level=None)
    try:
        conn.execute(sql)
    finally:
        conn.close()


DRIVER_ERRORS = (sqlite3.DatabaseError, psycopg.Error)
