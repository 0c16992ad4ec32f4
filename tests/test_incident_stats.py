"""Incidents in the statistics (each figure defined by --explain), the HTML report and `monitor export incidents`."""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

from monitor.cli import main
from monitor.db.engines import open_database
from monitor.db.reading import open_reader
from monitor.engine import incidents
from monitor.reports import incidents as figures
from tests.engines import raw_execute
from tests.fakes_delivery import mastodon_status, seed
from tests.fakes_delivery import watchlist as make_watchlist
from tests.fakes_stats import DESK_HOURS, write_watchlist

T = 1_751_875_200_000  # 2025-07-07 08:00 UTC


async def two_incidents(tmp_path: Path, target: str | Path) -> tuple[str | Path, int, int]:
    """A: three reports, acknowledged then resolved; B: one report, dismissed. Then the clocks set to known
    values (the actions ran at the wall clock's time)."""
    wl = make_watchlist(tmp_path)
    store = await open_database(target)
    try:
        ids = await seed(store, "masto", "mastodon", [mastodon_status(n, host="127.0.0.1") for n in range(4)])
        a = await store.create_incident(ids[0], "alice", 'Arbre tombé, "=cmd|x" bd Carnot')
        for mid in ids[1:3]:
            await store.link(mid, a, "alice", expect_incident=None)
        b = await store.create_incident(ids[3], "bruno")
        await incidents.acknowledge_all(store, wl, a, "alice", "{author} On sait.")
        await incidents.resolve(store, wl, a, "alice", "{author} Réglé.")
        await incidents.dismiss(store, b, "bruno", "blague")
        for n, mid in enumerate(ids):  # our own integers
            raw_execute(store, f"UPDATE mentions SET first_seen_at = {T}, first_response_at = {T + (n + 1) * 60_000}"
                        f" WHERE id = {mid}")  # fmt: skip
        for incident, closed in ((a, T + 3_600_000), (b, T + 600_000)):
            raw_execute(store, f"UPDATE incidents SET created_at = {T}, closed_at = {closed} WHERE id = {incident}")
    finally:
        await store.close()
    return target, a, b


async def test_each_figure_counts_incidents_reports_and_both_clocks(tmp_path: Path, db_target: str | Path) -> None:
    db, _, _ = await two_incidents(tmp_path, db_target)
    conn = open_reader(db)
    try:
        f = figures.compute(conn, 0, 2**62)
    finally:
        conn.close()
    assert f.count == 2 and f.by_status == {"open": 0, "escalated": 0, "resolved": 1, "dismissed": 1}
    assert (f.reports.median, f.reports.largest) == (2.0, 3)
    assert (f.first_response_s.n, f.first_response_s.median, f.first_response_s.open) == (4, 150.0, 0)
    assert (f.resolution_s.n, f.resolution_s.median, f.resolution_s.open) == (1, 3600.0, 0)  # B dismissed: apart


async def test_export_incidents_as_csv_and_stats_explain_the_figures(tmp_path: Path, db_target, capsys) -> None:  # type: ignore[no-untyped-def]
    db, a, _ = await two_incidents(tmp_path, db_target)
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
