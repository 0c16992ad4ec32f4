"""HTTP plumbing shared by the network sources and senders: one client shape, one status classifier, rate limits.

Everything a peer sends is bounded here, where it enters: waits it asks for (bound_delay), the size of
a body (MAX_BODY), the time a whole request may take (TOTAL_SECONDS, a drip feed cannot hold us) and
the nesting of its JSON (MAX_DEPTH). Tokens go only over https, or to loopback (see secure_origin).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import re
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit

import httpx

from monitor.core.retry import ErrorKind
from monitor.core.sanitize import clean_line
from monitor.core.timeutil import bound_delay, parse_http_date, parse_iso, utcnow
from monitor.networks.base import NetworkError, SourceContext

log = logging.getLogger(__name__)

TIMEOUT = httpx.Timeout(20.0, connect=10.0)
TOTAL_SECONDS = 60.0  # a whole request, body included: httpx's timeouts are per read, a drip resets them
MAX_BODY = 8 * 1024 * 1024  # a page of statuses or a feed is well under 1 MB
MAX_DEPTH = 64  # JSON nesting; real answers stay under 20
MAX_LINE = 1024 * 1024  # one line of an endless stream (an SSE event's JSON is a few KB)
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
            when = parse_iso(value)
        except ValueError:
            return None
        if when.tzinfo is None:
            return None
        return bound_delay((when - now).total_seconds())
    if number != number:  # nan
        return None
    if number > 1_000_000_000:  # an epoch
        return bound_delay(number - now.timestamp())
    return bound_delay(number)


def retry_after(response: httpx.Response) -> float | None:
    """How long to wait after a 429: Retry-After (seconds or HTTP date), else the reset header."""
    value = response.headers.get("retry-after")
    if value:
        try:
            number = float(value)
        except ValueError:
            parsed = parse_http_date(value)
            if parsed is not None:
                return bound_delay((parsed - utcnow()).total_seconds())
        else:
            if number == number:  # not nan
                return bound_delay(number)
    return _reset_seconds(_rate_header(response.headers, "reset"))


def _rate_header(headers: httpx.Headers, name: str) -> str | None:
    """x-ratelimit-* (Mastodon), x-rate-limit-* (X, epoch seconds) or the IETF draft's ratelimit-*."""
    return headers.get(f"x-ratelimit-{name}") or headers.get(f"x-rate-limit-{name}") or headers.get(f"ratelimit-{name}")


def pacing_delay(response: httpx.Response) -> float:
    """Seconds to wait before the next call so as to slow down *before* hitting the limit."""
    h = response.headers
    limit, remaining = _rate_header(h, "limit"), _rate_header(h, "remaining")
    try:
        limit_n, remaining_n = float((limit or "").split(";")[0]), float(remaining or "")
    except ValueError:
        return 0.0
    if limit_n <= 0 or remaining_n / limit_n > LOW_REMAINING:
        return 0.0
    reset = _reset_seconds(_rate_header(h, "reset")) or 60.0
    return bound_delay(reset / max(1.0, remaining_n)) if remaining_n == remaining_n else 0.0


def answer(response: httpx.Response) -> dict[str, Any]:
    """An answer's JSON object, or {} (unread, not JSON, too deep, not an object): for optional fields."""
    try:
        content = response.content
    except httpx.ResponseNotRead:  # a stream, checked before its body is read
        return {}
    try:
        data = parse_json(content, "")
    except NetworkError:
        return {}
    return data if isinstance(data, dict) else {}


def _reason(response: httpx.Response) -> str:
    """The server's own words, short and clean: Mastodon {error}, XRPC {error, message}, else nothing."""
    body = answer(response)
    parts = [clean_line(str(body[k])) for k in ("error", "message", "description") if body.get(k)]
    return ": " + " — ".join(parts)[:200] if parts else ""


def check(response: httpx.Response, what: str) -> httpx.Response:
    """The one HTTP status classifier, for polls and sends alike: the answer, or the NetworkError it means."""
    status = response.status_code
    if status < 400:
        return response
    if status == 429:
        raise NetworkError(f"{what}: rate limited (429)", ErrorKind.RATE, retry_after(response) or 60.0)
    why = _reason(response)
    if status in (401, 403):
        raise NetworkError(f"{what}: credentials rejected ({status}){why}", ErrorKind.AUTH)
    if status in (404, 410):  # a wrong feed or tag when polling; a deleted original when replying
        raise NetworkError(f"{what}: not found (HTTP {status}){why}", ErrorKind.CONFIG)
    if status >= 500:
        raise NetworkError(f"{what}: server error {status}{why}", ErrorKind.TRANSIENT)
    if status in (408, 425):  # request timeout, too early: the same request may pass later
        raise NetworkError(f"{what}: HTTP {status}, try again later{why}", ErrorKind.TRANSIENT)
    if status == 422:
        raise NetworkError(f"{what}: refused as invalid (422){why}", ErrorKind.REFUSED)
    raise NetworkError(f"{what}: HTTP {status}{why}", ErrorKind.REFUSED)


