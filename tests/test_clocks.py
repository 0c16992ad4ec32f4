"""Each mention's clocks (monitor.db.clocks): written in the transaction of every action, filled for older
databases by migration 6, and recomputed from the action log by the check without a difference; likewise the
integer ids of the texts the statistics group by (migration 7)."""

from __future__ import annotations

import sqlite3

import pytest

from monitor.cli import main
from monitor.core.models import MatchResult, Mention, Priority
from monitor.core.timeutil import from_ms
from monitor.db.clocks import CLOCKS, IDS, Difference, differences
from monitor.db.mentions import ingest_sync
from monitor.db.migrations import MIGRATIONS
from monitor.db.store import migrate
from tests.fakes_stats import MIN, Desk, paris, write_watchlist


@pytest.fixture
def desk(tmp_path):
    d = Desk(tmp_path / "monitor.db")
    yield d
    d.close()


def clocks_of(conn: sqlite3.Connection, mention_id: int) -> dict[str, object]:
    row = conn.execute(f"SELECT {', '.join(CLOCKS)} FROM mentions WHERE id = ?", (mention_id,)).fetchone()
    return dict(zip(CLOCKS, row, strict=True))


def all_clocks(conn: sqlite3.Connection) -> list[tuple[object, ...]]:
    return conn.execute(f"SELECT id, {', '.join(CLOCKS)} FROM mentions ORDER BY id").fetchall()


T = paris(2025, 7, 7, 10)


def history(desk: Desk) -> list[int]:
    """Mentions through every path that moves a clock: escalate, resolve, reopen (of a fix, of an
    escalation), re-escalate elsewhere, a reply closing an escalation, notes, a dismissal."""
    a, b, c, d = (desk.mention(T + i * MIN) for i in range(4))
    desk.act(a, "note", T + 1 * MIN, "carol", text="vu")
    desk.act(a, "escalate", T + 5 * MIN, "alice", service="voirie")
    desk.act(a, "resolve", T + 65 * MIN, "open311", note="réparé")
    desk.act(a, "reopen", T + 70 * MIN, "bruno")  # the fix is undone: escalated again
    desk.act(a, "reopen", T + 75 * MIN, "bruno")  # and the escalation too: new
    desk.act(a, "escalate", T + 80 * MIN, "carol", service="eau")
    desk.act(a, "reply", T + 90 * MIN, "carol", text="Réglé")
    desk.act(b, "dismiss", T + 3 * MIN, "bruno", reason="spam")
    desk.act(c, "escalate", T + 4 * MIN, "alice", service="voirie")
    desk.act(c, "escalate", T + 6 * MIN, "bruno", service="eau")  # the first one stands
    desk.act(d, "reply", T + 10 * MIN, "alice", text="Merci")
    return [a, b, c, d]


def test_each_action_moves_the_clocks_in_its_own_transaction(desk):
    a = desk.mention(T)
    desk.act(a, "note", T + MIN, "carol", text="vu")
    assert clocks_of(desk.conn, a) == dict.fromkeys(CLOCKS) | {"reopened": 0}  # a note stops no clock
    desk.act(a, "escalate", T + 5 * MIN, "alice", service="voirie")
    first = {"first_response_at": T + 5 * MIN, "first_response_by": "alice"}
    standing = {"escalated_at": T + 5 * MIN, "escalated_to": "voirie"}
    assert clocks_of(desk.conn, a) == first | standing | {"resolved_at": None, "reopened": 0}
    desk.act(a, "resolve", T + 65 * MIN, "open311", note="réparé")
    assert clocks_of(desk.conn, a) == first | standing | {"resolved_at": T + 65 * MIN, "reopened": 0}
    desk.act(a, "reopen", T + 70 * MIN, "bruno")
    assert clocks_of(desk.conn, a) == first | standing | {"resolved_at": None, "reopened": 1}
    desk.act(a, "reopen", T + 75 * MIN, "bruno")  # the escalation is undone: the first response stays
    assert clocks_of(desk.conn, a) == first | dict.fromkeys(standing) | {"resolved_at": None, "reopened": 2}
    desk.act(a, "escalate", T + 80 * MIN, "carol", service="eau")
    desk.act(a, "reply", T + 90 * MIN, "carol", text="Réglé")
    assert clocks_of(desk.conn, a) == first | {
        "escalated_at": T + 80 * MIN, "escalated_to": "eau", "resolved_at": T + 90 * MIN, "reopened": 2,
    }  # fmt: skip
    assert differences(desk.conn) == []


