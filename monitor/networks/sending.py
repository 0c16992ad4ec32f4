"""What every sender shares: the Sender interface, its answer (Sent) and where credentials come from.

Senders know nothing of SQLite or the UI: they get an OutboxItem and return Sent, or raise the one
NetworkError whose kind (core.retry.ErrorKind) tells the delivery worker whether to try again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from monitor.core.models import Spend
from monitor.core.outbox import OutboxItem
from monitor.core.retry import ErrorKind
from monitor.networks.base import NetworkError

__all__ = ["FollowsRequests", "Sender", "Sent", "secret"]


@dataclass(frozen=True, slots=True)
class Sent:
    remote_id: str | None
    remote_url: str | None
    remote_status: str | None = None
    cost: Spend | None = None  # what a paid network charged for it (X), stored when it is marked sent


class Sender(Protocol):
    async def send(self, item: OutboxItem) -> Sent: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class FollowsRequests(Sender, Protocol):
    """A sender whose requests live on after sending (Open311): the worker asks how each one is doing."""

    async def status(self, remote_id: str) -> tuple[str | None, str, str]:
        """(status, notes, the request's id) of a request sent earlier."""
        ...


def secret(env: str | None, what: str) -> str:
    """A credential from the environment, never from the watchlist or the database."""
    value = os.environ.get(env or "", "")
    if not env or not value:
        raise NetworkError(f"{what}: no credential (set the environment variable {env or '?'})", ErrorKind.CONFIG)
    return value
