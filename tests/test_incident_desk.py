"""Incidents on the desk, driven with the real keys; each step read back from the SQLite file."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from monitor.core.config import Watchlist
from monitor.core.models import Status
from monitor.ui.screens.dialogs import ConfirmDialog
from monitor.ui.screens.incident_dialogs import IncidentPicker, TitleDialog
from monitor.ui.screens.main import MainScreen
from tests.conftest import record_notices
from tests.test_app import actions, make_app, selected, wait_for


def incident_of(db: Path, mention_id: int) -> int | None:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT incident_id FROM mentions WHERE id = ?", (mention_id,)).fetchone()[0]


def kinds(db: Path) -> list[tuple[int, str]]:
    return [(m, k) for m, k, _, _ in actions(db)]


async def link_new(pilot: Pilot[Any], screen: MainScreen) -> None:
    """`m` then Enter on "New incident from this mention" (the only entry when no incident is open)."""
    await pilot.press("m")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, IncidentPicker))
    await pilot.press("enter")
    await accept_title(pilot)


async def accept_title(pilot: Pilot[Any]) -> None:
    """Enter on the title drafted from the first report, offered for editing."""
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, TitleDialog))
    await pilot.press("enter")


async def test_m_makes_a_new_incident_then_links_a_second_mention_to_the_best_ranked(watchlist: Watchlist) -> None:
    db = watchlist.database
    app = make_app(watchlist)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, first = await selected(pilot)
        await pilot.press("m")
        await wait_for(pilot, lambda: isinstance(app.screen, IncidentPicker))
        await pilot.press("enter")  # no incident yet: "New incident from this mention" is highlighted
        await accept_title(pilot)
        await wait_for(pilot, lambda: incident_of(db, first.id) is not None)
        incident = incident_of(db, first.id)
        assert kinds(db) == [(first.id, "link")]
        table = screen.pane(Status.NEW)
        await wait_for(pilot, lambda: first.id in table.groups)  # its row is the incident's now
        assert table.groups[first.id].incident.id == incident and table.groups[first.id].reports == 1

        await pilot.press("j")
        second = screen.current_row()
        assert second is not None and second.id != first.id
        await pilot.press("m")
        await wait_for(pilot, lambda: isinstance(app.screen, IncidentPicker))
        assert app.screen.entries[0].incident_id == incident  # type: ignore[attr-defined]  # best first
        await pilot.press("enter")
        await wait_for(pilot, lambda: incident_of(db, second.id) == incident)
        assert kinds(db) == [(first.id, "link"), (second.id, "link")]
        # One row for the incident, counting both reports: the pane lost a row.
        await wait_for(pilot, lambda: table.row_count == 4)
        [group] = table.groups.values()
        assert group.reports == 2 and group.incident.id == incident


async def test_o_opens_an_incident_to_its_reports_unlink_and_undo_with_u(watchlist: Watchlist) -> None:
    db = watchlist.database
    app = make_app(watchlist)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, first = await selected(pilot)
        await link_new(pilot, screen)
        await wait_for(pilot, lambda: incident_of(db, first.id) is not None)
        incident = incident_of(db, first.id)
        table = screen.pane(Status.NEW)
        await wait_for(pilot, lambda: first.id in table.groups)
        await pilot.press("o")  # the incident's row opens to its reports
        await wait_for(pilot, lambda: screen.filter.incident == incident and table.row_count == 1)
        assert table.groups == {} and screen.current_row().id == first.id  # type: ignore[union-attr]
        await pilot.press("M")
        await wait_for(pilot, lambda: incident_of(db, first.id) is None)
        assert kinds(db) == [(first.id, "link"), (first.id, "unlink")]
        await wait_for(pilot, lambda: table.row_count == 0)  # no report left in this incident
        await pilot.press("o")  # closes it: every mention again, grouped
        await wait_for(pilot, lambda: not screen.filter.active and table.row_count == 5)
        while screen.current_row().id != first.id:  # type: ignore[union-attr]
            await pilot.press("j")
        await pilot.press("u")  # undoes the unlink
        await wait_for(pilot, lambda: incident_of(db, first.id) == incident)
        await wait_for(pilot, lambda: first.id in table.groups)


async def test_moving_a_mention_asks_first_and_no_leaves_it_where_it_was(watchlist: Watchlist) -> None:
    db = watchlist.database
    app = make_app(watchlist)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, first = await selected(pilot)
        await link_new(pilot, screen)
        await wait_for(pilot, lambda: incident_of(db, first.id) is not None)
        incident = incident_of(db, first.id)
        await pilot.press("o")
        await wait_for(pilot, lambda: screen.pane().row_count == 1)
        await pilot.press("m")
        await wait_for(pilot, lambda: isinstance(app.screen, IncidentPicker))
        await pilot.press("enter")  # "New incident from this mention" is highlighted, not the one it is in: a move
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        assert incident_of(db, first.id) == incident and kinds(db) == [(first.id, "link")]
        await pilot.press("m")
        await wait_for(pilot, lambda: isinstance(app.screen, IncidentPicker))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await accept_title(pilot)
        await wait_for(pilot, lambda: incident_of(db, first.id) not in (None, incident))


async def test_another_operator_linking_first_is_told_and_nothing_changes(watchlist: Watchlist) -> None:
    db = watchlist.database
    app = make_app(watchlist)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, first = await selected(pilot)
        notices = record_notices(app)
        await pilot.press("m")
        await wait_for(pilot, lambda: isinstance(app.screen, IncidentPicker))
        # Meanwhile, bob makes an incident from the same mention.
        theirs = await app.store.create_incident(first.id, "bob", expect_incident=None)
        await pilot.press("enter")
        await accept_title(pilot)
        await wait_for(pilot, lambda: any("Not linked: someone else already put it in incident" in n for n in notices))
        assert incident_of(db, first.id) == theirs
        assert [(m, k, o) for m, k, o, _ in actions(db)] == [(first.id, "link", "bob")]
