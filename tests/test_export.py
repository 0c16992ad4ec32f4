"""`monitor export`: JSON Lines and CSV round-trips, UTC times, periods, streaming, and the HTML report."""

from __future__ import annotations

import csv
import io
import json
import re
import tracemalloc

import pytest

from monitor.cli import main
from monitor.core.timeutil import parse_iso_ms
from monitor.db.store import TERM_SEP
from monitor.reports import export
from monitor.reports.html import render_html
from monitor.reports.stats import compute
from tests.fakes_stats import BOTH_ENGINES, DESK_HOURS, MIN, Desk, open_desk, paris, write_watchlist

HOSTILE = 'Il a dit "stop", puis: a,b;c\nligne 2\ttab — <script>alert(1)</script> & [bold]x[/]'


@pytest.fixture
def desk(request, tmp_path):
    d = open_desk(request, tmp_path / "monitor.db")
    yield d
    d.close()


def fill(desk: Desk) -> list[int]:
    t = paris(2025, 7, 7, 10)
    a = desk.mention(t, text=HOSTILE, terms=("voirie", "eau"))
    desk.act(a, "escalate", t + 5 * MIN, "alice", service="voirie", note='cc "chef", urgent')
    desk.act(a, "resolve", t + 65 * MIN + 123, "bruno", note="réparé")
    b = desk.mention(t + MIN, source="bluesky", text="Simple")
    desk.act(b, "reply", t + 3 * MIN, "bruno", text=HOSTILE)
    c = desk.mention(t + 2 * MIN, text="Plus tard")
    desk.delete(c, t + 9 * MIN)
    desk.mention(paris(2025, 7, 8, 10), text="Le lendemain")
    return [a, b, c]


def db_mentions(desk: Desk) -> dict[int, dict]:
    cols = ["id", "source", "remote_id", "text", "terms", "priority", "status", "first_seen_at",
            "first_response_at", "first_response_by", "deleted_at", "status_at"]  # fmt: skip
    rows = desk.conn.execute(f"SELECT {', '.join(cols)} FROM mentions").fetchall()
    return {r[0]: dict(zip(cols, r, strict=True)) for r in rows}


@BOTH_ENGINES
def test_mentions_jsonl_round_trip(desk):
    fill(desk)
    out = io.StringIO()
    assert export.write(desk.read(), "mentions", "jsonl", out) == 4
    stored = db_mentions(desk)
    lines = out.getvalue().splitlines()
    assert len(lines) == 4
    for line in lines:
        row = json.loads(line)
        db = stored[row["id"]]
        assert row["text"] == db["text"]  # as-is, newlines and markup included
        assert row["terms"] == db["terms"].split(TERM_SEP) and row["term"] == row["terms"][0]
        assert row["priority"] == "normal" and row["status"] == db["status"]
        assert parse_iso_ms(row["first_seen_at"]) == db["first_seen_at"]
        assert row["first_seen_at"].endswith("Z")
        for name in ("first_response_at", "deleted_at", "status_at"):
            assert (parse_iso_ms(row[name]) if row[name] else None) == db[name]
        assert row["first_response_by"] == db["first_response_by"]


@BOTH_ENGINES
def test_actions_csv_round_trip_with_quoting(desk, tmp_path):
    fill(desk)
    out = io.StringIO(newline="")
    assert export.write(desk.read(), "actions", "csv", out) == 3
    rows = list(csv.DictReader(io.StringIO(out.getvalue(), newline="")))
    stored = desk.conn.execute("SELECT id, mention_id, kind, operator, at, payload FROM actions ORDER BY id").fetchall()
    assert len(rows) == len(stored)
    for row, (aid, mid, kind, operator, at, payload) in zip(rows, stored, strict=True):
        assert (int(row["id"]), int(row["mention_id"])) == (aid, mid)
        assert (row["kind"], row["operator"]) == (kind, operator)
        assert parse_iso_ms(row["at"]) == at  # milliseconds survive: 65 min + 123 ms
        assert json.loads(row["payload"]) == json.loads(payload)
    reply = next(r for r in rows if r["kind"] == "reply")
    assert json.loads(reply["payload"])["text"] == HOSTILE
    assert out.getvalue().count("\r\n") >= 4  # RFC 4180 line ends; the newline inside stays quoted


