"""Storage faults while the desk runs are states, not crashes: locked, read-only, full, deleted, replaced.

Faults are injected on the real file: another connection holding the write lock, SQLite's own
read-only and page-limit switches on the app's connection, the file unlinked or renamed over.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from monitor.core.config import Watchlist
from monitor.core.models import ActionKind, Status
from monitor.db.store import Store, StoreFull, StoreGone, StoreLocked, StoreReadOnly
from monitor.ui.app import MonitorApp

# wait_until, not wait_for: it pauses with asyncio.sleep, so it never waits on a screen busy awaiting a save.
from tests.conftest import record_notices, wait_until, write_watchlist
from tests.test_app import actions, make_app, selected, status_of


@contextmanager
def write_lock(db: Path) -> Iterator[sqlite3.Connection]:
    """Another process's writer holding the database's write lock until the block ends."""
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        yield blocker
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()


async def on_app_connection(app: MonitorApp, *sql: str) -> None:
    """Run statements on the app's own connection (SQLite's switches are per connection)."""

    def run(c: sqlite3.Connection) -> None:
        for statement in sql:
            c.execute(statement)

    await app.store.read(run)


async def dismiss(pilot: Pilot[Any]) -> None:
    """Open the dismiss dialog and confirm the first reason, without waiting for the save to end."""
    await pilot.press("d")
    pilot.app.simulate_key("enter")


def dismissals(db: Path, mention_id: int) -> int:
    return sum(1 for m, k, _, _ in actions(db) if m == mention_id and k == "dismiss")


async def test_a_dismissal_on_a_locked_database_shows_saving_and_commits_once_when_released(
    watchlist: Watchlist,
) -> None:
    app = make_app(watchlist)
    db = watchlist.database
    async with app.run_test(size=(80, 24)) as pilot:
        screen, target = await selected(pilot)
        await on_app_connection(app, "PRAGMA busy_timeout=50")  # each attempt gives up fast: many retries
        with write_lock(db):
            await dismiss(pilot)
            await wait_until(lambda: "database locked" in app.storage_state)
            assert app.pending_saves == 1
            assert "saving 1 action" in str(screen.title)  # in the title bar, not only a passing toast
            assert dismissals(db, target.id) == 0
            assert app.is_running
        await wait_until(lambda: status_of(db, target.id) == "dismissed")
        await wait_until(lambda: app.pending_saves == 0 and not app.storage_state)
        assert dismissals(db, target.id) == 1  # retried until committed, never twice
        assert screen.title == "monitor"
        await wait_until(lambda: screen.pane(Status.NEW).row_count == 4)
        await pilot.pause()  # the screen has finished with the dismissal


async def test_an_action_still_locked_after_the_limit_is_refused_with_a_notice(watchlist: Watchlist) -> None:
    app = make_app(watchlist)
    db = watchlist.database
    async with app.run_test(size=(80, 24)) as pilot:
        _, target = await selected(pilot)
        notices = record_notices(app)
        app.save_give_up_s = 0.0
        await on_app_connection(app, "PRAGMA busy_timeout=50")
        with write_lock(db):
            await dismiss(pilot)
            await wait_until(lambda: any(n.startswith("Not saved") for n in notices))
            assert app.storage_state == "DATABASE LOCKED"
        assert any("locked" in n for n in notices if n.startswith("Not saved"))
        assert app.is_running
        assert dismissals(db, target.id) == 0 and status_of(db, target.id) == "new"


async def test_a_read_only_database_refuses_the_action_and_says_so_then_recovers(watchlist: Watchlist) -> None:
    app = make_app(watchlist)
    db = watchlist.database
    async with app.run_test(size=(80, 24)) as pilot:
        screen, target = await selected(pilot)
        notices = record_notices(app)
        await on_app_connection(app, "PRAGMA query_only=ON")  # SQLite answers SQLITE_READONLY to any write
        await dismiss(pilot)
        await wait_until(lambda: any(n.startswith("Not saved") for n in notices))
        assert app.storage_state == "DATABASE READ-ONLY"
        assert "READ-ONLY" in str(screen.title)
        assert dismissals(db, target.id) == 0
        await on_app_connection(app, "PRAGMA query_only=OFF")
        app.heartbeat()
        await wait_until(lambda: not app.storage_state)
        await dismiss(pilot)  # the refused action is the operator's to redo: it lands once
        await wait_until(lambda: status_of(db, target.id) == "dismissed")
        assert dismissals(db, target.id) == 1
        await wait_until(lambda: screen.pane(Status.NEW).row_count == 4)
        await pilot.pause()


def fill_to_the_limit(c: sqlite3.Connection, mention_id: int) -> None:
    """Cap the file at its size, then fill its last pages with ever smaller actions, so that the
    next action (a later time, a bigger row) needs a page it cannot have: SQLite's own SQLITE_FULL."""
    pages = c.execute("PRAGMA page_count").fetchone()[0]
    c.execute(f"PRAGMA max_page_count={pages}")
    at = 1
    for size in (400, 40, 0):
        while True:
            at += 1
            try:
                c.execute(
                    "INSERT INTO actions (mention_id, kind, operator, at, status_before, status_after, payload)"
                    " VALUES (?, 'note', '', ?, 'new', 'new', ?)",
                    (mention_id, at, json.dumps("x" * size)),
                )
            except sqlite3.OperationalError as exc:
                assert "full" in str(exc)
                break


