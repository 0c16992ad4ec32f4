"""Mastodon live: server-sent events from the streaming API, with a REST backfill after each (re)connect.

API: docs.joinmastodon.org (methods/streaming).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from monitor.core.models import Batch
from monitor.core.sanitize import clean_line
from monitor.networks.base import SourceContext, SourceError
from monitor.networks.http import bounded_lines, check, parse_json, secure_origin
from monitor.networks.mastodon.options import MastodonOptions
from monitor.networks.mastodon.polling import TAG_LIMIT, MastodonSource
from monitor.networks.mastodon.statuses import (
    Collect,
    Feed,
    FeedKind,
    decode_cursor,
    dig,
    mention_status,
    newer,
    status_local_id,
)

log = logging.getLogger(__name__)

SILENCE_TIMEOUT = 45.0  # the streaming server sends ":thump" every 15 s: three missed means dead


@dataclass(frozen=True)
class StreamEvent:
    feed: Feed
    name: str
    data: str


class MastodonStreamingSource(MastodonSource):
    """Live over server-sent events; backfills over REST after every (re)connect, then streams.

    Hashtags use /api/v1/streaming/hashtag?tag=, mentions /api/v1/streaming/user/notification;
    search has no stream and is polled every `repoll_interval` seconds meanwhile.
    """

    def __init__(
        self,
        name: str,
        options: MastodonOptions,
        context: SourceContext,
        *,
        silence_timeout: float = SILENCE_TIMEOUT,
        repoll_interval: float = 60.0,
        connect_timeout: float = 20.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, options, context, **kwargs)
        self.silence_timeout = silence_timeout
        self.repoll_interval = repoll_interval
        self.connect_timeout = connect_timeout
        self._streaming_base: str | None = None
        self._searched_at: float | None = None  # loop time of the last search poll, across reconnects

    def stream(self, cursor: str | None) -> AsyncIterator[Batch]:
        return self._stream(cursor)

    async def _stream(self, cursor: str | None) -> AsyncIterator[Batch]:
        self._require_token()
        base = await self._discover_streaming()
        await self._account()
        queue: asyncio.Queue[StreamEvent | BaseException] = asyncio.Queue()
        live = [f for f in self.feeds if f.kind is not FeedKind.SEARCH]
        polled = [f for f in self.feeds if f.kind is FeedKind.SEARCH]
        connected = [asyncio.Event() for _ in live]
        readers = [
            asyncio.create_task(self._read(base, feed, queue, ready), name=f"{self.name}:{feed.key}")
            for feed, ready in zip(live, connected, strict=True)
        ]
        try:
            # Listen first, then backfill: what is posted meanwhile waits in the queue (no gap),
            # and what the backfill already returned is dropped by id (no duplicate).
            await self._until_connected(connected, queue)
            positions = decode_cursor(cursor)
            collect = Collect()
            loop = asyncio.get_running_loop()
            # Searches have no stream, so a reconnect left no gap in them: they keep their own pace, and
            # a stream that keeps reconnecting does not spend the rate limit on them.
            due = self._searched_at is None or loop.time() - self._searched_at >= self.repoll_interval
            await self._poll_feeds([*live, *(polled if due else ())], positions, collect)
            if due:
                self._searched_at = loop.time()
            yield self._finish(collect, positions)
            next_poll = (self._searched_at or loop.time()) + self.repoll_interval
            while True:
                wait = max(0.0, next_poll - loop.time()) if polled else None
                try:
                    first = await asyncio.wait_for(queue.get(), wait)
                except TimeoutError:
                    collect = Collect()
                    await self._poll_feeds(polled, positions, collect)
                    self._searched_at = loop.time()
                    next_poll = self._searched_at + self.repoll_interval
                    yield self._finish(collect, positions)
                    continue
                # Whatever else is already queued joins this batch: one transaction, not one per event.
                collect = Collect()
                item, error = first, None
                while True:
                    if isinstance(item, BaseException):
                        error = item
                        break
                    self.apply_event(item, positions, collect)
                    if queue.empty() or len(collect.batch.mentions) >= TAG_LIMIT:
                        break
                    item = queue.get_nowait()
                batch = collect.batch
                if batch.mentions or batch.edits or batch.deletes or batch.local_deletes or batch.skipped:
                    yield self._finish(collect, positions)  # what arrived before a failure is kept (edits, deletes)
                if error is not None:
                    raise error
        finally:
            for task in readers:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)

    async def _until_connected(self, connected: list[asyncio.Event], queue: asyncio.Queue[Any]) -> None:
        """Wait until every stream has answered 200; a failure of any of them is raised."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.connect_timeout
        early: list[Any] = []  # events from streams that connected before the others
        try:
            while not all(e.is_set() for e in connected):
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise SourceError(f"{self.name}: streaming server did not answer in {self.connect_timeout:g}s")
                getter = asyncio.ensure_future(queue.get())
                waiters = [asyncio.ensure_future(e.wait()) for e in connected if not e.is_set()]
                try:
                    await asyncio.wait([getter, *waiters], timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for future in (getter, *waiters):
                        future.cancel()
                if getter.done() and not getter.cancelled():
                    item = getter.result()
                    if isinstance(item, BaseException):
                        raise item
                    early.append(item)
        finally:
            for item in early:
                queue.put_nowait(item)

    async def _discover_streaming(self) -> str:
        """The streaming host from /api/v2/instance (configuration.urls.streaming, a ws(s) URL)."""
        if self._streaming_base is not None:
            return self._streaming_base
        base = self.options.instance
        info = await self._instance()
        if not info:
            log.info("%s: no streaming address from the instance; streaming from %s", self.name, base)
        else:
            url = dig(info, "configuration", "urls", "streaming")
            if isinstance(url, str) and url:
                parts = urlsplit(url)
                scheme = {"wss": "https", "ws": "http", "https": "https", "http": "http"}.get(parts.scheme)
                named = f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}"
                if scheme and parts.netloc and self._may_carry_token(named):
                    base = named
                elif scheme:
                    log.warning("%s: streaming host %s not trusted with the token; streaming from %s",
                                self.name, clean_line(named)[:200], base)  # fmt: skip
        self._streaming_base = base
        return base

    def _may_carry_token(self, url: str) -> bool:
        """The token goes only to the instance's own host or a subdomain of it (streaming.host), over https."""
        host = (urlsplit(url).hostname or "").lower()
        own = (urlsplit(self.options.instance).hostname or "").lower()
        return (host == own or host.endswith("." + own)) and secure_origin(url, self.options.allow_insecure)

    async def _read(self, base: str, feed: Feed, queue: asyncio.Queue[Any], ready: asyncio.Event) -> None:
        """One SSE connection: events into the queue; any failure too, as a SourceError."""
        what = f"{self.name}: {feed.label} stream"
        if feed.kind is FeedKind.TAG:
            url, params = f"{base}/api/v1/streaming/hashtag", {"tag": feed.arg}
        else:
            url, params = f"{base}/api/v1/streaming/user/notification", {}
        # No bytes (events or heartbeats) for silence_timeout seconds means the stream is dead.
        timeout = httpx.Timeout(self.silence_timeout, connect=self.connect_timeout)
        try:
            async with self._client.stream(
                "GET", url, params=params, headers={"Accept": "text/event-stream"}, timeout=timeout
            ) as response:
                try:
                    check(response, what)
                except SourceError as exc:
                    if exc.kind == "auth":
                        raise SourceError(
                            f"{what}: the token in {self.options.token_env} was rejected "
                            f"({response.status_code}); it needs read:statuses and read:notifications",
                            "auth",
                        ) from None
                    raise
                if response.status_code != 200:  # e.g. a redirect: not an event stream
                    raise SourceError(f"{what}: unexpected answer {response.status_code}", "config")
                ready.set()
                name, data = "message", list[str]()
                async for line in bounded_lines(response, what):
                    if not line:
                        if data:
                            queue.put_nowait(StreamEvent(feed, name, "\n".join(data)))
                        name, data = "message", []
                    elif line.startswith(":"):
                        continue  # heartbeat (":thump") or comment
                    else:
                        key, _, value = line.partition(":")
                        value = value[1:] if value.startswith(" ") else value
                        if key == "event":
                            name = value
                        elif key == "data":
                            data.append(value)
            raise SourceError(f"{what}: the server closed the stream")
        except httpx.ReadTimeout:
            queue.put_nowait(SourceError(f"{what}: silent for {self.silence_timeout:g}s, reconnecting"))
        except httpx.TimeoutException:
            queue.put_nowait(SourceError(f"{what}: timed out"))
        except httpx.HTTPError as exc:
            queue.put_nowait(SourceError(f"{what}: network error ({type(exc).__name__})"))
        except SourceError as exc:
            queue.put_nowait(exc)

    def apply_event(self, event: StreamEvent, positions: dict[str, str], collect: Collect) -> None:
        """Turn one SSE event into mentions, edits or deletes, advancing the feed's position."""
        feed = event.feed
        if event.name == "delete":
            local_id = event.data.strip()
            uri = self.resolve_delete(local_id)
            if uri is not None:
                collect.batch.deletes.append(uri)
            elif local_id.isdigit() and len(local_id) <= 32:
                collect.batch.local_deletes.append(local_id)  # seen before a restart: the store may know it
            return
        if event.name not in ("update", "status.update", "notification"):
            return  # filters_changed, announcements, conversation…
        try:
            payload = parse_json(event.data, f"{self.name}: {feed.label}")
        except SourceError:
            collect.batch.skipped += 1
            log.warning("%s: %s: malformed %s event skipped", self.name, feed.label, event.name)
            return
        if event.name == "notification":
            item_id = payload.get("id") if isinstance(payload, dict) else None
            status = mention_status(payload)
            if status is None:
                return  # follows, favourites… (the stream sends every type)
        else:
            status = payload
            item_id = status.get("id") if isinstance(status, dict) else None
        if isinstance(item_id, str) and item_id and event.name != "status.update":
            positions[feed.key] = newer(positions.get(feed.key), item_id) or item_id
            # Already returned (by the backfill, or another feed) in this process: not again. Ids are
            # not compared with the position: a post fetched late can carry an older id.
            if status_local_id(status) in self._known:
                return
        to_us = event.name == "notification"  # a mention notification: addressed to us by definition
        self._add_status(status, feed, collect, edited=event.name == "status.update", to_us=to_us)
