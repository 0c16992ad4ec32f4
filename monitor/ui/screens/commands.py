"""Ctrl+P: the desk's own commands in Textual's command palette.

Every key of the desk (actions, panes, stats, handover, help), filters by term, source, network and
priority, a filter on any words typed, and an export of the current pane to CSV.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content

from monitor.core.models import Priority
from monitor.ui.screens.help import key_display

if TYPE_CHECKING:
    from monitor.ui.screens.main import MainScreen

NETWORKS = ("mastodon", "bluesky", "feed", "x")
Command = tuple[str, Callable[[], Any], str]
INCIDENT_COMMANDS = (
    ("Incident: escalate once", "escalate"), ("Incident: acknowledge all", "reply"),
    ("Incident: resolve and follow up all", "resolve"), ("Incident: dismiss with one reason", "dismiss_mention"),
)  # fmt: skip


def desk_commands(screen: MainScreen) -> list[Command]:
    """(name, callback, help) for everything the palette offers on the desk."""
    keymap = screen.monitor.watchlist.keys
    commands: list[Command] = []
    for binding in screen.BINDINGS:
        if not isinstance(binding, tuple) and binding.id and binding.description:
            key = ", ".join(key_display(k.strip()) for k in keymap.get(binding.id, binding.key).split(","))
            name = f"Pane: {binding.description}" if binding.id.startswith("pane.") else binding.description
            commands.append((name, partial(screen.run_action, binding.action), f"key {key}"))
    for name, action in INCIDENT_COMMANDS:
        commands.append((name, partial(screen.run_action, action), "on an incident's row: every report at once"))
    commands.append(
        ("Export this pane to CSV", screen.export_pane, "the pane's rows, past its window too, filter included")
    )
    watchlist = screen.monitor.watchlist
    filters = [(f"term:{t.name}", "term") for t in watchlist.terms]
    filters += [(f"source:{s.name}", "source") for s in watchlist.sources]
    filters += [(f"source:{n}", "network") for n in NETWORKS]
    filters += [(f"prio:{p.label}", "priority") for p in Priority]
    for query, kind in filters:
        commands.append((f"Filter: {query}", partial(screen.apply_filter, query), f"show only this {kind}"))
    commands.append(("Filter: clear", partial(screen.apply_filter, ""), "show every mention"))
    return commands


class DeskCommands(Provider):
    def _commands(self) -> list[Command]:
        from monitor.ui.screens.main import MainScreen

        return desk_commands(self.screen) if isinstance(self.screen, MainScreen) else []

    async def discover(self) -> Hits:
        for name, callback, help_text in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        commands = self._commands()
        for name, callback, help_text in commands:
            if (score := matcher.match(name)) > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)
        words = query.strip()
        if commands and words:  # any words typed: filter the panes by them, at the bottom of the list
            label = Content(f"Filter: words “{words}”")  # typed text is never markup
            apply = partial(self.screen.apply_filter, words)  # type: ignore[attr-defined]
            yield Hit(0.01, label, apply, text=f"Filter: {words}", help="show only mentions holding these words")