async def test_a_full_disk_refuses_the_action_with_the_real_error(watchlist: Watchlist) -> None:
    app = make_app(watchlist)
    db = watchlist.database
    async with app.run_test(size=(80, 24)) as pilot:
        screen, target = await selected(pilot)
        notices = record_notices(app)
        await app.store.read(lambda c: fill_to_the_limit(c, target.id))
        await dismiss(pilot)
        await wait_until(lambda: any(n.startswith("Not saved") for n in notices))
        refusal = next(n for n in notices if n.startswith("Not saved"))
        assert "full" in refusal and "rollback" not in refusal
        assert app.storage_state == "DISK FULL" and "DISK FULL" in str(screen.title)
        assert app.is_running
        assert dismissals(db, target.id) == 0 and status_of(db, target.id) == "new"


async def test_full_disk_error_is_reported_not_masked_by_the_rollback(tmp_path: Path) -> None:
    from tests.test_store import MATCH, mention

    store = await Store.open(tmp_path / "m.db")
    try:
        await store.ingest("demo", [(mention(1), MATCH)], "1")
        await store.read(lambda c: fill_to_the_limit(c, 1))
        with pytest.raises(StoreFull, match="full") as caught:
            await store.act(1, ActionKind.DISMISS, "alice", {"reason": "spam"})
        assert "rollback" not in str(caught.value)
    finally:
        await store.close()


def unlink_database(db: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)


def replace_database(db: Path) -> None:
    """A restore from a backup: another file renamed over the path (and the old -wal/-shm removed,
    or SQLite would read the old file's log over the new file)."""
    other = db.with_name("other.db")
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE unrelated (x)")
    conn.commit()
    conn.close()
    os.replace(other, db)
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)


@pytest.mark.parametrize(("fault", "word"), [(unlink_database, "deleted"), (replace_database, "replaced")])
async def test_a_deleted_or_replaced_database_stops_writing_and_says_so(
    watchlist: Watchlist, fault: Callable[[Path], None], word: str
) -> None:
    app = make_app(watchlist)
    db = watchlist.database
    async with app.run_test(size=(80, 24)) as pilot:
        screen, target = await selected(pilot)
        notices = record_notices(app)
        fault(db)
        app.heartbeat()  # the next beat notices (every few seconds); no need to wait for it
        await wait_until(lambda: "DELETED OR REPLACED" in app.storage_state)
        assert "DELETED OR REPLACED" in str(screen.title)
        assert any(word in n for n in notices)
        await dismiss(pilot)
        await wait_until(lambda: any(n.startswith("Not saved") for n in notices))
        assert app.is_running
    # Nothing was written anywhere: no new file at the path, nothing in the file that took its place.
    if word == "deleted":
        assert not db.exists()
    else:
        assert sqlite3.connect(db).execute("SELECT name FROM sqlite_master").fetchall() == [("unrelated",)]


