"""Statistics on hand-computed data sets, built through the store's real write path.

Percentiles are linear interpolation between closest ranks (type 7): for sorted x[0..n-1],
h = (n - 1) * p, value = x[floor h] + frac(h) * (x[floor h + 1] - x[floor h]).
"""

from __future__ import annotations

import csv
import io
import json

import pytest

from monitor.cli import main
from monitor.core.models import Priority
from monitor.db import stats as stats_db
from monitor.reports import stats
from monitor.reports.stats import compute, percentile, render
from tests.fakes_stats import BOTH_ENGINES, DESK_HOURS, HOUR, MIN, NINE_TO_FIVE, Desk, open_desk, paris, write_watchlist
from tests.test_app import wait_for


def by_key(rows):
    return {row.key: row for row in rows}


@pytest.fixture
def desk(request, tmp_path):
    d = open_desk(request, tmp_path / "monitor.db")
    yield d
    d.close()


def test_percentile_definition_on_textbook_values():
    values = [60, 120, 180, 240, 300, 600, 900, 1200, 3600, 7200]
    # n = 10. median: h = 4.5 -> 300 + 0.5 * 300 = 450. p90: h = 8.1 -> 3600 + 0.1 * 3600 = 3960.
    # p95: h = 8.55 -> 3600 + 0.55 * 3600 = 5580.
    assert percentile(values, 50) == 450
    assert percentile(values, 90) == pytest.approx(3960)
    assert percentile(values, 95) == pytest.approx(5580)
    assert percentile([42], 90) == 42
    assert percentile([], 50) is None


def build_monday(desk: Desk) -> dict[str, int]:
    """Monday 7 July 2025, desk open 08:30-18:00: thirteen mentions seen 10:00-10:45 (see the table)."""
    t0 = paris(2025, 7, 7, 10, 0)
    m = {}
    # i: (delay in minutes, operator, kind, extra payload, source)
    plan = [
        (1, "alice", "reply", {"text": "Merci"}, "mastodon"),
        (2, "bruno", "escalate", {"service": "voirie", "note": ""}, "mastodon"),
        (3, "alice", "reply", {"text": "Vu"}, "mastodon"),
        (4, "bruno", "dismiss", {"reason": "spam"}, "mastodon"),
        (5, "alice", "escalate", {"service": "eau", "note": ""}, "mastodon"),
        (10, "bruno", "reply", {"text": "Ok"}, "bluesky"),
        (15, "alice", "escalate", {"service": "voirie", "note": ""}, "mastodon"),
        (20, "bruno", "reply", {"text": "Ok"}, "mastodon"),
        (60, "alice", "reply", {"text": "Ok"}, "mastodon"),
        (120, "bruno", "reply", {"text": "Ok"}, "bluesky"),
    ]
    for i, (delay, operator, kind, payload, source) in enumerate(plan):
        seen = t0 + i * MIN
        terms = ("eau", "voirie") if i == 3 else ("voirie",)
        m[f"m{i}"] = mid = desk.mention(seen, source=source, terms=terms)
        if i == 0:  # a note before the reply: notes do not stop the clock, nor get the credit
            desk.act(mid, "note", seen + 30_000, "carol", text="je regarde")
        desk.act(mid, kind, seen + delay * MIN, operator, **payload)
    # m1: the service fixes it two hours after the escalation.
    desk.act(m["m1"], "resolve", t0 + 1 * MIN + 2 * MIN + 2 * HOUR, "bruno", note="réparé")
    # m2: reopened by bruno, answered again by carol: the first response (alice, 3 min) stands.
    desk.act(m["m2"], "reopen", t0 + 2 * MIN + 30 * MIN, "bruno")
    desk.act(m["m2"], "reply", t0 + 2 * MIN + 40 * MIN, "carol", text="Encore")
    # m4: closed by a reply 30 minutes after its escalation.
    desk.act(m["m4"], "reply", t0 + 4 * MIN + 5 * MIN + 30 * MIN, "alice", text="Réglé")
    # m5: edited by its author: still one mention.
    desk.edit(m["m5"], t0 + 30 * MIN, "Un trou (corrigé)")
    # m10: urgent, never answered. m11: deleted before any response. m12: answered, then deleted.
    m["m10"] = desk.mention(t0 + 30 * MIN, priority=Priority.URGENT)
    m["m11"] = desk.mention(t0 + 40 * MIN)
    desk.delete(m["m11"], t0 + 50 * MIN)
    m["m12"] = desk.mention(t0 + 45 * MIN)
    desk.act(m["m12"], "reply", t0 + 47 * MIN, "carol", text="Merci")
    desk.delete(m["m12"], t0 + 60 * MIN)
    # Seen the evening before and still waiting at 11:00 (carried into the period's backlog) ...
    desk.mention(paris(2025, 7, 6, 20, 0), remote_id="carried")
    desk.act(desk.conn.execute("SELECT max(id) FROM mentions").fetchone()[0], "reply", t0 + 90 * MIN, "bruno")
    # ... and one answered at 10:30, before the first hour ends: not in the backlog.
    desk.mention(paris(2025, 7, 6, 21, 0), remote_id="early")
    desk.act(desk.conn.execute("SELECT max(id) FROM mentions").fetchone()[0], "reply", t0 + 30 * MIN, "bruno")
    return m


