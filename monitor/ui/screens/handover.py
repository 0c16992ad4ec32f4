"""`h`: what happened since I last left — new, escalated, resolved, SLA breaches, who acted."""

from __future__ import annotations

from datetime import tzinfo

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.binding import Binding

from monitor.core.timeutil import fmt_age, fmt_local
from monitor.db.api import Handover
from monitor.ui.screens.help import ReadingScreen


def render_handover(h: Handover, zone: tzinfo, now: int) -> Group:
    head = Text(f"Since {fmt_local(h.since, zone)} ({fmt_age(now - h.since)} ago)", style="bold")
    counts = Text(
        f"{h.new} new mentions · {h.escalated} escalated · {h.resolved} resolved · "
        f"{len(h.breaches)}{'+' if len(h.breaches) >= 20 else ''} past the first-response target"
    )
    parts: list[object] = [head, counts]
    if h.still_open:
        t = Table(title="Still waiting", title_justify="left", box=None, expand=True)
        t.add_column("prio", no_wrap=True)
        t.add_column("age", no_wrap=True)
        t.add_column("author", no_wrap=True, max_width=20)
        t.add_column("text", no_wrap=True, overflow="ellipsis")
        for m in h.still_open:
            t.add_row(
                Text(m.priority.label),
                Text(fmt_age(now - m.first_seen_at)),
                Text(m.author),
                Text(m.first_line),
            )
        parts.append(t)
    if h.breaches:
        t = Table(title="Past the target", title_justify="left", box=None, expand=True)
        t.add_column("first seen", no_wrap=True)
        t.add_column("author", no_wrap=True, max_width=20)
        t.add_column("text", no_wrap=True, overflow="ellipsis")
        for m in h.breaches:
            t.add_row(Text(fmt_local(m.first_seen_at, zone, with_date=False)), Text(m.author), Text(m.first_line))
        parts.append(t)
    if h.by_operator:
        t = Table(title="Who acted", title_justify="left", box=None, expand=True)
        t.add_column("operator")
        t.add_column("actions")
        for operator, kinds in h.by_operator.items():
            t.add_row(Text(operator), Text(", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))))
        parts.append(t)
    else:
        parts.append(Text("Nobody acted in this period.", style="dim"))
    return Group(*parts)  # type: ignore[arg-type]


class HandoverScreen(ReadingScreen):
    BINDINGS = [Binding("h", "close", "Close", id="handover.close")]
    TITLE_TEXT = "Shift handover"

    def __init__(self, handover: Handover, zone: tzinfo, now: int) -> None:
        super().__init__()
        self.handover, self.zone, self.now = handover, zone, now

    def body(self) -> RenderableType:
        return render_handover(self.handover, self.zone, self.now)