@pytest.mark.parametrize(("fault", "word"), [(unlink_database, "deleted"), (replace_database, "replaced")])
async def test_the_store_refuses_writes_once_its_file_is_gone(
    tmp_path: Path, fault: Callable[[Path], None], word: str
) -> None:
    from tests.test_store import MATCH, mention

    db = tmp_path / "monitor.db"
    store = await Store.open(db)
    try:
        await store.ingest("demo", [(mention(1), MATCH)], "1")
        fault(db)
        with pytest.raises(StoreGone, match=word):
            await store.ingest("demo", [(mention(2), MATCH)], "2")
        with pytest.raises(StoreGone):  # and stays refused
            await store.act(1, ActionKind.DISMISS, "alice", {"reason": "spam"})
    finally:
        await store.close()


async def test_store_errors_are_classified(tmp_path: Path) -> None:
    db = tmp_path / "monitor.db"
    store = await Store.open(db)
    try:
        await store.read(lambda c: c.execute("PRAGMA busy_timeout=10"))
        with write_lock(db):
            with pytest.raises(StoreLocked, match="locked"):
                await store.act(1, ActionKind.NOTE, "alice", {})
        await store.read(lambda c: c.execute("PRAGMA query_only=ON"))
        with pytest.raises(StoreReadOnly, match="read-only"):
            await store.set_source_state("demo", "polling")
    finally:
        await store.close()


async def test_the_collect_service_stops_when_its_database_is_deleted_and_creates_no_other(tmp_path: Path) -> None:
    """Deleted under a running service: it says so in one line and exits (systemd shows it), writing nowhere."""
    watchlist = write_watchlist(tmp_path)  # the bundled demo, looping
    db = tmp_path / "monitor.db"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor", "-w", str(watchlist), "collect", "--speed", "50",
        cwd=tmp_path, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        await wait_until(lambda: _has_mentions(db) or proc.returncode is not None, what="the service storing mentions")
        if proc.returncode is not None:
            raise AssertionError((await proc.communicate())[1].decode())
        unlink_database(db)
        # A safety net, not a bound: the service must exit by itself.
        err = (await asyncio.wait_for(proc.communicate(), 120))[1].decode()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode != 0
    assert "Traceback" not in err, err
    assert err.strip().splitlines()[-1].startswith("monitor: ") and "deleted" in err.strip().splitlines()[-1], err
    assert not db.exists()  # no second, empty database at the path


def _has_mentions(db: Path) -> bool:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            return conn.execute("SELECT count(*) FROM mentions").fetchone()[0] > 0
        finally:
            conn.close()
    except sqlite3.Error:
        return False


async def test_an_action_still_waiting_when_the_desk_closes_is_counted_not_forgotten(watchlist: Watchlist) -> None:
    app = make_app(watchlist)
    db = watchlist.database
    with ExitStack() as stack:
        async with app.run_test(size=(80, 24)) as pilot:
            _, target = await selected(pilot)
            await on_app_connection(app, "PRAGMA busy_timeout=50")
            stack.enter_context(write_lock(db))  # held until the desk has closed
            await dismiss(pilot)
            await wait_until(lambda: "database locked" in app.storage_state)
            app.exit()  # as a hang-up does
        assert app.unsaved == 1  # the CLI prints it on exit
    assert dismissals(db, target.id) == 0


async def test_the_desk_opens_on_a_locked_database_and_says_so(
    watchlist: Watchlist, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("monitor.db.connect.BUSY_TIMEOUT_MS", 50)  # SQLite's wait, not the test's: fail fast
    db = watchlist.database
    await (await Store.open(db)).close()  # an existing, migrated file
    app = make_app(watchlist, collect=False)
    with write_lock(db):
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_until(lambda: app.storage_state == "DATABASE LOCKED")
            assert app.is_running and app.fatal is None
            assert "DATABASE LOCKED" in str(app.screen.title)
            await pilot.pause()


async def test_retry_and_cancel_of_sends_on_a_read_only_database_are_refused_with_a_notice(
    watchlist: Watchlist,
) -> None:
    app = make_app(watchlist)
    async with app.run_test(size=(80, 24)) as pilot:
        await selected(pilot)
        notices = record_notices(app)
        await on_app_connection(app, "PRAGMA query_only=ON")
        await pilot.press("ctrl+k")
        await wait_until(lambda: any(n.startswith("Not done") and "read-only" in n for n in notices))
        await pilot.press("ctrl+r")
        await wait_until(lambda: sum(n.startswith("Not done") for n in notices) == 2)
        assert app.is_running and app.storage_state == "DATABASE READ-ONLY"
