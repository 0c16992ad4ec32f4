"""Bluesky: posts found by app.bsky.feed.searchPosts, and the account's mentions, replies and quotes.

Both need a session through the account's PDS (xrpc.py); options.py reads the watchlist's keys and
posts.py turns posts into mentions. The cursor is one JSON string:
for each search query and for the notifications, the newest indexedAt returned so far and the posts
returned within LOOKBACK of it. Each poll pages newest-first until it reaches posts older than
that position minus LOOKBACK (or max_pages): search results are sorted by the time the author
claims, and reach the index late, so a post can appear behind one we already have.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from monitor.core.models import Batch
from monitor.core.timeutil import remote_time
from monitor.networks.base import SourceContext, SourceError, SourceType
from monitor.networks.bluesky.options import BlueskyOptions, parse_options
from monitor.networks.bluesky.posts import addressed, post_mention, short_did
from monitor.networks.bluesky.xrpc import XrpcClient

log = logging.getLogger(__name__)

SEARCH_POSTS = "app.bsky.feed.searchPosts"
LIST_NOTIFICATIONS = "app.bsky.notification.listNotifications"
NOTIFY_REASONS = ("mention", "reply", "quote")
PAGE_SIZE = 100  # the most both endpoints allow: the lookback re-reads a few minutes each poll
LOOKBACK = timedelta(minutes=5)
SEEN_CAP = 200  # posts remembered per position, so the lookback does not return them twice

__all__ = ["LOOKBACK", "TYPE", "BlueskyOptions", "BlueskySource", "parse_options", "session_path", "short_did"]


# -- positions (the cursor) -----------------------------------------------------------------


@dataclass
class Position:
    """How far one feed has been read: the newest indexedAt, and what was returned near it."""

    at: datetime
    seen: dict[str, datetime] = field(default_factory=dict)

    def dump(self) -> dict[str, Any]:
        return {"at": _iso(self.at), "seen": {uri: _iso(at) for uri, at in self.seen.items()}}

    @classmethod
    def load(cls, data: Any) -> Position | None:
        if not isinstance(data, dict) or (at := remote_time(data.get("at"))) is None:
            return None
        seen_raw = data.get("seen")
        seen = {}
        for uri, when in seen_raw.items() if isinstance(seen_raw, dict) else ():
            if (parsed := remote_time(when)) is not None:
                seen[str(uri)] = parsed
        return cls(at, seen)

    @classmethod
    def after(cls, old: Position | None, items: list[tuple[str, datetime]]) -> Position | None:
        """The position covering `old` and the items just read."""
        if not items:
            return old
        at = max([when for _, when in items] + ([old.at] if old else []))
        seen = dict(old.seen) if old else {}
        seen.update(items)
        horizon = at - LOOKBACK
        keep = sorted(((u, w) for u, w in seen.items() if w >= horizon), key=lambda uw: uw[1], reverse=True)
        return cls(at, dict(keep[:SEEN_CAP]))


def _load_cursor(cursor: str | None) -> tuple[dict[str, Position], Position | None]:
    if not cursor:
        return {}, None
    try:
        data = json.loads(cursor)
        if not isinstance(data, dict):
            raise ValueError("not an object")
    except ValueError:
        log.warning("unreadable Bluesky cursor; starting from the latest posts")
        return {}, None
    queries = found if isinstance(found := data.get("search"), dict) else {}
    search = {q: p for q, raw in queries.items() if (p := Position.load(raw)) is not None}
    return search, Position.load(data.get("notifications"))


def _dump_cursor(search: dict[str, Position], notifications: Position | None) -> str:
    data: dict[str, Any] = {"v": 1, "search": {q: p.dump() for q, p in search.items()}}
    if notifications is not None:
        data["notifications"] = notifications.dump()
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


# -- the source ---------------------------------------------------------------------------


def session_path(state_dir: Any, name: str) -> Path | None:
    if state_dir is None:
        return None
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    return Path(state_dir) / f"bluesky-{safe}.session.json"


class BlueskySource:
    page_size = PAGE_SIZE

    def __init__(self, name: str, options: BlueskyOptions, context: SourceContext) -> None:
        self.name = name
        self.options = options
        self.xrpc = XrpcClient(
            context,
            options.pds,
            options.handle,
            options.app_password_env,
            session_path(context.state_dir, name),
            label=name,
            plc=options.plc,
        )

    async def aclose(self) -> None:
        await self.xrpc.aclose()

    async def poll(self, cursor: str | None) -> Batch:
        old_search, old_notifications = _load_cursor(cursor)
        batch = Batch()
        taken: set[str] = set()  # one post found by two queries and as a notification is one mention
        search: dict[str, Position] = {}
        for query in self.options.search:
            known = old_search.get(query)
            fetch = functools.partial(self._search_page, query, known)
            items, position = await self._read(fetch, "posts", known, f"search {query!r}", batch)
            if position is not None:
                search[query] = position
            me = self.xrpc.session.did if self.xrpc.session else None  # the city's account, once logged in
            for view in items:
                self._take(batch, taken, view, view.get("record"), view.get("author"), addressed(view, me))
        notifications = old_notifications
        if self.options.notifications:
            items, notifications = await self._read(
                self._notifications_page, "notifications", old_notifications, "notifications", batch
            )
            for item in items:
                if item.get("reason") in NOTIFY_REASONS:  # a mention, reply or quote: to us, whatever it says
                    self._take(batch, taken, item, item.get("record"), item.get("author"), True)
        batch.cursor = _dump_cursor(search, notifications)
        return batch

    async def _search_page(self, query: str, position: Position | None, page: str | None) -> Any:
        params: dict[str, Any] = {"q": query, "sort": "latest", "limit": self.page_size}
        if position is not None:
            params["since"] = _iso(position.at - LOOKBACK)  # inclusive, on the post's sort time
        if page:
            params["cursor"] = page
        return await self.xrpc.query(SEARCH_POSTS, params)

    async def _notifications_page(self, page: str | None) -> Any:
        params: dict[str, Any] = {"limit": self.page_size, "reasons": list(NOTIFY_REASONS)}
        if page:
            params["cursor"] = page
        return await self.xrpc.query(LIST_NOTIFICATIONS, params)

    async def _read(
        self,
        fetch: Callable[[str | None], Awaitable[Any]],
        key: str,
        position: Position | None,
        what: str,
        batch: Batch,
    ) -> tuple[list[dict[str, Any]], Position | None]:
        """Page newest-first from `position`; returns the unseen items and the position after them.

        A first read takes one page: the desk starts with what is recent, not with a backlog.
        """
        fresh: list[dict[str, Any]] = []
        read: list[tuple[str, datetime]] = []
        horizon = position.at - LOOKBACK if position else None
        page: str | None = None
        for number in range(1, self.options.max_pages + 1):
            body = await fetch(page)
            items = body.get(key) if isinstance(body, dict) else None
            if not isinstance(items, list):
                raise SourceError(f"{what}: unexpected response (no {key!r} list)", "transient")
            reached = False
            for item in items:
                uri = item.get("uri") if isinstance(item, dict) else None
                when = remote_time(item.get("indexedAt")) if isinstance(item, dict) else None
                if not isinstance(uri, str) or when is None:
                    batch.skipped += 1
                    log.warning("%s: %s: an item without uri or indexedAt skipped", self.name, what)
                    continue
                if horizon is not None and when < horizon:
                    reached = True
                    continue
                if position is not None and uri in position.seen:
                    continue
                read.append((uri, when))
                fresh.append(item)
            page = body.get("cursor") if isinstance(body.get("cursor"), str) else None
            if reached or position is None or not items or not page:
                break
            if number == self.options.max_pages:
                log.warning(
                    "%s: %s: more than %d pages of new posts; older ones are not fetched",
                    self.name, what, self.options.max_pages,
                )  # fmt: skip
        return fresh, Position.after(position, read)

    def _take(self, batch: Batch, taken: set[str], view: dict[str, Any], record: Any, author: Any, to_us: bool) -> None:
        uri = view["uri"]
        if uri in taken:
            if to_us:  # found by a search, and as a notification: addressed to us
                for m in batch.mentions:
                    m.to_us = m.to_us or m.remote_id == uri
            return
        mention = post_mention(self.name, view, record, author)
        if mention is None:
            batch.skipped += 1
            return
        mention.to_us = to_us
        taken.add(uri)
        batch.mentions.append(mention)


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


TYPE = SourceType(
    option_keys=("pds", "handle", "app_password_env", "search", "notifications", "max_pages", "allow_insecure"),
    parse_options=parse_options,
    build=BlueskySource,
    default_interval=timedelta(seconds=60),
)
