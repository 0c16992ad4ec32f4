"""No mouse needed: the detail scrolls, a mention opens full screen, and the keys show as people type them."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from textual.containers import VerticalScroll
from textual.widgets._footer import FooterKey

from monitor.networks import load_watchlist
from monitor.ui.screens.main import MainScreen
from monitor.ui.screens.view import MentionView
from tests.conftest import write_demo, write_watchlist
from tests.test_app import make_app, started, wait_for

LONG_POST = "Toulouse, rue de Metz : " + "\n".join(f"ligne {i} du signalement" for i in range(40)) + "\nFIN DU POST"


def shot(app: object) -> str:
    return app.export_screenshot().replace("&#160;", " ")  # type: ignore[attr-defined]


async def test_the_detail_scrolls_and_a_mention_opens_full_screen_without_a_mouse(tmp_path: Path) -> None:
    watchlist = load_watchlist(write_watchlist(tmp_path, write_demo(tmp_path / "d.jsonl", [LONG_POST])))
    app = make_app(watchlist)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await started(pilot, 1)
        await wait_for(pilot, lambda: screen.detail_for is not None)
        box = screen.query_one("#detail-box", VerticalScroll)
        await wait_for(pilot, lambda: box.max_scroll_y > 10)
        await pilot.press("J")
        await wait_for(pilot, lambda: box.scroll_y > 0)
        step = box.scroll_y
        await pilot.press("ctrl+d", "ctrl+d")
        down = min(3 * step, box.max_scroll_y)  # read once both keys have landed, not as soon as they are sent
        await wait_for(pilot, lambda: box.scroll_y == down)
        await pilot.press("K")
        await wait_for(pilot, lambda: 0 < box.scroll_y < down)
        await pilot.press("ctrl+u", "ctrl+u", "ctrl+u")
        await wait_for(pilot, lambda: box.scroll_y == 0)
        assert screen.pane().cursor_row == 0  # the table's cursor did not move

        await pilot.press("v")
        await wait_for(pilot, lambda: isinstance(app.screen, MentionView))
        assert "FIN DU POST" not in shot(app)
        await pilot.press("space")
        await wait_for(pilot, lambda: app.screen.query_one(VerticalScroll).scroll_y > 0)
        await pilot.press("G")
        await wait_for(pilot, lambda: "FIN DU POST" in shot(app))
        await pilot.press("g")
        await wait_for(pilot, lambda: app.screen.query_one(VerticalScroll).scroll_y == 0)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))


async def test_the_footer_shows_help_and_quit_at_80_columns_and_help_shows_keys_as_typed(watchlist: object) -> None:
    app = make_app(watchlist)  # type: ignore[arg-type]
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, 5)

        # The footer composes its keys after the bindings settle: wait for them, then measure.
        def laid_out() -> dict[str, FooterKey]:
            keys = {k.action: k for k in app.screen.query(FooterKey) if k.region.width > 0}
            return keys if {"help", "quit"} <= keys.keys() else {}

        await wait_for(pilot, lambda: bool(laid_out()))
        shown = laid_out()
        for action in ("help", "quit"):
            region = shown[action].region
            assert region.width > 0 and region.right <= 80, (action, region)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: not isinstance(app.screen, MainScreen))
        keys = {row[2]: row[0] for row in app.screen.rows}  # type: ignore[attr-defined]
        assert keys["filter"] == "/" and keys["help"] == "?"
        assert keys["detail.down"] == "J, ctrl+d" and keys["view"] == "v"
        assert "slash" not in shot(app) and "question_mark" not in shot(app)


def footer_keys_alive() -> int:
    gc.collect()
    return sum(isinstance(o, FooterKey) for o in gc.get_objects())


async def test_dialogs_opened_and_closed_leave_no_footer_keys_behind(tmp_path: Path) -> None:
    """Each dialog recomposes the desk's footer: the keys it replaces must go, or a shift's dialogs pile up
    in the heap and every full collection (a key's worst latency in a storm) takes longer (issue 13)."""
    watchlist = load_watchlist(write_watchlist(tmp_path, write_demo(tmp_path / "d.jsonl", ["Toulouse"])))
    app = make_app(watchlist)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await started(pilot, 1)

        async def dialog_round() -> None:
            await pilot.press("d")
            await wait_for(pilot, lambda: app.screen is not screen)
            await pilot.press("escape")
            await wait_for(pilot, lambda: app.screen is screen and app.keys_idle())
            await pilot.pause()

        await dialog_round()
        after_one = footer_keys_alive()
        for _ in range(8):
            await dialog_round()
        assert footer_keys_alive() <= after_one


async def test_a_burst_of_binding_changes_recomposes_the_footer_once(tmp_path: Path) -> None:
    """Each change of the bindings (a screen pushed, a widget focused) asked the footer for a recompose of
    its own, five at start, each mounting and styling every key again before the first screen (issue 13)."""
    from monitor.ui.widgets.footer import DeskFooter

    watchlist = load_watchlist(write_watchlist(tmp_path, write_demo(tmp_path / "d.jsonl", ["Toulouse"])))
    app = make_app(watchlist)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await started(pilot, 1)
        footer = screen.query_one(DeskFooter)
        await wait_for(pilot, lambda: app.keys_idle() and not getattr(footer, "_recompose_waiting", False))
        await pilot.pause()
        calls: list[int] = []
        recompose = footer.recompose

        async def counted() -> None:
            calls.append(1)
            await recompose()

        footer.recompose = counted  # type: ignore[method-assign]
        for _ in range(3):
            screen.refresh_bindings()
        await wait_for(pilot, lambda: bool(calls))
        await pilot.pause()
        await pilot.pause()
        assert len(calls) == 1
        assert {"help", "quit"} <= {k.action for k in screen.query(FooterKey)}  # the keys are shown still


async def test_the_footer_composes_its_keys_once_the_first_screen_is_drawn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Composing the footer's keys (mounting and styling each) waited in front of the desk's first rows."""
    from monitor.ui.app import MonitorApp

    keys_when_painted: list[int] = []
    painted = MonitorApp._painted

    def recorded(self: MonitorApp) -> None:
        keys_when_painted.append(len(self.screen.query(FooterKey)))
        painted(self)

    monkeypatch.setattr(MonitorApp, "_painted", recorded)
    watchlist = load_watchlist(write_watchlist(tmp_path, write_demo(tmp_path / "d.jsonl", ["Toulouse"])))
    app = make_app(watchlist)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await started(pilot, 1)
        await wait_for(pilot, lambda: {"help", "quit"} <= {k.action for k in screen.query(FooterKey)})
    assert keys_when_painted == [0]
