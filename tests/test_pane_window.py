"""Panes stay small and honest in a storm: a bounded window on the sorted query, paged from SQLite (issue 13)."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets._header import HeaderTitle

from monitor.core.config import Watchlist
from monitor.core.models import ActionKind, MatchResult, Mention, MentionRow, Priority, Status
from monitor.core.timeutil import now_ms, utcnow
from monitor.db.store import act_sync, ingest_sync, open_sync
from monitor.networks import load_watchlist
from monitor.ui.screens import desk_panes
from monitor.ui.screens import main as main_screen
from monitor.ui.screens.desk_panes import STORM_APPLY_MS
from monitor.ui.storm import SPAN_MS, STORM_PER_MINUTE, StormMeter
from monitor.ui.widgets.pane import WINDOW, MentionTable
from monitor.ui.widgets.window import Window
from tests.conftest import wait_for, write_demo, write_watchlist
from tests.test_app import main, make_app

NORMAL = MatchResult(("ville",), Priority.NORMAL)
URGENT = MatchResult(("ville",), Priority.URGENT)


def row(mention_id: int, priority: Priority = Priority.NORMAL, seen: int = 1_000) -> MentionRow:
    return MentionRow(mention_id, "s", "mastodon", f"r{mention_id}", "@a", "", "t", "", None, None, None, ("ville",),
                      priority, Status.NEW, 0, seen, seen, None, None, None, mention_id)  # fmt: skip


def test_an_urgent_arrival_enters_a_full_window_and_the_least_urgent_row_leaves() -> None:
    window = Window(Status.NEW, size=5)
    window.reset([row(i) for i in range(1, 7)])  # six in SQLite, five held
    assert [r.id for r in window.rows] == [1, 2, 3, 4, 5] and not window.complete
    assert window.merge([row(99, Priority.URGENT, seen=5_000)], [])
    assert [r.id for r in window.rows] == [99, 1, 2, 3, 4]
    assert window.beyond(total=7) == 2


def test_a_storm_past_a_full_window_holds_nothing_more() -> None:
    window = Window(Status.NEW, size=5)
    window.reset([row(i) for i in range(1, 6)])
    assert not window.merge([row(i, seen=9_000) for i in range(100, 10_100)], [])
    assert [r.id for r in window.rows] == [1, 2, 3, 4, 5] and window.beyond(total=10_005) == 10_000


def test_a_window_that_lost_rows_is_topped_up_with_the_next_ones() -> None:
    window = Window(Status.NEW, size=3)
    window.reset([row(i) for i in (1, 2, 3)])
    window.merge([row(4, seen=2_000)], [])  # past the full window: SQLite holds more now
    window.merge([], [1, 2])
    assert window.wants_fill()
    assert window.fill([row(4, seen=2_000)], asked=2)
    assert [r.id for r in window.rows] == [3, 4] and window.complete and not window.wants_fill()


def seed(db: Path, status: Status, n: int) -> None:
    """n mentions of one status, through the store's own writes (as the collector and operators do)."""
    conn = open_sync(db)
    mentions = [(Mention("old", f"o{i}", "mastodon", "@a", f"vieux {i}", utcnow()), NORMAL) for i in range(n)]
    conn.execute("BEGIN IMMEDIATE")
    ingest_sync(conn, "old", mentions, None, [], [], 1_000)
    if status is Status.DISMISSED:
        for mention_id in range(1, n + 1):
            act_sync(conn, mention_id, ActionKind.DISMISS, "bob", {"reason": "spam"}, at=2_000 + mention_id)
    conn.execute("COMMIT")
    conn.close()


def burst(db: Path, start: int, n: int, urgent_at: tuple[int, ...], seen: int) -> tuple[int, list[int]]:
    """A storm's batch from another process's connection; returns its last rev and the urgent mentions' ids."""
    conn = open_sync(db)
    batch = [(Mention("storm", f"s{i}", "bluesky", "@b", f"orage {i}", utcnow()), URGENT if i in urgent_at else NORMAL)
             for i in range(start, start + n)]  # fmt: skip
    conn.execute("BEGIN IMMEDIATE")
    ingest_sync(conn, "storm", batch, None, [], [], seen)
    conn.execute("COMMIT")
    urgent = [r[0] for r in conn.execute("SELECT id FROM mentions WHERE priority = 0 ORDER BY id")]
    rev = conn.execute("SELECT max(rev) FROM mentions").fetchone()[0]
    conn.close()
    return rev, urgent


