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
(Store.act_on_incident), which re-reads the reports inside it so nothing acts on a stale list.
"""

from __future__ import annotations

from typing import Any

from monitor.core.config import Watchlist
from monitor.core.incidents import IncidentDetail, Suggestion
from monitor.core.models import MentionRow
from monitor.core.outbox import NewItem
from monitor.db.store import Store


async def rank(store: Store, mention_id: int, limit: int = 20) -> list[Suggestion]:
    """The picker's list: open incidents most alike the mention first ("new incident" is the UI's own entry)."""
    return await store.rank_incidents(mention_id, limit)


def plan_escalation(
    watchlist: Watchlist, detail: IncidentDetail, reports: list[MentionRow], service_id: str, note: str, operator: str
) -> list[NewItem]:
    """One item per target of the service, each listing every report, under the incident's reference."""
    raise NotImplementedError


def plan_acknowledgement(
    watchlist: Watchlist, row: MentionRow, raw: dict[str, Any] | None, text: str, dry_run: bool = False
) -> list[NewItem]:
    """The reply one reporter gets: `text` with {author} and the rest filled for them (none if their
    network cannot be answered from here)."""
    raise NotImplementedError


def acknowledgement_text(watchlist: Watchlist, row: MentionRow) -> str:
    """The acknowledgement template for this reporter's language (the first `reply` template otherwise)."""
    raise NotImplementedError


def draft_resolution(watchlist: Watchlist, detail: IncidentDetail) -> str:
    """The follow-up for the operator to review once: the follow-up template with `{author}` left to fill
    for each reporter, the service filled in."""
    raise NotImplementedError


async def escalate_once(
    store: Store, watchlist: Watchlist, incident_id: int, service_id: str, operator: str, note: str = "",
    *, expect_rev: int | None = None,
) -> list[int]:  # fmt: skip
    """Escalate every open report at once; returns the action ids. Conflict if the incident changed since
    `expect_rev` or is closed; ValueError for an unknown service."""
    raise NotImplementedError


async def acknowledge_all(
    store: Store, watchlist: Watchlist, incident_id: int, operator: str, text: str | None = None,
    *, dry_run: bool = False,
) -> list[int]:  # fmt: skip
    """Reply `text` (or each reporter's template) to every reporter not yet answered; the action ids."""
    raise NotImplementedError


async def resolve(
    store: Store, watchlist: Watchlist, incident_id: int, operator: str, text: str, note: str = "",
    *, dry_run: bool = False,
) -> list[int]:  # fmt: skip
    """Resolve the incident: every open report resolved with `text` (reviewed once) filled for its
    reporter and queued as a follow-up; the action ids."""
    raise NotImplementedError


async def dismiss(store: Store, incident_id: int, operator: str, reason: str) -> list[int]:
    """Dismiss the incident and every open report with one reason; the action ids."""
    raise NotImplementedError
