"""The desk on X mentions, driven like an operator (Pilot, real keys): the watchlist's X source reads from
a fake API v2 (tests/fakes_x.py), the reply dialog says what the reply costs, and the reply leaves for X."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from fakes_x import CITY_ID, FakeX, tweet
from textual.widgets import Label

from monitor.core.models import Status
from monitor.networks import SourceContext, load_watchlist
from monitor.ui.app import MonitorApp
from tests.conftest import wait_for, write_watchlist
from tests.test_app import actions, selected, status_of

X_SOURCE = f"""\
  - name: x
    type: x
    user_id: "{CITY_ID}"
    bearer_token_env: TEST_X_BEARER
    oauth1:
      consumer_key_env: TEST_X_CK
      consumer_secret_env: TEST_X_CS
      access_token_env: TEST_X_AT
      access_token_secret_env: TEST_X_ATS
    budget:
      monthly: 25
"""


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeX:
    for name, value in (("BEARER", "bearer"), ("CK", "ck"), ("CS", "cs"), ("AT", "at"), ("ATS", "ats")):
        monkeypatch.setenv(f"TEST_X_{name}", value)
    x = FakeX()
    x.add(tweet("@toulouse Nid de poule énorme avenue de Muret", ("31", "marie_t", "Marie T.")), mention=True)
    x.add(tweet("@toulouse Le métro ligne A est arrêté à Jean-Jaurès", ("32", "paul_b", "Paul B.")), mention=True)
    return x


def x_app(tmp_path: Path, fake: FakeX) -> MonitorApp:
    """The shipped watchlist with its demo source replaced by an X source read through the fake."""
    path = write_watchlist(tmp_path)
    text = re.sub(r"  - name: demo\n    type: demo\n(    .*\n)*", X_SOURCE, path.read_text(encoding="utf-8"), count=1)
    path.write_text(text, encoding="utf-8")
    watchlist = load_watchlist(path)
    assert [s.type for s in watchlist.sources] == ["x"]
    context = SourceContext(http_factory=fake.factory)
    return MonitorApp(watchlist, db_path=watchlist.database, operator="alice", context=context)


async def test_reply_to_an_x_mention_shows_its_cost_and_posts_it_in_reply(tmp_path: Path, fake: FakeX) -> None:
    app = x_app(tmp_path, fake)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, target = await selected(pilot, 2)
        await pilot.press("r", *"Merci, une équipe passe aujourd'hui.")
        cost = app.screen.query_one("#cost", Label)
        assert "costs $0.015" in str(cost.render())
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: screen.pane(Status.NEW).row_count == 1)
        await wait_for(pilot, lambda: len(fake.created) == 1)  # the app's delivery worker sent it
    [(mention_id, kind, operator, payload)] = actions(app.watchlist.database)
    assert (mention_id, kind, operator) == (target.id, "reply", "alice")
    assert status_of(app.watchlist.database, target.id) == "done"
    remote = (
        sqlite3.connect(app.watchlist.database)
        .execute("SELECT remote_id FROM mentions WHERE id = ?", (target.id,))
        .fetchone()[0]
    )
    sent: dict[str, Any] = fake.created[0]
    assert sent["reply"] == {"in_reply_to_tweet_id": remote}
    assert sent["text"] == "Merci, une équipe passe aujourd'hui."


async def test_escalate_an_x_mention_to_a_service_posts_nothing_on_x(tmp_path: Path, fake: FakeX) -> None:
    app = x_app(tmp_path, fake)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, target = await selected(pilot, 2)
        await pilot.press("e", "enter", *"equipe sur place", "enter")
        await wait_for(pilot, lambda: screen.pane(Status.NEW).row_count == 1)
        await pilot.press("2")
        await wait_for(pilot, lambda: screen.pane().status is Status.ESCALATED and screen.pane().row_count == 1)
    [(mention_id, kind, _, payload)] = actions(app.watchlist.database)
    assert (mention_id, kind) == (target.id, "escalate")
    assert payload["note"] == "equipe sur place" and payload["service"]
    assert status_of(app.watchlist.database, target.id) == "escalated"
    assert fake.created == [] and not fake.calls("/2/tweets")
