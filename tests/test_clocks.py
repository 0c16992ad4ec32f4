"""Each mention's clocks (monitor.db.clocks): written in the transaction of every action, filled for older
databases by migration 6, and recomputed from the action log by the check without a difference."""

from __future__ import annotations

import sqlite3

import pytest

from monitor.cli import main
from monitor.db.clocks import CLOCKS, Difference, differences
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


def as_version_5(conn: sqlite3.Connection) -> None:
    """The file as the previous program left it: no clock columns, the old statistics index."""
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
    conn.execute("DROP INDEX mentions_stats")
    for column in ("escalated_at", "escalated_to", "resolved_at", "reopened"):
        conn.execute(f"ALTER TABLE mentions DROP COLUMN {column}")
    conn.execute(
        "CREATE INDEX mentions_stats ON mentions (first_seen_at, first_response_at, status, status_at, priority,"
        " deleted_at, edited_at, source, terms, first_response_by)"
    )
    conn.execute("DROP TABLE spend")  # a later migration's (X's spend): not there in version 5 either
    conn.execute("PRAGMA user_version=5")


def test_migration_six_fills_the_clocks_of_an_older_database_as_the_actions_wrote_them(desk):
    history(desk)
    written = all_clocks(desk.conn)
    assert any(row[3] is not None for row in written)  # something to fill
    as_version_5(desk.conn)
    assert migrate(desk.conn) == len(MIGRATIONS)
    assert all_clocks(desk.conn) == written
    assert differences(desk.conn) == []


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