@BOTH_ENGINES
def test_mentions_csv_round_trip(desk):
    fill(desk)
    out = io.StringIO(newline="")
    export.write(desk.read(), "mentions", "csv", out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue(), newline="")))
    stored = db_mentions(desk)
    assert [int(r["id"]) for r in rows] == sorted(stored)
    first = rows[0]
    assert first["text"] == HOSTILE
    assert json.loads(first["terms"]) == ["voirie", "eau"] and first["term"] == "voirie"
    assert first["lang"] == ""  # no value: an empty cell
    assert parse_iso_ms(first["status_at"]) == stored[int(first["id"])]["status_at"]


@BOTH_ENGINES
def test_period_selects_mentions_by_first_seen_and_actions_by_time(desk):
    fill(desk)
    since, until = paris(2025, 7, 7, 10, 1), paris(2025, 7, 8)
    out = io.StringIO()
    assert export.write(desk.read(), "mentions", "jsonl", out, since=since, until=until) == 2
    out = io.StringIO()
    assert export.write(desk.read(), "actions", "jsonl", out, since=paris(2025, 7, 7, 10, 4)) == 2
    with pytest.raises(ValueError):
        export.write(desk.read(), "mentions", "xml", io.StringIO())


@BOTH_ENGINES
def test_export_streams_rows_instead_of_loading_them(desk):
    # 3,000 mentions of 4 KB each (12 MB of text): the export's peak memory must stay far below.
    big = "x" * 4096
    t = paris(2025, 7, 7)
    desk.conn.execute("BEGIN")
    desk.conn.executemany(
        "INSERT INTO mentions (source, remote_id, network, author, text, terms, priority, status,"
        " published_at, first_seen_at, status_at, rev)"
        " VALUES ('s', ?, 'n', 'a', ?, 'voirie', 2, 'new', ?, ?, ?, ?)",
        [(f"r{i}", big, t + i, t + i, t + i, i) for i in range(3000)],
    )
    desk.conn.execute("COMMIT")

    class Sink(io.TextIOBase):
        written = 0

        def write(self, s: str) -> int:
            self.written += len(s)
            return len(s)

    sink, conn = Sink(), desk.read()
    tracemalloc.start()
    count = export.write(conn, "mentions", "jsonl", sink)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count == 3000 and sink.written > 12_000_000
    assert peak < 2_000_000, f"peak {peak} bytes: rows are being held"


@BOTH_ENGINES
def test_cli_export_to_a_file(desk, tmp_path, capsys):
    fill(desk)
    wl = write_watchlist(tmp_path, hours=DESK_HOURS)
    target = tmp_path / "out.csv"
    assert main(["export", "actions", "--watchlist", str(wl.path), "--db", str(desk.target()), "--format", "csv",
                 "-o", str(target)]) == 0  # fmt: skip
    assert "3 actions exported" in capsys.readouterr().err
    assert len(list(csv.DictReader(target.open(newline="", encoding="utf-8")))) == 3


@BOTH_ENGINES
def test_html_report_has_tables_svg_and_escapes_hostile_text(desk, tmp_path):
    fill(desk)
    hostile_op = '<script>alert("op")</script>'
    x = desk.mention(paris(2025, 7, 7, 11), source="<img src=x onerror=alert(1)>", terms=("<b>term</b>",))
    desk.act(x, "escalate", paris(2025, 7, 7, 11, 10), hostile_op, service="</table><script>s()</script>")
    wl = write_watchlist(tmp_path, hours=DESK_HOURS)
    report = compute(desk.read(), wl, since=paris(2025, 7, 7), until=paris(2025, 7, 9), now=paris(2025, 7, 9))
    page = render_html(report)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<script" not in page.lower()  # every hostile string arrived escaped
    assert "&lt;script&gt;alert(&quot;op&quot;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "&lt;b&gt;term&lt;/b&gt;" in page
    assert page.count("<svg") == 3  # histogram, volume, backlog
    assert "<rect" in page and "<polyline" in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")  # nothing fetched
    assert "https://" not in page
    for title in ("First response", "Resolution", "By source", "By operator", "By service", "Definitions"):
        assert title in page
    assert len(re.findall(r"<table>", page)) >= 10