def monday_report(desk: Desk, tmp_path, **kw):
    wl = write_watchlist(tmp_path, hours=DESK_HOURS, resolution="4h")
    return compute(desk.read(), wl, since=paris(2025, 7, 7, 10), until=paris(2025, 7, 7, 12, 30),
                   now=paris(2025, 7, 7, 12, 30), **kw)  # fmt: skip


@BOTH_ENGINES
def test_first_response_clock_by_hand(desk, tmp_path):
    build_monday(desk)
    r = monday_report(desk, tmp_path)
    fr = r.first_response
    # Answered (seconds), sorted: 60 120 120 180 240 300 600 900 1200 3600 7200 (n = 11; m12 is
    # deleted but was answered, so it counts). median: h = 5 -> 300. p90: h = 9 -> 3600.
    # p95: h = 9.5 -> 3600 + 0.5 * 3600 = 5400. max 7200.
    assert fr.calendar.n == 11
    assert (fr.calendar.median, fr.calendar.p90, fr.calendar.p95, fr.calendar.max) == (300, 3600, 5400, 7200)
    # Within 1 h (inclusive: m8 at exactly 60 min is within): 10. m10 waits 2 h: a breach already.
    # 10 / (11 + 1) = 0.8333.
    assert (fr.calendar.within, fr.calendar.late_open) == (10, 1)
    assert fr.calendar.share == pytest.approx(10 / 12)
    # All inside Monday's opening hours: business time is calendar time here.
    assert (fr.business.median, fr.business.p90, fr.business.max) == (300, 3600, 7200)
    assert fr.business.share == pytest.approx(10 / 12)
    # Open: m10 only (m11 was deleted before any response), waiting since 10:30 -> 2 h at 12:30.
    assert (fr.open, fr.oldest_open, fr.oldest_open_business) == (1, 7200, 7200)


@BOTH_ENGINES
def test_counts_deleted_edited_and_reopened(desk, tmp_path):
    build_monday(desk)
    c = monday_report(desk, tmp_path).counts
    # new: m10, m11. escalated: m6. dismissed: m3. done: the other nine (m2 reopened, then done again).
    assert (c["mentions"], c["new"], c["escalated"], c["done"], c["dismissed"]) == (13, 2, 1, 9, 1)
    assert (c["edited"], c["deleted"], c["deleted_before_response"]) == (1, 2, 1)
    assert c["closed_without_response"] == 0


@BOTH_ENGINES
def test_operator_gets_the_credit_not_who_noted_or_answered_after_a_reopen(desk, tmp_path):
    build_monday(desk)
    ops = by_key(monday_report(desk, tmp_path).breakdowns["operator"])
    # alice: 60 180 300 900 3600 -> median 300; p90: h = 3.6 -> 900 + 0.6 * 2700 = 2520.
    # bruno: 120 240 600 1200 7200 -> median 600; p90: h = 3.6 -> 1200 + 0.6 * 6000 = 4800.
    # carol: only m12 (120); her note on m0 and her reply on m2 after the reopen are not first responses.
    assert set(ops) == {"alice", "bruno", "carol"}
    alice, bruno, carol = (ops[name].first_response.calendar for name in ("alice", "bruno", "carol"))
    assert (alice.median, alice.p90) == (300, 2520)
    assert (bruno.median, bruno.p90) == (600, 4800)
    assert (carol.n, carol.median) == (1, 120)


