"""Gaps closed on the desk, with the real keys, read back from the SQLite file: the operator's title, keys on
an incident's row that act on the incident or say what to do, undo in the opened incident, the picker."""

from __future__ import annotations

import json

from textual.widgets import OptionList

from monitor.core.config import Watchlist
from monitor.core.incidents import draft_title
from monitor.core.models import Status
from monitor.db.store import Store
from monitor.ui.screens.dialogs import ConfirmDialog, NoteDialog
from monitor.ui.screens.incident_dialogs import IncidentPicker, TitleDialog
from monitor.ui.screens.main import MainScreen
from tests.conftest import record_notices
from tests.test_app import make_app, selected, wait_for
from tests.test_delivery_app import detail_text
from tests.test_incident_actions_desk import incident_row, query


async def test_a_new_incident_takes_the_title_the_operator_edits_from_the_draft(watchlist: Watchlist) -> None:
    db = watchlist.database
    app = make_app(watchlist)
    async with app.run_test(size=(80, 24)) as pilot:
        _, first = await selected(pilot)
        await pilot.press("m")
        await wait_for(pilot, lambda: isinstance(app.screen, IncidentPicker))
        await pilot.press("enter")  # "New incident from this mention"
        await wait_for(pilot, lambda: isinstance(app.screen, TitleDialog))
        field = app.screen.query_one("#incident-title")
        assert field.value == draft_title(first)  # type: ignore[attr-defined]  # offered for editing
        field.value = ""  # type: ignore[attr-defined]
        await pilot.press(*"Arbre bd Carnot", "enter")
        await wait_for(pilot, lambda: query(db, "SELECT title FROM incidents") == [("Arbre bd Carnot",)])


async def test_t_on_an_incident_row_renames_it_and_the_rename_shows_in_its_history(watchlist: Watchlist) -> None:
    db = watchlist.database
    app = make_app(watchlist)
    async with app.run_test(size=(80, 24)) as pilot:
        _, _, ids = await incident_row(pilot, app)
        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, TitleDialog))
        app.screen.query_one("#incident-title").value = ""  # type: ignore[attr-defined]
        await pilot.press(*"[b]Platane[/b]", "enter")
        await wait_for(pilot, lambda: query(db, "SELECT title FROM incidents") == [("[b]Platane[/b]",)])
        [(operator, on)] = query(db, "SELECT operator, mention_id FROM actions WHERE kind = 'note'")
        assert operator == app.operator and on in ids  # logged once, on its first report
        assert isinstance(app.screen, MainScreen)
        await wait_for(pilot, lambda: "renamed: [b]Platane[/b]" in detail_text(app))  # as text, not markup


async def test_another_operator_unlinking_a_report_not_the_lead_updates_the_rows_count(watchlist: Watchlist) -> None:
    app = make_app(watchlist)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, incident, ids = await incident_row(pilot, app)
        table = screen.pane(Status.NEW)
        [lead] = table.groups
        other = next(i for i in ids if i != lead)
        bob = await Store.open(watchlist.database)  # another operator's desk, on the same file
        try:
            await bob.unlink(other, "bob", expect_incident=incident)
            await wait_for(pilot, lambda: [g.reports for g in table.groups.values()] == [2])
            await bob.link(other, incident, "bob", expect_incident=None)
            await wait_for(pilot, lambda: [g.reports for g in table.groups.values()] == [3])
        finally:
            await bob.close()


async def test_n_on_an_incident_row_notes_the_incident_in_its_history(watchlist: Watchlist) -> None:
    db = watchlist.database
    app = make_app(watchlist)
    async with app.run_test(size=(80, 24)) as pilot:
        _, incident, _ = await incident_row(pilot, app)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, NoteDialog))
        await pilot.press(*"crew on site", "ctrl+s")
        await wait_for(pilot, lambda: len(query(db, "SELECT id FROM actions WHERE kind = 'note'")) == 1)
        [(payload, on)] = query(db, "SELECT payload, incident_id FROM actions WHERE kind = 'note'")
        assert on == incident and json.loads(payload) == {"incident": incident, "text": "crew on site",
                                                          "on_incident": True}  # fmt: skip
        await wait_for(pilot, lambda: "note: crew on site" in detail_text(app))


async def test_ctrl_r_and_ctrl_k_on_an_incident_row_say_to_open_it_and_touch_no_report(watchlist: Watchlist) -> None:
    db = watchlist.database
    app = make_app(watchlist)
    async with app.run_test(size=(80, 24)) as pilot:
        await incident_row(pilot, app)
        notices = record_notices(app)
        before = query(db, "SELECT id, state FROM outbox")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: any("open it with o, then ctrl+r retries" in n for n in notices))
        await pilot.press("ctrl+k")
        await wait_for(pilot, lambda: any("open it with o, then ctrl+k cancels" in n for n in notices))
        assert query(db, "SELECT id, state FROM outbox") == before
        assert not any("Nothing" in n or "queued again" in n for n in notices)  # not acted on the lead alone


async def test_u_after_M_in_the_opened_incident_puts_the_report_back_and_leaves_the_others(
    watchlist: Watchlist,
) -> None:
    db = watchlist.database
    app = make_app(watchlist)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, incident, ids = await incident_row(pilot, app, n=2)
        table = screen.pane(Status.NEW)
        await pilot.press("o")
        await wait_for(pilot, lambda: screen.filter.incident == incident and table.row_count == 2)
        gone = screen.current_row().id  # type: ignore[union-attr]
        await pilot.press("M")
        await wait_for(pilot, lambda: table.row_count == 1)  # it left the view; the other report is selected
        await pilot.press("u")
        await wait_for(pilot, lambda: table.row_count == 2)
        links = query(db, "SELECT id, incident_id FROM mentions WHERE id IN (?, ?) ORDER BY id", *ids)
        assert links == sorted((i, incident) for i in ids)  # back in it; the other report's link untouched
        assert [k for m, k in query(db, "SELECT mention_id, kind FROM actions ORDER BY id") if m == gone][-2:] == [
            "unlink", "link"]  # fmt: skip


async def test_the_picker_shows_the_incident_a_mention_is_in_marked_and_highlights_a_move(
    watchlist: Watchlist,
) -> None:
    app = make_app(watchlist)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, incident, _ = await incident_row(pilot, app, n=2)
        await pilot.press("o")
        await wait_for(pilot, lambda: screen.filter.incident == incident and screen.pane().row_count == 2)
        await pilot.press("m")
        await wait_for(pilot, lambda: isinstance(app.screen, IncidentPicker))
        picker = app.screen
        assert isinstance(picker, IncidentPicker)
        [now] = [e for e in picker.entries if e.current]
        assert now.incident_id == incident and now.reports == 2 and picker.entries[0] is now
        options = picker.query_one("#incidents", OptionList)
        assert "(linked now)" in str(options.get_option_at_index(0).prompt)
        assert options.highlighted == len(picker.entries)  # "New incident from this mention", not where it is
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))  # a move asks first
        await pilot.press("n")
