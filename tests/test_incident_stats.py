"""Incidents in the statistics (each figure defined by --explain), the HTML report and `monitor export incidents`."""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

from monitor.cli import main
from monitor.db.store import Store, open_readonly
from monitor.engine import incidents
from monitor.reports import incidents as figures
from tests.fakes_delivery import mastodon_status, seed
from tests.fakes_delivery import watchlist as make_watchlist
from tests.fakes_stats import DESK_HOURS, write_watchlist

T = 1_751_875_200_000  # 2025-07-07 08:00 UTC


async def two_incidents(tmp_path: Path) -> tuple[Path, int, int]:
    """A: three reports, acknowledged then resolved; B: one report, dismissed. Then the clocks set to known
    values (the actions ran at the wall clock's time)."""
    wl = make_watchlist(tmp_path)
    store = await Store.open(tmp_path / "monitor.db")
    try:
        ids = await seed(store, "masto", "mastodon", [mastodon_status(n, host="127.0.0.1") for n in range(4)])
        a = await store.create_incident(ids[0], "alice", 'Arbre tombé, "=cmd|x" bd Carnot')
        for mid in ids[1:3]:
            await store.link(mid, a, "alice", expect_incident=None)
        b = await store.create_incident(ids[3], "bruno")
        await incidents.acknowledge_all(store, wl, a, "alice", "{author} On sait.")
        await incidents.resolve(store, wl, a, "alice", "{author} Réglé.")
        await incidents.dismiss(store, b, "bruno", "blague")
    finally:
        await store.close()
    conn = sqlite3.connect(tmp_path / "monitor.db")
    with conn:
        for n, mid in enumerate(ids):
            conn.execute("UPDATE mentions SET first_seen_at = ?, first_response_at = ? WHERE id = ?",
                         (T, T + (n + 1) * 60_000, mid))  # fmt: skip
        conn.execute("UPDATE incidents SET created_at = ?, closed_at = ? WHERE id = ?", (T, T + 3_600_000, a))
        conn.execute("UPDATE incidents SET created_at = ?, closed_at = ? WHERE id = ?", (T, T + 600_000, b))
    conn.close()
    return tmp_path / "monitor.db", a, b


async def test_each_figure_counts_incidents_reports_and_both_clocks(tmp_path: Path) -> None:
    db, _, _ = await two_incidents(tmp_path)
    conn = open_readonly(db)
    try:
        f = figures.compute(conn, 0, 2**62)
    finally:
        conn.close()
    assert f.count == 2 and f.by_status == {"open": 0, "escalated": 0, "resolved": 1, "dismissed": 1}
    assert (f.reports.median, f.reports.largest) == (2.0, 3)
    assert (f.first_response_s.n, f.first_response_s.median, f.first_response_s.open) == (4, 150.0, 0)
    assert (f.resolution_s.n, f.resolution_s.median, f.resolution_s.open) == (1, 3600.0, 0)  # B dismissed: apart


async def test_export_incidents_as_csv_and_stats_explain_the_figures(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    db, a, _ = await two_incidents(tmp_path)
    wl = write_watchlist(tmp_path, hours=DESK_HOURS)
    out = tmp_path / "incidents.csv"
    assert main(["export", "incidents", "--watchlist", str(wl.path), "--db", str(db), "--format", "csv",
                 "-o", str(out)]) == 0  # fmt: skip
    assert "2 incidents exported" in capsys.readouterr().err
    rows = list(csv.DictReader(out.open(newline="", encoding="utf-8")))
    assert [(r["id"], r["status"], r["reports"]) for r in rows] == [
        (str(a), "resolved", "3"),
        (str(a + 1), "dismissed", "1"),
    ]
    assert rows[0]["title"] == 'Arbre tombé, "=cmd|x" bd Carnot' and rows[0]["networks"] == '["mastodon"]'
    assert rows[0]["created_at"] == "2025-07-07T08:00:00.000Z"
    assert main(["stats", "--watchlist", str(wl.path), "--db", str(db), "--explain"]) == 0
    printed = capsys.readouterr().out
    assert "Incidents: 2 (0 open, 0 escalated, 1 resolved, 1 dismissed)" in printed
    for title in ("Reports per incident", "First response per report", "Resolution per incident"):
        assert title in printed
    page = tmp_path / "report.html"
    assert main(["report", "--watchlist", str(wl.path), "--db", str(db), "--html", str(page)]) == 0
    html = page.read_text(encoding="utf-8")
    assert "<h2>Incidents</h2>" in html and html.rstrip().endswith("</html>")


def test_a_file_from_before_incidents_reports_none(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "old.db")
    conn.execute("CREATE TABLE mentions (id INTEGER PRIMARY KEY)")
    assert figures.compute(conn, 0, 2**62).count == 0
    conn.close()