def exported(folder: Path) -> list[Path]:
    return list(folder.glob("monitor-dismissed-*.csv"))


def desk(tmp_path: Path) -> Watchlist:
    return load_watchlist(write_watchlist(tmp_path, write_demo(tmp_path / "d.jsonl", ["Toulouse"])))


def cursor_on_screen(table: MentionTable) -> bool:
    """The highlighted row is among the lines drawn (the header takes the first)."""
    top = int(table.scroll_y)
    return top <= table.cursor_row < top + table.scrollable_content_region.height - 1


def tab(pilot: Pilot[Any], status: Status) -> str:
    return str(pilot.app.screen.query_one(f"#{status.value}").label)  # type: ignore[attr-defined]


async def test_a_storm_keeps_the_pane_bounded_and_urgent_arrivals_enter_the_window(tmp_path: Path) -> None:
    watchlist = desk(tmp_path)
    seed(watchlist.database, Status.NEW, WINDOW + 50)
    app = make_app(watchlist, collect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: hasattr(app.screen, "pane") and main(app).pane(Status.NEW).row_count == WINDOW)
        screen = main(app)
        table = screen.pane(Status.NEW)
        first_page = table.ids()

        def bounded(condition: Any) -> Any:
            assert table.row_count <= WINDOW  # at every look, mid-storm included
            return condition()

        urgent: list[int] = []
        for i in range(5):  # five bursts of 400, an urgent mention in three of them
            rev, urgent = burst(watchlist.database, i * 400, 400, (i * 400 + 17,) if i % 2 == 0 else (), 5_000 + i)
            await wait_for(pilot, lambda rev=rev: bounded(lambda: screen.last_rev >= rev))
        assert len(urgent) == 3
        total = WINDOW + 50 + 2000
        await wait_for(pilot, lambda: bounded(lambda: tab(pilot, Status.NEW) == f"New {total} ↓{total - WINDOW}"))
        # The urgent arrivals head the window, in order; the three least urgent rows left it.
        assert table.ids() == urgent + first_page[: WINDOW - 3]
        assert screen.current_row().id == first_page[0]  # type: ignore[union-attr]  # the selection stays put

        # The operator pages to what waits past the window: the rows that left it come first.
        await pilot.press("G", "pagedown")
        await wait_for(pilot, lambda: table.ids()[:3] == first_page[WINDOW - 3 :] and cursor_on_screen(table))
        assert table.row_count == WINDOW and screen.current_row().id == first_page[WINDOW - 3]  # type: ignore[union-attr]
        await wait_for(pilot, lambda: tab(pilot, Status.NEW) == f"New {total} ↑{WINDOW} ↓{total - 2 * WINDOW}")
        await pilot.press("pageup")  # at the top of a later window: the one before it
        await wait_for(pilot, lambda: table.ids() == urgent + first_page[: WINDOW - 3])
        assert screen.current_row().id == first_page[WINDOW - 4]  # type: ignore[union-attr]  # its last row


async def test_paging_walks_a_closed_pane_past_its_window_and_back(tmp_path: Path) -> None:
    watchlist = desk(tmp_path)
    total = 2 * WINDOW + 50
    seed(watchlist.database, Status.DISMISSED, total)
    app = make_app(watchlist, collect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: hasattr(app.screen, "pane"))
        screen = main(app)
        await pilot.press("4")
        table: MentionTable = screen.pane()
        await wait_for(pilot, lambda: table.row_count == WINDOW)
        assert screen.current_row().text == f"vieux {total - 1}"  # type: ignore[union-attr]  # latest first
        await wait_for(pilot, lambda: tab(pilot, Status.DISMISSED) == f"Dismissed {total} ↓{total - WINDOW}")
        seen = set(table.ids())
        await pilot.press("G")
        await wait_for(pilot, lambda: table.cursor_row == WINDOW - 1 and cursor_on_screen(table))
        await pilot.press("pagedown")  # at the window's end: the next window
        await wait_for(pilot, lambda: screen.current_row().text == f"vieux {total - 1 - WINDOW}")  # type: ignore[union-attr]
        assert tab(pilot, Status.DISMISSED) == f"Dismissed {total} ↑{WINDOW} ↓50"
        seen |= set(table.ids())
        await pilot.press("G", "pagedown")
        await wait_for(pilot, lambda: table.row_count == 50)
        assert tab(pilot, Status.DISMISSED) == f"Dismissed {total} ↑{2 * WINDOW}"
        seen |= set(table.ids())
        assert len(seen) == total  # every row reached, none twice
        await pilot.press("G", "pagedown")  # past the last row: nothing more, the window stays
        await pilot.press("g", "pageup")  # at the top: the window before, its last row selected
        await wait_for(pilot, lambda: screen.current_row().text == "vieux 50")  # type: ignore[union-attr]
        await wait_for(pilot, lambda: cursor_on_screen(table))
        assert table.row_count == WINDOW and tab(pilot, Status.DISMISSED) == f"Dismissed {total} ↑{WINDOW} ↓50"


