"""Moving a desk from its SQLite file to PostgreSQL (`monitor migrate`): the whole history, checked.

Everything is copied in one PostgreSQL transaction, ids included, into a target that must be empty; before it
commits, the rows are counted on both sides and the action log's checksum compared. Any difference, and
nothing is left in the target.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from monitor.db.connect import open_readonly
from monitor.db.faults import StoreError
from monitor.db.pg.mentions import Conn, every, one
from monitor.db.pg.store import PgStore
from monitor.db.rows import loads

# Each table's columns, parents before children (the foreign keys hold at every row).
TABLES: dict[str, tuple[str, ...]] = {
    "mentions": (
        "id", "source", "remote_id", "network", "author", "author_name", "text", "url", "lang", "thread_id",
        "reply_to", "terms", "priority", "status", "published_at", "first_seen_at", "status_at",
        "first_response_at", "first_response_by", "edited_at", "deleted_at", "rev", "raw", "to_us",
        "escalated_at", "escalated_to", "resolved_at", "reopened", "incident_id", "suggested_incident",
        "suggestion_score",
    ),
    "actions": (
        "id", "mention_id", "kind", "operator", "at", "status_before", "status_after", "payload", "incident_id",
    ),
    "outbox": (
        "id", "action_id", "mention_id", "kind", "target", "idem_key", "payload", "state", "attempts",
        "next_attempt_at", "claimed_at", "last_error", "remote_id", "remote_url", "remote_status", "checked_at",
        "created_at", "updated_at", "incident_id",
    ),
    "incidents": (
        "id", "title", "service", "reference", "status", "created_at", "created_by", "updated_at", "closed_at",
        "rev", "gen", "profile",
    ),
    "spend": ("source", "month", "reads_usd", "writes_usd", "writes"),
    "cursors": ("source", "cursor", "updated_at"),
    "source_state": ("source", "state", "detail", "until_at", "last_ok_at", "updated_at"),
    "sessions": ("holder", "operator", "started_at", "heartbeat_at", "ended_at"),
    "claims": ("mention_id", "operator", "holder", "kind", "since", "heartbeat_at"),
    "leases": ("name", "holder", "acquired_at", "expires_at"),
}  # fmt: skip
IDENTITIES = ("mentions", "actions", "outbox", "incidents")
_LOG = "SELECT id, mention_id, kind, operator, at, status_before, status_after, payload FROM actions ORDER BY id"


@dataclass(frozen=True)
class Moved:
    counts: dict[str, int]
    checksum: str  # sha256 of the action log, the same on both sides


def log_checksum(rows: Iterable[Sequence[Any]]) -> str:
    """The action log's fingerprint, whichever engine it was read from (payloads compared as JSON values)."""
    digest = hashlib.sha256()
    for *fields, payload in rows:
        canonical = json.dumps(loads(payload), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        digest.update(json.dumps([*fields, canonical], ensure_ascii=False).encode() + b"\n")
    return digest.hexdigest()


async def move(source: Path, url: str) -> Moved:
    """Copy the SQLite desk at `source` into the empty PostgreSQL database at `url`, or change nothing there."""
    lite = open_readonly(source)
    try:
        store = await PgStore.open(url)
        try:
            return await store.write(lambda c: _copy(lite, c, source), "migrate")
        finally:
            await store.close()
    except sqlite3.Error as exc:
        raise StoreError(f"{source}: {exc}") from exc
    finally:
        lite.close()


async def _copy(lite: sqlite3.Connection, c: Conn, source: Path) -> Moved:
    for table in TABLES:
        if await one(c, f"SELECT 1 FROM {table} LIMIT 1"):  # our own table names
            raise StoreError(f"the target already holds {table}: `monitor migrate` only fills an empty database")
    for table, columns in TABLES.items():
        cursor = lite.execute(f"SELECT {', '.join(columns)} FROM {table}")
        try:
            async with c.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                while batch := cursor.fetchmany(1000):
                    for row in batch:
                        await copy.write_row(row)
        except psycopg.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StoreError(f"copying {table} from {source}: {first}: nothing kept") from exc
    for table in IDENTITIES:
        await c.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table} HAVING count(*) > 0"
        )
    await c.execute(  # the one counter PostgreSQL numbers mentions and incidents from (SQLite keeps two)
        "UPDATE rev_counter SET rev = greatest((SELECT coalesce(max(rev), 0) FROM mentions),"
        " (SELECT coalesce(max(rev), 0) FROM incidents))"
    )
    counts = {}
    for table in TABLES:
        here = int(lite.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
        there = await one(c, f"SELECT count(*) FROM {table}")
        if there is None or int(there[0]) != here:
            raise StoreError(f"{table}: {here} rows in {source}, {there[0] if there else 0} copied: nothing kept")
        counts[table] = here
    checksum = log_checksum(lite.execute(_LOG))
    if log_checksum(await every(c, _LOG)) != checksum:
        raise StoreError("the action log's checksum differs after the copy: nothing kept")
    return Moved(counts, checksum)