def test_a_second_escalation_leaves_the_standing_one_and_a_dismissal_resolves_nothing(desk):
    a, b, c, d = history(desk)
    assert clocks_of(desk.conn, c)["escalated_to"] == "voirie"
    assert clocks_of(desk.conn, c)["escalated_at"] == T + 4 * MIN
    assert clocks_of(desk.conn, b) == {
        "first_response_at": T + 3 * MIN, "first_response_by": "bruno", "escalated_at": None,
        "escalated_to": None, "resolved_at": None, "reopened": 0,
    }  # fmt: skip
    assert differences(desk.conn) == []


def all_ids(conn: sqlite3.Connection) -> list[tuple[object, ...]]:
    """Each mention's ids, as the texts they stand for (ids themselves may be numbered otherwise)."""
    names = ", ".join(f"(SELECT name FROM names WHERE id = {column})" for column in IDS)
    return conn.execute(f"SELECT id, {names} FROM mentions ORDER BY id").fetchall()


def as_version_8(conn: sqlite3.Connection) -> None:
    """The file as migration 8 left it: no incidents (migration 9), no spend (migration 10)."""
    for index in ("mentions_incident", "mentions_unlinked", "actions_incident", "outbox_incident", "outbox_sent"):
        conn.execute(f"DROP INDEX IF EXISTS {index}")
    for table, column in (
        ("mentions", "incident_id"),
        ("mentions", "suggested_incident"),
        ("mentions", "suggestion_score"),
        ("actions", "incident_id"),
        ("outbox", "incident_id"),
    ):
        conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    conn.execute("DROP TABLE IF EXISTS incidents")
    conn.execute("DROP TABLE spend")
    conn.execute("PRAGMA user_version=8")


def as_version_7(conn: sqlite3.Connection) -> None:
    """The file as migration 7 left it: no per-day digests of the statistics (migration 8)."""
    as_version_8(conn)
    for trigger in ("insert", "delete", "update"):
        conn.execute(f"DROP TRIGGER stats_dirty_{trigger}")
    conn.execute("DROP TABLE stats_days")
    conn.execute("DROP TABLE stats_dirty")
    conn.execute("PRAGMA user_version=7")


def as_version_6(conn: sqlite3.Connection) -> None:
    """The file as migration 6 left it: no names, migration 6's statistics index with its text columns."""
    as_version_7(conn)
    conn.execute("DROP INDEX mentions_stats")
    for column in IDS:
        conn.execute(f"ALTER TABLE mentions DROP COLUMN {column}")
    conn.execute("DROP TABLE names")
    conn.execute(
        "CREATE INDEX mentions_stats ON mentions (first_seen_at, first_response_at, status, status_at, priority,"
        " deleted_at, edited_at, source, terms, first_response_by, to_us, escalated_at, escalated_to, resolved_at)"
    )
    conn.execute("PRAGMA user_version=6")


def as_version_5(conn: sqlite3.Connection) -> None:
    """The file as the previous program left it: no clock columns, the old statistics index."""
    as_version_6(conn)
    conn.execute("DROP INDEX mentions_stats")
    for column in ("escalated_at", "escalated_to", "resolved_at", "reopened"):
        conn.execute(f"ALTER TABLE mentions DROP COLUMN {column}")
    conn.execute(
        "CREATE INDEX mentions_stats ON mentions (first_seen_at, first_response_at, status, status_at, priority,"
        " deleted_at, edited_at, source, terms, first_response_by)"
    )
    conn.execute("PRAGMA user_version=5")


