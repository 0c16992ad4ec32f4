"""Acting on an incident acts on all its reports: in ONE transaction, each report's action logged.

- escalate once: one request per target of the service (webhook, Open311, Apprise) listing every report,
  one reference (the incident's) shared by all; each report logged `escalate`.
- acknowledge all: a templated reply to every reporter not yet answered, one outbox item each (own
  idempotency key), through the reporter's network, `{author}` filled, in their language if a template
  is; each logged `acknowledge` (a first response; the report stays open).
- resolve: the follow-up the operator reviewed once, filled for every reporter and queued; each report
  logged `resolve`.
- dismiss: one reason, every open report logged `dismiss`.

What each item carries is planned here (from the watchlist); the transaction is the store's
(Database.act_on_incident), which re-reads the reports inside it so nothing acts on a stale list.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from monitor.core import templates as tpl
from monitor.core.config import Watchlist
from monitor.core.incidents import Incident, IncidentDetail, IncidentStatus, Suggestion
from monitor.core.models import OPEN_STATUSES, ActionKind, MentionRow
from monitor.core.outbox import ItemKind, NewItem, service_target
from monitor.core.sanitize import safe_url
from monitor.db.api import Database
from monitor.db.incidents import IncidentActs, ReportAct
from monitor.engine.actions import plan as plan_action
from monitor.networks import services

Raw = Callable[[int], dict[str, Any] | None]


async def rank(store: Database, mention_id: int, limit: int = 20) -> list[Suggestion]:
    """The picker's list: open incidents most alike the mention first ("new incident" is the UI's own entry)."""
    return await store.rank_incidents(mention_id, limit)


def _open(reports: list[MentionRow]) -> list[MentionRow]:
    return [r for r in reports if r.status in OPEN_STATUSES]


def _personal(watchlist: Watchlist, row: MentionRow, text: str, incident: Incident) -> str:
    """`text` filled for one reporter; {ref} is the incident's reference, shared by every reporter."""
    return tpl.render(text, {**tpl.variables(row, watchlist.city, incident.service), "ref": incident.reference})


def plan_escalation(
    watchlist: Watchlist, incident: Incident, reports: list[MentionRow], service_id: str, note: str, operator: str
) -> list[NewItem]:
    """One item per target of the service, each listing every report, under the incident's reference."""
    service = watchlist.service(service_id)
    if service is None or not reports:
        return []
    body = services.escalation(reports[0], service, watchlist.city, note, operator)
    body["reference"] = incident.reference
    body["incident"] = {"id": incident.id, "title": incident.title}
    body["reports"] = [
        {"id": r.id, "source": r.source, "network": r.network, "author": r.author, "text": r.text,
         "url": safe_url(r.url), "first_seen_at": r.first_seen_at}
        for r in reports
    ]  # fmt: skip
    return [
        NewItem(ItemKind.ESCALATION, service_target(service.id, index), uuid.uuid4().hex, body)
        for index, _ in enumerate(service.targets)
    ]


def plan_acknowledgement(
    watchlist: Watchlist, row: MentionRow, raw: dict[str, Any] | None, text: str, dry_run: bool = False
) -> list[NewItem]:
    """The reply one reporter gets (`text` already filled for them): one item with its own idempotency key,
    through the reporter's own network and source; none if that network cannot be answered from here."""
    return plan_action(watchlist, row, ActionKind.REPLY, {"text": text}, "", dry_run, raw)


def acknowledgement_text(watchlist: Watchlist, row: MentionRow) -> str:
    """The acknowledgement template in this reporter's language (else any acknowledgement, else "")."""
    chosen = tpl.for_use(watchlist.templates, tpl.TemplateUse.ACKNOWLEDGE, row.lang)
    return chosen[0].text if chosen else ""


def draft_resolution(watchlist: Watchlist, detail: IncidentDetail) -> str:
    """The follow-up for the operator to review once: the follow-up template in the first report's language,
    `{author}` left for each reporter, the rest filled."""
    lang = detail.reports[0].lang if detail.reports else None
    chosen = tpl.for_use(watchlist.templates, tpl.TemplateUse.FOLLOWUP, lang)
    if not chosen:
        return ""
    fill = {"city": watchlist.city, "service": detail.incident.service, "ref": detail.incident.reference}
    return tpl.render(chosen[0].text, fill)


