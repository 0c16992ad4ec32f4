"""Escalations to city services: Apprise (e-mail, chat), a generic JSON webhook, Open311 GeoReport v2.

Exactly-once depends on the receiver. The webhook sends an `Idempotency-Key` header (the same on every
attempt) for the receiver to dedupe. Apprise (e-mail, chat) and Open311 have no such key: they are
at-least-once, and the worker keeps the window small (marked `sending` before, `sent` right after).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from monitor.core import templates as tpl
from monitor.core.config import Service, ServiceTarget
from monitor.core.models import MentionRow
from monitor.core.outbox import OutboxItem, TargetType
from monitor.core.sanitize import safe_url
from monitor.networks.base import SourceContext
from monitor.networks.registry import Lazy
from monitor.networks.sending import Sender, secret

# Each kind of target is imported when a delivery first goes to one (the webhook and Open311 need httpx).
SENDERS: Lazy[Callable[[Service, ServiceTarget, SourceContext], Sender]] = Lazy(
    {
        TargetType.APPRISE: "monitor.networks.targets:AppriseSender",
        TargetType.OPEN311: "monitor.networks.targets:Open311Sender",
        TargetType.WEBHOOK: "monitor.networks.targets:WebhookSender",
    }
)


def escalation(row: MentionRow, service: Service, city: str, note: str, operator: str) -> dict[str, Any]:
    """What every target of a service gets about a mention, taken when the operator escalates it."""
    link = safe_url(row.url)  # a row stored before links were checked must not forward a script
    return {
        "mention": {
            "id": row.id, "source": row.source, "network": row.network, "author": row.author,
            "text": row.text, "url": link, "first_seen_at": row.first_seen_at,
        },
        "link": link, "note": note, "operator": operator, "reference": tpl.reference(row.id),
        "service": {"id": service.id, "name": service.name}, "city": city,
    }  # fmt: skip


def sender_for(service: Service, target: ServiceTarget, context: SourceContext) -> Sender:
    return SENDERS[target.type](service, target, context)


def address(target: ServiceTarget, what: str) -> str:
    """The target's URL: in the watchlist when it holds no secret, else from the environment."""
    if target.url:
        return target.url
    return secret(target.url_env, what)


def message(item: OutboxItem) -> tuple[str, str]:
    """A title and a plain-text body for people (e-mail, chat)."""
    p = item.payload
    m = p.get("mention", {})
    title = f"[{p.get('reference', '')}] {m.get('source', '')}: {m.get('author', '')} — {p['service']['name']}"
    lines = [str(m.get("text", "")), "", f"Link: {p.get('link') or '—'}"]
    if p.get("note"):
        lines.append(f"Note from {p.get('operator', '')}: {p['note']}")
    reports = p.get("reports") or []
    if reports:  # an incident escalated once: every citizen's report, under one reference
        lines += ["", f"{len(reports)} reports of this incident:"]
        lines += [f"- {r.get('network', '')} {r.get('author', '')}: {str(r.get('text', ''))[:200]}"
                  f" {r.get('url') or ''}".rstrip() for r in reports]  # fmt: skip
    lines.append(f"Reference: {p.get('reference', '')} (quote it when you answer)")
    return title, "\n".join(lines)
