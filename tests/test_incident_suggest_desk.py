"""A suggested incident on the desk: the row's mark, the detail's line, and `a` accepting it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from monitor.core.models import MatchResult, Mention, Priority, Status
from monitor.core.timeutil import utcnow
from monitor.db.incidents import create_sync, link_sync
from monitor.db.store import ingest_sync, open_sync
from monitor.db.suggest import suggest_new_sync
from monitor.networks import load_watchlist
from tests.conftest import write_demo, write_watchlist
from tests.test_app import actions, main, make_app, wait_for
from tests.test_delivery_app import detail_text

VOIRIE = MatchResult(("voirie",), Priority.NORMAL)
TITLE = "Arbre tombé boulevard Carnot [bold]chaussée[/] bloquée"


def ingest(db: Path, texts: list[str], start: int) -> list[int]:
    """Mentions through the store's own ingest writes, suggestions computed as the collector's are."""
    conn = open_sync(db)
    batch = [(Mention("s", f"m{start + i}", "mastodon", f"@c{start + i}", t, utcnow()), VOIRIE)
             for i, t in enumerate(texts)]  # fmt: skip
    conn.execute("BEGIN IMMEDIATE")
    before = conn.execute("SELECT coalesce(max(rev), 0) FROM mentions").fetchone()[0]
    ingest_sync(conn, "s", batch, None, [], [], 1_000 + start)
    suggest_new_sync(conn, before, before + len(batch))
    conn.execute("COMMIT")
    ids = [r[0] for r in conn.execute("SELECT id FROM mentions WHERE rev > ? ORDER BY id", (before,))]
    conn.close()
    return ids


def make_incident(db: Path, mention_id: int, title: str) -> int:
    conn = open_sync(db)
    conn.execute("BEGIN IMMEDIATE")
    incident = create_sync(conn, mention_id, "bob", title, None)
    conn.execute("COMMIT")
    conn.close()
    return incident


async def test_a_suggested_row_is_marked_and_a_accepts_the_suggestion(tmp_path: Path) -> None:
    watchlist = load_watchlist(write_watchlist(tmp_path, write_demo(tmp_path / "d.jsonl", ["Toulouse"])))
    db = watchlist.database
    [first, _other] = ingest(db, [TITLE, "Le métro ligne A est arrêté à Jean-Jaurès"], 0)
    incident = make_incident(db, first, TITLE)
    [second] = ingest(db, ["Un arbre tombé boulevard Carnot bloque la chaussée, attention"], 10)
    assert sqlite3.connect(db).execute("SELECT suggested_incident FROM mentions WHERE id = ?", (second,)).fetchone() \
        == (incident,)  # fmt: skip
    app = make_app(watchlist, collect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: hasattr(app.screen, "pane") and main(app).pane(Status.NEW).row_count == 3)
        screen = main(app)
        table = screen.pane(Status.NEW)
        while screen.current_row().id != second:  # type: ignore[union-attr]
            await pilot.press("j")
        mark = table.get_cell(str(second), "text").plain
        assert mark.startswith(f"≈{incident} Arbre tombé") and "│ Un arbre tombé" in mark
        await wait_for(pilot, lambda: "likely incident" in detail_text(app))
        line = detail_text(app).splitlines()[0].rstrip()
        # The title as written, never read as markup, and cut to fit 80 columns.
        assert line.startswith(f"likely incident {incident}: Arbre tombé boulevard Carnot [bold]chaussée[/]")
        assert len(line) <= 78
        await pilot.press("a")
        await wait_for(pilot, lambda: table.row_count == 2)  # one row for the incident and its two reports
        assert [(m, k, o) for m, k, o, _ in actions(db)] == [(first, "link", "bob"), (second, "link", "alice")]
        [group] = table.groups.values()
        assert group.incident.id == incident and group.reports == 2


async def test_an_incident_of_1000_reports_is_one_row_and_its_detail_shows_a_bounded_list(tmp_path: Path) -> None:
    watchlist = load_watchlist(write_watchlist(tmp_path, write_demo(tmp_path / "d.jsonl", ["Toulouse"])))
    db = watchlist.database
    ids = ingest(db, [f"Arbre tombé boulevard Carnot, témoin {i}" for i in range(1000)], 0)
    ingest(db, ["Le métro ligne A est arrêté à Jean-Jaurès"], 2000)
    conn = open_sync(db)
    conn.execute("BEGIN IMMEDIATE")
    incident = create_sync(conn, ids[0], "bob", "arbre tombé bd Carnot", None)
    for mention_id in ids[1:]:
        link_sync(conn, mention_id, incident, "bob", None)
    conn.execute("COMMIT")
    conn.close()
    app = make_app(watchlist, collect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: hasattr(app.screen, "pane") and main(app).pane(Status.NEW).row_count == 2)
        table = main(app).pane(Status.NEW)
        assert [g.reports for g in table.groups.values()] == [1000]
        assert table.selected_incident() is not None  # the incident's row comes first (its oldest report)
        await wait_for(pilot, lambda: "1000 report(s):" in detail_text(app))
        assert "… and 800 more (o lists them all)" in detail_text(app)
