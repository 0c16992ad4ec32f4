"""The duty desk: source states, panes by status, the selected mention, and the operator's keys."""

from __future__ import annotations

from dataclasses import replace

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import ContentSwitcher, Tab, Tabs

from monitor.core.filtering import PaneFilter
from monitor.core.models import Status
from monitor.core.timeutil import now_ms, td_ms
from monitor.engine import desk
from monitor.ui.screens import grouping
from monitor.ui.screens.commands import DeskCommands
from monitor.ui.screens.desk_incidents import DeskIncidents
from monitor.ui.screens.desk_panes import PANES, REFRESH_SECONDS
from monitor.ui.screens.dialogs import FilterDialog
from monitor.ui.screens.guard import guarded
from monitor.ui.screens.handover import HandoverScreen
from monitor.ui.screens.help import HelpScreen, binding_rows
from monitor.ui.screens.view import MentionView
from monitor.ui.widgets.detail import MentionDetail
from monitor.ui.widgets.footer import DeskFooter
from monitor.ui.widgets.header import CityHeader
from monitor.ui.widgets.pane import MentionTable
from monitor.ui.widgets.sources_bar import SourcesBar, render_sources

INCIDENT_KEYS = (
    "On an incident's row, the same keys act on every report: e escalates once, r acknowledges all "
    "(one reply each), x resolves with a follow-up to all, d dismisses with one reason; n notes it, t renames it."
)
EXPORT_CAP = 5000  # rows a pane export writes: the window and what waits past it


