"""`monitor report --html`: one self-contained page (no CDN, no script) with the tables and inline SVG charts.

Every piece of text goes through html.escape: terms, operators, services and sources come from data.
"""

from __future__ import annotations

from html import escape
from zoneinfo import ZoneInfo

from monitor.core.timeutil import fmt_local
from monitor.reports.explain import EXPLAIN
from monitor.reports.figures import HIST_LABELS, Clock, GroupRow, Report
from monitor.reports.render import fmt_secs, fmt_share, fmt_usd, period_text, series_rows

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 980px; color: #1d2330;
       padding: 0 1em; }
h1 { font-size: 1.5em; margin-bottom: 0; }
h2 { font-size: 1.15em; margin-top: 2em; border-bottom: 1px solid #ccd; }
.muted { color: #5b6475; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { padding: .2em .7em; text-align: right; border-bottom: 1px solid #e3e6ee; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #f2f4f8; }
svg { display: block; margin: .5em 0; max-width: 100%; height: auto; }
svg text { font: 11px system-ui, sans-serif; fill: #3a4254; }
.cal { fill: #3b6fd8; } .bus { fill: #f0a020; } .line { fill: none; stroke: #c2410c; stroke-width: 1.5; }
.area { fill: #c2410c; opacity: .12; } .axis { stroke: #99a; stroke-width: 1; }
pre { background: #f6f7fa; padding: 1em; overflow-x: auto; font-size: 12.5px; }
"""


def esc(value: object) -> str:
    return escape(str(value), quote=True)


def _table(head: list[str], rows: list[list[object]], caption: str = "") -> str:
    out = ["<table>"]
    if caption:
        out.append(f"<caption class=muted>{esc(caption)}</caption>")
    out.append("<thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def _clock_table(title: str, clock: Clock, target: int | None) -> str:
    cal, bus = clock.calendar, clock.business
    rows: list[list[object]] = [
        ["finished", cal.n, bus.n],
        ["median", fmt_secs(cal.median), fmt_secs(bus.median)],
        ["p90", fmt_secs(cal.p90), fmt_secs(bus.p90)],
        ["p95", fmt_secs(cal.p95), fmt_secs(bus.p95)],
        ["max", fmt_secs(cal.max), fmt_secs(bus.max)],
        ["within target", fmt_share(cal.share), fmt_share(bus.share)],
        ["open past target", cal.late_open, bus.late_open],
        ["open now", clock.open, ""],
        ["oldest open", fmt_secs(clock.oldest_open), fmt_secs(clock.oldest_open_business)],
    ]
    target_text = fmt_secs(target) if target is not None else "none"
    return f"<h2>{esc(title)}</h2>" + _table(["", "calendar", "business"], rows, f"target {target_text}")


def _breakdown_table(dim: str, rows: list[GroupRow]) -> str:
    head = ["", "mentions", "answered", "open", "median", "p90", "p95", "in target", "business in target",
            "escalations resolved", "resolution median", "resolution p90"]  # fmt: skip
    body: list[list[object]] = []
    for r in rows:
        fr, res = r.first_response, r.resolution
        cal = fr.calendar
        body.append([
            r.key, r.mentions, cal.n, fr.open, fmt_secs(cal.median), fmt_secs(cal.p90), fmt_secs(cal.p95),
            fmt_share(cal.share), fmt_share(fr.business.share), res.calendar.n,
            fmt_secs(res.calendar.median), fmt_secs(res.calendar.p90),
        ])  # fmt: skip
    return f"<h2>By {esc(dim)}</h2>" + _table(head, body)


def svg_histogram(labels: tuple[str, ...], calendar: tuple[int, ...], business: tuple[int, ...]) -> str:
    """Grouped bars: calendar and business first-response times per bin."""
    width, height, left, bottom, top = 760, 240, 48, 30, 16
    plot_h = height - bottom - top
    peak = max([*calendar, *business, 1])
    slot = (width - left - 10) / len(labels)
    bar = slot * 0.38
    parts = [_svg_open(width, height, "First-response time histogram, calendar and business time")]
    parts += _y_axis(left, top, plot_h, peak, width)
    for i, label in enumerate(labels):
        x = left + i * slot + slot * 0.1
        for j, (value, cls) in enumerate(((calendar[i], "cal"), (business[i], "bus"))):
            h = plot_h * value / peak
            parts.append(
                f'<rect class="{cls}" x="{x + j * bar:.1f}" y="{top + plot_h - h:.1f}" width="{bar:.1f}" '
                f'height="{h:.1f}"><title>{esc(label)}: {value}</title></rect>'
            )
        parts.append(f'<text x="{x + bar:.1f}" y="{height - 10}" text-anchor="middle">{esc(label)}</text>')
    parts.append(
        f'<rect class="cal" x="{width - 190}" y="4" width="10" height="10"/>'
        f'<text x="{width - 176}" y="13">calendar</text>'
        f'<rect class="bus" x="{width - 110}" y="4" width="10" height="10"/>'
        f'<text x="{width - 96}" y="13">business</text>'
    )
    parts.append("</svg>")
    return "\n".join(parts)


def svg_series(report: Report, which: str) -> str:
    """Volume (bars) or backlog (line) over the period: hourly up to two days, else daily."""
    zone = ZoneInfo(report.timezone)
    rows = series_rows(report)
    hourly = len(rows) == len(report.volume)
    values = [v for _, v, _ in rows] if which == "volume" else [b for _, _, b in rows]
    width, height, left, bottom, top = 760, 220, 48, 34, 12
    plot_w, plot_h = width - left - 10, height - bottom - top
    peak = max([*values, 1])
    step = plot_w / max(1, len(values))
    unit = "hour" if hourly else "day"
    title = f"Mentions first seen per {unit}" if which == "volume" else f"Mentions waiting at the end of each {unit}"
    parts = [_svg_open(width, height, title)]
    parts += _y_axis(left, top, plot_h, peak, width)
    if which == "volume":
        for i, (start, v, _) in enumerate(rows):
            h = plot_h * v / peak
            when = fmt_local(start, zone)[: 16 if hourly else 10]
            parts.append(
                f'<rect class="cal" x="{left + i * step:.1f}" y="{top + plot_h - h:.1f}" '
                f'width="{max(step * 0.85, 0.5):.1f}" height="{h:.1f}"><title>{esc(when)}: {v}</title></rect>'
            )
    else:
        points = " ".join(
            f"{left + (i + 0.5) * step:.1f},{top + plot_h - plot_h * v / peak:.1f}" for i, v in enumerate(values)
        )
        parts.append(f'<polyline class="line" points="{points}"/>')
        if values:
            area = f"{left + 0.5 * step:.1f},{top + plot_h} {points} {left + (len(values) - 0.5) * step:.1f},"
            parts.append(f'<polygon class="area" points="{area}{top + plot_h}"/>')
    ticks = max(1, len(rows) // 8)
    for i in range(0, len(rows), ticks):
        when = fmt_local(rows[i][0], zone)
        label = when[11:16] if hourly else when[5:10]
        x = left + (i + 0.5) * step
        parts.append(f'<text x="{x:.1f}" y="{height - 14}" text-anchor="middle">{esc(label)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _svg_open(width: int, height: int, title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img"><title>{esc(title)}</title>'
    )


def _y_axis(left: int, top: int, plot_h: int, peak: int, width: int) -> list[str]:
    out = [
        f'<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}"/>',
        f'<line class="axis" x1="{left}" y1="{top + plot_h}" x2="{width - 10}" y2="{top + plot_h}"/>',
    ]
    for frac in (0, 0.5, 1):
        y = top + plot_h - plot_h * frac
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{round(peak * frac)}</text>')
    return out


def render_html(report: Report) -> str:
    c = report.counts
    counts = _table(
        ["mentions", "new", "escalated", "done", "dismissed", "edited", "deleted", "deleted before response"],
        [[c["mentions"], c["new"], c["escalated"], c["done"], c["dismissed"], c["edited"], c["deleted"],
          c["deleted_before_response"]]],
    )  # fmt: skip
    generated = fmt_local(report.generated_at, ZoneInfo(report.timezone))
    body = [
        f"<h1>{esc(report.city)}: response statistics</h1>",
        f"<p class=muted>{esc(period_text(report))}. Generated {esc(generated)}."
        " Mentions are selected by when monitor first saw them.</p>",
        "<h2>Mentions</h2>",
        counts,
        _clock_table("First response", report.first_response, report.target_first_response),
        svg_histogram(HIST_LABELS, report.first_response.calendar.histogram, report.first_response.business.histogram),
        _clock_table("Resolution (escalation to fix or closing)", report.resolution, report.target_resolution),
        "<h2>Volume</h2>",
        svg_series(report, "volume"),
        "<h2>Backlog</h2>",
        svg_series(report, "backlog"),
    ]
    body += [_breakdown_table(dim, rows) for dim, rows in report.breakdowns.items()]
    if report.spend:
        rows = [[r.source, fmt_usd(r.reads_usd), fmt_usd(r.writes_usd), r.writes, fmt_usd(r.total), r.answered,
                 fmt_usd(r.per_answered)] for r in report.spend]  # fmt: skip
        head = ["source", "reads", "replies", "replies paid", "total", "answered", "per answered mention"]
        body += ["<h2>Spend on paid networks</h2>", _table(head, rows, "the whole UTC months this period touches")]
    body += ["<h2>Definitions</h2>", f"<pre>{esc(EXPLAIN)}</pre>"]
    return (
        "<!DOCTYPE html>\n<html lang=en>\n<head>\n<meta charset=utf-8>\n"
        '<meta name=viewport content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(report.city)}: response statistics</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )
