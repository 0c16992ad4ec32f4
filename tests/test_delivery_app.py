"""The operator's path: press r, type, Ctrl+S — the outbox row is written, then the reply leaves."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from monitor.core.config import Watchlist
from monitor.db.store import Store
from monitor.networks import SourceContext
from monitor.ui.app import MonitorApp
from monitor.ui.screens.main import MainScreen
from monitor.ui.widgets.detail import MentionDetail
from tests.conftest import record_notices
from tests.fakes_delivery import TOKEN, FakeMastodon, mastodon_status, outbox_rows, seed, serving, watchlist
from tests.test_app import started, wait_for


async def seeded(tmp_path: Path, wl: Watchlist, n: int = 1) -> list[int]:
    store = await Store.open(wl.database)
    try:
        return await seed(store, "masto", "mastodon", [mastodon_status(i, host="127.0.0.1") for i in range(n)])
    finally:
        await store.close()


def app_for(wl: Watchlist, **kwargs: Any) -> MonitorApp:
    return MonitorApp(wl, db_path=wl.database, operator="alice", collect=False, context=SourceContext(), **kwargs)


def detail_text(app: MonitorApp) -> str:
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(app.screen.query_one(MentionDetail).content)
    return console.export_text()


async def test_ctrl_s_writes_the_outbox_row_and_the_reply_reaches_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_MASTODON_TOKEN", TOKEN)
    async with serving(FakeMastodon()) as masto:
        wl = watchlist(tmp_path, mastodon_url=masto.url)
        [mid] = await seeded(tmp_path, wl)
        app = app_for(wl)
        assert app.dry_run is False
        async with app.run_test(size=(80, 24)) as pilot:
            await started(pilot, 1)
            await pilot.press("r")
            await pilot.press(*"Merci, c'est transmis")
            await pilot.press("ctrl+s")
            await wait_for(pilot, lambda: bool(outbox_rows(wl.database)))
            await wait_for(pilot, lambda: outbox_rows(wl.database)[0]["state"] == "sent")
            [created] = masto.statuses.values()
            assert created["content"] == "<p>@citizen0@127.0.0.1 Merci, c'est transmis</p>"
            [row] = outbox_rows(wl.database)
            assert row["mention_id"] == mid and row["remote_url"] == created["url"]
            conn = sqlite3.connect(wl.database)
            assert conn.execute("SELECT kind FROM actions").fetchall() == [("reply",)]
            conn.close()


async def test_read_only_shows_everything_and_writes_nothing(tmp_path: Path) -> None:
    wl = watchlist(tmp_path)
    await seeded(tmp_path, wl)
    app = app_for(wl, read_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, 1)
        notices = record_notices(app)
        await pilot.press("r")
        await wait_for(pilot, lambda: "Read-only: no actions." in notices)
        assert isinstance(app.screen, MainScreen)  # no dialog opened
        assert app.delivery is None
    assert outbox_rows(wl.database) == []


async def test_an_all_demo_watchlist_defaults_to_dry_run_and_says_so(tmp_path: Path) -> None:
    wl = watchlist(tmp_path)
    demo_only = Watchlist(**{**wl.__dict__, "sources": tuple(s for s in wl.sources if s.type == "demo")})
    store = await Store.open(demo_only.database)
    [mid] = await seed(store, "demo", "mastodon", [mastodon_status(1, host="127.0.0.1")])
    await store.close()
    app = app_for(demo_only)
    assert app.dry_run is True
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, 1)
        await pilot.press("r", *"Bonjour", "ctrl+s")
        await wait_for(pilot, lambda: bool(outbox_rows(demo_only.database)))
        await wait_for(pilot, lambda: outbox_rows(demo_only.database)[0]["state"] == "sent")
        assert outbox_rows(demo_only.database)[0]["remote_url"] == "dry-run"
        await pilot.press("3")  # the Done pane, where the answered mention went
        await wait_for(pilot, lambda: "DRY-RUN: nothing sent" in detail_text(app))
        assert mid
