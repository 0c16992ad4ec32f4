"""How an incident looks on the desk: its pane row, a mention's suggestion mark, and its detail.

Titles are drafted from citizens' posts and reports are citizens' posts: every one goes in as `Text`,
never as markup.
"""

from __future__ import annotations

from datetime import tzinfo

from rich.console import Group
from rich.text import Text

from monitor.core.incidents import IncidentDetail, IncidentEvent, IncidentSummary, Progress
from monitor.core.models import ActionKind, MentionRow
from monitor.core.timeutil import fmt_age, fmt_local

NETWORK_SHORT = {"mastodon": "mastdn", "bluesky": "bsky", "feed": "feed", "demo": "demo"}
MARK_WIDTH = 78  # the suggestion line fits 80 columns (the detail's padding takes the rest)
ANSWERING = frozenset(k.value for k in (ActionKind.REPLY, ActionKind.ACKNOWLEDGE, ActionKind.RESOLVE))
REPORTS_SHOWN = 200  # an incident of 1,000 reports: the first ones, and how many more


def networks_cell(networks: tuple[str, ...]) -> str:
    """'mastdn' for one network, '3 nets' for several (the column is 7 cells)."""
    if len(networks) == 1:
        return NETWORK_SHORT.get(networks[0], networks[0])
    return f"{len(networks)} nets"


def incident_cells(summary: IncidentSummary, age_ms: int, expanded: bool = False) -> list[Text]:
    """The pane's columns for an incident: networks, its count of reports, oldest age, term, '#id title'."""
    n = summary.reports
    title = Text("▾ " if expanded else "▸ ", style="bold")
    title.append(f"#{summary.incident.id} ", style="bold")
    title.append(summary.incident.title, style="bold")
    return [
        Text(networks_cell(summary.networks)),
        Text(f"{n} report{'s' if n != 1 else ''}", style="bold"),
        Text(fmt_age(age_ms)),
        Text(summary.lead.term),
        title,
    ]


def suggestion_mark(incident_id: int, title: str, width: int = MARK_WIDTH) -> Text:
    """'likely incident 12: arbre tombé bd Carnot', cut to `width` cells."""
    mark = Text(f"likely incident {incident_id}: ", style="bold cyan")
    mark.append(title)
    mark.truncate(width, overflow="ellipsis")
    return mark


def row_mark(incident_id: int, title: str) -> Text:
    """What a mention's text cell starts with when it has a suggestion: '≈12 arbre tombé… │ '."""
    mark = Text(f"≈{incident_id} ", style="bold cyan")
    short = Text(title)
    short.truncate(16, overflow="ellipsis")
    mark.append_text(short)
    mark.append(" │ ", style="dim")
    return mark


def progress_line(progress: Progress) -> Text:
    """'broadcast: 12 sent · 180 pending · 3 failed' (live: the desk re-reads it while items wait)."""
    line = Text("broadcast: ", style="bold")
    line.append(f"{progress.sent} sent", style="green")
    line.append(" · ")
    line.append(f"{progress.pending} pending", style="yellow" if progress.pending else "")
    line.append(" · ")
    line.append(f"{progress.failed} failed", style="bold red" if progress.failed else "")
    if progress.cancelled:
        line.append(f" · {progress.cancelled} cancelled", style="dim")
    return line


def _answers(history: list[IncidentEvent]) -> dict[int, list[IncidentEvent]]:
    out: dict[int, list[IncidentEvent]] = {}
    for event in history:
        if event.kind in ANSWERING:
            out.setdefault(event.mention_id, []).append(event)
    return out


def describe_event(event: IncidentEvent, authors: dict[int, str]) -> str:
    who = authors.get(event.mention_id, f"M-{event.mention_id:06d}")
    p = event.payload
    if event.kind == ActionKind.LINK:
        moved = f" (moved from incident {p['from']})" if p.get("from") else ""
        return f"linked {who}{moved}"
    if event.kind == ActionKind.UNLINK:
        return f"unlinked {who}"
    if event.kind == ActionKind.ESCALATE:
        return f"escalated {who} to {p.get('service_name') or p.get('service', '?')}"
    if event.kind == ActionKind.DISMISS:
        return f"dismissed {who}: {p.get('reason', '')}"
    if event.kind == ActionKind.NOTE and "renamed" in p:
        return f"renamed: {p['renamed']}"
    if event.kind == ActionKind.NOTE and p.get("on_incident"):
        return f"note: {p.get('text', '')}"
    return f"{event.kind} {who}"


def render_incident(detail: IncidentDetail, zone: tzinfo, now: int) -> Group:
    """Every report (who answered whom), the incident's history, and the broadcast's progress."""
    incident = detail.incident
    head = Text(f"incident {incident.id} ", style="bold")
    head.append(incident.title, style="bold")
    head.append(f"  {incident.status.value}", style="magenta")
    if incident.service:
        head.append(f"  → {incident.service} ({incident.reference})")
    meta = Text(f"created {fmt_local(incident.created_at, zone)} by {incident.created_by}", style="dim")
    meta.append("\no: its reports · e escalate once · r acknowledge all · x resolve · d dismiss", style="dim")
    parts: list[Text] = [head, meta]
    if detail.progress.total:
        parts.append(progress_line(detail.progress))
    answers = _answers(detail.history)
    reports = Text(f"\n{len(detail.reports)} report(s):", style="bold")
    for row in detail.reports[:REPORTS_SHOWN]:
        reports.append(f"\n  {fmt_age(now - row.first_seen_at):>5} ", style="dim")
        reports.append(f"{NETWORK_SHORT.get(row.network, row.network)} {row.author}: ")
        reports.append(row.first_line[:100])
        reports.append_text(_answered(row, answers.get(row.id, []), detail.answered))
    if len(detail.reports) > REPORTS_SHOWN:
        reports.append(f"\n  … and {len(detail.reports) - REPORTS_SHOWN} more (o lists them all)", style="dim")
    parts.append(reports)
    if detail.history:
        authors = {r.id: r.author for r in detail.reports}
        h = Text("\nhistory:", style="bold")
        for event in detail.history[-50:]:
            h.append(f"\n  {fmt_local(event.at, zone)} {event.operator} ", style="dim")
            h.append(describe_event(event, authors))
        parts.append(h)
    return Group(*parts)


def _answered(row: MentionRow, answers: list[IncidentEvent], queued: frozenset[int]) -> Text:
    if answers:
        last = answers[-1]
        return Text(f"\n      ↳ {last.operator} answered {row.author} ({last.kind})", style="green")
    if row.id in queued:
        return Text(f"\n      ↳ a reply to {row.author} is queued", style="yellow")
    return Text("\n      ↳ not answered yet", style="dim")
