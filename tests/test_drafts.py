"""No lost drafts: Esc on a changed draft asks first; a reply that is only the @handle is not sent."""

from __future__ import annotations

from textual.widgets import Input, TextArea

from monitor.core.config import Watchlist
from monitor.ui.screens.dialogs import ChoiceDialog, ComposeDialog, DiscardDialog, NoteDialog
from monitor.ui.screens.main import MainScreen
from tests.conftest import record_notices
from tests.test_app import actions, make_app, selected, wait_for


async def test_a_reply_holding_only_the_prefilled_handle_is_not_sent(watchlist: Watchlist) -> None:
    app = make_app(watchlist)
    async with app.run_test(size=(80, 24)) as pilot:
        await selected(pilot)
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ComposeDialog))
        area = app.screen.query_one("#text", TextArea)
        assert area.text.startswith("@") and area.text.endswith(" ")  # the prefilled handle
        seen = record_notices(app)
        await pilot.press("space", "space", "ctrl+s")
        await wait_for(pilot, lambda: any(n.startswith("Nothing to send") for n in seen))
        assert isinstance(app.screen, ComposeDialog)
        assert actions(watchlist.database) == []
        await pilot.press(*"merci", "ctrl+s")
        await wait_for(pilot, lambda: len(actions(watchlist.database)) == 1)
        assert actions(watchlist.database)[0][3]["text"].endswith("merci")


async def test_escape_on_a_changed_draft_asks_before_throwing_it_away(watchlist: Watchlist) -> None:
    app = make_app(watchlist)
    async with app.run_test(size=(80, 24)) as pilot:
        await selected(pilot)
        # Reply: Esc, then Esc again, `n` or Enter keep editing; `y` discards.
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ComposeDialog))
        dialog = app.screen
        await pilot.press(*"bonjour")
        for keep in ("escape", "n", "enter"):
            await pilot.press("escape")
            await wait_for(pilot, lambda: isinstance(app.screen, DiscardDialog))
            await pilot.press(keep)
            await wait_for(pilot, lambda: app.screen is dialog)
            assert dialog.query_one("#text", TextArea).text.endswith("bonjour")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, DiscardDialog))
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))

        # Note: unchanged, Esc closes at once; changed, it asks.
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, NoteDialog))
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, NoteDialog))
        await pilot.press(*"appel", "escape")
        await wait_for(pilot, lambda: isinstance(app.screen, DiscardDialog))
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))

        # Escalation note.
        await pilot.press("e", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceDialog) and app.screen.focused is not None
                       and app.screen.focused.id == "note")  # fmt: skip
        await pilot.press(*"voir", "escape")
        await wait_for(pilot, lambda: isinstance(app.screen, DiscardDialog))
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceDialog))
        assert app.screen.query_one("#note", Input).value == "voir"
        await pilot.press("escape", "y")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        assert actions(watchlist.database) == []