@BOTH_ENGINES
def test_resolution_clock_by_hand(desk, tmp_path):
    build_monday(desk)
    r = monday_report(desk, tmp_path)
    res = r.resolution
    # m1: escalated 10:03, resolved 12:03 -> 7200. m4: escalated 10:09, closed by a reply at 10:39 -> 1800.
    # n = 2: median h = 0.5 -> 1800 + 0.5 * 5400 = 4500; p90 h = 0.9 -> 1800 + 0.9 * 5400 = 6660.
    assert (res.calendar.n, res.calendar.median, res.calendar.p90, res.calendar.max) == (2, 4500, 6660, 7200)
    # m6, escalated at 10:21, still with the service at 12:30: open for 2 h 09 min = 7740 s. Target 4 h.
    assert (res.open, res.oldest_open) == (1, 7740)
    assert res.calendar.share == 1.0
    services = by_key(r.breakdowns["service"])
    assert set(services) == {"voirie", "eau"}
    assert (services["voirie"].mentions, services["voirie"].resolution.calendar.median) == (2, 7200)
    assert services["voirie"].resolution.open == 1
    assert services["eau"].resolution.calendar.median == 1800
    # The first response of escalated mentions, per service: voirie m1 120 s and m6 900 s -> 510.
    assert services["voirie"].first_response.calendar.median == 510


@BOTH_ENGINES
def test_other_breakdowns(desk, tmp_path):
    build_monday(desk)
    b = monday_report(desk, tmp_path).breakdowns
    sources = by_key(b["source"])
    # bluesky: m5 (600) and m9 (7200) -> median 3900.
    assert sources["bluesky"].mentions == 2 and sources["bluesky"].first_response.calendar.median == 3900
    assert sources["mastodon"].mentions == 11
    terms = by_key(b["term"])
    assert (terms["eau"].mentions, terms["voirie"].mentions) == (1, 12)  # m3's primary term is eau
    priorities = by_key(b["priority"])
    assert priorities["urgent"].mentions == 1 and priorities["urgent"].first_response.open == 1
    assert [r.key for r in b["hour"]] == ["10h"] and b["hour"][0].mentions == 13
    assert [r.key for r in b["weekday"]] == ["Mon"]
    # Every breakdown that covers every mention adds up to the total.
    for dim in ("source", "term", "priority", "hour", "weekday"):
        assert sum(row.mentions for row in b[dim]) == 13, dim


@BOTH_ENGINES
def test_volume_and_backlog_per_hour(desk, tmp_path):
    build_monday(desk)
    r = monday_report(desk, tmp_path)
    # Buckets 10h, 11h, 12h (the period ends at 12:30). All thirteen were first seen in the 10h hour.
    assert r.volume == [13, 0, 0]
    # Waiting at 11:00: m8 (answered 11:08), m9 (12:09), m10 (never), and the mention carried from
    # Sunday evening (answered 11:30) = 4. At 12:00: m9, m10 = 2. Now: m10 = 1. m11 left the backlog
    # when it was deleted at 10:50; the one answered at 10:30 never shows.
    assert r.backlog == [4, 2, 1]


@BOTH_ENGINES
def test_business_hours_over_a_weekend_and_the_fourteenth_of_july(desk, tmp_path):
    wl = write_watchlist(tmp_path, hours=NINE_TO_FIVE, first_response="30m")
    fri = paris(2025, 7, 11, 16, 45)
    b1 = desk.mention(fri)
    desk.act(b1, "reply", paris(2025, 7, 11, 16, 55))  # 600 s, business 600
    b2 = desk.mention(fri)
    desk.act(b2, "reply", paris(2025, 7, 15, 9, 20))  # 3 d 16 h 35 min = 318900 s; business 15 + 20 min
    b3 = desk.mention(paris(2025, 7, 12, 10, 0))
    desk.act(b3, "reply", paris(2025, 7, 12, 10, 30))  # Saturday: 1800 s, business 0 (never open)
    b4 = desk.mention(paris(2025, 7, 13, 22, 0))
    desk.act(b4, "reply", paris(2025, 7, 15, 9, 5))  # 35 h 05 = 126300 s; business 5 min (14 July off)
    r = compute(desk.read(), wl, since=paris(2025, 7, 11), until=paris(2025, 7, 16), now=paris(2025, 7, 16))
    cal, bus = r.first_response.calendar, r.first_response.business
    # Calendar, sorted: 600 1800 126300 318900. median = (1800 + 126300) / 2 = 64050.
    # p90: h = 2.7 -> 126300 + 0.7 * 192600 = 261120. p95: h = 2.85 -> 126300 + 0.85 * 192600 = 290010.
    assert (cal.median, cal.max) == (64050, 318900)
    assert (cal.p90, cal.p95) == (pytest.approx(261120), pytest.approx(290010))
    # Business, sorted: 0 300 600 2100. median 450; p90: h = 2.7 -> 600 + 0.7 * 1500 = 1650;
    # p95: h = 2.85 -> 600 + 0.85 * 1500 = 1875.
    assert (bus.median, bus.p90, bus.p95, bus.max) == (450, pytest.approx(1650), pytest.approx(1875), 2100)
    # Within 30 min: calendar 600 and 1800 (2 of 4); business all but b2's 2100 (3 of 4). Hootsuite's
    # rule: b2's business deadline was Tuesday 09:15 (Monday is a holiday); 09:20 is a breach.
    assert (cal.share, bus.share) == (0.5, 0.75)


