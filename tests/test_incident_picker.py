"""The incident picker on its own: best first and highlighted, "new" always there, Esc links nothing,
and a title from a citizen's post is shown as text, never read as markup."""

from __future__ import annotations

from textual.app import App
from textual.widgets import Label, OptionList

from monitor.ui.screens.incident_dialogs import IncidentPicker, LinkChoice, PickerEntry, entry_label
from tests.conftest import wait_for

ENTRIES = [
    PickerEntry(12, "arbre tombé bd Carnot", 4, reasons=("term: voirie", "words: arbre, [/]carnot", "5 min apart")),
    PickerEntry(7, "[bold]nid de poule[/] rue [@click=app.quit]Alsace", 1),
]


class Host(App[None]):
    def __init__(self, entries: list[PickerEntry]) -> None:
        super().__init__()
        self.entries = entries
        self.results: list[LinkChoice | None] = []

    def on_mount(self) -> None:
        self.push_screen(IncidentPicker("@ana: un arbre est tombé [/]", self.entries), self.results.append)


async def _run(entries: list[PickerEntry], *keys: str) -> list[LinkChoice | None]:
    app = Host(entries)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, IncidentPicker))
        await pilot.press(*keys)
        await wait_for(pilot, lambda: app.results)
    return app.results


async def test_enter_links_the_best_suggestion_which_is_highlighted() -> None:
    assert await _run(ENTRIES, "enter") == [LinkChoice(12)]


async def test_j_moves_to_the_next_incident_and_new_is_always_last() -> None:
    assert await _run(ENTRIES, "j", "enter") == [LinkChoice(7)]
    assert await _run(ENTRIES, "j", "j", "enter") == [LinkChoice(None)]


async def test_with_no_open_incident_new_is_highlighted() -> None:
    assert await _run([], "enter") == [LinkChoice(None)]


async def test_escape_links_nothing() -> None:
    assert await _run(ENTRIES, "escape") == [None]


async def test_a_title_with_markup_is_shown_as_written_and_fits_80_columns() -> None:
    app = Host(ENTRIES)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, IncidentPicker))
        options = app.screen.query_one("#incidents", OptionList)
        shown = str(options.get_option_at_index(1).prompt)
        assert "[bold]nid de poule[/] rue [@click=app.quit]Alsace" in shown
        why = app.screen.query_one("#reasons", Label)
        await wait_for(pilot, lambda: "words: arbre, [/]carnot" in str(why.render()))  # the best's reasons
        assert str(why.render()) == "term: voirie · words: arbre, [/]carnot · 5 min apart"
    long = entry_label(PickerEntry(3, "très " * 40, 250))
    assert long.cell_len <= 72 and long.plain.endswith("… · 250 reports")  # the title is cut, not the count
