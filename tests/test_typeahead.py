"""Type-ahead: keys posted in one burst, with no pause between them, land where slow typing would put them.

Pilot's `press` waits for the app to go idle after every key, which hides ordering bugs; here every key
of a burst is queued on the app at once, as a terminal delivers a paste or a lagging SSH link.
"""

from __future__ import annotations

from typing import Any

from textual import events
from textual.keys import _character_to_key
from textual.pilot import Pilot

from monitor.core.config import Watchlist
from monitor.core.models import Status
from monitor.ui.app import MonitorApp
from monitor.ui.screens.dialogs import NoteDialog
from tests.test_app import actions, make_app, selected, wait_for

WAIT = 60.0  # generous: the suite must pass with both cores busy
NAMED = {"enter": "\r", "tab": "\t", "escape": "\x1b", "space": " "}


def key_events(*keys: str) -> list[events.Key]:
    """Keys as the driver posts them: single characters (any text) or names such as ctrl+s and enter."""
    out: list[events.Key] = []
    for key in keys:
        if key in NAMED or "+" in key and len(key) > 1:
            out.append(events.Key(key, NAMED.get(key)))
        else:
            out.extend(events.Key(_character_to_key(c), c) for c in key)
    return out


def burst(app: MonitorApp, *keys: str) -> None:
    """Queue every key on the app at once, as one read from the terminal would."""
    for event in key_events(*keys):
        event.set_sender(app)
        app.post_message(event)


async def test_note_bursts_save_every_text_exactly(watchlist: Watchlist) -> None:
    """`n`, a sentence, ctrl+s, `j`, again: each note has its text, on its own mention; nothing else acts."""
    app = make_app(watchlist)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, _ = await selected(pilot)
        table = screen.pane()
        order = table.ids()
        texts = [f"note {i}: équipe prévenue, barrières retirées (réf {i})" for i in range(4)]
        keys: list[str] = []
        for text in texts:
            keys += ["n", text, "ctrl+s", "j"]
        burst(app, *keys)
        await wait_for(pilot, lambda: len(actions(watchlist.database)) >= len(texts), within=WAIT)
        await settled(pilot, app)
        logged = actions(watchlist.database)
        assert [(m, k, p) for m, k, _, p in logged] == [
            (mention_id, "note", {"text": text}) for mention_id, text in zip(order[: len(texts)], texts, strict=True)
        ]
        assert screen.pane(Status.NEW).row_count == 5  # no action key reached the desk


async def test_a_dialog_receives_the_keys_typed_right_after_the_key_that_opened_it(watchlist: Watchlist) -> None:
    app = make_app(watchlist)
    async with app.run_test(size=(80, 24)) as pilot:
        await selected(pilot)
        burst(app, "n", "exdru")  # e, d, r, x, u are action keys on the desk
        await wait_for(pilot, lambda: isinstance(app.screen, NoteDialog), within=WAIT)
        await settled(pilot, app)
        assert app.screen.query_one("#text").text == "exdru"  # type: ignore[attr-defined]
        burst(app, "ctrl+s")
        await wait_for(pilot, lambda: len(actions(watchlist.database)) == 1, within=WAIT)
        await settled(pilot, app)
        [(_, kind, _, payload)] = actions(watchlist.database)
        assert (kind, payload) == ("note", {"text": "exdru"})


async def test_escalate_filter_and_reply_bursts(watchlist: Watchlist) -> None:
    """The choice dialog's Enter, the filter's Enter and the reply's template pick, each typed ahead."""
    app = make_app(watchlist)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, first = await selected(pilot)
        burst(app, "e", "enter", "sur place", "enter")
        await wait_for(pilot, lambda: len(actions(watchlist.database)) == 1, within=WAIT)
        burst(app, "r", "ctrl+t", "enter", " à bientôt", "ctrl+s")
        await wait_for(pilot, lambda: len(actions(watchlist.database)) == 2, within=WAIT)
        burst(app, "/", "metro", "enter", "n", "urgent vu", "ctrl+s")
        await wait_for(pilot, lambda: len(actions(watchlist.database)) == 3, within=WAIT)
        await settled(pilot, app)
        (m1, k1, _, p1), (m2, k2, _, p2), (m3, k3, _, p3) = actions(watchlist.database)
        assert (m1, k1, p1["service"], p1["note"]) == (first.id, "escalate", "voirie", "sur place")
        assert k2 == "reply" and p2["template"] == "merci" and p2["text"].endswith(". à bientôt")
        assert m2 != m1 and k3 == "note" and p3 == {"text": "urgent vu"}
        assert screen.filter_query == "metro"


async def settled(pilot: Pilot[Any], app: MonitorApp) -> None:
    """Until the app has handled every key it was given."""
    await wait_for(pilot, app.keys_idle, within=WAIT)