@BOTH_ENGINES
def test_clocks_across_both_dst_changes(desk, tmp_path):
    wl = write_watchlist(tmp_path, hours=DESK_HOURS)
    spring = desk.mention(paris(2025, 3, 29, 11, 0))
    desk.act(spring, "reply", paris(2025, 3, 31, 9, 0))
    autumn = desk.mention(paris(2025, 10, 25, 11, 30))
    desk.act(autumn, "reply", paris(2025, 10, 27, 8, 45))
    r = compute(desk.read(), wl, since=paris(2025, 3, 1), until=paris(2025, 11, 1), now=paris(2025, 11, 1))
    # Spring: Saturday 11:00 CET -> Monday 09:00 CEST = 45 h (the 02:00 hour never happened) = 162000 s;
    # business: Saturday 11:00-12:00 + Monday 08:30-09:00 = 5400 s.
    # Autumn: Saturday 11:30 CEST -> Monday 08:45 CET = 46 h 15 min (02:00 happened twice) = 166500 s;
    # business: Saturday 11:30-12:00 + Monday 08:30-08:45 = 2700 s.
    cal, bus = r.first_response.calendar, r.first_response.business
    assert (cal.median, cal.max) == ((162000 + 166500) / 2, 166500)
    assert (bus.median, bus.max) == ((5400 + 2700) / 2, 5400)


@BOTH_ENGINES
def test_the_autumn_night_has_twenty_five_hours_and_both_two_oclocks_are_two_oclock(desk, tmp_path):
    wl = write_watchlist(tmp_path, hours=DESK_HOURS)
    first = paris(2025, 10, 26, 0, 0) + 2 * HOUR + 30 * MIN  # 02:30 CEST (00:30 UTC)
    desk.mention(first)
    desk.mention(first + HOUR)  # 02:30 CET (01:30 UTC), the same wall-clock time again
    r = compute(desk.read(), wl, since=paris(2025, 10, 26), until=paris(2025, 10, 27), now=paris(2025, 10, 28))
    assert len(r.volume) == 25
    assert r.volume[2] == 1 and r.volume[3] == 1
    hours = by_key(r.breakdowns["hour"])
    assert set(hours) == {"02h"} and hours["02h"].mentions == 2
    assert [row.key for row in r.breakdowns["weekday"]] == ["Sun"]
    spring = compute(desk.read(), wl, since=paris(2025, 3, 30), until=paris(2025, 3, 31), now=paris(2025, 4, 1))
    assert len(spring.volume) == 23


@BOTH_ENGINES
def test_a_mention_just_before_midnight_waits_for_the_morning(desk, tmp_path):
    wl = write_watchlist(tmp_path, hours=DESK_HOURS)
    late = desk.mention(paris(2025, 7, 8, 23, 50))
    desk.act(late, "reply", paris(2025, 7, 9, 8, 40))
    r = compute(desk.read(), wl, since=paris(2025, 7, 8), until=paris(2025, 7, 10), now=paris(2025, 7, 10))
    # Calendar 8 h 50 min = 31800 s; business: the clock starts at 08:30 -> 600 s.
    assert (r.first_response.calendar.median, r.first_response.business.median) == (31800, 600)
    assert [row.key for row in r.breakdowns["hour"]] == ["23h"]
    assert [row.key for row in r.breakdowns["weekday"]] == ["Tue"]


@BOTH_ENGINES
def test_period_is_half_open_on_first_seen(desk, tmp_path):
    wl = write_watchlist(tmp_path, hours=DESK_HOURS)
    since, until = paris(2025, 7, 7, 9), paris(2025, 7, 7, 10)
    desk.mention(since)  # in
    desk.mention(until - 1)  # in
    desk.mention(until)  # out
    desk.mention(since - 1)  # out
    r = compute(desk.read(), wl, since=since, until=until, now=until + HOUR)
    assert r.counts["mentions"] == 2


