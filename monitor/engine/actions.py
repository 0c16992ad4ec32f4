"""An operator's action and what it must deliver, logged and queued in one transaction.

A reply goes out through the source the mention came from (networks.replies says which networks can);
an escalation goes to every target of the chosen service. What each item carries is the networks'
business; when it is queued, and with what key, is the outbox's (db.outbox).
"""

from __future__ import annotations

import uuid
from typing import Any

from monitor.core import templates as tpl
from monitor.core.config import Watchlist
from monitor.core.models import ActionKind, MentionRow, Status
from monitor.core.outbox import ItemKind, NewItem, service_target, source_target
from monitor.db import outbox
from monitor.db.api import Database
from monitor.networks import services
from monitor.networks.replies import REPLY_NETWORKS


def _reply(row: MentionRow, raw: dict[str, Any] | None, text: str) -> dict[str, Any]:
    """What a reply needs about the original, taken now so the worker never reads the mention again."""
    common = {
        "text": text, "network": row.network, "remote_id": row.remote_id, "url": row.url,
        "lang": row.lang, "author": row.author, "mention_ref": tpl.reference(row.id),
    }  # fmt: skip
    return {**common, **REPLY_NETWORKS[row.network].fields(row, raw or {})}


def plan(
    watchlist: Watchlist,
    row: MentionRow,
    kind: ActionKind,
    payload: dict[str, Any],
    operator: str,
    dry_run: bool = False,
    raw: dict[str, Any] | None = None,
) -> list[NewItem]:
    """The items an action must deliver. Sources without a reply API answer elsewhere: nothing here."""
    items: list[NewItem] = []
    reply_text = payload.get("text") if kind is ActionKind.REPLY else payload.get("reply")
    if kind in (ActionKind.REPLY, ActionKind.RESOLVE) and reply_text and not payload.get("elsewhere"):
        spec = watchlist.source(row.source)
        stype = spec.type if spec else None
        # A demo mention shaped like Mastodon or Bluesky goes through the outbox in dry-run, to show the flow.
        if row.network in REPLY_NETWORKS and (stype == row.network or (stype == "demo" and dry_run)):
            item_kind = ItemKind.REPLY if kind is ActionKind.REPLY else ItemKind.FOLLOWUP
            body = _reply(row, raw, str(reply_text))
            items.append(NewItem(item_kind, source_target(row.source), uuid.uuid4().hex, body))
    if kind is ActionKind.ESCALATE:
        service = watchlist.service(str(payload.get("service", "")))
        if service is not None:
            body = services.escalation(row, service, watchlist.city, payload.get("note", ""), operator)
            for index, _target in enumerate(service.targets):
                items.append(NewItem(ItemKind.ESCALATION, service_target(service.id, index), uuid.uuid4().hex, body))
    return items


async def act(
    store: Database,
    watchlist: Watchlist,
    mention_id: int,
    kind: ActionKind,
    operator: str,
    payload: dict[str, Any],
    dry_run: bool = False,
    expect_status: Status | None = None,
) -> int:
    """Log an action and queue what it must deliver, in one transaction; returns the action id."""
    return await outbox.act(
        store,
        mention_id,
        kind,
        operator,
        payload,
        lambda row, raw: plan(watchlist, row, kind, payload, operator, dry_run, raw),
        expect_status,
    )