async def escalate_once(
    store: Database, watchlist: Watchlist, incident_id: int, service_id: str, operator: str, note: str = "",
    *, expect_rev: int | None = None,
) -> list[int]:  # fmt: skip
    """Escalate every open report at once; returns the action ids. Conflict if the incident changed since
    `expect_rev` or is closed; ValueError for an unknown service."""
    service = watchlist.service(service_id)
    if service is None:
        raise ValueError(f"no service {service_id!r} in the watchlist")

    def plan(incident: Incident, reports: list[MentionRow], raw: Raw, answered: frozenset[int]) -> IncidentActs:
        pending = [r for r in reports if r.status.value == "new"]
        payload = {"service": service.id, "service_name": service.name, "note": note}
        acts = [ReportAct(r.id, ActionKind.ESCALATE, payload) for r in pending]
        items = plan_escalation(watchlist, incident, pending, service.id, note, operator)
        return IncidentActs(acts, items, IncidentStatus.ESCALATED, service.name)

    return await store.act_on_incident(incident_id, operator, plan, "escalate", expect_rev=expect_rev)


async def acknowledge_all(
    store: Database, watchlist: Watchlist, incident_id: int, operator: str, text: str | None = None,
    *, dry_run: bool = False, expect_rev: int | None = None,
) -> list[int]:  # fmt: skip
    """Reply `text` (or each reporter's template) to every reporter not yet answered; the action ids.

    A report closed, deleted at its source, or already answered (a reply queued or sent) gets nothing."""

    def plan(incident: Incident, reports: list[MentionRow], raw: Raw, answered: frozenset[int]) -> IncidentActs:
        acts = []
        for r in _open(reports):
            if r.id in answered or r.deleted_at is not None:
                continue
            chosen = text if text is not None else acknowledgement_text(watchlist, r)
            if not chosen:
                continue
            filled = _personal(watchlist, r, chosen, incident)
            items = plan_acknowledgement(watchlist, r, raw(r.id), filled, dry_run)
            acts.append(ReportAct(r.id, ActionKind.ACKNOWLEDGE, {"text": filled, "elsewhere": not items}, items))
        return IncidentActs(acts)

    return await store.act_on_incident(incident_id, operator, plan, "acknowledge", expect_rev=expect_rev)


async def resolve(
    store: Database, watchlist: Watchlist, incident_id: int, operator: str, text: str, note: str = "",
    *, dry_run: bool = False, expect_rev: int | None = None,
) -> list[int]:  # fmt: skip
    """Resolve the incident: every open report resolved, `text` (reviewed once) filled for its reporter and
    queued as a follow-up (none for a post deleted at its source); the action ids."""

    def plan(incident: Incident, reports: list[MentionRow], raw: Raw, answered: frozenset[int]) -> IncidentActs:
        acts = []
        for r in _open(reports):
            filled = _personal(watchlist, r, text, incident) if text and r.deleted_at is None else ""
            payload = {"reply": filled, "note": note, "service": incident.service}
            items = plan_action(watchlist, r, ActionKind.RESOLVE, payload, operator, dry_run, raw(r.id))
            acts.append(ReportAct(r.id, ActionKind.RESOLVE, payload, items))
        return IncidentActs(acts, status=IncidentStatus.RESOLVED)

    return await store.act_on_incident(incident_id, operator, plan, "resolve", expect_rev=expect_rev)


async def dismiss(
    store: Database, incident_id: int, operator: str, reason: str, *, expect_rev: int | None = None
) -> list[int]:
    """Dismiss the incident and every open report with one reason; the action ids."""

    def plan(incident: Incident, reports: list[MentionRow], raw: Raw, answered: frozenset[int]) -> IncidentActs:
        acts = [ReportAct(r.id, ActionKind.DISMISS, {"reason": reason}) for r in _open(reports)]
        return IncidentActs(acts, status=IncidentStatus.DISMISSED)

    return await store.act_on_incident(incident_id, operator, plan, "dismiss", expect_rev=expect_rev)


async def service_closed(store: Database, watchlist: Watchlist, incident_id: int, request: str, notes: str) -> int:
    """The service closed the incident's request (Open311 `closed`): the follow-up to every reporter is drafted
    and logged for the operator to review once, then send to all with `resolve`. Nothing is sent yet.
    Returns 1 if a draft was logged (0 for an incident already closed)."""
    detail = await store.incident_detail(incident_id)
    if not detail.incident.open or not detail.reports:
        return 0
    payload = {
        "incident": incident_id,
        "text": f"Open311 request {request} closed" + (f": {notes}" if notes else ""),
        "draft": draft_resolution(watchlist, detail),
        "service_closed": True,
    }
    await store.act(detail.reports[0].id, ActionKind.NOTE, "open311", payload)
    return 1