@BOTH_ENGINES
def test_reopen_then_escalate_keeps_the_first_response_and_times_the_standing_escalation(desk, tmp_path):
    wl = write_watchlist(tmp_path, hours=DESK_HOURS)
    t = paris(2025, 7, 7, 10)
    a = desk.mention(t)
    desk.act(a, "reply", t + 5 * MIN, "alice")
    desk.act(a, "reopen", t + 10 * MIN, "bruno")
    desk.act(a, "escalate", t + 20 * MIN, "bruno", service="eau", note="")
    desk.act(a, "resolve", t + 80 * MIN, "bruno", note="")
    b = desk.mention(t + MIN)
    desk.act(b, "escalate", t + 6 * MIN, "alice", service="voirie", note="")
    desk.act(b, "reopen", t + 7 * MIN, "alice")  # undoes the escalation: it never stands
    desk.act(b, "reply", t + 31 * MIN, "alice")
    r = compute(desk.read(), wl, since=t, until=t + 2 * HOUR, now=t + 2 * HOUR)
    # First responses stay 300 s (a, reply) and 300 s (b, the undone escalation still was the answer).
    assert (r.first_response.calendar.n, r.first_response.calendar.median) == (2, 300)
    assert by_key(r.breakdowns["operator"])["alice"].first_response.calendar.n == 2
    # Resolution: only a's escalation stands: 10:20 -> 11:20 = 3600 s.
    assert (r.resolution.calendar.n, r.resolution.calendar.median) == (1, 3600)
    assert [row.key for row in r.breakdowns["service"]] == ["eau"]


@BOTH_ENGINES
def test_closed_without_response_leaves_the_backlog_and_the_percentiles(desk, tmp_path):
    wl = write_watchlist(tmp_path, hours=DESK_HOURS)
    t = paris(2025, 7, 7, 10)
    a = desk.mention(t)
    desk.act(a, "resolve", t + 20 * MIN, "alice", note="duplicate of another")
    r = compute(desk.read(), wl, since=t, until=t + 2 * HOUR, now=t + 2 * HOUR)
    assert r.counts["closed_without_response"] == 1
    assert (r.first_response.calendar.n, r.first_response.open) == (0, 0)
    assert r.backlog == [0, 0]


@BOTH_ENGINES
def test_empty_period_renders_everywhere(desk, tmp_path):
    wl = write_watchlist(tmp_path, hours=DESK_HOURS)
    r = compute(desk.read(), wl, since=paris(2025, 1, 1), until=paris(2025, 1, 2), now=paris(2025, 1, 3))
    assert r.counts["mentions"] == 0 and r.first_response.calendar.median is None
    for fmt in ("table", "csv", "json"):
        assert render(r, fmt)
    with pytest.raises(ValueError):
        compute(desk.read(), wl, since=paris(2025, 1, 2), until=paris(2025, 1, 1))


@BOTH_ENGINES
def test_unknown_breakdown_is_refused(desk, tmp_path):
    wl = write_watchlist(tmp_path, hours=DESK_HOURS)
    with pytest.raises(ValueError, match="unknown breakdown"):
        compute(desk.read(), wl, by=["source", "mood"])
    r = compute(desk.read(), wl, by=["term,operator"], since=0, until=1, now=2)
    assert list(r.breakdowns) == ["term", "operator"]


@BOTH_ENGINES
def test_table_fits_80_columns_and_json_csv_carry_the_same_numbers(desk, tmp_path):
    m = build_monday(desk)
    desk.mention(paris(2025, 7, 7, 10, 50), source="a-very-long-source-name-indeed", remote_id="long")
    assert m
    r = monday_report(desk, tmp_path)
    table = render(r, "table")
    assert max(len(line) for line in table.splitlines()) <= 80
    assert "a-very-long-so…" in table
    data = json.loads(render(r, "json"))
    assert data["first_response"]["calendar"]["median_s"] == 300
    assert data["first_response"]["calendar"]["p90_s"] == 3600
    assert data["counts"]["mentions"] == 14
    assert data["series"]["volume"] == [14, 0, 0]
    rows = list(csv.DictReader(io.StringIO(render(r, "csv"))))
    overall = {(row["section"], row["key"], row["metric"]): row["value"] for row in rows}
    assert float(overall[("first_response", "all", "calendar_median_s")]) == 300
    ops = {row["key"]: row["value"] for row in rows
           if row["dimension"] == "operator" and row["metric"] == "calendar_median_s"
           and row["section"] == "breakdown_first_response"}  # fmt: skip
    assert float(ops["alice"]) == 300 and float(ops["bruno"]) == 600


