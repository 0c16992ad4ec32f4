"""The incident keys are data like the others: listed by `?` and the palette, remappable by id."""

from __future__ import annotations

from pathlib import Path

from monitor.core.config import Watchlist
from monitor.networks import load_watchlist
from monitor.ui.screens.commands import desk_commands
from monitor.ui.screens.help import HelpScreen
from monitor.ui.screens.incident_dialogs import IncidentPicker
from monitor.ui.screens.main import MainScreen
from tests.conftest import write_demo, write_watchlist
from tests.test_app import make_app, selected, started, wait_for

INCIDENT_IDS = {"incident.link": "m", "incident.accept": "a", "incident.unlink": "M", "incident.expand": "o"}


async def test_help_lists_the_incident_keys_and_what_they_do_on_an_incident_row(watchlist: Watchlist) -> None:
    app = make_app(watchlist)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await started(pilot, 5)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        keys = {binding_id: key for key, _, binding_id in help_screen.rows}
        assert {i: keys[i] for i in INCIDENT_IDS} == INCIDENT_IDS
        assert "r acknowledges all" in help_screen.notes
        names = {name for name, _, _ in desk_commands(screen)}
        assert {"Link to an incident", "Accept the suggested incident", "Incident: escalate once",
                "Incident: acknowledge all", "Incident: resolve and follow up all"} <= names  # fmt: skip


async def test_the_link_key_is_remapped_from_the_watchlist(tmp_path: Path, demo_texts: list[str]) -> None:
    path = write_watchlist(tmp_path, write_demo(tmp_path / "d.jsonl", demo_texts))
    path.write_text(path.read_text(encoding="utf-8").replace("keys: {}", "keys: {incident.link: i}"), encoding="utf-8")
    app = make_app(load_watchlist(path))
    async with app.run_test(size=(80, 24)) as pilot:
        await selected(pilot)
        await pilot.press("m")  # no longer bound
        await wait_for(pilot, app.keys_idle)
        assert isinstance(app.screen, MainScreen)
        await pilot.press("i")
        await wait_for(pilot, lambda: isinstance(app.screen, IncidentPicker))
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
