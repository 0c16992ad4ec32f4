"""After a reopen the age clock resumes where it was, and the handover does not count what was undone."""

from __future__ import annotations

from pathlib import Path

from monitor.core.models import ActionKind, MatchResult, Mention, Priority, Status
from monitor.core.timeutil import now_ms, utcnow
from monitor.db.store import act_sync, ingest_sync, open_sync
from monitor.networks import load_watchlist
from monitor.ui.screens.handover import HandoverScreen
from monitor.ui.screens.main import MainScreen
from tests.conftest import write_demo, write_watchlist
from tests.test_app import make_app, wait_for

HOUR = 3_600_000


async def test_a_reopen_resumes_the_age_clock_and_the_handover_ignores_undone_actions(tmp_path: Path) -> None:
    watchlist = load_watchlist(write_watchlist(tmp_path, write_demo(tmp_path / "d.jsonl", ["Toulouse"])))
    conn = open_sync(watchlist.database)
    now = now_ms()
    conn.execute("BEGIN IMMEDIATE")
    mention = Mention("old", "o1", "mastodon", "@a", "trottoir cassé", utcnow())
    ingest_sync(conn, "old", [(mention, MatchResult(("ville",), Priority.NORMAL))], None, [], [], now - 3 * HOUR)
    escalated_at = now - 2 * HOUR
    act_sync(conn, 1, ActionKind.ESCALATE, "bob", {"service": "voirie"}, at=escalated_at)
    act_sync(conn, 1, ActionKind.RESOLVE, "bob", {}, at=now - HOUR)
    conn.execute("COMMIT")

    app = make_app(watchlist, collect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        screen = app.screen
        assert isinstance(screen, MainScreen)
        await pilot.press("3")
        await wait_for(pilot, lambda: screen.current_row() is not None)
        await pilot.press("u")  # the resolve was a mistake: back to escalated
        await pilot.press("2")
        await wait_for(pilot, lambda: screen.pane(Status.ESCALATED).row_count == 1)
        # The service has had it for two hours, not since the reopen.
        status_at = conn.execute("SELECT status_at FROM mentions WHERE id = 1").fetchone()[0]
        assert status_at == escalated_at
        assert screen.pane().get_cell("1", "age").plain.startswith("2h")

        await pilot.press("h")
        await wait_for(pilot, lambda: isinstance(app.screen, HandoverScreen))
        handover = app.screen.handover  # type: ignore[attr-defined]
        assert handover.resolved == 0 and handover.escalated == 1
        assert handover.by_operator == {"bob": {"escalate": 1}, "alice": {"reopen": 1}}