@BOTH_ENGINES
def test_cli_stats_json_by_and_explain(desk, tmp_path, capsys):
    build_monday(desk)
    wl = write_watchlist(tmp_path, hours=DESK_HOURS)
    args = ["stats", "--watchlist", str(wl.path), "--db", str(desk.target()), "--since", "2025-07-07T10:00",
            "--until", "2025-07-07T12:30"]  # fmt: skip
    assert main([*args, "--format", "json", "--by", "operator", "--by", "source,term"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["city"] == "Testville"  # our watchlist, not one found in the working directory
    assert list(data["breakdowns"]) == ["operator", "source", "term"]
    assert data["first_response"]["calendar"]["median_s"] == 300
    assert main([*args, "--explain"]) == 0
    out = capsys.readouterr().out
    assert "First response" in out and "Linear interpolation" in out and "first_seen_at" in out
    assert max(len(line) for line in out.splitlines()) <= 80
    with pytest.raises(SystemExit) as exc:
        main([*args, "--by", "mood"])
    assert exc.value.code == 2


def test_stats_module_exposes_the_dimensions_cli_offers():
    assert stats.DIMENSIONS == ("source", "term", "service", "operator", "priority", "hour", "weekday")


# -- the stats screen ---------------------------------------------------------------------------


def recent_desk(desk: Desk) -> None:
    """Mentions from the last three hours (the screen asks for periods ending now)."""
    from monitor.core.timeutil import now_ms

    t = now_ms() - 3 * HOUR
    for i in range(12):
        mid = desk.mention(t + i * 10 * MIN, source=("mastodon", "bluesky")[i % 2])
        if i % 3:
            operator = "[@click=app.quit]boom[/]" if i % 3 == 1 else "alice"
            desk.act(mid, "reply", t + i * 10 * MIN + (i + 1) * MIN, operator)


async def test_stats_screen_shows_figures_switches_period_refreshes_and_closes(desk, tmp_path, monkeypatch):
    from textual.app import App
    from textual_plotext import PlotextPlot

    import monitor.ui.screens.stats as screen_module
    from monitor.ui.screens.stats import StatsScreen

    monkeypatch.setattr(screen_module, "REFRESH_S", 0.2)  # the timer re-arms; no need to wait 5 s
    recent_desk(desk)
    wl = write_watchlist(tmp_path, hours=DESK_HOURS)

    class Host(App[None]):
        def on_mount(self) -> None:
            self.push_screen(StatsScreen(desk.path, wl, period="week"))

    app = Host()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, StatsScreen)
        await wait_for(pilot, lambda: screen.snapshot is not None)
        assert screen.snapshot.report.counts["mentions"] == 12
        numbers = str(screen.query_one("#stats-numbers").render())
        assert "12 mentions" in numbers
        assert "[@click=app.quit]boom[/]" in numbers  # shown as text, not run as markup
        assert len(screen.query(PlotextPlot)) == 3
        assert all(len(line) <= 80 for line in numbers.splitlines())
        # A mention arrives: the timer's next computation shows it without a key press.
        desk.mention(desk.conn.execute("SELECT max(first_seen_at) FROM mentions").fetchone()[0] + 1000)
        await wait_for(pilot, lambda: screen.snapshot.report.counts["mentions"] == 13)
        await pilot.press("m")
        await wait_for(pilot, lambda: screen.snapshot.period == "month")
        assert "30 days" in str(screen.query_one("#stats-title").render())
        await pilot.press("t")
        await wait_for(pilot, lambda: screen.snapshot.period == "today")
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, StatsScreen)