def test_migration_six_fills_the_clocks_of_an_older_database_as_the_actions_wrote_them(desk):
    history(desk)
    written = all_clocks(desk.conn)
    assert any(row[3] is not None for row in written)  # something to fill
    as_version_5(desk.conn)
    assert migrate(desk.conn) == len(MIGRATIONS)
    assert all_clocks(desk.conn) == written
    assert differences(desk.conn) == []


def test_each_write_gives_the_texts_the_statistics_group_by_their_ids_in_its_transaction(desk):
    a, b, c, d = history(desk)
    e = desk.mention(T + 5 * MIN, source="bluesky", terms=("eau", "voirie"))
    desk.edit(b, T + 9 * MIN, "Une fuite d'eau")  # an edit without a new match keeps the terms
    edited = Mention(
        source="mastodon", remote_id="post-4", network="mastodon", author="@citoyen", text="Fuite d'eau",
        published_at=from_ms(T),
    )  # fmt: skip
    desk.conn.execute("BEGIN IMMEDIATE")  # an edit that matches other terms: its primary term changes
    ingest_sync(desk.conn, "mastodon", [], None, [(edited, MatchResult(("eau",), Priority.NORMAL))], [], T)
    desk.conn.execute("COMMIT")
    assert all_ids(desk.conn) == [
        (a, "mastodon", "voirie", "alice", "eau"),
        (b, "mastodon", "voirie", "bruno", None),
        (c, "mastodon", "voirie", "alice", "voirie"),
        (d, "mastodon", "eau", "alice", None),
        (e, "bluesky", "eau", None, None),
    ]
    assert differences(desk.conn) == []


def test_migration_seven_gives_an_older_database_the_ids_the_writes_would_have(desk):
    history(desk)
    desk.mention(T + 5 * MIN, source="bluesky", terms=("eau", "voirie"))
    written = all_ids(desk.conn)
    clocks = all_clocks(desk.conn)
    as_version_6(desk.conn)
    assert migrate(desk.conn) == len(MIGRATIONS)
    assert all_ids(desk.conn) == written
    assert all_clocks(desk.conn) == clocks
    assert differences(desk.conn) == []


def test_the_check_finds_an_id_that_is_not_its_text(desk):
    a, b, _c, _d = history(desk)
    voirie = desk.conn.execute("SELECT id FROM names WHERE name = 'voirie'").fetchone()[0]
    eau = desk.conn.execute("SELECT id FROM names WHERE name = 'eau'").fetchone()[0]
    desk.conn.execute("UPDATE mentions SET service_id = ?, term_id = ? WHERE id = ?", (voirie, eau, a))
    desk.conn.execute("UPDATE mentions SET responder_id = NULL WHERE id = ?", (b,))
    bruno = desk.conn.execute("SELECT id FROM names WHERE name = 'bruno'").fetchone()[0]
    assert differences(desk.conn) == [
        Difference(a, "term_id", eau, voirie),
        Difference(a, "service_id", voirie, eau),
        Difference(b, "responder_id", None, bruno),
    ]


def test_the_check_finds_a_clock_that_differs_from_the_action_log(desk):
    a, _b, c, _d = history(desk)
    desk.conn.execute("UPDATE mentions SET escalated_to = 'voirie', reopened = 0 WHERE id = ?", (a,))
    desk.conn.execute("UPDATE mentions SET resolved_at = 1 WHERE id = ?", (c,))
    assert differences(desk.conn) == [
        Difference(a, "escalated_to", "voirie", "eau"),
        Difference(a, "reopened", 0, 2),
        Difference(c, "resolved_at", 1, None),
    ]
    assert str(differences(desk.conn)[1]) == f"mention {a}: reopened is 0, the action log says 2"


