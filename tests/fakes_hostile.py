"""A hostile peer on 127.0.0.1: one server that can play every misbehaviour found against the desk.

Each path is given a script of answers (`play`): the answers are used in order and the last one
repeats. The answers are small factories: absurd headers (Retry-After 1e12, inf, nan…), bodies
that never end or drip one byte at a time, JSON nested 100,000 deep, terminal escapes in what it
says, redirects elsewhere. It records every request (method, path with query, headers) so that a test
can see where a token went. Payloads themselves come from the other fakes' builders.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web

Answer = Callable[[web.Request], Awaitable[web.StreamResponse]]

RETRY_AFTERS = ("1e12", "1e20", "inf", "nan", "-5", "garbage")  # each crashed or stalled something
BAD_DATES = ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00")  # OverflowError on conversion
OSC52 = "\x1b]52;c;cm0gLXJmIH4K\x07"  # writes the operator's clipboard
OSC0 = "\x1b]0;pwned\x07"  # sets the window title
CLEAR = "\x1b[2J"  # blanks the screen
ESCAPES = (OSC52, OSC0, CLEAR)
DEEP = 100_000


@dataclass(frozen=True)
class Seen:
    method: str
    path: str  # with the query string
    headers: dict[str, str]


class Hostile:
    """An aiohttp server on a random loopback port; `host` may be 'localhost' to be another origin."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.scripts: dict[str, list[Answer]] = {}
        self.seen: list[Seen] = []
        self.url = ""
        self._runner: web.AppRunner | None = None
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self._dispatch)

    def play(self, path: str, *answers: Answer) -> Hostile:
        self.scripts[path] = list(answers)
        return self

    def requests_to(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path.split("?", 1)[0] == path]

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(Seen(request.method, request.path_qs, dict(request.headers)))
        script = self.scripts.get(request.path)
        if not script:
            return web.json_response({"error": "not here"}, status=404)
        answer = script.pop(0) if len(script) > 1 else script[0]
        return await answer(request)

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://{self.host}:{port}"

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()


@asynccontextmanager
async def hostile(host: str = "127.0.0.1") -> AsyncIterator[Hostile]:
    server = Hostile(host)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


# -- answers -----------------------------------------------------------------------------------


def answer(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Answer:
    """JSON (a str is sent as it is: already JSON text, possibly broken on purpose)."""
    text = body if isinstance(body, str) else json.dumps(body)

    async def respond(request: web.Request) -> web.StreamResponse:
        return web.Response(text=text, status=status, headers=headers, content_type="application/json")

    return respond


def raw(body: str | bytes, content_type: str, status: int = 200, headers: dict[str, str] | None = None) -> Answer:
    async def respond(request: web.Request) -> web.StreamResponse:
        data = body.encode("utf-8") if isinstance(body, str) else body
        return web.Response(body=data, status=status, headers=headers, content_type=content_type)

    return respond


def rate_limited(retry_after: str) -> Answer:
    return answer({"error": "Too many requests"}, 429, {"Retry-After": retry_after})


def deep(depth: int = DEEP, status: int = 200) -> Answer:
    return answer("[" * depth + "]" * depth, status)


def redirect(location: str, status: int = 302) -> Answer:
    async def respond(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, headers={"Location": location})

    return respond


def endless(content_type: str = "application/json", chunk: int = 256 * 1024) -> Answer:
    """A body that never ends, as fast as the reader takes it."""
    block = b"[" + b"0," * (chunk // 2)

    async def respond(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": content_type})
        await response.prepare(request)
        try:
            while True:
                await response.write(block)
        except (ConnectionError, asyncio.CancelledError):
            pass
        return response

    return respond


def drip(every: float, content_type: str = "application/json") -> Answer:
    """One byte every `every` seconds, forever: each read succeeds, so no read timeout ever fires."""

    async def respond(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": content_type})
        await response.prepare(request)
        try:
            await response.write(b"[")
            while True:
                await asyncio.sleep(every)
                await response.write(b" ")
        except (ConnectionError, asyncio.CancelledError):
            pass
        return response

    return respond


def escaped(text: str) -> str:
    """Text with every escape the desk must never pass to a terminal."""
    return f"{OSC52}{text}{OSC0}{CLEAR}"


def has_escape(value: Any) -> bool:
    return "\x1b" in json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else "\x1b" in value