@BOTH_ENGINES
def test_cli_report_writes_the_page(desk, tmp_path):
    fill(desk)
    wl = write_watchlist(tmp_path, hours=DESK_HOURS)
    target = tmp_path / "report.html"
    assert main(["report", "--watchlist", str(wl.path), "--db", str(desk.target()), "--html", str(target),
                 "--since", "2025-07-07", "--until", "2025-07-09"]) == 0  # fmt: skip
    page = target.read_text(encoding="utf-8")
    assert "Testville" in page and "<svg" in page


FORMULAS = ['=HYPERLINK("http://evil.example","clic")', "+33 1 23", "-2+3", "@SUM(A1)", "\t=1+1", "\r=1+1"]


@BOTH_ENGINES
def test_csv_cells_that_start_like_a_formula_are_written_as_text(desk, tmp_path, capsys):
    t = paris(2025, 7, 7, 10)
    for text in FORMULAS:
        desk.mention(t, text=text)
    wl = write_watchlist(tmp_path, hours=DESK_HOURS)
    target = tmp_path / "out.csv"
    assert main(["export", "mentions", "-w", str(wl.path), "--db", str(desk.target()), "--format", "csv",
                 "-o", str(target)]) == 0  # fmt: skip
    rows = list(csv.DictReader(target.open(newline="", encoding="utf-8")))
    assert [r["text"] for r in rows] == ["'" + f for f in FORMULAS]
    assert rows[0]["id"] == "1"  # numbers are not text: left alone


@BOTH_ENGINES
def test_raw_csv_keeps_cells_as_stored(desk, tmp_path):
    t = paris(2025, 7, 7, 10)
    for text in FORMULAS:
        desk.mention(t, text=text)
    wl = write_watchlist(tmp_path, hours=DESK_HOURS)
    target = tmp_path / "out.csv"
    assert main(["export", "mentions", "-w", str(wl.path), "--db", str(desk.target()), "--format", "csv",
                 "--raw-csv", "-o", str(target)]) == 0  # fmt: skip
    assert [r["text"] for r in csv.DictReader(target.open(newline="", encoding="utf-8"))] == FORMULAS


@pytest.mark.parametrize("desk", ["postgresql"], indirect=True)
def test_both_engines_export_the_same_lines(desk):
    # The desk's file and its PostgreSQL copy: mentions line for line; actions too, but for the order of a
    # payload's keys (JSONB keeps its own), so their payloads are compared as JSON values.
    fill(desk)
    desk.act(1, "note", paris(2025, 7, 7, 12), "alice", text="deux clés", extra={"b": 1, "a": [2, None]})
    pg = desk.read()
    for what in ("mentions", "actions"):
        for fmt in ("jsonl", "csv"):
            lite_out, pg_out = io.StringIO(newline=""), io.StringIO(newline="")
            assert export.write(desk.conn, what, fmt, lite_out) == export.write(pg, what, fmt, pg_out) > 0
            if what == "mentions":
                assert pg_out.getvalue() == lite_out.getvalue()
            elif fmt == "jsonl":
                assert [json.loads(x) for x in pg_out.getvalue().splitlines()] == [
                    json.loads(x) for x in lite_out.getvalue().splitlines()
                ]
            else:
                pg_rows = list(csv.DictReader(io.StringIO(pg_out.getvalue(), newline="")))
                lite_rows = list(csv.DictReader(io.StringIO(lite_out.getvalue(), newline="")))
                for row in (*pg_rows, *lite_rows):
                    row["payload"] = json.loads(row["payload"])
                assert pg_rows == lite_rows
