"""X's filtered stream, where the plan allows it (docs.x.com, "Filtered stream").

Rules: GET /2/tweets/search/stream/rules lists them ({data: [{id, value, tag}]}); POST the same path with
{"add": [{value, tag}]} or {"delete": {"ids": [...]}}. The desk's own rules carry the tag `monitor`
(an app's rules are shared: others are left alone): one per search query, and `@username` for the
city's mentions. GET /2/tweets/search/stream then sends one JSON object a line ({data, includes,
matching_rules} or {errors}), and a bare CRLF as keep-alive every 20 seconds.

A 403 (the plan has no filtered stream: "client-forbidden") is not a failure: the source falls back to
polling recent search and says so. After every (re)connect, recent search and the mentions timeline
backfill from the saved cursor before the stream's posts are read, so a drop leaves no gap; a streamed
post moves every search feed's since_id to it (the stream saw everything before it).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx

from monitor.core.models import Batch
from monitor.core.retry import ErrorKind
from monitor.core.sanitize import clean_line
from monitor.networks.base import NetworkError
from monitor.networks.http import answer, bounded_lines, json_body, send
from monitor.networks.x.posts import FIELDS, read_page
from monitor.networks.x.source import Cursor, Position, XSource

log = logging.getLogger(__name__)

STREAM = "/2/tweets/search/stream"
RULES = f"{STREAM}/rules"
TAG = "monitor"
KEEP_ALIVE = 20.0  # X's keep-alive period: a read silent for three of them is a dead connection
STREAM_TIMEOUT = httpx.Timeout(20.0, read=3 * KEEP_ALIVE)
MENTIONS_REPOLL = 60.0  # without `username:` no rule catches mentions: the timeline is read this often


class PlanRefused(Exception):
    """The app's plan does not include the filtered stream (403)."""


class XStreamSource(XSource):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.streams = True  # the collector streams while True; polls once the plan refused the stream
        self.fallback = ""
        self.mentions_repoll = MENTIONS_REPOLL

    async def poll(self, cursor: str | None) -> Batch:
        batch = await super().poll(cursor)
        if self.fallback:
            self.note = f"{self.fallback} · {self.note}"
        return batch

    def rules(self) -> set[str]:
        wanted = set(self.queries)
        if self.options.username:
            wanted.add(f"@{self.options.username}")
        return wanted

    def stream(self, cursor: str | None) -> AsyncIterator[Batch]:
        return self._stream(cursor)

    async def _stream(self, cursor: str | None) -> AsyncIterator[Batch]:
        what = f"x: {self.name}: filtered stream"
        self.check_budget()
        try:
            await self._sync_rules(what)
            async with self._client.stream(
                "GET", STREAM, params=FIELDS, headers=self.bearer(what), timeout=STREAM_TIMEOUT
            ) as response:
                if response.status_code == 403:
                    await response.aread()
                    raise PlanRefused(_said(response))
                if response.status_code != 200:
                    await response.aread()
                    self._check(response, what)
                self.meter.next_due = None  # the backfill is owed whatever the pace: the stream relies on it
                backfill = await self.poll(cursor)
                state = Cursor.load(backfill.cursor or cursor)
                yield backfill
                loop = asyncio.get_running_loop()
                mentions_due = loop.time() + self.mentions_repoll
                async for line in bounded_lines(response, what):  # a keep-alive at least every 20 s
                    if line.strip():
                        batch = self._streamed(line, state, what)
                        if batch.mentions or batch.deletes or batch.skipped:
                            yield batch
                    if self.options.mentions and not self.options.username and loop.time() >= mentions_due:
                        yield await self._mentions(state)
                        mentions_due = loop.time() + self.mentions_repoll
                    self.check_budget()  # the month is spent: hang up rather than receive (and pay for) more
        except PlanRefused as exc:
            self.streams = False
            self.fallback = "no filtered stream in this plan (403): polling recent search"
            self.note = self.fallback
            log.warning("%s: %s: %s", self.name, self.fallback, exc)
            return
        except httpx.HTTPError as exc:
            raise NetworkError(f"{what}: {type(exc).__name__}", ErrorKind.TRANSIENT) from None
        raise NetworkError(f"{what}: closed by X", ErrorKind.TRANSIENT)

    def _streamed(self, line: str, state: Cursor, what: str) -> Batch:
        """One streamed object as a batch, with the cursor moved past it and what it cost."""
        batch = Batch()
        try:
            body = json.loads(line)
        except ValueError:
            log.warning("%s: an unreadable line in the stream, skipped", self.name)
            batch.skipped = 1
            return batch
        if not isinstance(body, dict):
            return batch
        data = body.get("data")
        page = read_page({**body, "data": [data] if isinstance(data, dict) else []})
        if not page.posts and page.problems.other:
            log.warning("%s: the stream says: %s", self.name, clean_line(json.dumps(body.get("errors")))[:300])
        self._charge(page.result_count, len(page.users))  # received is paid for: kept whatever the budget
        self._note_problems("stream", page, batch)
        self._take(page, False, batch, set())
        for post in page.posts:
            post_id = str(post.get("id"))
            for key, position in list(state.feeds.items()):
                if key.startswith("search:") and post_id.isdigit() and int(post_id) > int(position.since or 0):
                    state.feeds[key] = Position(post_id, position.next, position.newest)
        batch.cursor = state.dump()
        batch.spend = self.meter.report()
        self.note = self.meter.summary()
        return batch

    async def _mentions(self, state: Cursor) -> Batch:
        """The mentions timeline since its saved position, between streamed posts."""
        key, path, _ = self.feeds()[0]
        batch = Batch()
        state.feeds[key] = await self._read(key, path, None, state.feeds.get(key) or Position(), batch, set())
        batch.cursor = state.dump()
        batch.spend = self.meter.report()
        return batch

    async def _sync_rules(self, what: str) -> None:
        """The desk's rules made to match its queries: stale ones deleted, missing ones added."""
        r = await send(self._client, "GET", RULES, what, checked=False, headers=self.bearer(what))
        if r.status_code == 403:
            raise PlanRefused(_said(r))
        self._check(r, what)
        held = json_body(r, what).get("data")
        ours = {
            str(rule.get("value")): str(rule.get("id"))
            for rule in (held if isinstance(held, list) else ())
            if isinstance(rule, dict) and rule.get("tag") == TAG
        }
        wanted = self.rules()
        stale = [rule_id for value, rule_id in ours.items() if value not in wanted]
        missing = sorted(wanted - set(ours))
        if stale:
            await self._post_rules({"delete": {"ids": stale}}, what)
        if missing:
            await self._post_rules({"add": [{"value": v, "tag": TAG} for v in missing]}, what)

    async def _post_rules(self, payload: dict[str, Any], what: str) -> None:
        r = await send(self._client, "POST", RULES, what, checked=False, json=payload, headers=self.bearer(what))
        if r.status_code == 403:
            raise PlanRefused(_said(r))
        self._check(r, what)
        errors = json_body(r, what).get("errors")
        if isinstance(errors, list) and errors:  # an invalid rule: said once, the others still apply
            log.warning("%s: rules refused: %s", self.name, clean_line(json.dumps(errors))[:300])


def _said(response: httpx.Response) -> str:
    body = answer(response)
    return clean_line(str(body.get("detail") or body.get("title") or response.status_code))[:200]
