"""The selected mention in full: text, who, where, when, terms, thread and history."""

from __future__ import annotations

from datetime import tzinfo

from rich.console import Group
from rich.text import Text
from textual.widgets import Static

from monitor.core.incidents import IncidentDetail
from monitor.core.models import ActionKind, ActionRow, MentionRow
from monitor.core.outbox import DRY_RUN_URL, OutboxItem
from monitor.core.timeutil import fmt_duration, fmt_local, now_ms
from monitor.ui.widgets.incident import render_incident, suggestion_mark

STATUS_STYLE = {"new": "bold", "escalated": "magenta", "done": "green", "dismissed": "dim"}


def describe_action(action: ActionRow) -> str:
    p = action.payload
    if action.kind is ActionKind.REPLY:
        where = f" (answered elsewhere: {p['elsewhere']})" if p.get("elsewhere") else ""
        return f"replied{where}: {p.get('text', '')}"
    if action.kind is ActionKind.ESCALATE:
        note = f" — {p['note']}" if p.get("note") else ""
        return f"escalated to {p.get('service_name') or p.get('service', '?')}{note}"
    if action.kind is ActionKind.DISMISS:
        return f"dismissed: {p.get('reason', '')}"
    if action.kind is ActionKind.RESOLVE:
        reply = f" — follow-up: {p['reply']}" if p.get("reply") else ""
        return f"resolved{(': ' + p['note']) if p.get('note') else ''}{reply}"
    if action.kind is ActionKind.NOTE:
        return f"note: {p.get('text', '')}"
    if action.kind is ActionKind.LINK:
        moved = f" (moved from incident {p['from']})" if p.get("from") else ""
        return f"linked to incident {p.get('incident', '?')}{moved}"
    if action.kind is ActionKind.UNLINK:
        return f"unlinked from incident {p.get('incident', '?')}"
    if action.kind is ActionKind.ACKNOWLEDGE:
        return f"acknowledged: {p.get('text', '')}"
    return f"reopened (was {p.get('from', '?')})"


DELIVERY_STYLE = {"pending": "yellow", "sending": "yellow", "sent": "green", "failed": "bold red"}


def describe_delivery(item: OutboxItem) -> Text:
    """One line per outbox item: where it goes and what became of it (never a secret, never markup)."""
    t = Text("  ")
    t.append(f"{item.kind} → {item.target.split(':', 1)[1]}: ", style="dim")
    if item.state == "sent" and item.remote_url == DRY_RUN_URL:
        t.append("DRY-RUN: nothing sent", style="bold yellow")
        return t
    t.append(item.state, style=DELIVERY_STYLE.get(item.state, ""))
    if item.state == "sent":
        if item.remote_url:
            t.append(" " + item.remote_url)
        elif item.remote_id:
            t.append(f" (id {item.remote_id})")
        if item.remote_status:
            t.append(f" · request {item.remote_status}" + (f": {item.last_error}" if item.last_error else ""))
    elif item.state == "failed":
        t.append(f": {item.last_error}  (ctrl+r retry · ctrl+k cancel)")
    elif item.attempts and item.last_error:
        t.append(f" — {item.last_error}")
    return t


def render_detail(
    row: MentionRow,
    actions: list[ActionRow],
    thread: list[MentionRow],
    zone: tzinfo,
    deliveries: list[OutboxItem] | None = None,
) -> Group:
    """Every string from a stranger goes in as Text, never as markup."""
    head = Text()
    head.append(row.author, style="bold")
    if row.author_name:
        head.append(f" ({row.author_name})")
    head.append(f"  {row.source}/{row.network}  ", style="dim")
    head.append(row.priority.label, style="bold red" if row.priority == 0 else "")
    head.append("  ")
    head.append(row.status.value, style=STATUS_STYLE.get(row.status.value, ""))
    if row.to_us:
        head.append("  addressed to us", style="bold cyan")
    if row.deleted_at:
        head.append("  DELETED by its author " + fmt_local(row.deleted_at, zone), style="bold red")
    if row.edited_at:
        head.append("  edited " + fmt_local(row.edited_at, zone), style="yellow")

    meta = Text(style="dim")
    meta.append(f"published {fmt_local(row.published_at, zone)} · first seen {fmt_local(row.first_seen_at, zone)}")
    if row.first_response_at is not None:
        meta.append(f" · first response after {fmt_duration(row.first_response_at - row.first_seen_at)}")
    meta.append("\nterms: " + ", ".join(row.terms))
    if row.url:
        meta.append("\n" + row.url)

    parts: list[Text] = [head, meta, Text(""), Text(row.text)]
    if thread or row.reply_to:
        t = Text("\nthread: ", style="bold")
        t.append(f"{len(thread)} other mention(s) in this conversation" if thread else "reply to an unseen post")
        for other in thread[:5]:
            t.append(f"\n  {other.author}: ", style="dim")
            t.append(other.first_line[:100])
        parts.append(t)
    if actions:
        h = Text("\nhistory:", style="bold")
        for action in actions:
            h.append(f"\n  {fmt_local(action.at, zone)} {action.operator} ", style="dim")
            h.append(describe_action(action))
        parts.append(h)
    if deliveries:
        d = Text("\ndelivery:", style="bold")
        for item in deliveries:
            d.append("\n")
            d.append_text(describe_delivery(item))
        parts.append(d)
    return Group(*parts)


class MentionDetail(Static):
    DEFAULT_CSS = ""

    def show(
        self,
        row: MentionRow | None,
        actions: list[ActionRow],
        thread: list[MentionRow],
        zone: tzinfo,
        deliveries: list[OutboxItem] | None = None,
        claimed: str = "",
        related: list[tuple[float, MentionRow]] | None = None,
        incident: IncidentDetail | None = None,
        likely: str = "",
    ) -> None:
        if incident is not None:  # an incident's row: every report, its history, its broadcast
            self.update(render_incident(incident, zone, now_ms()))
            return
        if row is None:
            self.update(Text("No mention selected.", style="dim"))
            return
        body = render_detail(row, actions, thread, zone, deliveries)
        if likely and row.suggested_incident is not None and row.incident_id is None:
            mark = suggestion_mark(row.suggested_incident, likely)
            body = Group(mark, Text("a links it · m picks another", style="dim"), body)
        if related:
            same = Text("\npossibly the same incident (open):", style="bold")
            for _, other in related:
                same.append(f"\n  M-{other.id:06d} {other.author}: ", style="dim")
                same.append(other.first_line[:100])
            body = Group(body, same)
        if claimed:
            body = Group(Text(f"✎ {claimed} — r asks before taking over", style="bold yellow"), body)
        self.update(body)
