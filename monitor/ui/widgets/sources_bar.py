"""One line: each source's state at a glance (live, polling, backing off until, failing) and last success."""

from __future__ import annotations

from datetime import tzinfo

from rich.text import Text
from textual.visual import VisualType
from textual.widgets import Static

from monitor.core.timeutil import fmt_age, fmt_local, now_ms
from monitor.engine.collector import SourceStatus

FAR_MS = 12 * 3600 * 1000
MARKS = {
    "live": ("●", "green"),
    "polling": ("●", "green"),
    "backoff": ("◌", "yellow"),
    "failing": ("✖", "bold red"),
    "idle": ("○", "dim"),
}


def render_sources(statuses: list[SourceStatus], zone: tzinfo, notice: str = "", lead: str = "") -> Text:
    """`lead` (the active filter, a fault) comes first: it must stay visible when the line is cut."""
    line = Text(no_wrap=True, overflow="ellipsis")
    if lead:
        line.append(lead, style="bold reverse")
        line.append("  │ " if statuses or notice else "", style="dim")
    now = now_ms()
    for i, st in enumerate(statuses):
        if i:
            line.append("  │ ", style="dim")
        mark, style = MARKS.get(st.state, ("?", ""))
        line.append(f"{mark} ", style=style)
        line.append(st.name, style="bold")
        if st.state == "backoff" and st.until_ms:
            far = st.until_ms - now > FAR_MS  # a server may ask for up to a day: say which day
            line.append(f" backing off until {fmt_local(st.until_ms, zone, with_date=far)}", style="yellow")
        elif st.state == "failing":
            line.append(" failing", style="bold red")
        else:
            line.append(f" {st.state}")
        if st.detail:
            line.append(f" ({st.detail})", style=style)
        if st.last_ok_ms:
            line.append(f" ok {fmt_age(now - st.last_ok_ms)} ago", style="dim")
    if notice:
        line.append("  │ " if statuses else "", style="dim")
        line.append(notice, style="bold yellow")
    return line


class SourcesBar(Static):
    """One line high (styles/app.tcss): a new text is a repaint of the line, never a layout of the screen,
    and the same text again (the clock tick redraws it every second) is nothing at all."""

    _shown: VisualType | None = None

    def update(self, content: VisualType = "", *, layout: bool = False) -> None:
        if content == self._shown:
            return
        self._shown = content
        super().update(content, layout=layout)
