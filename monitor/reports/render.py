"""The statistics as text: an 80-column table, CSV in long format, or JSON (`monitor stats --format`)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

from monitor.core.timeutil import fmt_duration, fmt_local, hourly_offsets, iso_utc
from monitor.reports.figures import DAY_MS, HIST_LABELS, HOUR_MS, Clock, GroupRow, Report


def render(report: Report, fmt: str = "table") -> str:
    if fmt == "json":
        return json.dumps(report.as_dict(), ensure_ascii=False, indent=2) + "\n"
    if fmt == "csv":
        return render_csv(report)
    if fmt == "table":
        return render_table(report)
    raise ValueError(f"unknown format {fmt!r}: table, csv or json")


def fmt_share(share: float | None) -> str:
    return "—" if share is None else f"{share * 100:.1f}%"


def fmt_secs(seconds: float | None) -> str:
    """5m00s, 2h05m; past two days 3d04h (hours of waiting in the thousands read badly)."""
    if seconds is not None and seconds >= 172_800:
        days, rest = divmod(int(round(seconds)), 86_400)
        return f"{days}d{rest // 3600:02d}h"
    return fmt_duration(None if seconds is None else seconds * 1000)


def period_text(report: Report) -> str:
    zone = ZoneInfo(report.timezone)
    until = min(report.until, report.generated_at)
    return f"{fmt_local(report.since, zone)} → {fmt_local(until, zone)} ({report.timezone})"


def clock_lines(title: str, clock: Clock, target: int | None) -> list[str]:
    """A clock as text lines of at most 80 columns."""
    head = f"{title} (target {fmt_secs(target) if target is not None else 'none'})"
    lines = [f"{head:<36}{'calendar':>14}{'business':>14}"]
    cal, bus = clock.calendar, clock.business
    for name, a, b in (
        ("finished", str(cal.n), ""),
        ("median", fmt_secs(cal.median), fmt_secs(bus.median)),
        ("p90", fmt_secs(cal.p90), fmt_secs(bus.p90)),
        ("p95", fmt_secs(cal.p95), fmt_secs(bus.p95)),
        ("max", fmt_secs(cal.max), fmt_secs(bus.max)),
        ("within target", fmt_share(cal.share), fmt_share(bus.share)),
        ("open past target", str(cal.late_open), str(bus.late_open)),
    ):
        lines.append(f"  {name:<34}{a:>14}{b:>14}")
    oldest = ""
    if clock.open:
        oldest = f", oldest {fmt_secs(clock.oldest_open)} (business {fmt_secs(clock.oldest_open_business)})"
    lines.append(f"  open now: {clock.open}{oldest}")
    return lines


BREAKDOWN_HEADER = f"{'':<16}{'mentions':>8}{'answered':>9}{'open':>6}{'median':>9}{'p90':>9}"
BREAKDOWN_HEADER += f"{'in tgt':>7}{'biz':>7}{'resolved':>9}"


def breakdown_line(row: GroupRow) -> str:
    fr, res = row.first_response, row.resolution
    key = row.key if len(row.key) <= 15 else row.key[:14] + "…"
    return (
        f"{key:<16}{row.mentions:>8}{fr.calendar.n:>9}{fr.open:>6}{fmt_secs(fr.calendar.median):>9}"
        f"{fmt_secs(fr.calendar.p90):>9}{fmt_share(fr.calendar.share):>7}{fmt_share(fr.business.share):>7}"
        f"{fmt_secs(res.calendar.median):>9}"
    )


def render_table(report: Report) -> str:
    c = report.counts
    out = [
        f"{report.city}: statistics",
        period_text(report),
        "",
        f"Mentions {c['mentions']}: new {c['new']}, escalated {c['escalated']}, done {c['done']}, "
        f"dismissed {c['dismissed']}",
        f"  edited {c['edited']}, deleted {c['deleted']} ({c['deleted_before_response']} before any"
        f" response), closed without response {c['closed_without_response']}",
        f"  addressed to us {c['to_us']} ({fmt_share(c['to_us'] / c['mentions'] if c['mentions'] else None)})",
        "",
        *clock_lines("First response", report.first_response, report.target_first_response),
        "",
        *clock_lines("Resolution", report.resolution, report.target_resolution),
        "",
        "First response histogram (calendar / business)",
    ]
    hc, hb = report.first_response.calendar.histogram, report.first_response.business.histogram
    for label, a, b in zip(HIST_LABELS, hc, hb, strict=True):
        out.append(f"  {label:<8}{a:>9}{b:>9}")
    if report.breakdowns:
        out += [
            "",
            "Breakdowns: median and p90 of the first response; in tgt / biz: within target in",
            "calendar / business time; resolved: median resolution.",
        ]
    for dim, rows in report.breakdowns.items():
        out += ["", f"By {dim}"]
        out.append(BREAKDOWN_HEADER)
        out += [breakdown_line(row) for row in rows] or ["  (nothing)"]
    out += ["", *series_lines(report)]
    out += spend_lines(report)
    return "\n".join(out) + "\n"


def fmt_usd(usd: float | None) -> str:
    return "—" if usd is None else f"${usd:,.2f}" if usd >= 1 or usd == 0 else f"${usd:.3f}"


def spend_lines(report: Report) -> list[str]:
    """What paid networks cost (UTC months the period touches) and per mention answered with a reply."""
    if not report.spend:
        return []
    head = f"{'source':<16}{'reads':>10}{'replies':>10}{'paid':>6}{'total':>10}{'answered':>10}{'per answer':>12}"
    out = ["", "Spend on paid networks (the whole UTC months this period touches)", head]
    for row in report.spend:
        key = row.source if len(row.source) <= 15 else row.source[:14] + "…"
        out.append(
            f"{key:<16}{fmt_usd(row.reads_usd):>10}{fmt_usd(row.writes_usd):>10}{row.writes:>6}"
            f"{fmt_usd(row.total):>10}{row.answered:>10}{fmt_usd(row.per_answered):>12}"
        )
    return out


def series_rows(report: Report) -> list[tuple[int, int, int]]:
    """(bucket start ms, volume, backlog): hourly for up to two days, else daily (volume summed, backlog at
    the end of the day) so the table stays readable."""
    zone = ZoneInfo(report.timezone)
    pairs = zip(report.volume, report.backlog, strict=True)
    rows = [(report.series_start + i * HOUR_MS, v, b) for i, (v, b) in enumerate(pairs)]
    if len(rows) <= 48:
        return rows
    days: dict[int, list[int]] = {}
    for (start, v, b), offset in zip(rows, hourly_offsets(report.series_start, len(rows), zone), strict=True):
        day = (start + offset) // DAY_MS  # the local date, as days since the epoch
        if day not in days:
            days[day] = [start, 0, 0]
        days[day][1] += v
        days[day][2] = b
    return [(s, v, b) for s, v, b in days.values()]


def series_lines(report: Report) -> list[str]:
    zone = ZoneInfo(report.timezone)
    rows = series_rows(report)
    hourly = len(rows) == len(report.volume)
    unit = "hour" if hourly else "day"
    out = [f"{unit:<18}{'seen':>8}{'waiting':>9}  (waiting: at the end of the {unit})"]
    for start, v, b in rows:
        when = fmt_local(start, zone)[:16] if hourly else fmt_local(start, zone)[:10]
        out.append(f"{when:<18}{v:>8}{b:>9}")
    return out


def csv_rows(report: Report) -> Iterator[tuple[str, str, str, str, Any]]:
    """Long format: section, dimension, key, metric, value (one figure a line, for spreadsheets)."""
    yield ("period", "", "", "since", iso_utc(report.since))
    yield ("period", "", "", "until", iso_utc(report.until))
    yield ("period", "", "", "timezone", report.timezone)
    for name, n in report.counts.items():
        yield ("counts", "", "", name, n)

    def clock(section: str, dim: str, key: str, c: Clock) -> Iterator[tuple[str, str, str, str, Any]]:
        for kind, d in (("calendar", c.calendar), ("business", c.business)):
            for metric, value in (
                ("n", d.n), ("median_s", d.median), ("p90_s", d.p90), ("p95_s", d.p95), ("max_s", d.max),
                ("share_within_target", d.share), ("open_past_target", d.late_open),
            ):  # fmt: skip
                yield (section, dim, key, f"{kind}_{metric}", "" if value is None else value)
        yield (section, dim, key, "open", c.open)
        yield (section, dim, key, "oldest_open_s", "" if c.oldest_open is None else c.oldest_open)

    yield from clock("first_response", "", "all", report.first_response)
    yield from clock("resolution", "", "all", report.resolution)
    for dim, rows in report.breakdowns.items():
        for row in rows:
            yield ("breakdown", dim, row.key, "mentions", row.mentions)
            yield from clock("breakdown_first_response", dim, row.key, row.first_response)
            yield from clock("breakdown_resolution", dim, row.key, row.resolution)
    for paid in report.spend:
        for metric, value in paid.as_dict().items():
            if metric != "source":
                yield ("spend", "source", paid.source, metric, "" if value is None else value)
    for i, (v, b) in enumerate(zip(report.volume, report.backlog, strict=True)):
        at = iso_utc(report.series_start + i * HOUR_MS) or ""
        yield ("series", "hour", at, "volume", v)
        yield ("series", "hour", at, "backlog", b)


def render_csv(report: Report) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(("section", "dimension", "key", "metric", "value"))
    writer.writerows(csv_rows(report))
    return buf.getvalue()
