"""HTTP plumbing shared by the network sources: one client shape, one error taxonomy, rate limits."""

from __future__ import annotations

import email.utils
import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx

from monitor.sources.base import SourceContext, SourceError
from monitor.timeutil import utcnow

log = logging.getLogger(__name__)

TIMEOUT = httpx.Timeout(20.0, connect=10.0)
LOW_REMAINING = 0.1  # below 10% of the window left, spread the remaining calls until the reset


def make_client(context: SourceContext, base_url: str = "", **kwargs: Any) -> httpx.AsyncClient:
    """An AsyncClient; tests pass `http_factory` in the context to inject a transport."""
    headers = {"User-Agent": context.user_agent, **kwargs.pop("headers", {})}
    factory: Callable[..., httpx.AsyncClient] = context.http_factory or httpx.AsyncClient
    return factory(base_url=base_url, headers=headers, timeout=kwargs.pop("timeout", TIMEOUT), **kwargs)


def _reset_seconds(value: str | None) -> float | None:
    """A rate-limit reset: epoch seconds (Bluesky), an ISO-8601 time (Mastodon) or seconds from now."""
    if not value:
        return None
    value = value.strip()
    now = utcnow()
    try:
        number = float(value)
    except ValueError:
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if when.tzinfo is None:
            return None
        return max(0.0, (when - now).total_seconds())
    if number > 1_000_000_000:  # an epoch
        return max(0.0, number - now.timestamp())
    return max(0.0, number)


def retry_after(response: httpx.Response) -> float | None:
    """How long to wait after a 429: Retry-After (seconds or HTTP date), else the reset header."""
    value = response.headers.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            parsed = email.utils.parsedate_to_datetime(value) if value else None
            if parsed is not None and parsed.tzinfo is not None:
                return max(0.0, (parsed - utcnow()).total_seconds())
    return _reset_seconds(response.headers.get("x-ratelimit-reset") or response.headers.get("ratelimit-reset"))


def pacing_delay(response: httpx.Response) -> float:
    """Seconds to wait before the next call so as to slow down *before* hitting the limit."""
    h = response.headers
    limit = h.get("x-ratelimit-limit") or h.get("ratelimit-limit")
    remaining = h.get("x-ratelimit-remaining") or h.get("ratelimit-remaining")
    try:
        limit_n, remaining_n = float((limit or "").split(";")[0]), float(remaining or "")
    except ValueError:
        return 0.0
    if limit_n <= 0 or remaining_n / limit_n > LOW_REMAINING:
        return 0.0
    reset = _reset_seconds(h.get("x-ratelimit-reset") or h.get("ratelimit-reset")) or 60.0
    return reset / max(1.0, remaining_n)


def check(response: httpx.Response, what: str) -> httpx.Response:
    """Turn an HTTP answer into a SourceError of the right kind, or return it."""
    status = response.status_code
    if status < 400:
        return response
    if status == 429:
        raise SourceError(f"{what}: rate limited (429)", "rate", retry_after(response) or 60.0)
    if status in (401, 403):
        raise SourceError(f"{what}: credentials rejected ({status})", "auth")
    if status >= 500:
        raise SourceError(f"{what}: server error {status}", "transient")
    raise SourceError(f"{what}: HTTP {status}", "config" if status in (404, 410) else "transient")


async def send(
    client: httpx.AsyncClient, method: str, url: str, what: str, *, checked: bool = True, **kwargs: Any
) -> httpx.Response:
    """One request; network faults become transient SourceErrors, HTTP errors are classified.

    With checked=False the caller gets error responses back to read their body first (XRPC's
    ExpiredToken is a 400 to act on), and must call check() itself.
    """
    try:
        response = await client.request(method, url, **kwargs)
    except httpx.TimeoutException as exc:
        raise SourceError(f"{what}: timed out", "transient") from exc
    except httpx.HTTPError as exc:  # DNS, refused, reset, protocol errors, truncated bodies
        raise SourceError(f"{what}: network error ({type(exc).__name__})", "transient") from exc
    return check(response, what) if checked else response


def json_body(response: httpx.Response, what: str) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SourceError(f"{what}: malformed JSON", "transient") from exc