async def test_stats_screen_reads_a_postgresql_desk_through_the_same_screen(pg_url, tmp_path, monkeypatch):
    # The screen is given the URL where it is given a path: the database layer picks the reader by engine.
    from textual.app import App

    import monitor.ui.screens.stats as screen_module
    from monitor.core.models import ActionKind, MatchResult, Mention
    from monitor.core.timeutil import from_ms, now_ms
    from monitor.db.pg.store import PgStore
    from monitor.ui.screens.stats import StatsScreen

    monkeypatch.setattr(screen_module, "REFRESH_S", 0.2)
    store = await PgStore.open(pg_url)
    t = now_ms() - HOUR

    def post(i: int) -> tuple[Mention, MatchResult]:
        m = Mention(source="masto", remote_id=f"p{i}", network="mastodon", author="@a", text="Un trou",
                    published_at=from_ms(t))  # fmt: skip
        return m, MatchResult(("voirie",), Priority.NORMAL)

    await store.ingest("masto", [post(i) for i in range(3)], None, seen_at=t)
    first = (await store.changes_since(0))[0].id
    await store.act(first, ActionKind.REPLY, "alice", {"text": "Merci"})
    await store.refresh_digests()
    wl = write_watchlist(tmp_path, hours=DESK_HOURS)

    class Host(App[None]):
        def on_mount(self) -> None:
            self.push_screen(StatsScreen(pg_url, wl, period="week"))

    try:
        app = Host()
        async with app.run_test(size=(80, 24)) as pilot:
            screen = app.screen
            assert isinstance(screen, StatsScreen)
            await wait_for(pilot, lambda: screen.snapshot is not None)
            assert screen.snapshot.report.counts["mentions"] == 3
            assert screen.snapshot.report.first_response.calendar.n == 1
            assert "3 mentions" in str(screen.query_one("#stats-numbers").render())
            await store.ingest("masto", [post(3)], None, seen_at=t + MIN)  # its day is dirty: read live
            await wait_for(pilot, lambda: screen.snapshot.report.counts["mentions"] == 4)
    finally:
        await store.close()


async def test_stats_screen_reports_a_broken_database_and_keeps_running(tmp_path):
    import sqlite3

    from textual.app import App

    from monitor.ui.screens.stats import StatsScreen

    broken = tmp_path / "not-a-db.db"
    broken.write_bytes(b"this is not sqlite" * 100)
    wl = write_watchlist(tmp_path, hours=DESK_HOURS)

    class Host(App[None]):
        def on_mount(self) -> None:
            self.push_screen(StatsScreen(lambda: sqlite3.connect(broken), wl))

    app = Host()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: "unavailable" in str(screen.query_one("#stats-numbers").render()))
        assert app.is_running and isinstance(app.screen, StatsScreen)


@BOTH_ENGINES
def test_texts_the_watchlist_does_not_name_are_grouped_by_their_own_name(desk, tmp_path):
    # Breakdowns read the ids written with each text (migration 7), whatever the watchlist says today:
    # a term since removed from it, and a mention kept without any term (addressed to us), still count.
    build_monday(desk)
    desk.mention(paris(2025, 7, 7, 10, 55), source="demo", terms=("ancien terme", "voirie"), remote_id="x")
    desk.mention(paris(2025, 7, 7, 10, 56), source="demo", terms=(), remote_id="y")
    report = monday_report(desk, tmp_path).as_dict()
    terms = {row["key"]: row["mentions"] for row in report["breakdowns"]["term"]}
    assert terms == {"voirie": 12, "eau": 1, "ancien terme": 1, "(none)": 1}


@BOTH_ENGINES
def test_a_slice_that_learns_names_leaves_the_later_slices_read_with_the_first_codes(desk, tmp_path):
    # Slices of 30 days are all asked for at once, with the names known in advance. The first one holds
    # a term nobody announced: it learns its names and is read again; the slices already asked for
    # still carry the first codes and must be decoded with them.
    wl = write_watchlist(tmp_path, hours=DESK_HOURS)
    day, start = 86_400_000, paris(2025, 1, 6, 10)
    desk.mention(start, source="demo", terms=("ancien terme",))  # unknown in advance
    desk.mention(start + 35 * day, source="demo", terms=("voirie",))  # the second slice: still waiting
    answered = desk.mention(start + 70 * day, source="demo", terms=("eau",))  # the third
    desk.act(answered, "reply", start + 70 * day + 5 * MIN, "alice")
    r = compute(desk.read(), wl, since=start, until=start + 90 * day, now=start + 90 * day)
    counts = {dim: {row.key: row.mentions for row in r.breakdowns[dim]} for dim in ("source", "term", "operator")}
    assert counts == {
        "source": {"demo": 3},
        "term": {"ancien terme": 1, "voirie": 1, "eau": 1},
        "operator": {"alice": 1},
    }


@pytest.mark.parametrize("by_seen", [True, False])
def test_the_inherited_backlog_is_the_same_whichever_end_finds_it(desk, tmp_path, monkeypatch, by_seen):
    # Answered mentions seen before the period are found by first seen (an old period) or by first
    # response (a recent one), whichever range is shorter: both give the hand-checked backlog.
    build_monday(desk)
    expected = monday_report(desk, tmp_path).as_dict()
    monkeypatch.setattr(stats_db, "_carry_sql", lambda conn, since: stats_db.carry_query(by_seen))
    assert monday_report(desk, tmp_path).as_dict() == expected


