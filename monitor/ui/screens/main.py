"""The duty desk: source states, panes by status, the selected mention, and the operator's keys."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Footer, Tab, Tabs
from textual.worker import Worker

from monitor.core import templates as tpl
from monitor.core.filtering import PaneFilter
from monitor.core.models import ActionKind, MentionRow, SourceState, Status
from monitor.core.timeutil import fmt_local, now_ms, td_ms
from monitor.db.handover import summary_sync
from monitor.db.outbox import for_mention_sync
from monitor.db.presence import Claim
from monitor.db.related import related_sync
from monitor.db.store import OPEN_STATUSES, actions_sync, mention_sync, open_sync, thread_sync
from monitor.engine.collector import SourceStatus
from monitor.reports import export
from monitor.ui.screens.commands import DeskCommands
from monitor.ui.screens.dialogs import (
    ChoiceDialog,
    ChoiceResult,
    ComposeDialog,
    ConfirmDialog,
    FilterDialog,
    NoteDialog,
    ReplyResult,
)
from monitor.ui.screens.guard import guarded
from monitor.ui.screens.handover import HandoverScreen
from monitor.ui.screens.help import HelpScreen, binding_rows
from monitor.ui.screens.view import MentionView
from monitor.ui.widgets.detail import MentionDetail, describe_action
from monitor.ui.widgets.header import CityHeader
from monitor.ui.widgets.pane import WINDOW, MentionTable, sort_key
from monitor.ui.widgets.sources_bar import SourcesBar, render_sources

if TYPE_CHECKING:
    from monitor.ui.app import MonitorApp

PANES = (Status.NEW, Status.ESCALATED, Status.DONE, Status.DISMISSED)
OPEN_WINDOW = WINDOW  # rows a pane holds (its window); the rest wait in SQLite, a page away
CLOSED_PAGE = WINDOW
CLOSED_CAP = 5000
REFRESH_SECONDS = 0.2
CHANGES_PER_TICK = 5000
COUNTS_EVERY_MS = 1000


class MainScreen(Screen[None]):
    COMMANDS = {DeskCommands}
    BINDINGS = [
        Binding("r", "reply", "Reply", id="reply"),
        Binding("e", "escalate", "Escalate", id="escalate"),
        Binding("d", "dismiss_mention", "Dismiss", id="dismiss"),
        Binding("x", "resolve", "Resolve", id="resolve"),
        Binding("n", "note", "Note", id="note"),
        Binding("u", "reopen", "Reopen", id="reopen"),
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
        Binding("question_mark", "help", "Help", id="help"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.last_rev = 0
        self.filter = PaneFilter()
        self.filter_query = ""
        self.counts: dict[Status, int] = dict.fromkeys(Status, 0)
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

    @property
    def monitor(self) -> MonitorApp:
        return self.app  # type: ignore[return-value]

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A worker's state change does not bubble: the screen's go to the app's one handler."""
        self.monitor.on_worker_state_changed(event)

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
        yield Footer(compact=True, show_command_palette=False)

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

    @guarded("loading the desk", loud=False)
    async def _first_load(self) -> None:
        last_rev = await self.monitor.store.max_rev()
        self.counts = await self.monitor.store.counts()
        for status in dict.fromkeys((Status.NEW, Status.ESCALATED, *self.loaded)):
            await self._load(status)
        self.last_rev = last_rev  # only once the panes hold everything up to it
        self._ready = True
        self._update_tabs()

    # -- panes ----------------------------------------------------------------------------

    def pane(self, status: Status | None = None) -> MentionTable:
        if status is None:
            status = Status(self.query_one(ContentSwitcher).current.removeprefix("pane-"))  # type: ignore[union-attr]
        return self.query_one(f"#pane-{status.value}", MentionTable)

    def current_row(self) -> MentionRow | None:
        table = self.pane()
        selected = table.selected_id()
        return table.mentions.get(selected) if selected is not None else None

    async def _load(self, status: Status) -> None:
        limit = OPEN_WINDOW if status in OPEN_STATUSES else CLOSED_PAGE
        keep = self.filter.matches if self.filter.active else None
        rows = await self.monitor.store.pane(status, limit, keep=keep)
        self.pane(status).load(rows, now_ms())
        self.loaded.add(status)

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
                return
            changes = await store.changes_since(self.last_rev, CHANGES_PER_TICK)
            if not changes:
                return
            # Counting scans the status index: at most once a second while mentions pour in.
            if now_ms() - self._counted_at >= COUNTS_EVERY_MS or self._count_now:
                await self._recount()
            else:
                self._counts_stale = True  # the clock tick recounts if nothing else comes
            await self._load_claims()
            with self.app.batch_update():
                self._apply(changes)
                self._update_tabs()
            self.last_rev = changes[-1].rev  # only once applied: a read that failed above is retried whole
            if self.detail_for is not None and any(r.id == self.detail_for.id for r in changes):
                self.load_detail(self.current_row())

    def _apply(self, changes: list[MentionRow]) -> None:
        now = now_ms()
        latest: dict[int, MentionRow] = {r.id: r for r in changes}
        for status in PANES:
            if status not in self.loaded:
                continue
            table = self.pane(status)
            upserts, removals = [], []
            last = max(table.mentions.values(), key=sort_key, default=None) if status in OPEN_STATUSES else None
            for row in latest.values():
                belongs = row.status is status and (not self.filter.active or self.filter.matches(row))
                if belongs:
                    full = len(table.mentions) >= OPEN_WINDOW and status in OPEN_STATUSES
                    if row.id in table.mentions or not full or (last and sort_key(row) < sort_key(last)):
                        upserts.append(row)
                elif row.id in table.mentions:
                    removals.append(row.id)
            if upserts or removals:
                table.apply(upserts, removals, now)
            if status not in OPEN_STATUSES and len(table.mentions) > CLOSED_CAP:
                extra = sorted(table.mentions.values(), key=sort_key)[CLOSED_CAP:]
                table.apply((), [r.id for r in extra], now)

    def _update_tabs(self) -> None:
        tabs = self.query_one(Tabs)
        for status in PANES:
            table = self.pane(status)
            count = self.counts.get(status, 0)
            label = table.tab_label(count)
            if self.filter.active and status in self.loaded:
                label = f"{status.value.title()} {len(table.mentions)}/{count}"
            tab = tabs.query_one(f"#{status.value}", Tab)
            if tab.label.plain != label:  # a new label lays the screen out again: only when it changed
                tab.label = label
            table.total = count

    async def _load_claims(self) -> None:
        self.claims = await self.monitor.presence.claims()
        names = {i: c.operator for i, c in self.claims.items() if c.operator != self.monitor.operator}
        for status in OPEN_STATUSES:
            self.pane(status).claimed = names

    async def _recount(self) -> None:
        self.counts = await self.monitor.store.counts()
        self._counted_at, self._count_now, self._counts_stale = now_ms(), False, False

    @guarded("clock", loud=False)
    async def _tick(self) -> None:
        self.pane().tick(now_ms())
        if self._counts_stale and not self._refresh_lock.locked():
            await self._recount()
            self._update_tabs()
        self._ticks += 1
        app = self.monitor
        if self._ticks % 2 == 1:
            # Who is on duty, and (when another process collects) the sources' states, from SQLite.
            self.on_duty = await app.presence.on_duty()
            others = [o for o in self.on_duty if o != app.operator]
            self.sub_title = (
                f"{app.watchlist.city} · {app.operator}"
                + (f" · on duty: {', '.join(others)}" if others else "")
                + (" · READ-ONLY" if app.read_only else "")
            )
            if not app.leading:
                held = await app.presence.lease_holder()
                self.collector_elsewhere = held[0] if held else ""
            # Read even when collecting here: a new leader's sources know only their own (maybe no) success.
            self.remote_states = [
                SourceStatus(name, SourceState(state), detail, until, last_ok)
                for name, state, detail, until, last_ok in await app.store.source_states()
            ]
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
                rows = await self.monitor.store.pane(event.table.status, event.limit, after=event.after, keep=keep)
            finally:
                event.table.page_in(event, rows)
            self._update_tabs()

    @work(group="detail", exclusive=True, exit_on_error=False, name="detail")
    async def load_detail(self, row: MentionRow | None) -> None:
        detail = self.query_one(MentionDetail)
        if row is None:
            self.detail_for = None
            detail.show(None, [], [], self.monitor.zone)
            return

        def read(c: sqlite3.Connection) -> tuple[Any, ...]:
            fresh = mention_sync(c, row.id)  # one hop for the whole panel
            extra = (thread_sync(c, fresh), for_mention_sync(c, row.id), related_sync(c, fresh))
            return (fresh, actions_sync(c, row.id), *extra)

        fresh, actions, thread, deliveries, related = await self.monitor.store._read(read)
        self.detail_for = fresh
        claim = self.claims.get(fresh.id)
        claimed = f"{claim.operator} is {claim.kind}" if claim and claim.operator != self.monitor.operator else ""
        self.shown = dict(row=fresh, actions=actions, thread=thread, zone=self.monitor.zone, deliveries=deliveries,
                          claimed=claimed, related=related)  # fmt: skip
        detail.show(**self.shown)

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
    async def _filter_chosen(self, query: object) -> None:
        if not isinstance(query, str):  # None: cancelled
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

    def export_pane(self) -> None:
        table = self.pane()
        self._export(table.status, table.ids())

    @work(thread=True, group="export", exclusive=True, exit_on_error=False, name="export")
    def _export(self, status: Status, ids: list[int]) -> None:
        """The pane's rows, as shown, to a CSV file here (or beside the database if here is not writable)."""
        app = self.monitor
        stamp = datetime.fromtimestamp(now_ms() / 1000, app.zone).strftime("%Y%m%d-%H%M%S")
        name = f"monitor-{status.value}-{stamp}.csv"
        conn = open_sync(app.db_path, readonly=True)
        try:
            for folder in (Path.cwd(), app.db_path.parent):
                try:
                    with open(folder / name, "x", encoding="utf-8", newline="") as out:
                        n = export.write(conn, "mentions", "csv", out, ids=ids)
                    break
                except OSError:  # not writable here (the exact name exists: the state dir then)
                    continue
            else:
                raise PermissionError(f"cannot write {name} here nor in {app.db_path.parent}")
        finally:
            conn.close()
        self.app.call_from_thread(self.notify, f"Exported {n} mention(s) to {folder / name}", markup=False, timeout=10)

    # -- operator actions -----------------------------------------------------------------

    def _target(self, allowed: tuple[Status, ...] | None = None, verb: str = "") -> MentionRow | None:
        if not self.monitor.writable():
            return None
        row = self.current_row()
        if row is None:
            self.notify("No mention selected.", severity="warning", markup=False)
            return None
        if allowed is not None and row.status not in allowed:
            names = " or ".join(s.value for s in allowed)
            self.notify(f"Only a {names} mention can be {verb}.", severity="warning", markup=False)
            return None
        return row

    @guarded("action")
    async def _act(self, row: MentionRow, kind: ActionKind, payload: dict[str, Any], check: bool = True) -> bool:
        """Act on what the operator saw: if another operator moved the mention first, nothing happens."""
        ok = await self.monitor.act(row.id, kind, payload, expect_status=row.status if check else None)
        if ok:
            self._count_now = True
            await self.refresh_panes(wait=True)
        return ok

    def action_reply(self) -> None:
        row = self._target()
        if row is not None:
            self._compose_flow(row, resolve=False)

    @work(group="compose", exclusive=True, exit_on_error=False, name="reply")
    async def _compose_flow(self, row: MentionRow, resolve: bool) -> None:
        """Reply or resolve: claim the mention, write, and check nobody acted meanwhile before sending."""
        app = self.monitor
        kind = "resolving" if resolve else "replying"
        theirs = await app.presence.claim(row.id, kind)
        if theirs is not None:
            since = fmt_local(theirs.since, app.zone, with_date=False)
            question = f"{theirs.operator} has been {theirs.kind} since {since}. Take it over?"
            if not await self.app.push_screen_wait(ConfirmDialog("Someone is on it", question)):
                return
            await app.presence.claim(row.id, kind, take_over=True)
        try:
            seen = await app.store.actions(row.id)
            seen_ids = {a.id for a in seen}
            service = next((a.payload.get("service_name", "") for a in reversed(seen)
                            if a.kind is ActionKind.ESCALATE), "")  # fmt: skip
            city = app.watchlist.city
            if resolve:
                templates = tpl.for_use(app.watchlist.templates, "followup", row.lang)
                prefill = tpl.draft_followup(app.watchlist.templates, row, city, service)
                title = "Resolve: the service fixed it — follow-up to the citizen"
                dialog = ComposeDialog(
                    row, city, templates, title=title, service=service, with_note=True, prefill=prefill
                )
            else:
                templates = tpl.for_use(app.watchlist.templates, "reply", row.lang)
                dialog = ComposeDialog(row, city, templates, title=f"Reply to {row.author}", service=service)
            result = await self.app.push_screen_wait(dialog)
            if not isinstance(result, ReplyResult):
                return
            # Traffic cop: if someone else acted while this operator was writing, say what, and ask.
            news = [a for a in await app.store.actions(row.id) if a.id not in seen_ids and a.operator != app.operator]
            if news:
                what = "\n".join(f"{fmt_local(a.at, app.zone, with_date=False)} {a.operator}: {describe_action(a)}"
                                  for a in news)  # fmt: skip
                if not await self.app.push_screen_wait(
                    ConfirmDialog("The mention changed while you were writing", what + "\n\nSend anyway?")
                ):
                    self.notify("Not sent.", markup=False)
                    return
            if resolve:
                payload: dict[str, Any] = {
                    "note": result.note,
                    "reply": result.text,
                    "template": result.template,
                }
            else:
                payload = {"text": result.text, "template": result.template}
            if result.elsewhere:
                payload["elsewhere"] = result.elsewhere
            await self._act(row, ActionKind.RESOLVE if resolve else ActionKind.REPLY, payload, check=False)
        finally:
            await app.presence.unclaim(row.id)

    def action_escalate(self) -> None:
        row = self._target((Status.NEW, Status.ESCALATED, Status.DONE), "escalated")
        if row is None:
            return
        services = self.monitor.watchlist.services
        if not services:
            self.notify("No services in watchlist.yaml.", severity="error", markup=False)
            return
        options = [(s.id, f"{s.name}" + (f" — {s.description}" if s.description else "")) for s in services]

        async def done(result: ChoiceResult | None) -> None:
            if result is not None:
                service = self.monitor.watchlist.service(result.choice)
                name = service.name if service else result.choice
                await self._act(row, ActionKind.ESCALATE, {"service": result.choice, "service_name": name,
                                                           "note": result.note})  # fmt: skip

        self.app.push_screen(ChoiceDialog(f"Escalate {row.author}'s mention to…", options, with_note=True), done)  # type: ignore[arg-type]

    def action_dismiss_mention(self) -> None:
        row = self._target((Status.NEW, Status.ESCALATED), "dismissed")
        if row is None:
            return
        options = [(r, r) for r in self.monitor.watchlist.dismiss_reasons]

        async def done(result: ChoiceResult | None) -> None:
            if result is not None:
                await self._act(row, ActionKind.DISMISS, {"reason": result.choice})

        self.app.push_screen(ChoiceDialog("Dismiss — why?", options), done)  # type: ignore[arg-type]

    def action_resolve(self) -> None:
        row = self._target((Status.ESCALATED,), "resolved")
        if row is not None:
            self._compose_flow(row, resolve=True)

    def action_stats(self) -> None:
        from monitor.ui.screens.stats import StatsScreen

        self.app.push_screen(StatsScreen(self.monitor.db_path, self.monitor.watchlist))

    @guarded("handover")
    async def action_handover(self) -> None:
        """What happened since I last left (or the last 12 hours, on a first shift)."""
        app = self.monitor
        now = now_ms()
        since = await app.presence.last_left() or now - 12 * 3600_000
        target = td_ms(app.watchlist.targets.first_response)
        summary = await app.store._read(lambda c: summary_sync(c, since, now, target))
        self.app.push_screen(HandoverScreen(summary, app.zone, now))

    def action_note(self) -> None:
        row = self._target()
        if row is None:
            return

        async def done(text: str | None) -> None:
            if text:  # a note changes no status: it stands whatever others did meanwhile
                await self._act(row, ActionKind.NOTE, {"text": text}, check=False)

        self.app.push_screen(NoteDialog(f"Internal note on {row.author}'s mention"), done)  # type: ignore[arg-type]

    @guarded("reopen")
    async def action_reopen(self) -> None:
        row = self._target()
        if row is None:
            return
        if await self._act(row, ActionKind.REOPEN, {}):
            fresh = await self.monitor.store.mention(row.id)
            self.notify(f"Reopened: back to {fresh.status.value}.", markup=False)

    @guarded("retry send")
    async def action_retry_delivery(self) -> None:
        row = self._target()
        if row is not None:
            n = await self.monitor.retry_outbox(row.id)
            self.notify(f"{n} failed send(s) queued again." if n else "Nothing to retry.", markup=False)

    @guarded("cancel send")
    async def action_cancel_delivery(self) -> None:
        row = self._target()
        if row is not None:
            n = await self.monitor.cancel_outbox(row.id)
            self.notify(f"{n} unsent item(s) cancelled." if n else "Nothing waiting to cancel.", markup=False)

    def action_help(self) -> None:
        from monitor.ui.widgets.pane import MentionTable as Table

        groups = [list(self.BINDINGS), list(Table.BINDINGS), list(self.app.BINDINGS)]
        self.app.push_screen(HelpScreen(binding_rows(groups, self.monitor.watchlist.keys)))