async def test_a_filtered_reload_drops_a_page_asked_for_before_it(tmp_path: Path) -> None:
    """A page read for the old query must not land in the window of the new one."""
    watchlist = desk(tmp_path)
    seed(watchlist.database, Status.NEW, WINDOW + 10)
    app = make_app(watchlist, collect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: hasattr(app.screen, "pane") and main(app).pane(Status.NEW).row_count == WINDOW)
        table = main(app).pane(Status.NEW)
        stale = MentionTable.PageWanted(table, "next", table.window.rows[-1], WINDOW, table._generation)
        table.load(table.window.rows[:3], 0)
        table.page_in(stale, [row(10_000)])
        assert table.row_count == 3 and 10_000 not in table.mentions


async def test_the_selected_mention_stays_on_screen_while_urgent_arrivals_push_it_down(tmp_path: Path) -> None:
    watchlist = desk(tmp_path)
    seed(watchlist.database, Status.NEW, 50)
    app = make_app(watchlist, collect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: hasattr(app.screen, "pane") and main(app).pane(Status.NEW).row_count == 50)
        screen = main(app)
        table = screen.pane(Status.NEW)
        chosen = table.ids()[1]
        await pilot.press("j")
        rev, urgent = burst(watchlist.database, 0, 30, tuple(range(30)), 5_000)  # three screens of urgent ones
        await wait_for(pilot, lambda: screen.last_rev >= rev and table.ids()[:30] == urgent)
        assert screen.current_row().id == chosen  # type: ignore[union-attr]  # the operator's row, still selected
        assert table.cursor_row == 31 and cursor_on_screen(table)  # and still in view: the next key acts on it


async def test_exporting_a_pane_writes_the_rows_past_its_window_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The window bounds what is drawn, not what the operator exports."""
    from tests.test_palette import read_csv, run_command

    watchlist = desk(tmp_path)
    seed(watchlist.database, Status.DISMISSED, WINDOW + 50)
    monkeypatch.chdir(tmp_path)
    app = make_app(watchlist, collect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = main(app)
        await pilot.press("4")
        await wait_for(pilot, lambda: screen.pane().status is Status.DISMISSED and screen.pane().row_count == WINDOW)
        await run_command(pilot, "export", "Export this pane")
        await wait_for(pilot, lambda: len(exported(tmp_path)) == 1)
        (path,) = exported(tmp_path)
        await wait_for(pilot, lambda: len(read_csv(path)) == WINDOW + 50)  # written by a worker thread
        assert screen.pane().row_count == WINDOW


def header_title(pilot: Pilot[Any]) -> str:
    return str(pilot.app.screen.query_one(HeaderTitle).content)


async def test_a_burst_shows_the_calm_storm_line_which_goes_when_calm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over STORM_PER_MINUTE arrivals in a minute: the header says how many, not the pane's churn. A minute
    later (the desk's clock moved on, no real wait) the line is gone."""
    watchlist = desk(tmp_path)
    seed(watchlist.database, Status.NEW, 10)
    later = [0]
    for module in (desk_panes, main_screen):
        monkeypatch.setattr(module, "now_ms", lambda: now_ms() + later[0])
    app = make_app(watchlist, collect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: hasattr(app.screen, "pane") and main(app).pane(Status.NEW).row_count == 10)
        screen = main(app)
        rev, _ = burst(watchlist.database, 0, STORM_PER_MINUTE - 1, (), 5_000)
        await wait_for(pilot, lambda: screen.last_rev >= rev)
        assert "storm" not in header_title(pilot) and screen.storm.last_minute == STORM_PER_MINUTE - 1
        rev, _ = burst(watchlist.database, STORM_PER_MINUTE, 500, (), 5_001)
        line = f"storm: {STORM_PER_MINUTE + 499:,} new in the last minute"
        await wait_for(pilot, lambda: header_title(pilot).startswith(line))
        assert screen.title == line
        # What is wrong with the database stays first in the title when the clock's tick shows the storm.
        app.storage_state = "DISK FULL"
        screen.show_storm(now_ms())
        assert screen.title == f"monitor · DISK FULL · {line}"
        app.storage_state = ""
        later[0] = SPAN_MS + 1_000  # a calm minute
        await wait_for(pilot, lambda: "storm" not in header_title(pilot) and screen.title == "monitor")
        assert header_title(pilot).startswith("monitor")


