"""Ctrl+P holds the desk's own commands: actions, panes, stats, handover, filters and export."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
from textual.command import CommandList, CommandPalette
from textual.pilot import Pilot

from monitor.core.config import Watchlist
from monitor.core.models import Status
from monitor.ui.screens.main import MainScreen
from tests.conftest import record_notices
from tests.test_app import make_app, started, wait_for


def exported(folder: Path) -> list[Path]:
    return list(folder.glob("monitor-new-*.csv"))


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def first_command(app: Any) -> str:
    found = app.screen.query(CommandList)
    if not found or not found.first().option_count:
        return ""
    prompt = found.first().get_option_at_index(0).prompt
    return str(getattr(prompt, "plain", prompt))


async def run_command(pilot: Pilot[Any], typed: str, expect: str) -> None:
    app = pilot.app
    await pilot.press("ctrl+p")
    await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette))
    await pilot.press(*typed)
    await wait_for(pilot, lambda: first_command(app).startswith(expect))
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, MainScreen) or type(app.screen).__name__ != "CommandPalette")


async def test_the_palette_runs_the_desks_commands(
    watchlist: Watchlist, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    app = make_app(watchlist)
    seen = record_notices(app)  # kept: Textual's own list forgets a notice after its timeout
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await started(pilot, 5)
        await run_command(pilot, "pane: dismissed", "Pane: Dismissed")
        await wait_for(pilot, lambda: screen.pane().status is Status.DISMISSED)
        await run_command(pilot, "pane: new", "Pane: New")
        await wait_for(pilot, lambda: screen.pane().status is Status.NEW)

        await run_command(pilot, "prio:urgent", "Filter: prio:urgent")
        await wait_for(pilot, lambda: screen.filter_query == "prio:urgent" and screen.pane().row_count == 1)
        await run_command(pilot, "filter: clear", "Filter: clear")
        await wait_for(pilot, lambda: screen.pane().row_count == 5)
        await run_command(pilot, "source:mastodon", "Filter: source:mastodon")
        # `source:` matches the network as shown, as well as the source's name (here: demo).
        await wait_for(pilot, lambda: screen.filter_query == "source:mastodon" and screen.pane().row_count == 5)
        await run_command(pilot, "source:bluesky", "Filter: source:bluesky")
        await wait_for(pilot, lambda: screen.filter_query == "source:bluesky" and screen.pane().row_count == 0)
        await run_command(pilot, "term:voirie", "Filter: term:voirie")
        await wait_for(pilot, lambda: screen.filter_query == "term:voirie")
        await run_command(pilot, "jaures", "Filter: words")  # any words: a text filter
        await wait_for(pilot, lambda: screen.filter_query == "jaures" and screen.pane().row_count == 1)

        await run_command(pilot, "export", "Export this pane")
        await wait_for(pilot, lambda: len(exported(tmp_path)) == 1)
        path = exported(tmp_path)[0]
        await wait_for(pilot, lambda: any(str(path) in n for n in seen))
        rows = read_csv(path)
        assert [int(r["id"]) for r in rows] == list(screen.pane().mentions)
        assert "métro" in rows[0]["text"]

        await run_command(pilot, "handover", "Handover")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "HandoverScreen")
        await pilot.press("escape")
        await run_command(pilot, "stats", "Stats")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "StatsScreen")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        await run_command(pilot, "dismiss", "Dismiss")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ChoiceDialog")
