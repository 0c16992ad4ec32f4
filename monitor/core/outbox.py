"""What the outbox holds: an item to deliver, its state, its kind and where it goes.

Shared by the database layer (which queues items), the networks (whose senders deliver them) and the
engine (which plans and drives them), so that none of them has to import another for these shapes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

DRY_RUN_URL = "dry-run"  # the remote id and URL of an item "sent" in dry-run: nothing left the machine


class OutboxState(StrEnum):
    """pending -> sending (claimed, with a lease) -> sent | failed (the operator retries or cancels) | cancelled."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ItemKind(StrEnum):
    REPLY = "reply"  # the operator's reply, posted under the mention
    ESCALATION = "escalation"  # the mention handed to a city service
    FOLLOWUP = "followup"  # a reply posted when the mention is resolved


class TargetType(StrEnum):
    """How a city service is reached (a service target's `type:` in the watchlist)."""

    APPRISE = "apprise"
    WEBHOOK = "webhook"
    OPEN311 = "open311"


def source_target(source: str) -> str:
    """The target of a reply: the source whose account answers."""
    return f"source:{source}"


def service_target(service_id: str, index: int) -> str:
    """The target of an escalation: one of a service's targets, by its place in the watchlist."""
    return f"service:{service_id}#{index}"


@dataclass(frozen=True, slots=True)
class NewItem:
    """An item planned for an action, before it is queued."""

    kind: ItemKind
    target: str  # source_target() | service_target()
    idem_key: str  # generated once, sent with every attempt: a retry never posts twice
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    action_id: int
    mention_id: int
    kind: ItemKind
    target: str
    idem_key: str
    payload: dict[str, Any]
    state: OutboxState
    attempts: int
    next_attempt_at: int
    claimed_at: int | None
    last_error: str
    remote_id: str | None
    remote_url: str | None
    remote_status: str | None
    checked_at: int | None
    created_at: int
    updated_at: int

    @property
    def source(self) -> str | None:
        """The source a reply goes out through, or None for an escalation."""
        return self.target.removeprefix("source:") if self.target.startswith("source:") else None

    @property
    def service(self) -> tuple[str, int] | None:
        """(service id, target index) of an escalation, or None for a reply."""
        if not self.target.startswith("service:"):
            return None
        sid, _, index = self.target.removeprefix("service:").rpartition("#")
        return sid, int(index)
