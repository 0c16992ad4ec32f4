"""The operator's actions on the selected mention: each asks through a dialog, then acts on its result.

Every action names the status the operator saw: if another operator moved the mention first, nothing happens.
"""

from __future__ import annotations

import functools
from typing import Any

from textual import work

from monitor.core import templates as tpl
from monitor.core.models import ActionKind, ActionRow, MentionRow, Status
from monitor.core.timeutil import fmt_local
from monitor.ui.screens.desk_panes import DeskPanes
from monitor.ui.screens.dialogs import ChoiceDialog, ChoiceResult, ComposeDialog, ConfirmDialog, NoteDialog
from monitor.ui.screens.guard import guarded
from monitor.ui.widgets.detail import describe_action


class DeskActions(DeskPanes):
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

    def action_resolve(self) -> None:
        row = self._target((Status.ESCALATED,), "resolved")
        if row is not None:
            self._compose_flow(row, resolve=True)

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
            result = await self.app.push_screen_wait(self._compose_dialog(row, resolve, seen))
            if result is None or not await self._nobody_acted(row, {a.id for a in seen}):
                return
            if resolve:
                payload: dict[str, Any] = {"note": result.note, "reply": result.text, "template": result.template}
            else:
                payload = {"text": result.text, "template": result.template}
            if result.elsewhere:
                payload["elsewhere"] = result.elsewhere
            await self._act(row, ActionKind.RESOLVE if resolve else ActionKind.REPLY, payload, check=False)
        finally:
            await app.presence.unclaim(row.id)

    def _compose_dialog(self, row: MentionRow, resolve: bool, seen: list[ActionRow]) -> ComposeDialog:
        """The reply dialog, or (resolving) the follow-up to the citizen, prefilled from the first template."""
        watchlist = self.monitor.watchlist
        service = next((a.payload.get("service_name", "") for a in reversed(seen)
                        if a.kind is ActionKind.ESCALATE), "")  # fmt: skip
        city = watchlist.city
        spec = watchlist.source(row.source)
        cost = None
        if spec is not None and spec.type == "x" and row.network == "x":  # paid per post: say the price first
            from monitor.networks.x.length import cost_words  # only a desk with an X source loads X

            budget = spec.options.budget
            cost = functools.partial(cost_words, budget=budget)
        if not resolve:
            templates = tpl.for_use(watchlist.templates, "reply", row.lang)
            return ComposeDialog(row, city, templates, title=f"Reply to {row.author}", service=service, cost=cost)
        templates = tpl.for_use(watchlist.templates, "followup", row.lang)
        prefill = tpl.draft_followup(watchlist.templates, row, city, service)
        title = "Resolve: the service fixed it — follow-up to the citizen"
        return ComposeDialog(
            row, city, templates, title=title, service=service, with_note=True, prefill=prefill, cost=cost
        )

    async def _nobody_acted(self, row: MentionRow, seen_ids: set[int]) -> bool:
        """Traffic cop: if someone else acted while this operator was writing, say what, and ask."""
        app = self.monitor
        news = [a for a in await app.store.actions(row.id) if a.id not in seen_ids and a.operator != app.operator]
        if not news:
            return True
        what = "\n".join(f"{fmt_local(a.at, app.zone, with_date=False)} {a.operator}: {describe_action(a)}"
                         for a in news)  # fmt: skip
        if await self.app.push_screen_wait(
            ConfirmDialog("The mention changed while you were writing", what + "\n\nSend anyway?")
        ):
            return True
        self.notify("Not sent.", markup=False)
        return False

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

        self.app.push_screen(ChoiceDialog(f"Escalate {row.author}'s mention to…", options, with_note=True), done)

    def action_dismiss_mention(self) -> None:
        row = self._target((Status.NEW, Status.ESCALATED), "dismissed")
        if row is None:
            return
        options = [(r, r) for r in self.monitor.watchlist.dismiss_reasons]

        async def done(result: ChoiceResult | None) -> None:
            if result is not None:
                await self._act(row, ActionKind.DISMISS, {"reason": result.choice})

        self.app.push_screen(ChoiceDialog("Dismiss — why?", options), done)

    def action_note(self) -> None:
        row = self._target()
        if row is None:
            return

        async def done(text: str | None) -> None:
            if text:  # a note changes no status: it stands whatever others did meanwhile
                await self._act(row, ActionKind.NOTE, {"text": text}, check=False)

        self.app.push_screen(NoteDialog(f"Internal note on {row.author}'s mention"), done)

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