def test_the_storm_line_stays_through_a_dip_and_leaves_once_the_rate_has_clearly_fallen() -> None:
    meter = StormMeter(storm=100, calm=50, span_ms=60_000)
    meter.count([row(i) for i in range(1, 101)], now=1_000)
    assert meter.line() == "storm: 100 new in the last minute"
    meter.count([row(5), row(6)], now=2_000)  # updates of rows already counted
    meter.count([row(i) for i in range(101, 141)], now=30_000)
    meter.expire(61_500)  # the first 100 are a minute old: 40 left, under the calm mark
    assert meter.last_minute == 40 and meter.line() == ""
    meter.count([row(i) for i in range(141, 201)], now=62_000)
    assert meter.last_minute == 100 and meter.line() == "storm: 100 new in the last minute"
    meter.expire(89_000)
    assert meter.line() == "storm: 100 new in the last minute"
    meter.expire(91_000)  # the 40 leave: 60 is a dip, above the calm mark, the line stays
    assert meter.last_minute == 60 and meter.on


async def test_the_cli_desk_freezes_its_start_up_heap_after_the_first_paint(tmp_path: Path) -> None:
    """A full collection then walks only what came after start-up (a storm's worst key latency was one)."""
    watchlist = desk(tmp_path)
    app = make_app(watchlist, collect=False)
    assert gc.get_freeze_count() == 0 and not app.freeze_heap  # the tests' many apps in one process: never
    app.freeze_heap = True  # as the CLI sets it (cli/run.py)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: gc.get_freeze_count() > 10_000)
    finally:
        gc.unfreeze()


async def test_in_a_storm_the_pane_moves_every_few_seconds_and_an_operators_action_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under a burst the rows under the operator's eyes hold still between moves (the header counts the
    arrivals); the desk's clock is frozen here, so only an operator's own action can move them."""
    watchlist = desk(tmp_path)
    seed(watchlist.database, Status.NEW, 10)
    clock = [now_ms()]
    monkeypatch.setattr(desk_panes, "now_ms", lambda: clock[0])
    app = make_app(watchlist, collect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: hasattr(app.screen, "pane") and main(app).pane(Status.NEW).row_count == 10)
        screen = main(app)
        table = screen.pane(Status.NEW)
        rev, _ = burst(watchlist.database, 0, STORM_PER_MINUTE, (), 5_000)
        await wait_for(pilot, lambda: screen.last_rev >= rev and screen.storm.on)
        rev, urgent = burst(watchlist.database, STORM_PER_MINUTE, 10, (STORM_PER_MINUTE,), 5_001)
        ticks = screen._ticks
        await wait_for(pilot, lambda: screen._ticks >= ticks + 2)  # a second or more of refresh ticks
        assert screen.last_rev < rev and urgent[-1] not in table.mentions  # the pane held still
        selected = screen.current_row()
        assert selected is not None
        await pilot.press("d", "enter")  # dismissed: it leaves the pane at once, and the urgent arrival enters
        await wait_for(pilot, lambda: selected.id not in table.mentions and urgent[-1] in table.mentions)
        assert screen.last_rev >= rev
        rev, urgent = burst(watchlist.database, STORM_PER_MINUTE + 10, 10, (STORM_PER_MINUTE + 10,), 5_002)
        clock[0] += STORM_APPLY_MS  # the next move
        await wait_for(pilot, lambda: screen.last_rev >= rev and urgent[-1] in table.mentions)