def test_an_in_memory_database_is_read_serially_with_the_same_result(desk, tmp_path):
    import sqlite3

    build_monday(desk)
    on_file = monday_report(desk, tmp_path).as_dict()
    memory = sqlite3.connect(":memory:", isolation_level=None)
    desk.conn.backup(memory)  # no file for side-by-side readers: the caller's connection reads
    wl = write_watchlist(tmp_path, hours=DESK_HOURS, resolution="4h")
    in_memory = compute(memory, wl, since=paris(2025, 7, 7, 10), until=paris(2025, 7, 7, 12, 30),
                        now=paris(2025, 7, 7, 12, 30)).as_dict()  # fmt: skip
    assert in_memory == on_file


@BOTH_ENGINES
def test_mentions_addressed_to_us_are_counted_with_their_share(desk, tmp_path, capsys):
    ids = [desk.mention(paris(2025, 7, 7, 10, m)) for m in range(4)]
    desk.conn.execute("UPDATE mentions SET to_us = 1 WHERE id = ?", (ids[1],))  # a reply to the city
    wl = write_watchlist(tmp_path)
    r = compute(desk.read(), wl, since=paris(2025, 7, 7, 9), until=paris(2025, 7, 7, 12), now=paris(2025, 7, 7, 12))
    assert r.counts["to_us"] == 1 and r.counts["mentions"] == 4
    assert "addressed to us 1 (25.0%)" in render(r)
    assert json.loads(render(r, "json"))["counts"]["to_us"] == 1
    assert main(["stats", "--watchlist", str(wl.path), "--db", str(desk.target()), "--explain"]) == 0
    assert "Addressed to us" in capsys.readouterr().out


def test_a_database_from_before_migration_seven_gives_the_same_figures_once_migrated(desk, tmp_path):
    # An older file (schema 6: no ids, the statistics index with text columns) is upgraded by migration 7;
    # its statistics are those of the same desk written by this program.
    from monitor.db.store import migrate
    from tests.test_clocks import as_version_6

    build_monday(desk)
    desk.mention(paris(2025, 7, 7, 10, 56), source="demo", terms=("ancien terme", "voirie"), remote_id="x")
    written = monday_report(desk, tmp_path).as_dict()
    as_version_6(desk.conn)
    assert desk.conn.execute("PRAGMA user_version").fetchone()[0] == 6
    migrate(desk.conn)
    assert monday_report(desk, tmp_path).as_dict() == written


def test_monitor_stats_imports_neither_the_screens_nor_the_networks(desk, tmp_path):
    # Process start counts: `monitor stats` loads the statistics, not Textual, httpx or any source.
    import json
    import subprocess
    import sys

    build_monday(desk)
    wl = write_watchlist(tmp_path, hours=DESK_HOURS)
    argv = ["--watchlist", str(wl.path), "stats", "--db", str(desk.path), "--since", "2025-07-07"]
    script = (
        f"import json, sys\nfrom monitor.cli import main\ncode = main({argv!r})\n"
        "print(json.dumps(sorted({m.split('.')[0] if not m.startswith('monitor.') else '.'.join(m.split('.')[:2])"
        " for m in sys.modules})))\nsys.exit(code)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert "monitor.reports" in loaded  # it did compute the statistics
    assert not loaded & {"textual", "rich", "httpx", "feedparser", "bs4", "aiosqlite", "monitor.networks",
                         "monitor.ui", "monitor.engine", "psycopg"}  # fmt: skip


def test_a_period_is_read_from_the_covering_index_of_integers_alone(desk):
    # Migration 7's index holds every column the statistics read: the year is one index scan, no row lookup,
    # no text column, no action (the plan names only the index and the names table's integer key).
    from monitor.db import stats as stats_db

    plan = desk.conn.execute("EXPLAIN QUERY PLAN " + stats_db._ROWS_SQL, {"since": 0, "until": 1}).fetchall()
    details = [row[3] for row in plan]
    assert details[0] == "SEARCH mentions USING COVERING INDEX mentions_stats (first_seen_at>? AND first_seen_at<?)"
    assert all(d.startswith(("SCALAR SUBQUERY", "SEARCH names")) for d in details[1:])
    indexed = {row[2] for row in desk.conn.execute("PRAGMA index_info(mentions_stats)")}
    assert not indexed & {"source", "terms", "first_response_by", "escalated_to"}  # integers only
