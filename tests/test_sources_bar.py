"""The sources line shows the collector's last success from SQLite, in a follower and in a new leader."""

from __future__ import annotations

from pathlib import Path

from monitor.core.timeutil import now_ms
from monitor.db.presence import acquire_lease_sync
from monitor.db.store import open_sync
from monitor.networks import load_watchlist
from monitor.networks.base import Batch, SourceError
from monitor.ui.screens.main import MainScreen
from monitor.ui.widgets.sources_bar import SourcesBar
from tests.conftest import write_demo, write_watchlist
from tests.test_app import make_app, wait_for

FIVE_MIN = 300_000


class Down:
    """A source whose service is down since this process started."""

    name = "demo"

    async def poll(self, cursor: str | None) -> Batch:
        raise SourceError("connection refused")

    async def aclose(self) -> None:
        pass


def seed(tmp_path: Path, lease_holder: str | None) -> Path:
    watchlist = write_watchlist(tmp_path, write_demo(tmp_path / "d.jsonl", ["Toulouse"]))
    conn = open_sync(load_watchlist(watchlist).database)
    now = now_ms()
    conn.execute("BEGIN IMMEDIATE")
    if lease_holder:
        acquire_lease_sync(conn, "collector", lease_holder, now, ttl=600_000)
    conn.execute(
        "INSERT INTO source_state (source, state, detail, until_at, last_ok_at, updated_at)"
        " VALUES ('demo', 'polling', '', NULL, ?, ?)",
        (now - FIVE_MIN, now - FIVE_MIN),
    )
    conn.execute("COMMIT")
    conn.close()
    return watchlist


def bar(app: object) -> str:
    return str(app.screen.query_one(SourcesBar).render())  # type: ignore[attr-defined]


async def test_a_follower_shows_the_collectors_last_success_from_the_database(tmp_path: Path) -> None:
    app = make_app(load_watchlist(seed(tmp_path, "elsewhere:1")), sources=[Down()])
    async with app.run_test(size=(120, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        await wait_for(pilot, lambda: "ok 5m ago" in bar(app) and "collected by elsewhere:1" in bar(app))
        assert not app.leading


async def test_a_new_leader_keeps_the_last_success_its_predecessor_recorded(tmp_path: Path) -> None:
    app = make_app(load_watchlist(seed(tmp_path, None)), sources=[Down()])
    async with app.run_test(size=(120, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen) and app.leading)
        await wait_for(pilot, lambda: "connection refused" in bar(app))
        await wait_for(pilot, lambda: "ok 5m ago" in bar(app))
