"""The duty desk driven like an operator: real keys, then the SQLite file is read back."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from monitor.core.config import Watchlist
from monitor.core.models import MentionRow, Status
from monitor.networks import SourceContext
from monitor.ui.app import MonitorApp
from monitor.ui.screens.main import MainScreen
from tests.conftest import wait_for  # other desk tests import it from here too


def make_app(watchlist: Watchlist, **kwargs: Any) -> MonitorApp:
    return MonitorApp(
        watchlist,
        db_path=kwargs.pop("db_path", watchlist.database),
        operator="alice",
        context=SourceContext(replay_all=True),
        **kwargs,
    )


def main(app: MonitorApp) -> MainScreen:
    screen = app.screen
    assert isinstance(screen, MainScreen)
    return screen


async def started(pilot: Pilot[Any], count: int) -> MainScreen:
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, MainScreen))
    screen = main(pilot.app)  # type: ignore[arg-type]
    await wait_for(pilot, lambda: screen.pane(Status.NEW).row_count == count)
    return screen


async def selected(pilot: Pilot[Any], count: int = 5) -> tuple[MainScreen, MentionRow]:
    """The desk once `count` mentions are in New, and the mention under the cursor."""
    screen = await started(pilot, count)
    target = screen.current_row()
    assert target is not None
    return screen, target


def actions(db: Path) -> list[tuple[int, str, str, dict[str, Any]]]:
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT mention_id, kind, operator, payload FROM actions ORDER BY id").fetchall()
    return [(m, k, o, json.loads(p)) for m, k, o, p in rows]


def status_of(db: Path, mention_id: int) -> str:
    return sqlite3.connect(db).execute("SELECT status FROM mentions WHERE id = ?", (mention_id,)).fetchone()[0]


async def test_mentions_stream_into_new_most_urgent_then_oldest_first(watchlist: Watchlist) -> None:
    app = make_app(watchlist)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await started(pilot, 5)  # "Toulouse FC" is excluded
        by_position = [screen.pane().mentions[i] for i in screen.pane().ids()]
        assert by_position[0].text.startswith("Accident")
        assert [r.priority for r in by_position] == sorted(r.priority for r in by_position)
        # Every mention on screen is already in SQLite.
        stored = sqlite3.connect(watchlist.database).execute("SELECT count(*) FROM mentions").fetchone()[0]
        assert stored == 5


async def test_dismiss_takes_the_highlighted_reason_with_enter(watchlist: Watchlist) -> None:
    app = make_app(watchlist)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, target = await selected(pilot)
        await pilot.press("d", "j", "enter")  # second reason: off-topic
        await wait_for(pilot, lambda: screen.pane(Status.NEW).row_count == 4)
        assert actions(watchlist.database) == [(target.id, "dismiss", "alice", {"reason": "off-topic"})]
        assert status_of(watchlist.database, target.id) == "dismissed"
        assert screen.current_row() is not None and screen.current_row().id != target.id  # moved to the next


async def test_escalate_to_a_service_with_a_note(watchlist: Watchlist) -> None:
    app = make_app(watchlist)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, target = await selected(pilot)
        await pilot.press("e", "enter", *"equipe sur place", "enter")
        await wait_for(pilot, lambda: screen.pane(Status.NEW).row_count == 4)
        [(mention_id, kind, _, payload)] = actions(watchlist.database)
        assert (mention_id, kind) == (target.id, "escalate")  # type: ignore[union-attr]
        assert payload["service"] == "voirie" and payload["note"] == "equipe sur place"
        await pilot.press("2")
        assert screen.pane().status is Status.ESCALATED
        await wait_for(pilot, lambda: screen.pane().row_count == 1)


async def test_reply_with_a_template_sends_on_ctrl_s(watchlist: Watchlist) -> None:
    app = make_app(watchlist)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, target = await selected(pilot)
        await pilot.press("r")
        await pilot.press("ctrl+t", "enter")  # the first template, in the mention's language
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: screen.pane(Status.NEW).row_count == 4)
        [(mention_id, kind, operator, payload)] = actions(watchlist.database)
        assert (mention_id, kind, operator) == (target.id, "reply", "alice")
        assert payload["template"] == "merci"
        assert payload["text"].startswith(target.author + " Merci pour votre signalement")
        assert status_of(watchlist.database, target.id) == "done"


async def test_escape_cancels_every_dialog_with_nothing_changed(watchlist: Watchlist) -> None:
    app = make_app(watchlist)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, 5)
        for key in ("r", "e", "d", "n", "slash"):
            await pilot.press(key)
            await pilot.pause()
            assert not isinstance(app.screen, MainScreen)
            await pilot.press("escape")
            await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        assert actions(watchlist.database) == []


async def test_resolve_an_escalated_mention_drafts_the_follow_up(watchlist: Watchlist) -> None:
    app = make_app(watchlist)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, target = await selected(pilot)
        await pilot.press("x")  # not escalated yet: refused
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
        await pilot.press("e", "enter", "enter")
        await wait_for(pilot, lambda: screen.pane(Status.NEW).row_count == 4)
        await pilot.press("2")
        await wait_for(pilot, lambda: screen.current_row() is not None and screen.detail_for is not None)
        await pilot.press("x")
        await pilot.pause()
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: status_of(watchlist.database, target.id) == "done")
        kind, payload = actions(watchlist.database)[-1][1:4:2]
        assert kind == "resolve"
        assert "Merci de nous avoir alertés" in payload["reply"]


async def test_note_is_logged_and_keeps_the_status(watchlist: Watchlist) -> None:
    app = make_app(watchlist)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, target = await selected(pilot)
        await pilot.press("n", *"appel au 3101", "ctrl+s")
        await wait_for(pilot, lambda: len(actions(watchlist.database)) == 1)
        assert actions(watchlist.database)[0][1:] == ("note", "alice", {"text": "appel au 3101"})
        assert status_of(watchlist.database, target.id) == "new"  # type: ignore[union-attr]


async def test_reopen_undoes_the_last_action(watchlist: Watchlist) -> None:
    app = make_app(watchlist)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, target = await selected(pilot)
        await pilot.press("d", "enter")
        await wait_for(pilot, lambda: status_of(watchlist.database, target.id) == "dismissed")
        await pilot.press("4")
        await wait_for(pilot, lambda: screen.pane().row_count == 1)
        await pilot.press("u")
        await wait_for(pilot, lambda: status_of(watchlist.database, target.id) == "new")
        assert [a[1] for a in actions(watchlist.database)] == ["dismiss", "reopen"]
        await wait_for(pilot, lambda: screen.pane(Status.NEW).row_count == 5)


async def test_filter_narrows_the_panes_and_escape_clears_it(watchlist: Watchlist) -> None:
    app = make_app(watchlist)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await started(pilot, 5)
        await pilot.press("slash", *"jaures", "enter")
        await wait_for(pilot, lambda: screen.pane().row_count == 1)
        assert "métro" in screen.current_row().text  # type: ignore[union-attr]
        await pilot.press("slash", "ctrl+u", *"prio:urgent", "enter")
        await wait_for(pilot, lambda: screen.pane().row_count == 1 and screen.current_row().priority == 0)  # type: ignore[union-attr]
        await pilot.press("escape")
        await wait_for(pilot, lambda: screen.pane().row_count == 5)


async def test_panes_switch_with_tab_and_digits(watchlist: Watchlist) -> None:
    app = make_app(watchlist)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await started(pilot, 5)
        await pilot.press("tab")
        assert screen.pane().status is Status.ESCALATED
        await pilot.press("4")
        assert screen.pane().status is Status.DISMISSED
        await pilot.press("shift+tab")
        assert screen.pane().status is Status.DONE
        await pilot.press("1", "j", "k", "down")
        assert screen.pane().status is Status.NEW and screen.pane().cursor_row == 1


async def test_help_lists_the_bindings_with_their_ids(watchlist: Watchlist) -> None:
    app = make_app(watchlist)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, 5)
        await pilot.press("question_mark")
        await pilot.pause()
        text = app.export_screenshot()
        for word in ("Reply", "Escalate", "Dismiss", "Resolve", "reopen", "pane.next"):
            assert word in text
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))


async def test_read_only_allows_no_action(watchlist: Watchlist) -> None:
    app = make_app(watchlist, read_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, 5)
        await pilot.press("d", "r", "e", "n", "u")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
        assert actions(watchlist.database) == []


async def test_hostile_text_is_shown_literally_and_runs_nothing(hostile_watchlist: Watchlist) -> None:
    app = make_app(hostile_watchlist)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await started(pilot, 5)
        seen = []
        for _ in range(5):
            await wait_for(
                pilot,
                lambda: screen.detail_for is not None and screen.detail_for.id == screen.current_row().id,
            )  # type: ignore[union-attr]
            seen.append(screen.detail_for.text)  # type: ignore[union-attr]
            detail = screen.query_one("#detail")
            for y in range(min(12, detail.size.height)):  # click across the text: no action may run
                for x in (2, 10, 25, 40):
                    await pilot.click("#detail", offset=(x, y))
            assert app.is_running
            shot = app.export_screenshot()
            assert "\x1b" not in shot and "\x9b" not in shot and "\u202e" not in shot
            screen.pane().focus()  # the clicks focused the detail box
            await pilot.press("j")
        assert app.is_running
        joined = "\n".join(seen)
        assert "[@click=app.quit]clique ici[/]" in joined
        assert "Stray close [/] at Toulouse" in joined
        assert "'); DROP TABLE mentions;--" in joined
        assert not any(ord(c) < 32 and c not in "\n\t" for c in joined)
        # The literal markup is on screen as text.
        await pilot.press("g")
        await pilot.pause()
        shot = app.export_screenshot().replace("&#160;", " ")
        assert "[bold]Tisséo[/bold]" in shot or "Stray close [/]" in shot or "DROP TABLE" in shot


async def test_stats_and_handover_screens_open_and_close(watchlist: Watchlist) -> None:
    app = make_app(watchlist)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, 5)
        await pilot.press("d", "enter")
        await pilot.press("s")
        await wait_for(pilot, lambda: getattr(app.screen, "snapshot", None) is not None)  # the stats are drawn
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        await pilot.press("h")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "HandoverScreen")
        shot = app.export_screenshot().replace("&#160;", " ")
        assert "Shift handover" in shot and "alice" in shot  # who acted
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))


async def test_keys_are_remapped_from_the_watchlist(tmp_path: Path, demo_texts: list[str]) -> None:
    from monitor.networks import load_watchlist
    from tests.conftest import write_demo, write_watchlist

    path = write_watchlist(tmp_path, write_demo(tmp_path / "d.jsonl", demo_texts))
    path.write_text(path.read_text(encoding="utf-8").replace("keys: {}", "keys: {dismiss: z}"), encoding="utf-8")
    watchlist = load_watchlist(path)
    app = make_app(watchlist)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, target = await selected(pilot)
        await pilot.press("d")  # no longer bound
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
        await pilot.press("z", "enter")
        await wait_for(pilot, lambda: status_of(watchlist.database, target.id) == "dismissed")
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: not isinstance(app.screen, MainScreen))
        assert ("z", "Dismiss", "dismiss") in app.screen.rows  # type: ignore[attr-defined]


async def test_help_says_where_the_apps_log_is(watchlist: Watchlist, tmp_path: Path) -> None:
    from monitor.ui.screens.help import HelpScreen

    app = make_app(watchlist)
    app.log_path = tmp_path / "state" / "monitor.log"
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, 5)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        screen = app.screen
        assert isinstance(screen, HelpScreen)
        assert f"This app's log: {app.log_path}" in screen.body().caption.plain  # type: ignore[attr-defined]
