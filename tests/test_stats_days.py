"""The per-day digests of the statistics (monitor.db.statsdays, migration 8): each write marks its day dirty
in its own transaction, a dirty day's digest is never read, and the figures are those computed from scratch."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.cli import main
from monitor.core.models import Priority
from monitor.db.migrations import MIGRATIONS
from monitor.db.statsdays import DAY_MS, REFRESH, pack, refresh, stale_days, unpack
from monitor.db.store import Store, StoreError, migrate
from monitor.engine.collector import Collector
from monitor.reports.stats import compute
from tests.conftest import wait_until
from tests.fakes_stats import DESK_HOURS, MIN, Desk, paris, write_watchlist
from tests.test_clocks import as_version_7, history
from tests.test_stats_properties import BASE, PAYLOADS, mention


def dirty(desk: Desk) -> set[int]:
    return {row[0] for row in desk.conn.execute("SELECT day FROM stats_dirty")}


def from_scratch(desk: Desk, watchlist, since: int, until: int, now: int) -> dict:
    """The report with no digest at all (each day dirty): computed from the mentions alone."""
    conn = desk.conn
    conn.execute("BEGIN")
    try:
        conn.execute("DELETE FROM stats_days")
        conn.execute("INSERT OR IGNORE INTO stats_dirty SELECT first_seen_at / ? FROM mentions", (DAY_MS,))
        return compute(conn, watchlist, since=since, until=until, now=now).as_dict()
    finally:
        conn.execute("ROLLBACK")


T = paris(2025, 7, 7, 10)
DAY = T // DAY_MS


def test_each_write_marks_its_mentions_day_dirty_in_its_own_transaction(tmp_path):
    desk = Desk(tmp_path / "monitor.db")
    try:
        a = desk.mention(T)
        assert dirty(desk) == {DAY}
        for write in (
            lambda: desk.act(a, "escalate", T + 5 * MIN, "alice", service="voirie"),
            lambda: desk.act(a, "resolve", T + 9 * MIN, "open311", note=""),
            lambda: desk.act(a, "reopen", T + 10 * MIN, "bruno"),
            lambda: desk.edit(a, T + 11 * MIN, "Un trou rue de Metz"),
            lambda: desk.delete(a, T + 12 * MIN),
            lambda: desk.mention(T + DAY_MS),
        ):
            assert refresh(desk.conn) >= 1 and dirty(desk) == set()
            write()
            assert DAY in dirty(desk) or dirty(desk) == {DAY + 1}
        # A write rolled back leaves no mark: the mark is in the write's transaction.
        refresh(desk.conn)
        desk.conn.execute("BEGIN IMMEDIATE")
        desk.conn.execute("UPDATE mentions SET status = 'done', status_at = ? WHERE id = ?", (T + MIN, a))
        assert dirty(desk) == {DAY}
        desk.conn.execute("ROLLBACK")
        assert dirty(desk) == set()
        # A column the statistics do not read leaves the digest clean.
        desk.conn.execute("UPDATE mentions SET author_name = 'X' WHERE id = ?", (a,))
        assert dirty(desk) == set()
    finally:
        desk.close()


def test_migration_eight_builds_the_digests_of_a_version_seven_file_with_the_same_figures(tmp_path):
    desk = Desk(tmp_path / "monitor.db")
    try:
        history(desk)
        desk.mention(T + DAY_MS + 5 * MIN, source="bluesky", terms=("eau", "voirie"))
        wl = write_watchlist(tmp_path, hours=DESK_HOURS)
        span = {"since": paris(2025, 7, 6), "until": paris(2025, 7, 10), "now": paris(2025, 7, 12)}
        before = compute(desk.conn, wl, **span).as_dict()
        as_version_7(desk.conn)
        assert migrate(desk.conn) == len(MIGRATIONS)
        assert dirty(desk) == set()
        assert {row[0] for row in desk.conn.execute("SELECT day FROM stats_days")} == {DAY, DAY + 1}
        assert stale_days(desk.conn) == []
        assert compute(desk.conn, wl, **span).as_dict() == before
    finally:
        desk.close()


def as_version_10(conn) -> None:
    """The file as migration 10 left it: the digests as migration 8 built them, in text."""
    conn.execute("DROP TABLE stats_days")
    conn.execute(
        "CREATE TABLE stats_days (day INTEGER PRIMARY KEY, n INTEGER NOT NULL, radix INTEGER NOT NULL, seen TEXT,"
        " fr TEXT, status TEXT, deleted TEXT, esc TEXT, source_term TEXT, responder_service TEXT)"
    )
    conn.execute("INSERT OR IGNORE INTO stats_dirty SELECT first_seen_at / ? FROM mentions", (DAY_MS,))
    for statement in [s for s in REFRESH.split(";") if s.strip()]:
        conn.execute(statement)
    conn.execute("PRAGMA user_version=10")


async def test_the_first_writer_after_migration_eleven_builds_the_digests_as_blobs_with_the_same_figures(tmp_path):
    desk = Desk(tmp_path / "monitor.db")
    try:
        history(desk)
        desk.mention(T + DAY_MS + 5 * MIN, source="bluesky", terms=("eau", "voirie"))
        wl = write_watchlist(tmp_path, hours=DESK_HOURS)
        span = {"since": paris(2025, 7, 6), "until": paris(2025, 7, 10), "now": paris(2025, 7, 12)}
        before = compute(desk.conn, wl, **span).as_dict()
        as_version_10(desk.conn)
        assert {row[0] for row in desk.conn.execute("SELECT DISTINCT typeof(seen) FROM stats_days")} == {"text"}
        store = await Store.open(desk.path)
        await store.close()
        assert desk.conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert dirty(desk) == set()
        kinds = desk.conn.execute("SELECT DISTINCT typeof(seen), typeof(responder_service) FROM stats_days").fetchall()
        assert kinds == [("blob", "blob")]
        assert {row[0] for row in desk.conn.execute("SELECT day FROM stats_days")} == {DAY, DAY + 1}
        assert stale_days(desk.conn) == []
        assert compute(desk.conn, wl, **span).as_dict() == before
    finally:
        desk.close()


def test_the_narrowest_width_that_holds_a_column_is_kept_and_read_back():
    cases = (([0, -128, 127], 1), ([128, -129], 2), ([-(2**31), 2**31 - 1], 4), ([2**31, 5], 8), ([-(2**62)], 8))
    for values, width in cases:
        blob = pack(np.array(values, dtype=np.int64))
        assert len(blob) == width * len(values)
        assert unpack(blob, len(values)).astype(np.int64).tolist() == values


def test_the_check_finds_a_digest_its_mentions_no_longer_give(tmp_path, capsys):
    desk = Desk(tmp_path / "monitor.db")
    try:
        a = history(desk)[0]
        refresh(desk.conn)
        wl = write_watchlist(tmp_path)
        check = ["check", "--watchlist", str(wl.path), "--db", str(desk.path), "--clocks"]
        assert main(check) == 0
        assert "day digests: as the mentions give" in capsys.readouterr().out
        # A write that bypassed the triggers (as a bug would): the digest is stale and the check says so.
        desk.conn.execute("UPDATE stats_days SET fr = zeroblob(length(fr)) WHERE day = ?", (DAY,))
        assert stale_days(desk.conn) == [DAY]
        desk.conn.execute("UPDATE stats_days SET fr = fr || x'00' WHERE day = ?", (DAY,))  # no width fits: damaged
        assert stale_days(desk.conn) == [DAY]
        assert main(check) == 1
        out = capsys.readouterr().out
        assert f"day {DAY} (UTC, days since 1970)" in out and "day digests: these differ" in out
        refresh(desk.conn)  # nothing dirty: the stale digest stays, the check keeps finding it
        assert stale_days(desk.conn) == [DAY]
        desk.conn.execute("INSERT INTO stats_dirty VALUES (?)", (DAY,))
        assert stale_days(desk.conn) == []  # a dirty day's digest is never read, so never stale
        refresh(desk.conn)
        assert stale_days(desk.conn) == [] and a
    finally:
        desk.close()


step = st.one_of(st.just("refresh"), mention)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=1, max_size=12), st.integers(0, 6 * 24 * 60))
def test_after_random_writes_and_refreshes_the_figures_are_those_computed_from_scratch(steps, start):
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        watchlist = write_watchlist(directory, hours=DESK_HOURS, first_response="1h", resolution="8h")
        desk = Desk(directory / "monitor.db")
        since = BASE + start * MIN  # whole days and partial ones at both ends
        span = {"since": since, "until": since + 3 * DAY_MS + 7 * MIN, "now": BASE + 30 * DAY_MS}
        try:
            for s in steps:
                if s == "refresh":
                    refresh(desk.conn)
                else:
                    _write(desk, s)
                report = compute(desk.conn, watchlist, **span).as_dict()
                assert report == from_scratch(desk, watchlist, **span)
            assert stale_days(desk.conn) == []
        finally:
            desk.close()


def _write(desk: Desk, m: dict) -> None:
    seen = BASE + m["seen"]
    mid = desk.mention(seen, source=m["source"], terms=m["terms"], priority=Priority(m["priority"]))
    t = seen
    for kind, delay, operator, service in m["actions"]:
        t += delay
        payload = dict(PAYLOADS[kind], service=service) if kind == "escalate" else PAYLOADS[kind]
        try:
            desk.act(mid, kind, t, operator, **payload)
        except StoreError:
            continue  # a reopen with nothing to undo
    if m["deleted_after"] is not None:
        desk.delete(mid, seen + m["deleted_after"] * MIN)


async def test_the_collector_rebuilds_the_dirty_days_now_and_then(tmp_path):
    # `monitor stats` reads the file read-only: a writer must rebuild, or every day ends up computed whole.
    desk = Desk(tmp_path / "monitor.db")
    store = await Store.open(tmp_path / "monitor.db")
    try:
        desk.mention(T)
        desk.mention(T + DAY_MS)
        assert dirty(desk) == {DAY, DAY + 1}
        collector = Collector(write_watchlist(tmp_path), store, sources=[])
        collector.digests_every = 0.01
        task = asyncio.create_task(collector.run())
        try:
            await wait_until(lambda: not dirty(desk), what="the collector rebuilt the dirty days")
            assert stale_days(desk.conn) == []
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    finally:
        await store.close()
        desk.close()