def test_monitor_check_clocks_says_whether_the_clocks_are_what_the_log_says(desk, tmp_path, capsys):
    a = history(desk)[0]
    wl = write_watchlist(tmp_path)
    check = ["check", "--watchlist", str(wl.path), "--db", str(desk.path), "--clocks"]
    assert main(check) == 0
    assert "clocks: as the action log says" in capsys.readouterr().out
    desk.conn.execute("UPDATE mentions SET reopened = 0 WHERE id = ?", (a,))
    assert main(check) == 1
    out = capsys.readouterr().out
    assert f"mention {a}: reopened is 0, the action log says 2" in out and "clocks: these differ" in out
    desk.conn.execute("UPDATE mentions SET reopened = 2, term_id = NULL WHERE id = ?", (a,))  # an id too
    assert main(check) == 1
    assert f"mention {a}: term_id is None, the action log says " in capsys.readouterr().out


async def test_monitor_check_clocks_on_either_engine_finds_none_then_a_planted_one(database, tmp_path, capsys):
    # Written through the store's own action path on each engine (PostgreSQL's included): the check finds the
    # clocks as the log says, then the one a tamperer changed.
    import asyncio

    from monitor.core.models import ActionKind
    from tests.engines import raw_execute, target_of

    posts = [
        Mention(source="masto", remote_id=f"p{i}", network="mastodon", author="@a", text="Un trou rue de Metz",
                published_at=from_ms(T))
        for i in range(2)
    ]  # fmt: skip
    await database.ingest("masto", [(m, MatchResult(("voirie",), Priority.NORMAL)) for m in posts], None)
    a, b = (row.id for row in await database.changes_since(0))
    for kind, payload in (("escalate", {"service": "voirie"}), ("resolve", {}), ("reopen", {}), ("reopen", {})):
        await database.act(a, ActionKind(kind), "alice", payload)
    await database.act(b, ActionKind.REPLY, "bruno", {"text": "Merci"})
    wl = write_watchlist(tmp_path)
    check = ["check", "--watchlist", str(wl.path), "--db", str(target_of(database)), "--clocks"]
    assert await asyncio.to_thread(main, check) == 0
    assert "clocks: as the action log says" in capsys.readouterr().out
    raw_execute(database, f"UPDATE mentions SET reopened = 0 WHERE id = {a}")  # our own integer
    assert await asyncio.to_thread(main, check) == 1
    out = capsys.readouterr().out
    assert f"mention {a}: reopened is 0, the action log says 2" in out and "clocks: these differ" in out


async def test_monitor_check_clocks_on_postgresql_finds_a_day_digest_its_mentions_no_longer_give(
    pg_url, tmp_path, capsys
):
    import asyncio

    from monitor.core.models import ActionKind
    from monitor.db.pg.statsdays import DAY_MS
    from monitor.db.pg.store import PgStore
    from tests.engines import raw_execute

    store = await PgStore.open(pg_url)
    try:
        post = Mention(source="masto", remote_id="p1", network="mastodon", author="@a", text="Un trou",
                       published_at=from_ms(T))  # fmt: skip
        await store.ingest("masto", [(post, MatchResult(("voirie",), Priority.NORMAL))], None, seen_at=T)
        await store.act((await store.changes_since(0))[0].id, ActionKind.REPLY, "bruno", {"text": "Merci"})
        assert await store.refresh_digests() == 1
        check = ["check", "--watchlist", str(write_watchlist(tmp_path).path), "--db", pg_url, "--clocks"]
        assert await asyncio.to_thread(main, check) == 0
        assert "day digests: as the mentions give" in capsys.readouterr().out
        # The first row's first field (first seen, 8 bytes big-endian) changed behind the trigger's back.
        raw_execute(store, "UPDATE stats_days SET rows = overlay(rows placing '\\x0001'::bytea from 7)")
        assert await asyncio.to_thread(main, check) == 1
        out = capsys.readouterr().out
        assert f"day {T // DAY_MS} (UTC, days since 1970)" in out and "day digests: these differ" in out
        assert await store.refresh_digests() == 0  # nothing dirty: the stale digest stays, the check finds it
        assert await asyncio.to_thread(main, check) == 1
    finally:
        await store.close()
