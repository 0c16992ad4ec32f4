"""The operator's incident keys: link a mention (the picker), accept its suggestion, unlink it, expand an
incident's row to its reports, and act on every report of an incident at once from its row.

On an incident's row, e, r, x and d act on the incident (escalate once, acknowledge all, resolve, dismiss);
on a mention's row they act on the mention as before. Every write names what the operator saw (the
mention's incident, the incident's revision): if another operator changed it first, nothing happens and
the notice says so.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from textual import work

from monitor.core.incidents import IncidentSummary, draft_title
from monitor.core.models import ActionKind, MentionRow
from monitor.core.timeutil import fmt_local
from monitor.db.api import Conflict, NotFound
from monitor.db.store import StoreError, StoreUnavailable
from monitor.engine import incidents
from monitor.ui.screens.desk_actions import DeskActions
from monitor.ui.screens.dialogs import ChoiceDialog, ChoiceResult, ConfirmDialog, NoteDialog
from monitor.ui.screens.guard import guarded
from monitor.ui.screens.incident_dialogs import BroadcastDialog, IncidentPicker, PickerEntry, TitleDialog

T = TypeVar("T")
ON_INCIDENT_ROW = "This row is an incident: o lists its reports, then act on one of them."
ON_ONE_REPORT = "This row is an incident: open it with o, then {} one report (nothing done)."


class DeskIncidents(DeskActions):
    # The report M just took out of the incident opened with o: it left the view, so u there puts it back
    # (the operator's latest write in that view; any other write forgets it).
    _unlinked_here: tuple[int, int] | None = None  # (mention id, incident id)

    if TYPE_CHECKING:  # the desk's filter (main.py): an incident's reports are shown as `incident:N`

        async def apply_filter(self, query: str) -> None: ...

    async def _incident_write(self, write: Callable[[], Awaitable[T]], refused: str) -> T | None:
        """Save an incident write like an action; a refusal (someone was first, or it is gone) is told."""
        app = self.monitor
        if not app.writable():
            return None
        self._unlinked_here = None
        try:
            result = await app.save(write)
        except Conflict as exc:
            self.notify(f"{refused}: {exc}", severity="warning", markup=False, timeout=10)
            result = None
        except NotFound as exc:
            self.notify(f"{refused}: it is gone ({exc}).", severity="warning", markup=False, timeout=10)
            result = None
        except ValueError as exc:  # the engine's refusal (an unknown service, nothing to send)
            self.notify(f"{refused}: {exc}", severity="warning", markup=False, timeout=10)
            result = None
        except StoreUnavailable as exc:
            self.notify(f"Not saved: {exc}", title="Action refused", severity="error", markup=False, timeout=15)
            return None
        except StoreError as exc:
            self.notify(str(exc), severity="warning", markup=False)
            return None
        self._regroup_now = self._count_now = True
        await self.refresh_panes(wait=True)
        return result

    def _mention_target(self) -> MentionRow | None:
        """The selected mention, not an incident's row."""
        row = self._target()
        if row is not None and self.pane().selected_incident() is not None:
            self.notify(ON_INCIDENT_ROW, severity="warning", markup=False)
            return None
        return row

    # -- link, accept, unlink, expand ------------------------------------------------------------

    def action_link_incident(self) -> None:
        row = self._mention_target()
        if row is not None:
            self._link_flow(row)

    @work(group="incident", exclusive=True, exit_on_error=False, name="link")
    async def _link_flow(self, row: MentionRow) -> None:
        """The picker (open incidents, most alike first), a question if the mention moves, then the link."""
        store = self.monitor.store
        ranked = await incidents.rank(store, row.id)
        counts = {s.incident.id: s.reports for s in await store.open_incidents()}
        entries = [PickerEntry(s.incident_id, s.title, counts.get(s.incident_id, 0), s.incident_id == row.incident_id,
                               s.reasons) for s in ranked]  # fmt: skip
        if row.incident_id is not None:  # the ranking leaves it out: shown first, marked, so a move is explicit
            now = await store.incident(row.incident_id)
            count = counts.get(now.id) or len(await store.incident_reports(now.id))
            entries.insert(0, PickerEntry(now.id, now.title, count, current=True))
        choice = await self.app.push_screen_wait(IncidentPicker(f"{row.author}: {row.first_line}", entries))
        if choice is None:
            return
        if choice.incident_id is not None and choice.incident_id == row.incident_id:
            self.notify(f"Already in incident {row.incident_id}.", markup=False)
            return
        if row.incident_id is not None:
            to = "a new incident" if choice.incident_id is None else f"incident {choice.incident_id}"
            question = f"This mention is in incident {row.incident_id}. Move it to {to}?"
            if not await self.app.push_screen_wait(ConfirmDialog("Move to another incident?", question)):
                return
        operator, current = self.monitor.operator, row.incident_id
        if choice.incident_id is None:
            title = await self.app.push_screen_wait(TitleDialog("Title of the new incident", draft_title(row)))
            if title is None:
                return
            made = await self._incident_write(
                lambda: store.create_incident(row.id, operator, title, expect_incident=current), "Not linked"
            )
            if made is not None:
                self.notify(f"New incident {made} from this mention.", markup=False)
            return
        target = choice.incident_id
        if await self._incident_write(
            lambda: store.link(row.id, target, operator, expect_incident=current), "Not linked"
        ) is not None:  # fmt: skip
            self.notify(f"Linked to incident {target}.", markup=False)

    @guarded("accept suggestion")
    async def action_accept_suggestion(self) -> None:
        row = self._mention_target()
        if row is None:
            return
        if row.suggested_incident is None or row.incident_id is not None:
            self.notify("No suggested incident for this mention (m links it to one).", markup=False)
            return
        store, operator = self.monitor.store, self.monitor.operator
        linked = await self._incident_write(lambda: store.accept_suggestion(row.id, operator), "Not linked")
        if linked is not None:
            self.notify(f"Linked to incident {linked}.", markup=False)

    @guarded("unlink")
    async def action_unlink_incident(self) -> None:
        row = self._mention_target()
        if row is None:
            return
        current = row.incident_id
        if current is None:
            self.notify("This mention is in no incident.", markup=False)
            return
        store, operator = self.monitor.store, self.monitor.operator
        if await self._incident_write(
            lambda: store.unlink(row.id, operator, expect_incident=current), "Not unlinked"
        ) is not None:  # fmt: skip
            if self.filter.incident == current:
                self._unlinked_here = (row.id, current)
                self.notify(f"Unlinked from incident {current}: u here puts it back.", markup=False)
                return
            self.notify(f"Unlinked from incident {current}: on its own row again (u there undoes it).", markup=False)

    def action_rename_incident(self) -> None:
        """The selected incident's row (or the incident opened with o) gets the operator's title."""
        group = self.pane().selected_incident()
        iid = group.incident.id if group is not None else self.filter.incident
        if iid is None:
            self.notify("Not an incident's row: t renames an incident.", markup=False)
        elif self.monitor.writable():
            self._rename_flow(iid)

    @work(group="incident", exclusive=True, exit_on_error=False, name="rename")
    async def _rename_flow(self, incident_id: int) -> None:
        store, operator = self.monitor.store, self.monitor.operator
        incident = await store.incident(incident_id)
        title = await self.app.push_screen_wait(TitleDialog(f"Rename incident {incident_id}", incident.title))
        if title is None:
            return

        async def rename() -> bool:
            await store.rename_incident(incident_id, title, operator, expect_rev=incident.rev)
            return True

        if await self._incident_write(rename, "Not renamed"):
            self.notify(f"Incident {incident_id} renamed.", markup=False)

    async def action_expand_incident(self) -> None:
        """An incident's row opens to its reports (a filter, Esc or o closes it); o on a report closes it."""
        if self.filter.incident is not None:
            await self.apply_filter("")
            return
        group = self.pane().selected_incident()
        if group is None:
            self.notify("Not an incident's row: m links this mention to one.", markup=False)
            return
        await self.apply_filter(f"incident:{group.incident.id}")

    # -- acting on every report of an incident ------------------------------------------------------

    async def _act(self, row: MentionRow, kind: ActionKind, payload: dict[str, Any], check: bool = True) -> bool | None:
        self._unlinked_here = None
        return await super()._act(row, kind, payload, check)

    @guarded("reopen")
    async def action_reopen(self) -> None:
        if self.pane().selected_incident() is not None:  # u would undo its lead report's action alone
            self.notify(ON_INCIDENT_ROW, severity="warning", markup=False)
            return
        unlinked = self._unlinked_here
        if unlinked is not None and unlinked[1] == self.filter.incident:
            row = await self.monitor.store.mention(unlinked[0])
            if await self._act(row, ActionKind.REOPEN, {}):
                self.notify(f"Back in incident {unlinked[1]}.", markup=False)
            return
        await super().action_reopen()

    def action_note(self) -> None:
        """On an incident's row, a note on the incident as a whole (in its history), not on its lead report."""
        if self.pane().selected_incident() is None:
            return super().action_note()
        group = self._incident_row()
        if group is None:
            return
        store, operator, iid = self.monitor.store, self.monitor.operator, group.incident.id

        async def done(text: str | None) -> None:
            if not text:
                return
            note = text
            if await self._incident_write(lambda: store.note_incident(iid, note, operator), "Not noted"):
                self.notify(f"Note added to incident {iid}'s history.", markup=False)

        self.app.push_screen(NoteDialog(f"Internal note on incident {iid} ({group.reports} reports)"), done)

    async def action_retry_delivery(self) -> None:
        if self.pane().selected_incident() is not None:  # one report's sends: never the lead's alone, unasked
            self.notify(ON_ONE_REPORT.format("ctrl+r retries the sends of"), severity="warning", markup=False)
            return
        await super().action_retry_delivery()

    async def action_cancel_delivery(self) -> None:
        if self.pane().selected_incident() is not None:
            self.notify(ON_ONE_REPORT.format("ctrl+k cancels the sends of"), severity="warning", markup=False)
            return
        await super().action_cancel_delivery()

    def _incident_row(self) -> IncidentSummary | None:
        group = self.pane().selected_incident()
        return group if group is not None and self.monitor.writable() else None

    def action_escalate(self) -> None:
        if self.pane().selected_incident() is None:
            return super().action_escalate()
        group = self._incident_row()
        services = self.monitor.watchlist.services
        if group is None or not services:
            if group is not None:
                self.notify("No services in watchlist.yaml.", severity="error", markup=False)
            return
        options = [(s.id, f"{s.name}" + (f" — {s.description}" if s.description else "")) for s in services]
        title = f"Escalate incident {group.incident.id} once ({group.reports} reports) to…"
        store, wl, operator, rev = self.monitor.store, self.monitor.watchlist, self.monitor.operator, group.incident.rev

        async def done(result: ChoiceResult | None) -> None:
            if result is not None:
                ids = await self._incident_write(lambda: incidents.escalate_once(
                    store, wl, group.incident.id, result.choice, operator, result.note, expect_rev=rev,
                ), "Not escalated")  # fmt: skip
                if ids is not None:
                    self.notify(f"Incident {group.incident.id} escalated: {len(ids)} report(s).", markup=False)

        self.app.push_screen(ChoiceDialog(title, options, with_note=True), done)

    def action_dismiss_mention(self) -> None:
        if self.pane().selected_incident() is None:
            return super().action_dismiss_mention()
        group = self._incident_row()
        if group is None:
            return
        options = [(r, r) for r in self.monitor.watchlist.dismiss_reasons]
        store, operator, rev = self.monitor.store, self.monitor.operator, group.incident.rev

        async def done(result: ChoiceResult | None) -> None:
            if result is not None:
                ids = await self._incident_write(lambda: incidents.dismiss(
                    store, group.incident.id, operator, result.choice, expect_rev=rev), "Not dismissed")  # fmt: skip
                if ids is not None:
                    self.notify(f"Incident {group.incident.id} dismissed: {len(ids)} report(s).", markup=False)

        self.app.push_screen(ChoiceDialog(f"Dismiss incident {group.incident.id} — why?", options), done)

    def action_reply(self) -> None:
        if self.pane().selected_incident() is None:
            return super().action_reply()
        group = self._incident_row()
        if group is not None:
            self._broadcast_flow(group, resolve=False)

    def action_resolve(self) -> None:
        if self.pane().selected_incident() is None:
            return super().action_resolve()
        group = self._incident_row()
        if group is not None:
            self._broadcast_flow(group, resolve=True)

    @work(group="compose", exclusive=True, exit_on_error=False, name="broadcast")
    async def _broadcast_flow(self, group: IncidentSummary, resolve: bool) -> None:
        """Acknowledge all, or resolve with a follow-up: claim every report, one text reviewed once, then one
        reply per reporter, refused if the incident changed while the operator wrote (the traffic cop)."""
        app = self.monitor
        iid, kind = group.incident.id, "resolving" if resolve else "replying"
        theirs = await app.presence.claim_incident(iid, kind)
        if theirs is not None:
            since = fmt_local(theirs.since, app.zone, with_date=False)
            question = f"{theirs.operator} has been {theirs.kind} to a report of it since {since}. Take it over?"
            if not await self.app.push_screen_wait(ConfirmDialog("Someone is on this incident", question)):
                return
            await app.presence.claim_incident(iid, kind, take_over=True)
        try:
            await self._broadcast(group, resolve)
        finally:
            await app.presence.unclaim_incident(iid)

    async def _broadcast(self, group: IncidentSummary, resolve: bool) -> None:
        app = self.monitor
        store, wl, operator, iid = app.store, app.watchlist, app.operator, group.incident.id
        detail = await store.incident_detail(iid)  # what the operator is shown: acting checks it still stands
        rev = detail.incident.rev
        if resolve:
            draft = incidents.draft_resolution(wl, detail)
            title = f"Resolve incident {iid}: a follow-up to every reporter"
            explain = f"{len(detail.reports)} report(s): each reporter gets this once; {{author}} is theirs."
        else:
            draft = incidents.acknowledgement_text(wl, group.lead)
            title = f"Acknowledge incident {iid}: every reporter not yet answered"
            explain = f"{group.unanswered} reporter(s) not yet answered get this, once each; {{author}} is theirs."
        text = await self.app.push_screen_wait(BroadcastDialog(title, explain, draft))
        if text is None:
            return
        if resolve:
            ids = await self._incident_write(lambda: incidents.resolve(
                store, wl, iid, operator, text, dry_run=app.dry_run, expect_rev=rev), "Not resolved")  # fmt: skip
        else:
            same = text == draft.strip()  # untouched: each reporter's own language's template
            ids = await self._incident_write(lambda: incidents.acknowledge_all(
                store, wl, iid, operator, None if same else text, dry_run=app.dry_run, expect_rev=rev,
            ), "Not sent")  # fmt: skip
        if ids is not None:
            verb = "resolved" if resolve else "acknowledged"
            self.notify(f"Incident {iid} {verb}: {len(ids)} reporter(s), see the detail for progress.", markup=False)
