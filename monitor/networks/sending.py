"""Delivery: the senders that make outbox items leave, and the worker that drives them.

Senders know nothing of SQLite or the UI: they get an OutboxItem and return Sent or raise DeliveryError.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from monitor.core.sanitize import clean_line
from monitor.db.outbox import OutboxItem
from monitor.networks.base import SourceError
from monitor.networks.http import json_body, parse_json, retry_after, send

__all__ = ["DeliveryError", "Sender", "Sent", "answer", "classify", "request", "secret"]


class DeliveryError(Exception):
    """A send failed. kind: transient (retry with backoff), rate (retry after), permanent (failed)."""

    def __init__(self, message: str, kind: str = "transient", retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Sent:
    remote_id: str | None
    remote_url: str | None
    remote_status: str | None = None


class Sender(Protocol):
    async def send(self, item: OutboxItem) -> Sent: ...

    async def aclose(self) -> None: ...


def secret(env: str | None, what: str) -> str:
    """A credential from the environment, never from the watchlist or the database."""
    value = os.environ.get(env or "", "")
    if not env or not value:
        raise DeliveryError(f"{what}: no credential (set the environment variable {env or '?'})", "permanent")
    return value


def answer(response: httpx.Response) -> dict[str, Any]:
    """An answer's JSON object, or {} (not JSON, too deep, not an object): for reading optional fields."""
    try:
        data = parse_json(response.content, "")
    except SourceError:
        return {}
    return data if isinstance(data, dict) else {}


def _reason(response: httpx.Response) -> str:
    """The server's own words, short and clean: Mastodon {error}, XRPC {error, message}, else nothing."""
    body = answer(response)
    parts = [clean_line(str(body[k])) for k in ("error", "message", "description") if body.get(k)]
    return ": " + " — ".join(parts)[:200] if parts else ""


def classify(response: httpx.Response, what: str) -> httpx.Response:
    """Turn an HTTP answer into the state it leaves: retry, rate, or a failure the operator sees."""
    status = response.status_code
    if status < 400:
        return response
    why = _reason(response)
    if status == 429:
        raise DeliveryError(f"{what}: rate limited (429)", "rate", retry_after(response) or 60.0)
    if status in (401, 403):
        raise DeliveryError(f"{what}: credentials rejected ({status}){why}", "permanent")
    if status in (404, 410):
        raise DeliveryError(f"{what}: not found ({status}) — deleted?{why}", "permanent")
    if status == 422:
        raise DeliveryError(f"{what}: refused as invalid (422){why}", "permanent")
    if status in (408, 425) or status >= 500:
        raise DeliveryError(f"{what}: server error {status}{why}", "transient")
    raise DeliveryError(f"{what}: HTTP {status}{why}", "permanent")


async def request(client: httpx.AsyncClient, method: str, url: str, what: str, **kwargs: Any) -> httpx.Response:
    """One HTTP call through the shared plumbing; network faults are transient."""
    try:
        response = await send(client, method, url, what, checked=False, **kwargs)
    except SourceError as exc:
        raise DeliveryError(str(exc), "transient") from exc
    return response


def body(response: httpx.Response, what: str) -> Any:
    try:
        return json_body(response, what)
    except SourceError as exc:
        raise DeliveryError(str(exc), "transient") from exc
