"""The desk's panes kept in step with the database: a first load, then one batch of changes per tick;
and the detail of the selected row, read in one hop.

`MainScreen` builds on this: its keys and dialogs act on the rows these panes show.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from textual import work
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Tab, Tabs
from textual.worker import Worker

from monitor.core.filtering import PaneFilter
from monitor.core.incidents import IncidentDetail
from monitor.core.models import OPEN_STATUSES, MentionRow, Status
from monitor.core.timeutil import now_ms
from monitor.db.presence import Claim
from monitor.ui.screens import grouping
from monitor.ui.screens.guard import guarded
from monitor.ui.storm import StormMeter
from monitor.ui.widgets.detail import MentionDetail
from monitor.ui.widgets.pane import WINDOW, MentionTable

if TYPE_CHECKING:
    from monitor.engine.collector import SourceStatus
    from monitor.ui.app import MonitorApp

PANES = (Status.NEW, Status.ESCALATED, Status.DONE, Status.DISMISSED)
REFRESH_SECONDS = 0.2  # the refresh tick
CHANGES_PER_TICK = 5000
COUNTS_EVERY_MS = 1000
# In a storm, the rows under the operator's eyes move this often, not at every refresh: calmer to read, and
# a fifth of the repaints (an operator's own action still shows at once).
STORM_APPLY_MS = 2000


class DeskPanes(Screen[None]):
    def __init__(self) -> None:
        super().__init__()
        self.last_rev = 0
        self.filter = PaneFilter()
        self.filter_query = ""
        self.counts: dict[Status, int] = {}  # empty until counted, just after the first paint
        self.loaded: set[Status] = set()
        self.detail_for: MentionRow | None = None
        self.shown: dict[str, Any] = {}  # what the detail panel shows (`v` shows the same, full screen)
        self._refresh_lock = asyncio.Lock()  # one refresh at a time; a timer tick skips a busy one
        self.claims: dict[int, Claim] = {}
        self.on_duty: list[str] = []
        self.remote_states: list[SourceStatus] = []
        self.collector_elsewhere = "?"  # the lease holder when it is another process ("" = nobody)
        self._ticks = 0
        self._counted_at = 0
        self._count_now = False  # an operator's own action: show its effect on the tabs at once
        self._counts_stale = False
        self._ready = False  # the panes are loaded (not yet, or a reload failed: the refresh tick retries)
        self.titles: dict[int, str] = {}  # open incidents' titles, for the rows' suggestion marks
        self._regroup_now = False  # an operator's own incident action: read the grouped pages again
        self._incidents_rev = 0  # the incidents' revision the grouped pages were read at
        self.incident_shown: IncidentDetail | None = None  # the incident in the detail panel, if one is
        self.storm = StormMeter()
        self._applied_at = 0  # when a refresh last applied changes
        self.waiting_paint = False  # the counts and the other open pane wait for the first screen (painted())

    @property
    def monitor(self) -> MonitorApp:
        return self.app  # type: ignore[return-value]

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A worker's state change does not bubble: the screen's go to the app's one handler."""
        self.monitor.on_worker_state_changed(event)

    @work(group="detail", exclusive=True, exit_on_error=False, name="detail")
    async def load_detail(self, row: MentionRow | None) -> None:
        detail = self.query_one(MentionDetail)
        self.incident_shown = None
        if row is None:
            self.detail_for = None
            detail.show(None, [], [], self.monitor.zone)
            return
        if (group := self.pane().groups.get(row.id)) is not None:
            await self._incident_detail(group.incident.id)
            return
        got = await self.monitor.store.detail(row.id)  # one hop for the whole panel
        self.detail_for = got.row
        claim = self.claims.get(got.row.id)
        claimed = f"{claim.operator} is {claim.kind}" if claim and claim.operator != self.monitor.operator else ""
        self.shown = dict(row=got.row, actions=got.actions, thread=got.thread, zone=self.monitor.zone,
                          deliveries=got.deliveries, claimed=claimed, related=got.related,
                          likely=self.titles.get(got.row.suggested_incident or 0, ""))  # fmt: skip
        detail.show(**self.shown)

    @guarded("loading the desk", loud=False)
    async def _first_load(self) -> None:
        """The pane on screen (and any loaded before a failure) first; the counts and the other open pane after
        the paint (counting a million mentions takes longer than drawing the screen)."""
        last_rev = await self.monitor.store.max_rev()
        await self._load_titles()  # the open incidents' titles: the first rows' suggestion marks name them
        for status in dict.fromkeys((self.pane().status, *self.loaded)):
            await self._load(status)
        self.last_rev = last_rev  # only once the panes hold everything up to it
        self._ready = True
        self._update_tabs()
        if getattr(self.app, "painted", True):
            self.call_after_refresh(self._load_open_panes)
        else:  # the app starts it once this screen is drawn: a refresh may come first that draws nothing
            self.waiting_paint = True

    def painted(self) -> None:
        """The first screen is drawn: count (a million rows' scan) and load the other open pane now."""
        if self.waiting_paint:
            self.waiting_paint = False
            self._load_open_panes()

    @work(group="open-panes", exclusive=True, exit_on_error=False, name="loading the open panes")
    @guarded("loading the desk", loud=False)
    async def _load_open_panes(self) -> None:
        """The tabs' counts, then open panes not loaded yet, so that switching to them is instant.

        A worker: the screen keeps handling keys and ticks meanwhile. The rows go in under the refresh lock,
        and only if no refresh applied changes since they were read (those would be missing): else read again.
        """
        async with self._refresh_lock:
            await self._recount()
            self._update_tabs()
        for status in OPEN_STATUSES:
            if status in self.loaded:
                continue
            pane_filter, seen_rev = self.filter, self.last_rev
            rows = await self._read_pane(status, pane_filter)
            async with self._refresh_lock:
                if status in self.loaded or self.filter is not pane_filter or not self._ready:
                    continue  # switched to, filtered or reloaded meanwhile: that load (and its cursor) stands
                if self.last_rev != seen_rev:
                    rows = await self._read_pane(status, pane_filter)
                self.pane(status).load(rows, now_ms())
                self.loaded.add(status)
                self._update_tabs()

    def pane(self, status: Status | None = None) -> MentionTable:
        if status is None:
            status = Status(self.query_one(ContentSwitcher).current.removeprefix("pane-"))  # type: ignore[union-attr]
        return self.query_one(f"#pane-{status.value}", MentionTable)

    def current_row(self) -> MentionRow | None:
        table = self.pane()
        selected = table.selected_id()
        return table.mentions.get(selected) if selected is not None else None

    async def _load(self, status: Status) -> None:
        rows = await self._read_pane(status, self.filter)
        self.pane(status).load(rows, now_ms())
        self.loaded.add(status)

    async def _read_pane(self, status: Status, pane_filter: PaneFilter) -> list[MentionRow]:
        if not pane_filter.active:  # grouped by incident (grouping.py)
            rows, self.pane(status).groups = await grouping.read_page(self.monitor.store, status, WINDOW)
            return rows
        self.pane(status).groups = {}  # a filter shows mentions as they are
        keep = pane_filter.matches if pane_filter.active else None
        return await self.monitor.store.pane(status, WINDOW, keep=keep)  # the rest wait in SQLite, a page away

    async def commit_seen(self, rev: int) -> None:
        """A commit the panes do not show yet (the app's watch): refresh now rather than at the next tick,
        unless a refresh applied changes less than a tick ago (commits are pouring in: the tick paces them)."""
        if rev <= self.last_rev or now_ms() - self._applied_at < REFRESH_SECONDS * 1000:
            return
        async with self._refresh_lock:  # a refresh under way may have read the rev before this commit
            pass
        if rev > self.last_rev:
            await self.refresh_panes()

    @guarded("refresh", loud=False)
    async def refresh_panes(self, wait: bool = False) -> None:
        """Poll the change sequence and apply what moved, in one batch per tick.

        A timer tick skips while a refresh runs. `wait=True` (after an action) waits for it and refreshes
        again: the pane must show the action before the next typed-ahead key picks its row.
        """
        if self._refresh_lock.locked() and not wait:
            return
        async with self._refresh_lock:
            if not self._ready:  # the database failed at start or mid-reload: load the panes now
                await self._first_load()
                return
            store = self.monitor.store
            newest = await store.max_rev()
            self.monitor.recovered()  # the tick is the retry: the database answers again
            if newest <= self.last_rev:
                if self._counts_stale and now_ms() - self._counted_at >= COUNTS_EVERY_MS:
                    await self._recount()  # here too: the clock tick, in step with this one, finds it locked
                    self._update_tabs()
                return
            if self.storm.on and not wait and now_ms() - self._applied_at < STORM_APPLY_MS:
                return  # a storm: the panes move every STORM_APPLY_MS, not five times a second (the header counts)
            changes = await store.changes_since(self.last_rev, CHANGES_PER_TICK)
            if not changes:
                return
            # Counting scans the status index: at most once a second while mentions pour in.
            if now_ms() - self._counted_at >= COUNTS_EVERY_MS or self._count_now:
                await self._recount()
            else:
                self._counts_stale = True  # the clock tick recounts if nothing else comes
            await self._load_claims()
            regrouped = await self._regroup(changes)
            with self.app.batch_update():
                self._apply(changes, regrouped)
                self._update_tabs()
            self.last_rev = changes[-1].rev  # only once applied: a read that failed above is retried whole
            self._applied_at = now_ms()
            self.storm.count(changes, self._applied_at)
            if self.detail_for is not None and any(r.id == self.detail_for.id for r in changes):
                self.load_detail(self.current_row())

    def _apply(self, changes: list[MentionRow], regrouped: dict[Status, Any] | None = None) -> None:
        now = now_ms()
        latest: dict[int, MentionRow] = {r.id: r for r in changes}
        for status in PANES:
            if status not in self.loaded:
                continue
            table = self.pane(status)
            if regrouped and status in regrouped:  # its page read again, counts and all
                table.regroup(*regrouped[status])
                continue
            upserts, removals = [], []
            for row in latest.values():
                if row.status is status and (not self.filter.active or self.filter.matches(row)):
                    upserts.append(row)  # the pane's window keeps what sorts into it (ui/widgets/window.py)
                elif row.id in table.mentions:
                    removals.append(row.id)
            if upserts or removals:
                table.apply(upserts, removals, now)

    def _update_tabs(self) -> None:
        tabs = self.query_one(Tabs)
        for status in PANES:
            table = self.pane(status)
            if status not in self.counts:  # not counted yet: no number rather than a wrong one
                continue
            count = self.counts[status]
            label = table.tab_label(count)
            if self.filter.active and status in self.loaded:
                label = f"{status.value.title()} {len(table.mentions)}/{count}"
            tab = tabs.query_one(f"#{status.value}", Tab)
            if tab.label.plain != label:  # a new label lays the screen out again: only when it changed
                tab.label = label
            table.total = count

    def show_storm(self, now: int) -> None:
        """The storm line as the header's title, from the clock tick: once a second at most, since a new
        title lays the screen out again."""
        self.storm.expire(now)
        storm, state = self.storm.line(), self.monitor.storage_state
        if state:  # what is wrong with the database comes first (app.show_storage), the storm after it
            title = f"monitor · {state}" + (f" · {storm}" if storm else "")
        else:
            title = storm or "monitor"
        if self.title != title:
            self.title = title

    async def _load_claims(self) -> None:
        self.claims = await self.monitor.presence.claims()
        names = {i: c.operator for i, c in self.claims.items() if c.operator != self.monitor.operator}
        for status in OPEN_STATUSES:
            self.pane(status).claimed = names

    async def _recount(self) -> None:
        self.counts = await self.monitor.store.counts()
        self._counted_at, self._count_now, self._counts_stale = now_ms(), False, False

    # -- incidents (grouping.py) -----------------------------------------------------------------

    async def _regroup(self, changes: list[MentionRow]) -> dict[Status, Any]:
        """The grouped panes whose incidents these changes touch, their page read again (counts and all)."""
        out: dict[Status, Any] = {}
        if self.filter.active:
            return out
        force, self._regroup_now = self._regroup_now, False
        seen, self._incidents_rev = self._incidents_rev, await self.monitor.store.incidents_rev()
        force = force or seen != self._incidents_rev  # another operator's link or unlink (or an edit) moved one
        for status in PANES:
            table = self.pane(status)
            if status in self.loaded and (force or grouping.touched(changes, status, table.mentions, table.groups)):
                anchors = table.window.anchors
                after = anchors[-1] if anchors else None
                out[status] = await grouping.read_page(self.monitor.store, status, table.window.size, after)
        if out or grouping.unknown_suggestions(changes, self.titles):
            await self._load_titles()
        shown = self.incident_shown
        if shown is not None and any(r.incident_id == shown.incident.id for r in changes):
            self.load_detail(self.current_row())  # a report's reply sent or failed: the progress, live
        return out

    async def _load_titles(self) -> None:
        self.titles = {s.incident.id: s.incident.title for s in await self.monitor.store.open_incidents()}
        for status in PANES:
            self.pane(status).titles = self.titles

    async def _incident_detail(self, incident_id: int) -> None:
        """The selected incident's reports, who answered whom, its history and its broadcast's progress."""
        got = await self.monitor.store.incident_detail(incident_id)
        self.detail_for = self.current_row()
        self.incident_shown = got
        self.shown = dict(row=self.detail_for, actions=[], thread=[], zone=self.monitor.zone, incident=got)
        self.query_one(MentionDetail).show(**self.shown)