class MainScreen(DeskIncidents):
    COMMANDS = {DeskCommands}
    BINDINGS = [
        Binding("r", "reply", "Reply", id="reply"),
        Binding("e", "escalate", "Escalate", id="escalate"),
        Binding("d", "dismiss_mention", "Dismiss", id="dismiss"),
        Binding("x", "resolve", "Resolve", id="resolve"),
        Binding("n", "note", "Note", id="note"),
        Binding("u", "reopen", "Reopen", id="reopen"),
        # Incidents (desk_incidents.py); on an incident's row, r e x d act on every report.
        Binding("m", "link_incident", "Link to an incident", show=False, id="incident.link"),
        Binding("a", "accept_suggestion", "Accept the suggested incident", show=False, id="incident.accept"),
        Binding("M", "unlink_incident", "Unlink from its incident", show=False, id="incident.unlink"),
        Binding("o", "expand_incident", "Open/close an incident's reports", show=False, id="incident.expand"),
        Binding("ctrl+r", "retry_delivery", "Retry send", show=False, id="delivery.retry"),
        Binding("ctrl+k", "cancel_delivery", "Cancel send", show=False, id="delivery.cancel"),
        Binding("slash", "filter", "Filter", id="filter"),
        Binding("tab", "cycle_pane(1)", "Next pane", show=False, id="pane.next"),
        Binding("shift+tab", "cycle_pane(-1)", "Previous pane", show=False, id="pane.previous"),
        Binding("1", "pane('new')", "New", show=False, id="pane.new"),
        Binding("2", "pane('escalated')", "Escalated", show=False, id="pane.escalated"),
        Binding("3", "pane('done')", "Done", show=False, id="pane.done"),
        Binding("4", "pane('dismissed')", "Dismissed", show=False, id="pane.dismissed"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="filter.clear"),
        Binding("v", "view", "View", show=False, id="view"),
        Binding("J,ctrl+d", "scroll_detail(1)", "Scroll the detail down", show=False, id="detail.down"),
        Binding("K,ctrl+u", "scroll_detail(-1)", "Scroll the detail up", show=False, id="detail.up"),
        # Stats and handover stay off the footer so that `?` and `q` fit at 80 columns (help lists them).
        Binding("s", "stats", "Stats", show=False, id="stats"),
        Binding("h", "handover", "Handover", show=False, id="handover"),
        Binding("t", "rename_incident", "Rename the incident", show=False, id="incident.rename"),
        Binding("question_mark", "help", "Help", id="help"),
    ]

    def compose(self) -> ComposeResult:
        w = self.monitor.watchlist
        warning, target = td_ms(w.targets.warning), td_ms(w.targets.first_response)
        yield CityHeader(show_clock=True, icon="◉")
        yield SourcesBar(id="sources")
        yield Tabs(*[Tab(s.value.title(), id=s.value) for s in PANES], id="tabs")
        with ContentSwitcher(initial="pane-new", id="panes"):
            for status in PANES:
                yield MentionTable(status, warning, target, id=f"pane-{status.value}")
        with VerticalScroll(id="detail-box"):
            yield MentionDetail(id="detail")
        yield DeskFooter(compact=True, show_command_palette=False)

    async def on_mount(self) -> None:
        self.query_one(Tabs).can_focus = False
        self.title = "monitor"
        self.sub_title = f"{self.monitor.watchlist.city} · {self.monitor.operator}" + (
            " · READ-ONLY" if self.monitor.read_only else ""
        )
        self.pane().focus()
        await self._first_load()
        self.set_interval(REFRESH_SECONDS, self.refresh_panes, name="refresh")
        self.set_interval(1.0, self._tick, name="clock")
        self.render_sources()

    @guarded("clock", loud=False)
    async def _tick(self) -> None:
        self.pane().tick(now_ms())
        self._ticks += 1  # a tick whose reads fail still counts: the clock goes on
        self.show_storm(now_ms())
        if self._counts_stale and not self._refresh_lock.locked():
            await self._recount()
            self._update_tabs()
        app = self.monitor
        if self._ticks % 2 == 1:
            # Who is on duty, and (when another process collects) the sources' states, from SQLite.
            roster = await desk.roster(app.store, app.presence, app.leading)
            self.on_duty, self.remote_states = roster.on_duty, roster.sources
            if roster.collector_elsewhere is not None:
                self.collector_elsewhere = roster.collector_elsewhere
            others = [o for o in self.on_duty if o != app.operator]
            self.sub_title = (
                f"{app.watchlist.city} · {app.operator}"
                + (f" · on duty: {', '.join(others)}" if others else "")
                + (" · READ-ONLY" if app.read_only else "")
            )
        self.render_sources()

    def render_sources(self) -> None:
        bars = self.query(SourcesBar)
        if not bars:  # a status that arrives while the screen is composed or torn down: nothing to draw on
            return
        app = self.monitor
        # What changes what the operator sees comes first, so that it is never cut at 80 columns.
        lead = f"filter: {self.filter.describe()} (Esc clears)" if self.filter.active else ""
        if app.fault:
            lead = f"⚠ {app.fault} — retrying " + lead
        notice = ""
        if app.read_only:
            notice = "READ-ONLY "
        elif getattr(app, "dry_run", False):
            notice = "DRY-RUN: nothing is sent "
        statuses = self.remote_states  # a follower: the collector's states and last successes, from SQLite
        if app.leading:
            stored = {s.name: s.last_ok_ms or 0 for s in self.remote_states}
            statuses = [replace(s, last_ok_ms=max(s.last_ok_ms or 0, stored.get(s.name, 0)) or None)
                        for s in app.source_statuses.values()]  # fmt: skip
        if not app.leading:
            # Who collects matters: with nobody holding the lease, no mention arrives at all.
            elsewhere = self.collector_elsewhere
            notice = (f"collected by {elsewhere} " if elsewhere else "NOBODY IS COLLECTING ") + notice
        bars.first().update(render_sources(statuses, app.zone, notice, lead=lead.strip()))

    # -- navigation -----------------------------------------------------------------------

    @guarded("switching pane")
    async def action_pane(self, name: str) -> None:
        status = Status(name)
        self.query_one(ContentSwitcher).current = f"pane-{status.value}"
        self.query_one(Tabs).active = status.value
        if status not in self.loaded:
            await self._load(status)
            self._update_tabs()
        table = self.pane(status)
        table.focus()
        table.tick(now_ms())
        self.load_detail(self.current_row())

    async def action_cycle_pane(self, step: int) -> None:
        current = self.pane().status
        await self.action_pane(PANES[(PANES.index(current) + step) % len(PANES)].value)

    @on(Tabs.TabActivated)
    async def _tab_clicked(self, event: Tabs.TabActivated) -> None:
        if event.tab.id and self.pane().status.value != event.tab.id:
            await self.action_pane(event.tab.id)

    @on(MentionTable.RowHighlighted)
    def _highlighted(self, event: MentionTable.RowHighlighted) -> None:
        if event.data_table is self.pane():
            self.load_detail(self.current_row())

    @on(MentionTable.PageWanted)
    @guarded("paging")
    async def _page_wanted(self, event: MentionTable.PageWanted) -> None:
        """A pane turns a page or tops its window up: read under the refresh lock, so no change is missed."""
        async with self._refresh_lock:
            keep = self.filter.matches if self.filter.active else None
            rows = None  # a failed read: the pane may ask again
            try:
                if keep is None:  # grouped by incident: an incident's row is its lead's (grouping.py)
                    rows, groups = await grouping.read_page(self.monitor.store, event.table.status, event.limit,
                                                            event.after)  # fmt: skip
                    event.table.groups.update(groups)
                else:
                    rows = await self.monitor.store.pane(event.table.status, event.limit, after=event.after, keep=keep)
            finally:
                event.table.page_in(event, rows)
            self._update_tabs()

    def action_scroll_detail(self, step: int) -> None:
        """Half a panel at a time, as ctrl+d/ctrl+u in less and vi."""
        box = self.query_one("#detail-box", VerticalScroll)
        box.scroll_relative(y=step * max(1, box.scrollable_content_region.height // 2), animate=False)

    def action_view(self) -> None:
        if self.detail_for is None or self.current_row() is None:
            self.notify("No mention selected.", severity="warning", markup=False)
            return
        self.app.push_screen(MentionView(self.shown))

    # -- filter ---------------------------------------------------------------------------

    def action_filter(self) -> None:
        self.app.push_screen(FilterDialog(self.filter_query), self._filter_chosen)

    @guarded("filter")
    async def _filter_chosen(self, query: str | None) -> None:
        if query is None:  # cancelled
            return
        try:
            new = PaneFilter.parse(query)
        except ValueError as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        self.filter, self.filter_query = new, query
        self.render_sources()
        try:
            for status in list(self.loaded):
                await self._load(status)
        except Exception:
            self._ready = False  # the filter stands: the panes reload with it once the database answers
            raise
        self._update_tabs()
        self.render_sources()
        self.load_detail(self.current_row())

    async def apply_filter(self, query: str) -> None:
        """A filter from the command palette, as if typed after `/`."""
        await self._filter_chosen(query)

    async def action_clear_filter(self) -> None:
        if self.filter.active:
            await self._filter_chosen("")

    # -- export ---------------------------------------------------------------------------

    @guarded("export")
    async def export_pane(self) -> None:
        """The pane's rows in its order, those past its window too (filter included), up to EXPORT_CAP."""
        status = self.pane().status
        keep = self.filter.matches if self.filter.active else None
        rows = await self.monitor.store.pane(status, EXPORT_CAP, keep=keep)
        self._export(status, await self.monitor.store.export_mentions([row.id for row in rows]))

    @work(thread=True, group="export", exclusive=True, exit_on_error=False, name="export")
    def _export(self, status: Status, stored: list[tuple[object, ...]]) -> None:
        """These rows to a CSV file here (or beside the database if here is not writable)."""
        app = self.monitor
        beside = desk.export_folder(app.db_path, app.watchlist.state_dir)
        n, path = desk.export_csv(stored, app.zone, status, beside)
        self.app.call_from_thread(self.notify, f"Exported {n} mention(s) to {path}", markup=False, timeout=10)

    def action_stats(self) -> None:
        from monitor.ui.screens.stats import StatsScreen

        self.app.push_screen(StatsScreen(self.monitor.db_path, self.monitor.watchlist))

    @guarded("handover")
    async def action_handover(self) -> None:
        """What happened since I last left (or the last 12 hours, on a first shift)."""
        app = self.monitor
        now = now_ms()
        since = await desk.handover_since(app.presence, now)
        target = td_ms(app.watchlist.targets.first_response)
        summary = await app.store.handover(since, now, target)
        self.app.push_screen(HandoverScreen(summary, app.zone, now))

    def action_help(self) -> None:
        from monitor.ui.widgets.pane import MentionTable as Table

        groups = [list(self.BINDINGS), list(Table.BINDINGS), list(self.app.BINDINGS)]
        self.app.push_screen(HelpScreen(binding_rows(groups, self.monitor.watchlist.keys), INCIDENT_KEYS))