async def send(
    client: httpx.AsyncClient, method: str, url: str, what: str, *, checked: bool = True, **kwargs: Any
) -> httpx.Response:
    """One request; network faults become transient NetworkErrors, HTTP errors are classified (check).

    With checked=False the caller gets error responses back to read their body first (XRPC's
    ExpiredToken is a 400 to act on), and must call check() itself.
    """
    auth = kwargs.pop("auth", httpx.USE_CLIENT_DEFAULT)  # a per-request signer (X's OAuth 1.0a)
    try:
        async with asyncio.timeout(TOTAL_SECONDS):
            response = await _bounded(client, client.build_request(method, url, **kwargs), what, auth)
    except TimeoutError as exc:
        raise NetworkError(f"{what}: no complete answer in {TOTAL_SECONDS:g}s", ErrorKind.TRANSIENT) from exc
    except httpx.TimeoutException as exc:
        raise NetworkError(f"{what}: timed out", ErrorKind.TRANSIENT) from exc
    except httpx.HTTPError as exc:  # DNS, refused, reset, protocol errors, truncated bodies
        raise NetworkError(f"{what}: network error ({type(exc).__name__})", ErrorKind.TRANSIENT) from exc
    return check(response, what) if checked else response


async def _bounded(
    client: httpx.AsyncClient, request: httpx.Request, what: str, auth: Any = httpx.USE_CLIENT_DEFAULT
) -> httpx.Response:
    """Send and read the body, at most MAX_BODY bytes (decoded: a gzip bomb counts what it inflates to)."""
    response = await client.send(request, stream=True, auth=auth)
    try:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > MAX_BODY:
                raise NetworkError(f"{what}: answer larger than {MAX_BODY // (1024 * 1024)} MB", ErrorKind.TRANSIENT)
            chunks.append(chunk)
    finally:
        await response.aclose()
    # The body is already decoded: drop the headers that describe the encoded one.
    headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in _ENCODED]
    return httpx.Response(
        response.status_code,
        headers=headers,
        content=b"".join(chunks),
        request=response.request,  # after redirects: the last one (feeds resolve links against it)
        extensions=response.extensions,
        history=response.history,
    )


_ENCODED = ("content-encoding", "content-length", "transfer-encoding")


_NEWLINE = re.compile(r"\r\n|\r|\n")


async def bounded_lines(response: httpx.Response, what: str) -> AsyncIterator[str]:
    """The lines of a stream that never ends by design (SSE); a line longer than MAX_LINE is an error,
    where aiter_lines() would buffer a line without end until memory runs out."""
    parts: list[str] = []
    size = 0
    async for text in response.aiter_text():
        *complete, rest = _NEWLINE.split(text)
        for piece in complete:
            parts.append(piece)
            yield "".join(parts)
            parts, size = [], 0
        parts.append(rest)
        size += len(rest)
        if size > MAX_LINE:
            raise NetworkError(f"{what}: a line longer than {MAX_LINE // 1024} KB", ErrorKind.TRANSIENT)
    if tail := "".join(parts):
        yield tail


def parse_json(data: str | bytes, what: str) -> Any:
    """JSON from a peer, nested at most MAX_DEPTH deep; anything else is a transient NetworkError."""
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise NetworkError(f"{what}: malformed JSON", ErrorKind.TRANSIENT) from exc
    if _too_deep(value):
        raise NetworkError(f"{what}: JSON nested deeper than {MAX_DEPTH}", ErrorKind.TRANSIENT)
    return value


def _too_deep(value: Any) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > MAX_DEPTH:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def json_body(response: httpx.Response, what: str) -> Any:
    return parse_json(response.content, what)


def secure_origin(url: str, allow_insecure: bool = False) -> bool:
    """May a credential go to `url`? Over https, or to loopback (a secure context, as browsers define it:
    the bytes never leave the machine), or anywhere when the watchlist says `allow_insecure: true`."""
    parts = urlsplit(url)
    if parts.scheme == "https" or allow_insecure:
        return parts.scheme in ("https", "http")
    return parts.scheme == "http" and is_loopback(parts.hostname or "")


def is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
