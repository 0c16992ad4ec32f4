"""Incidents in the statistics, the HTML report and `monitor export incidents`.

Figures: how many incidents (by status), reports per incident, time to first response per report (every
citizen is owed an answer: an acknowledgement counts), time to resolution per incident. Each is defined
in EXPLAIN, printed by `monitor stats --explain` and in the HTML report.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from html import escape
from typing import IO, Any

from monitor.core.timeutil import iso_utc
from monitor.db.incident_stats import INCIDENT_COLUMNS
from monitor.db.reading import ReadConnection, incidents, reports
from monitor.reports.export import _inert
from monitor.reports.figures import percentile
from monitor.reports.render import fmt_secs

EXPLAIN = """\
Incidents
    An incident groups the mentions (its reports) that are about one problem.
    Incidents are selected by when they were created, in [since, until);
    their reports are counted whenever they were seen. "Incidents" counts
    them by their status now (open, escalated, resolved, dismissed).

Reports per incident
    How many mentions are linked to each incident now (unlinked ones are
    not counted): median, 90th percentile and largest.

First response per report
    For every report of those incidents, from first_seen_at to its first
    response (first_response_at): a reply, an escalation, a dismissal, or
    the incident's acknowledgement to that reporter, whichever came first.
    Each citizen is counted once: an incident of ten reports is ten
    first responses. A report still waiting is "open" and left out of the
    percentiles; one deleted by its author before any response is left out.

Resolution per incident
    From the incident's first report (its earliest first_seen_at) to when
    the incident was resolved. Dismissed incidents are counted apart, not as
    resolved; open and escalated ones are "open".
"""


@dataclass(frozen=True, slots=True)
class Spread:
    n: int = 0
    median: float | None = None
    p90: float | None = None
    largest: float | None = None
    open: int = 0


def spread(values: list[float], open_: int = 0) -> Spread:
    values = sorted(values)
    return Spread(len(values), percentile(values, 50), percentile(values, 90), values[-1] if values else None, open_)


@dataclass(frozen=True, slots=True)
class IncidentFigures:
    by_status: dict[str, int] = field(default_factory=dict)
    reports: Spread = Spread()
    first_response_s: Spread = Spread()
    resolution_s: Spread = Spread()

    @property
    def count(self) -> int:
        return sum(self.by_status.values())


def compute(conn: ReadConnection, since: int, until: int) -> IncidentFigures:
    by_status: dict[str, int] = {s: 0 for s in ("open", "escalated", "resolved", "dismissed")}
    sizes: list[float] = []
    resolution: list[float] = []
    unresolved = 0
    for row in incidents(conn, since, until):
        r = dict(zip(INCIDENT_COLUMNS, row, strict=True))
        by_status[r["status"]] = by_status.get(r["status"], 0) + 1
        sizes.append(r["reports"])
        if r["status"] == "resolved" and r["closed_at"] is not None and r["first_seen_at"] is not None:
            resolution.append(max(0, r["closed_at"] - r["first_seen_at"]) / 1000)
        elif r["status"] in ("open", "escalated"):
            unresolved += 1
    answered: list[float] = []
    waiting = 0
    for _, seen, first, deleted in reports(conn, since, until):
        if first is not None:
            answered.append(max(0, first - seen) / 1000)
        elif deleted is None:
            waiting += 1
    return IncidentFigures(by_status, spread(sizes), spread(answered, waiting), spread(resolution, unresolved))


def _line(title: str, s: Spread, seconds: bool = True) -> str:
    show = fmt_secs if seconds else (lambda v: "—" if v is None else f"{v:g}")
    opened = f", {s.open} open" if seconds else ""
    return f"  {title}: n={s.n}, median {show(s.median)}, p90 {show(s.p90)}, largest {show(s.largest)}{opened}"


def render_text(f: IncidentFigures) -> str:
    statuses = ", ".join(f"{n} {status}" for status, n in f.by_status.items())
    return "\n".join([
        f"Incidents: {f.count} ({statuses})",
        _line("reports per incident", f.reports, seconds=False),
        _line("first response per report", f.first_response_s),
        _line("resolution per incident", f.resolution_s),
    ]) + "\n"  # fmt: skip


def render_html(f: IncidentFigures) -> str:
    """A section for the HTML report (every value escaped)."""
    rows = [
        ("reports per incident", f.reports, False),
        ("first response per report", f.first_response_s, True),
        ("resolution per incident", f.resolution_s, True),
    ]
    cells = []
    for title, s, secs in rows:
        show = fmt_secs if secs else (lambda v: "—" if v is None else f"{v:g}")
        values = [title, s.n, show(s.median), show(s.p90), show(s.largest), s.open if secs else "—"]
        cells.append("<tr>" + "".join(f"<td>{escape(str(v))}</td>" for v in values) + "</tr>")
    statuses = ", ".join(f"{n} {escape(status)}" for status, n in f.by_status.items())
    return (
        f"<h2>Incidents</h2>\n<p>{f.count} incidents ({statuses}).</p>\n<table><thead><tr><th>figure</th><th>n</th>"
        "<th>median</th><th>p90</th><th>largest</th><th>open</th></tr></thead><tbody>\n"
        + "\n".join(cells)
        + f"\n</tbody></table>\n<pre>{escape(EXPLAIN)}</pre>\n"
    )


def with_section(html: str, f: IncidentFigures) -> str:
    """The statistics' HTML report with the incidents' section at the end of its body."""
    head, sep, tail = html.rpartition("</body>")
    return head + render_html(f) + sep + tail if sep else html + render_html(f)


FIELDS = (*INCIDENT_COLUMNS[:8], "reports", "networks", "first_report_at", "first_response_at", "unanswered")


def export(conn: ReadConnection, fmt: str, out: IO[str], since: int, until: int, raw_csv: bool = False) -> int:
    """`monitor export incidents`: one row per incident created in [since, until); times ISO-8601 UTC."""
    writer = csv.writer(out, lineterminator="\r\n") if fmt == "csv" else None
    if writer is not None:
        writer.writerow(FIELDS)
    elif fmt != "jsonl":
        raise ValueError(f"unknown export format {fmt!r}: jsonl or csv")
    count = 0
    for row in incidents(conn, since, until):
        r: dict[str, Any] = dict(zip(FIELDS, row, strict=True))
        for name in ("created_at", "closed_at", "first_report_at", "first_response_at"):
            r[name] = iso_utc(r[name])
        r["networks"] = sorted(n for n in r["networks"].split(",") if n)
        if writer is not None:
            cells = [json.dumps(v) if isinstance(v, list) else ("" if v is None else v) for v in r.values()]
            writer.writerow(cells if raw_csv else [_inert(c) for c in cells])
        else:
            out.write(json.dumps(r, ensure_ascii=False) + "\n")
        count += 1
    return count
