"""Acting on an incident from its row, with the real keys: every report acted on, read back from SQLite."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from monitor.core.config import Watchlist
from monitor.core.models import Status
from monitor.db.presence import Presence
from monitor.db.store import Store
from monitor.engine import incidents
from monitor.ui.app import MonitorApp
from monitor.ui.screens.dialogs import ConfirmDialog
from monitor.ui.screens.incident_dialogs import BroadcastDialog
from monitor.ui.screens.main import MainScreen
from tests.conftest import record_notices
from tests.test_app import actions, make_app, selected, wait_for
from tests.test_delivery_app import detail_text


def query(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, args).fetchall()


async def incident_row(pilot: Pilot[Any], app: MonitorApp, n: int = 3) -> tuple[MainScreen, int, list[int]]:
    """The first n mentions made one incident (set up through the store), its row selected on the desk."""
    screen, _ = await selected(pilot)
    ids = screen.pane().ids()[:n]
    incident = await app.store.create_incident(ids[0], "alice")
    for mention_id in ids[1:]:
        await app.store.link(mention_id, incident, "alice", expect_incident=None)
    table = screen.pane(Status.NEW)
    await wait_for(pilot, lambda: any(g.reports == n for g in table.groups.values()))
    while table.selected_incident() is None:
        await pilot.press("j")
    return screen, incident, ids


def kinds_after_links(db: Path) -> list[tuple[int, str]]:
    return [(m, k) for m, k, _, _ in actions(db) if k != "link"]


async def test_e_on_an_incident_row_escalates_once_for_every_report(watchlist: Watchlist) -> None:
    db = watchlist.database
    app = make_app(watchlist)
    async with app.run_test(size=(80, 24)) as pilot:
        _, incident, ids = await incident_row(pilot, app)
        await pilot.press("e", "enter", *"grue", "enter")
        await wait_for(pilot, lambda: len(kinds_after_links(db)) == 3)
        assert sorted(kinds_after_links(db)) == sorted((m, "escalate") for m in ids)
        assert query(db, "SELECT status, service FROM incidents WHERE id = ?", incident)[0][0] == "escalated"
        targets = len(watchlist.service("voirie").targets)  # type: ignore[union-attr]
        # One request per target of the service, listing every report: not one per report.
        assert query(db, "SELECT count(*) FROM outbox WHERE kind = 'escalation'") == [(targets,)]


async def test_r_acknowledges_every_reporter_once_with_the_text_reviewed_once(watchlist: Watchlist) -> None:
    db = watchlist.database
    app = make_app(watchlist)
    async with app.run_test(size=(80, 24)) as pilot:
        _, _, ids = await incident_row(pilot, app)
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, BroadcastDialog))
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: len(kinds_after_links(db)) == 3)
        assert sorted(kinds_after_links(db)) == sorted((m, "acknowledge") for m in ids)
        replies = query(db, "SELECT mention_id, idem_key FROM outbox WHERE kind = 'reply'")
        assert sorted(m for m, _ in replies) == sorted(ids) and len({k for _, k in replies}) == 3  # one key each


async def test_x_resolves_every_report_with_one_follow_up_each(watchlist: Watchlist) -> None:
    db = watchlist.database
    app = make_app(watchlist)
    async with app.run_test(size=(80, 24)) as pilot:
        _, incident, ids = await incident_row(pilot, app)
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, BroadcastDialog))
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: len(kinds_after_links(db)) == 3)
        assert sorted(kinds_after_links(db)) == sorted((m, "resolve") for m in ids)
        assert sorted(m for (m,) in query(db, "SELECT mention_id FROM outbox WHERE kind = 'followup'")) == sorted(ids)
        assert query(db, "SELECT status FROM incidents WHERE id = ?", incident) == [("resolved",)]


async def test_d_dismisses_the_incident_with_one_reason(watchlist: Watchlist) -> None:
    db = watchlist.database
    app = make_app(watchlist)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, incident, ids = await incident_row(pilot, app)
        await pilot.press("d", "enter")
        await wait_for(pilot, lambda: len(kinds_after_links(db)) == 3)
        assert {(m, k, p["reason"]) for m, k, _, p in actions(db) if k == "dismiss"} == {
            (m, "dismiss", watchlist.dismiss_reasons[0]) for m in ids
        }
        assert query(db, "SELECT status FROM incidents WHERE id = ?", incident) == [("dismissed",)]
        await wait_for(pilot, lambda: screen.pane(Status.NEW).row_count == 2)  # the incident's row left New


async def test_the_incident_detail_lists_reports_who_answered_whom_history_and_live_progress(
    watchlist: Watchlist,
) -> None:
    app = make_app(watchlist)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, incident, ids = await incident_row(pilot, app)
        authors = [screen.pane().mentions.get(i) or await app.store.mention(i) for i in ids]
        await wait_for(pilot, lambda: f"incident {incident} " in detail_text(app))
        text = detail_text(app)
        assert "3 report(s):" in text and text.count("not answered yet") == 3
        assert f"linked {authors[1].author}" in text  # the history: who linked what
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, BroadcastDialog))
        await pilot.press("ctrl+s")
        # The deliverer (dry-run here) sends them meanwhile: the detail follows without a key pressed.
        await wait_for(pilot, lambda: "broadcast: 3 sent · 0 pending · 0 failed" in detail_text(app))
        text = detail_text(app)
        for row in authors:
            assert f"alice answered {row.author} (acknowledge)" in text


async def test_u_on_an_incident_row_undoes_nothing_and_says_why(watchlist: Watchlist) -> None:
    db = watchlist.database
    app = make_app(watchlist)
    async with app.run_test(size=(80, 24)) as pilot:
        await incident_row(pilot, app)
        notices = record_notices(app)
        before = actions(db)
        await pilot.press("u")
        await wait_for(pilot, lambda: any("This row is an incident" in n for n in notices))
        assert actions(db) == before


async def test_acknowledge_all_is_refused_when_the_incident_changed_while_writing(watchlist: Watchlist) -> None:
    db = watchlist.database
    app = make_app(watchlist)
    async with app.run_test(size=(80, 24)) as pilot:
        _, incident, ids = await incident_row(pilot, app)
        notices = record_notices(app)
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, BroadcastDialog))
        claimed = query(db, "SELECT mention_id, operator FROM claims ORDER BY mention_id")
        assert claimed == [(m, "alice") for m in sorted(ids)]  # every report claimed while alice writes
        await incidents.escalate_once(app.store, watchlist, incident, "voirie", "bob")  # meanwhile
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: any(n.startswith("Not sent: ") for n in notices))
        assert [k for _, k, _, _ in actions(db) if k == "acknowledge"] == []
        await wait_for(pilot, lambda: query(db, "SELECT count(*) FROM claims") == [(0,)])  # released


async def test_another_operator_writing_to_an_incident_marks_its_row_and_r_asks_first(watchlist: Watchlist) -> None:
    db = watchlist.database
    app = make_app(watchlist)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, incident, _ = await incident_row(pilot, app)
        other = await Store.open(db)
        try:
            assert await Presence(other, "bob", "elsewhere:1").claim_incident(incident) is None
            table = screen.pane(Status.NEW)
            lead = next(i for i, g in table.groups.items() if g.incident.id == incident)
            await wait_for(pilot, lambda: table.get_cell(str(lead), "prio").plain.endswith("✎"))
            await pilot.press("r")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
            await pilot.press("n")  # not taken over: nothing written, bob keeps it
            await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
            assert {o for (o,) in query(db, "SELECT DISTINCT operator FROM claims")} == {"bob"}
            assert [k for _, k, _, _ in actions(db) if k == "acknowledge"] == []
        finally:
            await other.close()
