"""`monitor migrate`: a desk's whole history from its SQLite file into an empty PostgreSQL database, checked."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg

from monitor.core.config import ServiceTarget
from monitor.core.models import ActionKind, Spend, Status
from monitor.db.pg.copy import TABLES, log_checksum
from monitor.db.pg.store import PgStore
from monitor.db.presence import Presence
from monitor.db.rows import loads
from monitor.db.store import Store
from monitor.engine import actions
from tests.conftest import ROOT
from tests.engines import stored_rows
from tests.fakes_delivery import mastodon_status, seed, watchlist


def migrate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", "migrate", *args], capture_output=True, text=True, cwd=ROOT, timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip


async def a_desk(tmp_path: Path) -> Path:
    """A SQLite desk with mentions, actions of every kind, a reopen, outbox items, a claim and a lease."""
    db = tmp_path / "monitor.db"
    store = await Store.open(db)
    wl = watchlist(tmp_path, targets=(ServiceTarget("webhook", url="http://127.0.0.1:9/a"),))
    ids = await seed(store, "masto", "mastodon", [mastodon_status(n) for n in range(6)])
    await actions.act(store, wl, ids[0], ActionKind.REPLY, "alice", {"text": "Merci, c'est noté « vite »"})
    await actions.act(store, wl, ids[1], ActionKind.ESCALATE, "bob", {"service": "voirie", "note": "trou"})
    await actions.act(store, wl, ids[1], ActionKind.RESOLVE, "bob", {"note": "rebouché"})
    await actions.act(store, wl, ids[1], ActionKind.REOPEN, "carol", {})
    await actions.act(store, wl, ids[2], ActionKind.DISMISS, "alice", {"reason": "spam"})
    presence = Presence(store, "alice", "host:1")
    await presence.heartbeat()
    await presence.claim(ids[3])
    assert await presence.acquire()
    await store.set_source_state("masto", "live", "ok", ok=True)
    incident = await store.create_incident(ids[4], "alice", "Nid de poule")  # an incident and its link
    await store.link(ids[5], incident, "alice", expect_incident=None)
    await store.add_spend("x", Spend("2026-11", reads_usd=0.5, writes_usd=0.02, writes=2))
    await store.close()
    return db


async def test_migrate_moves_the_whole_history_and_the_desk_goes_on_there(tmp_path: Path, pg_url: str) -> None:
    db = await a_desk(tmp_path)
    lite = await Store.open(db)
    done = migrate("--from", str(db), "--to", pg_url)
    assert done.returncode == 0, done.stderr
    assert "6 mentions, 7 actions" in done.stdout and "sha256" in done.stdout
    pg = await PgStore.open(pg_url)
    try:
        for table, columns in TABLES.items():  # every row of every table, as stored (JSON compared as values);
            # the statistics' own columns (migrations 7 and 8) are not on PostgreSQL yet
            assert _values(stored_rows(pg, table), columns) == _values(stored_rows(lite, table), columns), table
        for mention_id in range(1, 7):
            assert await pg.detail(mention_id) == await lite.detail(mention_id)
        assert await pg.counts() == await lite.counts() and await pg.max_rev() == await lite.max_rev()
        assert await pg.source_states() == await lite.source_states()
        new = await pg.act(4, ActionKind.RESOLVE, "dave", expect_status=Status.NEW)  # ids go on after the copy
        assert await pg.incident_detail(1) == await lite.incident_detail(1)
        assert await pg.spend() == await lite.spend()
        assert new == 8 and (await pg.mention(4)).rev == await lite.max_rev() + 1
    finally:
        await pg.close()
        await lite.close()


def _values(rows: list[dict[str, object]], columns: tuple[str, ...]) -> list[dict[str, object]]:
    return [{k: loads(r[k]) if k == "payload" else r[k] for k in columns} for r in rows]


async def test_migrate_refuses_a_target_that_is_not_empty(tmp_path: Path, pg_url: str) -> None:
    db = await a_desk(tmp_path)
    assert migrate("--from", str(db), "--to", pg_url).returncode == 0
    again = migrate("--from", str(db), "--to", pg_url)
    assert again.returncode == 3 and "only fills an empty database" in again.stderr
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM mentions").fetchone() == (6,)  # nothing doubled


def test_migrate_refuses_a_password_and_a_missing_file(tmp_path: Path, pg_url: str) -> None:
    secret = migrate("--from", str(tmp_path / "x.db"), "--to", "postgresql://desk:hunter2@h/monitor")
    assert secret.returncode == 2 and "PGPASSWORD" in secret.stderr and "hunter2" not in secret.stderr
    missing = migrate("--from", str(tmp_path / "none.db"), "--to", pg_url)
    assert missing.returncode == 3 and "Traceback" not in missing.stderr


def test_the_checksum_sees_any_change_in_the_log_and_none_in_json_spelling() -> None:
    row = (1, 1, "reply", "alice", 5, "new", "done")
    base = log_checksum([(*row, '{"a": 1, "b": "é"}')])
    assert log_checksum([(*row, {"b": "é", "a": 1})]) == base  # jsonb's order and spacing are not a change
    assert log_checksum([(*row, '{"a": 2, "b": "é"}')]) != base
    assert log_checksum([(1, 1, "reply", "mallory", 5, "new", "done", '{"a": 1, "b": "é"}')]) != base
