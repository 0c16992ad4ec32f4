"""The store on both engines: migrations, dedup, cursor with its mentions, append-only actions, reopen.

SQLite-only or PostgreSQL-only tests say so in their names; the others take `database`, which runs them on each.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from monitor.core.models import ActionKind, MatchResult, Mention, Priority, Status
from monitor.db.migrations import MIGRATIONS
from monitor.db.pg.schema import MIGRATIONS as PG_MIGRATIONS
from monitor.db.pg.store import PgStore
from monitor.db.store import NotFound, Store, StoreError, open_sync
from tests.engines import DRIVER_ERRORS, AnyStore, raw_execute


def mention(i: int, source: str = "demo") -> Mention:
    return Mention(
        source=source, remote_id=f"r{i}", network="mastodon", author=f"@a{i}", text=f"texte {i}",
        published_at=datetime(2026, 11, 1, 12, 0, tzinfo=UTC),
    )  # fmt: skip


MATCH = MatchResult(("ville",), Priority.NORMAL)


async def test_schema_is_versioned_and_wal(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "m.db")
    await store.close()
    conn = sqlite3.connect(tmp_path / "m.db")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_an_older_file_is_migrated_forward(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "old.db", isolation_level=None)
    conn.executescript(MIGRATIONS[0])
    conn.execute("PRAGMA user_version=1")
    conn.execute(
        "INSERT INTO mentions (source, remote_id, network, author, text, terms, priority, published_at,"
        " first_seen_at, status_at, rev) VALUES ('demo', 'x', 'demo', '@a', 't', 'ville', 2, 1, 1, 1, 1)"
    )
    conn.close()
    conn = open_sync(tmp_path / "old.db")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert conn.execute("SELECT remote_id FROM mentions").fetchall() == [("x",)]


async def test_postgresql_records_each_migration_in_a_table(pg_url: str) -> None:
    await (await PgStore.open(pg_url)).close()
    await (await PgStore.open(pg_url)).close()  # a second opening finds nothing to do
    with psycopg.connect(pg_url) as conn:
        versions = [v for (v,) in conn.execute("SELECT version FROM schema_version ORDER BY version")]
    assert versions == list(range(1, len(PG_MIGRATIONS) + 1)) and len(PG_MIGRATIONS) == len(MIGRATIONS)


async def test_postgresql_refuses_a_newer_schema(pg_url: str) -> None:
    await (await PgStore.open(pg_url)).close()
    with psycopg.connect(pg_url) as conn:
        conn.execute("INSERT INTO schema_version (version, applied_at) VALUES (%s, 0)", (len(PG_MIGRATIONS) + 1,))
    with pytest.raises(StoreError, match="newer"):
        await PgStore.open(pg_url)


async def test_postgresql_refuses_a_truncated_action_log(pg_url: str) -> None:
    store = await PgStore.open(pg_url)
    await store.close()
    with pytest.raises(psycopg.Error, match="append-only"):
        raw_execute(store, "TRUNCATE actions CASCADE")


def test_a_newer_file_is_refused(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "new.db")
    conn.execute(f"PRAGMA user_version={len(MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        open_sync(tmp_path / "new.db")


async def test_a_mention_seen_twice_is_stored_once_and_cursor_moves_with_it(database: AnyStore) -> None:
    store = database
    assert await store.ingest("demo", [(mention(1), MATCH), (mention(2), MATCH)], "2") == 2
    assert await store.ingest("demo", [(mention(2), MATCH), (mention(3), MATCH)], "3") == 1
    assert await store.ingest("other", [(mention(1, "other"), MATCH)], "1") == 1
    assert await store.cursor("demo") == "3"
    counts = await store.counts()
    assert counts[Status.NEW] == 4


async def test_a_failed_ingest_leaves_neither_mentions_nor_cursor(database: AnyStore) -> None:
    store = database
    await store.ingest("demo", [(mention(1), MATCH)], "1")
    bad = mention(2)
    bad.published_at = datetime(2026, 11, 1)  # noqa: DTZ001 - naive on purpose: refused
    with pytest.raises(ValueError):
        await store.ingest("demo", [(mention(3), MATCH), (bad, MATCH)], "3")
    assert await store.cursor("demo") == "1"
    assert (await store.counts())[Status.NEW] == 1


async def test_actions_are_append_only(database: AnyStore) -> None:
    await database.ingest("demo", [(mention(1), MATCH)], "1")
    await database.act(1, ActionKind.NOTE, "alice", {"text": "vu"})
    for tamper in ("UPDATE actions SET operator = 'mallory'", "DELETE FROM actions"):
        with pytest.raises(DRIVER_ERRORS, match="append-only"):
            raw_execute(database, tamper)
    assert [a.operator for a in await database.actions(1)] == ["alice"]


async def test_first_response_is_stored_once_and_survives_reopen(database: AnyStore) -> None:
    store = database
    await store.ingest("demo", [(mention(1), MATCH)], "1", seen_at=1_000)
    await store.act(1, ActionKind.NOTE, "bob", {"text": "looking"})
    assert (await store.mention(1)).first_response_at is None  # a note is not a response
    await store.act(1, ActionKind.DISMISS, "alice", {"reason": "spam"})
    first = (await store.mention(1)).first_response_at
    await store.act(1, ActionKind.REOPEN, "alice")
    row = await store.mention(1)
    assert row.status is Status.NEW and row.first_response_at == first
    await store.act(1, ActionKind.REPLY, "carol", {"text": "merci"})
    assert (await store.mention(1)).first_response_at == first


async def test_reopen_walks_back_through_changes(database: AnyStore) -> None:
    store = database
    await store.ingest("demo", [(mention(1), MATCH)], "1")
    await store.act(1, ActionKind.ESCALATE, "alice", {"service": "voirie"})
    await store.act(1, ActionKind.RESOLVE, "alice", {"note": "fixed"})
    assert (await store.mention(1)).status is Status.DONE
    await store.act(1, ActionKind.REOPEN, "alice")
    assert (await store.mention(1)).status is Status.ESCALATED
    await store.act(1, ActionKind.REOPEN, "alice")
    assert (await store.mention(1)).status is Status.NEW
    with pytest.raises(StoreError, match="nothing to reopen"):
        await store.act(1, ActionKind.REOPEN, "alice")
    kinds = [a.kind for a in await store.actions(1)]
    assert kinds == [ActionKind.ESCALATE, ActionKind.RESOLVE, ActionKind.REOPEN, ActionKind.REOPEN]


async def test_changes_since_follows_every_write(database: AnyStore) -> None:
    store = database
    await store.ingest("demo", [(mention(1), MATCH), (mention(2), MATCH)], "2")
    rev = await store.max_rev()
    await store.act(2, ActionKind.DISMISS, "alice", {"reason": "spam"})
    changed = await store.changes_since(rev)
    assert [(r.id, r.status) for r in changed] == [(2, Status.DISMISSED)]


async def test_pane_pages_in_pane_order(database: AnyStore) -> None:
    store = database
    urgent = MatchResult(("urgences",), Priority.URGENT)
    await store.ingest("demo", [(mention(i), MATCH if i % 3 else urgent) for i in range(1, 10)], "9")
    first = await store.pane(Status.NEW, 4)
    assert [r.priority for r in first[:3]] == [Priority.URGENT] * 3
    rest = await store.pane(Status.NEW, 10, after=first[-1])
    assert len(first) + len(rest) == 9 and not {r.id for r in first} & {r.id for r in rest}


async def test_hostile_text_is_stored_as_data(database: AnyStore) -> None:
    store = database
    m = mention(1)
    m.text = "'); DROP TABLE mentions;--"
    await store.ingest("demo", [(m, MATCH)], "1")
    assert (await store.mention(1)).text == "'); DROP TABLE mentions;--"


async def test_detail_reads_the_mention_its_actions_thread_and_likely_duplicates_at_once(database: AnyStore) -> None:
    store = database
    pothole = "Nid de poule énorme avenue Jean Jaurès"
    root, reply, alike = mention(1), mention(2), mention(3)
    root.text, reply.text, reply.thread_id, alike.text = "Bonjour la mairie", pothole, "r1", pothole + " !"
    await store.ingest("demo", [(root, MATCH), (reply, MATCH), (alike, MATCH)], "3")
    await store.act(2, ActionKind.NOTE, "alice", {"text": "vu"})
    detail = await store.detail(2)
    assert detail.row.id == 2 and detail.row.text == pothole
    assert [a.kind for a in detail.actions] == [ActionKind.NOTE]
    assert [m.id for m in detail.thread] == [1]
    assert [m.id for _, m in detail.related] == [3]
    assert detail.deliveries == []  # a note sends nothing
    with pytest.raises(NotFound):
        await store.detail(99)


async def test_handover_counts_what_happened_since_the_operator_left(database: AnyStore) -> None:
    store = database
    await store.ingest("demo", [(mention(1), MATCH), (mention(2), MATCH)], "2", seen_at=1_000)
    await store.act(1, ActionKind.ESCALATE, "alice", {"service": "voirie"})
    summary = await store.handover(since=500, now=10_000_000, target_ms=60_000)
    assert (summary.new, summary.escalated, summary.resolved) == (2, 1, 0)
    assert [m.id for m in summary.still_open] == [1, 2]
    assert summary.by_operator == {"alice": {"escalate": 1}}
    assert (await store.handover(since=10_000_000, now=10_000_000, target_ms=60_000)).new == 0
