"""Mastodon: hashtag timelines, mentions of the city's account, keyword search, and live SSE streams.

API: docs.joinmastodon.org (methods/timelines, notifications, search, streaming; api/guidelines).
Ids are opaque strings; they sort as numbers, so they are only ever compared by (length, text).
The cursor is one JSON object of per-feed positions, e.g. {"tag:toulouse": "1132…", "notifications":
"3497…", "search:toulouse metropole": "1132…"}, and only ever covers what a batch returns.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import yaml

from monitor.core.models import Batch, Mention
from monitor.core.sanitize import clean, clean_line, safe_url
from monitor.core.timeutil import parse_remote_time
from monitor.core.yamlread import ENV_NAME, Node
from monitor.networks.base import SourceContext, SourceError, SourceType
from monitor.networks.http import (
    bounded_lines,
    check,
    json_body,
    make_client,
    pacing_delay,
    parse_json,
    secure_origin,
    send,
)
from monitor.networks.mastodon.html import html_to_text

log = logging.getLogger(__name__)

NETWORK = "mastodon"
TAG_LIMIT = 40  # the documented maximum per page for timelines and search
NOTIFICATION_LIMIT = 80
SEARCH_LIMIT = 40
MAX_PAGES = 10  # per feed and poll; the cursor resumes where a poll stopped
MAX_PACING = 30.0  # never wait longer than this between two calls to spare the rate limit
SILENCE_TIMEOUT = 45.0  # the streaming server sends ":thump" every 15 s: three missed means dead
NOTIFIED = ("mention", "quote")  # notifications kept: addressed to us (quotes of our posts: Mastodon 4.5+)
KNOWN_LIMIT = 20_000  # statuses remembered (id -> uri, a few MB) to resolve deletes and replies
_TAG = re.compile(r"^\w+$")


@dataclass(frozen=True)
class MastodonOptions:
    instance: str  # "https://host", no trailing slash
    token_env: str | None = None
    hashtags: tuple[str, ...] = ()
    notifications: bool = False
    search: tuple[str, ...] = ()
    stream: bool = False
    allow_insecure: bool = False  # a test server on plain http, not on this machine

    @property
    def host(self) -> str:
        return urlsplit(self.instance).netloc


def parse_options(fields: dict[str, Node], node: Node) -> MastodonOptions:
    if "instance" not in fields:
        node.fail("missing key 'instance' in a mastodon source", "instance: https://mastodon.example")
    instance = _instance(fields["instance"])
    token_env = None
    if "token_env" in fields:
        token_env = fields["token_env"].str().strip()
        if not ENV_NAME.match(token_env):
            fields["token_env"].fail(
                "token_env is not an environment variable name",
                "the NAME of a variable holding the token (e.g. MASTODON_TOKEN), never the token itself",
            )
    hashtags: list[str] = []
    for item in _items(fields.get("hashtags")):
        tag = item.str().strip().lstrip("#")
        if not _TAG.match(tag):
            item.fail(f"{tag!r} is not a hashtag", "letters, digits and _ only, without spaces")
        if tag.lower() not in (t.lower() for t in hashtags):
            hashtags.append(tag)
    search = tuple(dict.fromkeys(item.str().strip() for item in _items(fields.get("search"))))
    notifications = fields["notifications"].bool() if "notifications" in fields else False
    stream = fields["stream"].bool() if "stream" in fields else False
    if not (hashtags or notifications or search):
        node.fail("this mastodon source watches nothing", "hashtags, notifications: true, or search")
    if token_env is None:
        for key, wanted in (("notifications", notifications), ("search", bool(search)), ("stream", stream)):
            if wanted:
                fields[key].fail(f"{key} needs a logged-in token", "token_env: NAME_OF_A_VARIABLE")
    allow_insecure = fields["allow_insecure"].bool() if "allow_insecure" in fields else False
    if token_env is not None and not secure_origin(instance, allow_insecure):
        fields["instance"].fail(
            "the token would cross the network in clear (http)",
            "an https address, or allow_insecure: true for a test server",
        )
    return MastodonOptions(instance, token_env, tuple(hashtags), notifications, search, stream, allow_insecure)


def _instance(node: Node) -> str:
    text = node.str().strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("https", "http") or not parts.netloc or parts.path or parts.query:
        node.fail(f"{text!r} is not an instance address", "an address like https://mastodon.social")
    return text


def _items(node: Node | None) -> list[Node]:
    """A list, or a single value standing for a list of one."""
    if node is None or node.is_null():
        return []
    return [node] if isinstance(node.node, yaml.ScalarNode) else node.list()


# -- ids and cursors ------------------------------------------------------------------------


def id_key(value: str) -> tuple[int, str]:
    """Mastodon ids are strings of digits: longer is newer, then lexical order (never int())."""
    return (len(value), value)


def newer(a: str | None, b: str | None) -> str | None:
    if a is None:
        return b
    if b is None:
        return a
    return b if id_key(b) > id_key(a) else a


def decode_cursor(cursor: str | None) -> dict[str, str]:
    if not cursor:
        return {}
    try:
        data = json.loads(cursor)
    except json.JSONDecodeError:
        log.warning("unreadable mastodon cursor ignored; starting from the newest posts")
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): v for k, v in data.items() if isinstance(v, str) and v}


def encode_cursor(positions: dict[str, str]) -> str:
    return json.dumps(positions, sort_keys=True, ensure_ascii=False)


@dataclass(frozen=True)
class Feed:
    kind: str  # tag | notifications | search
    arg: str = ""

    @property
    def key(self) -> str:
        if self.kind == "tag":
            return "tag:" + self.arg.lower()
        if self.kind == "search":
            return "search:" + self.arg
        return self.kind

    @property
    def label(self) -> str:
        if self.kind == "tag":
            return f"hashtag #{self.arg}"
        if self.kind == "search":
            return f"search {self.arg!r}"
        return "notifications"


@dataclass(slots=True)
class _Known:
    uri: str
    root: str
    edited_at: str | None


class _Malformed(Exception):
    pass


@dataclass
class _Collect:
    """One batch being built: mentions deduplicated by remote id, in arrival order."""

    batch: Batch = field(default_factory=Batch)
    seen: dict[str, Mention] = field(default_factory=dict)
    orphans: list[tuple[Mention, str]] = field(default_factory=list)  # replies and their parent's local id

    def add(self, mention: Mention, edited: bool = False) -> None:
        first = self.seen.setdefault(mention.remote_id, mention)
        if first is mention:
            self.batch.mentions.append(mention)
        else:
            first.to_us = first.to_us or mention.to_us  # found by a hashtag, and as a mention of us
        if edited:
            self.batch.edits.append(mention)


# -- the polling source ---------------------------------------------------------------------


class MastodonSource:
    """Polls every configured feed forward from its position (min_id), page by page."""

    def __init__(
        self,
        name: str,
        options: MastodonOptions,
        context: SourceContext,
        *,
        max_pages: int = MAX_PAGES,
        max_pacing: float = MAX_PACING,
    ) -> None:
        self.name = name
        self.options = options
        self.max_pages = max_pages
        self.max_pacing = max_pacing
        # Read once at build time; only the variable's name is ever logged or shown.
        self._token = os.environ.get(options.token_env) if options.token_env else None
        headers = {"Accept": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        self._client = make_client(context, options.instance, headers=headers)
        self._origin = _origin(options.instance)
        self.feeds: tuple[Feed, ...] = (
            *(Feed("tag", t) for t in options.hashtags),
            *((Feed("notifications"),) if options.notifications else ()),
            *(Feed("search", q) for q in options.search),
        )
        self._known: OrderedDict[str, _Known] = OrderedDict()  # local status id -> what we know
        self._instance_info: dict[str, Any] | None = None  # /api/v2/instance, read once
        self._domain = options.host  # of local accounts: the instance's `domain`, may differ from the host
        self._me: str | None = None  # the token's account id: what is addressed to it is addressed to us
        self._me_asked = False
        self._last: httpx.Response | None = None  # the previous answer, for pacing
        self._sleep = asyncio.sleep  # tests record the pacing instead of waiting

    async def aclose(self) -> None:
        await self._client.aclose()

    def _require_token(self) -> None:
        if self.options.token_env and not self._token:
            raise SourceError(
                f"{self.name}: the environment variable {self.options.token_env} is not set "
                "(it must hold a Mastodon access token)",
                "config",
            )

    async def poll(self, cursor: str | None) -> Batch:
        self._require_token()
        await self._instance()
        await self._account()
        positions = decode_cursor(cursor)
        collect = _Collect()
        await self._poll_feeds(self.feeds, positions, collect)
        return self._finish(collect, positions)

    def _finish(self, collect: _Collect, positions: dict[str, str]) -> Batch:
        """The batch with its cursor; replies whose parent came later in the same batch now name it."""
        # Parents before replies (ids grow with time), so a chain resolves down to its root.
        for mention, parent in sorted(collect.orphans, key=lambda mp: id_key(_status_id(mp[0].raw) or "")):
            known = self._known.get(parent)
            if known is not None:
                mention.reply_to, mention.thread_id = known.uri, known.root
                own = self._known.get(_status_id(mention.raw) or "")
                if own is not None:
                    own.root = known.root
        collect.batch.cursor = encode_cursor(positions)
        return collect.batch

    async def _account(self) -> None:
        """The token's own account id, asked once (the city's account, for `to_us`)."""
        if self._me_asked or not self._token:
            return
        what = f"{self.name}: own account"
        response = await send(self._client, "GET", "/api/v1/accounts/verify_credentials", what, checked=False)
        if response.status_code in (401, 403):
            return  # a rejected token: the feeds' own calls say so, naming its variable
        if response.status_code != 404:
            body = json_body(check(response, what), what)
            me = body.get("id") if isinstance(body, dict) else None
            self._me = me if isinstance(me, str) and me else None
        self._me_asked = True

    def _addressed(self, original: dict[str, Any]) -> bool:
        """A reply to, a mention of or a quote of the city's account (and not by it)."""
        me = self._me
        if me is None or _dig(original, "account", "id") == me:
            return False
        mentioned = original.get("mentions")
        mentioned = mentioned if isinstance(mentioned, list) else ()
        return (
            original.get("in_reply_to_account_id") == me
            or any(isinstance(x, dict) and x.get("id") == me for x in mentioned)
            or _dig(original, "quote", "quoted_status", "account", "id") == me
        )

    async def _instance(self) -> dict[str, Any]:
        """/api/v2/instance, asked once: the account domain and the streaming host ({} on a 404)."""
        if self._instance_info is not None:
            return self._instance_info
        what = f"{self.name}: instance information"
        response = await send(self._client, "GET", "/api/v2/instance", what, checked=False)
        if response.status_code in (401, 403, 404, 410):  # an old or closed server: the host will do
            log.info("%s: no /api/v2/instance; local accounts are shown @%s", self.name, self.options.host)
            body: Any = {}
        else:
            body = json_body(check(response, what), what)
        info = body if isinstance(body, dict) else {}
        domain = info.get("domain")
        if isinstance(domain, str) and re.fullmatch(r"[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?", domain):
            self._domain = domain.lower()
        self._instance_info = info
        return info

    async def _poll_feeds(self, feeds: Iterable[Feed], positions: dict[str, str], collect: _Collect) -> None:
        for feed in feeds:
            if feed.kind == "search":
                position = await self._poll_search(feed, positions.get(feed.key), collect)
            else:
                position = await self._poll_timeline(feed, positions.get(feed.key), collect)
            if position is not None:
                positions[feed.key] = position

    # -- REST -------------------------------------------------------------------------------

    async def _get(self, feed: Feed, url: str, params: dict[str, Any] | None) -> httpx.Response | None:
        """One page, paced; None when the instance does not know the hashtag (404)."""
        await self._pace()
        what = f"{self.name}: {feed.label}"
        response = await send(self._client, "GET", url, what, checked=False, params=params)
        self._last = response
        if response.status_code == 404 and feed.kind == "tag":
            log.debug("%s: the instance does not know this hashtag yet", what)
            return None
        try:
            return check(response, what)
        except SourceError as exc:
            if exc.kind != "auth":
                raise
            if self._token is None:
                raise SourceError(
                    f"{what}: {self.options.host} shows this only to logged-in users "
                    f"({response.status_code}); set token_env to a token with read:statuses",
                    "auth",
                ) from None
            raise SourceError(
                f"{what}: the token in {self.options.token_env} was rejected ({response.status_code})", "auth"
            ) from None

    async def _pace(self) -> None:
        """Slow down before the limit: spread the calls left over the time to the reset."""
        if self._last is None:
            return
        delay = min(self.max_pacing, pacing_delay(self._last))
        self._last = None
        if delay > 0:
            log.info("%s: rate limit nearly used, waiting %.1fs", self.name, delay)
            await self._sleep(delay)

    async def _poll_timeline(self, feed: Feed, position: str | None, collect: _Collect) -> str | None:
        """Tag timeline or mention notifications, forward from `position` by the Link rel="prev" pages."""
        if feed.kind == "tag":
            url = f"/api/v1/timelines/tag/{feed.arg}"
            params: dict[str, Any] | None = {"limit": TAG_LIMIT}
            limit = TAG_LIMIT
        else:
            url = "/api/v1/notifications"
            params = {"types[]": list(NOTIFIED), "limit": NOTIFICATION_LIMIT}
            limit = NOTIFICATION_LIMIT
        if position is not None and params is not None:
            params["min_id"] = position
        newest = position
        for _ in range(self.max_pages):
            response = await self._get(feed, url, params)
            if response is None:
                break
            items = _json_list(response, f"{self.name}: {feed.label}")
            # Pages come newest first: oldest first, a parent is known before its replies.
            for item in sorted(items, key=lambda i: id_key(str(i.get("id") if isinstance(i, dict) else ""))):
                item_id = item.get("id") if isinstance(item, dict) else None
                if isinstance(item_id, str) and item_id:
                    newest = newer(newest, item_id)
                if feed.kind == "tag":
                    self._add_status(item, feed, collect)
                elif not isinstance(item, dict) or item.get("type") in NOTIFIED:
                    status = item.get("status") if isinstance(item, dict) else item
                    self._add_status(status, feed, collect, to_us=True)
            # Without a position, the newest page is the start; older posts are not backfilled.
            if position is None or len(items) < limit:
                break
            link = self._link(response, "prev")
            if link is None:
                break
            url, params = link, None
        return newest

    async def _poll_search(self, feed: Feed, position: str | None, collect: _Collect) -> str | None:
        """Statuses search: newest first, so page backwards (max_id) down to the position."""
        params: dict[str, Any] = {"q": feed.arg, "type": "statuses", "limit": SEARCH_LIMIT}
        if position is not None:
            params["min_id"] = position
        newest = position
        for page in range(self.max_pages):
            response = await self._get(feed, "/api/v2/search", params)
            if response is None:  # only hashtags answer None; kept for the type checker
                break
            body = json_body(response, f"{self.name}: {feed.label}")
            statuses = body.get("statuses") if isinstance(body, dict) else None
            if not isinstance(statuses, list):
                raise SourceError(f"{self.name}: {feed.label}: unexpected answer (no statuses list)")
            oldest: str | None = None
            for status in statuses:
                status_id = status.get("id") if isinstance(status, dict) else None
                if isinstance(status_id, str) and status_id:
                    if position is not None and id_key(status_id) <= id_key(position):
                        continue  # the server's date filter is coarser than ids
                    newest = newer(newest, status_id)
                    oldest = status_id if oldest is None or id_key(status_id) < id_key(oldest) else oldest
                self._add_status(status, feed, collect)
            if position is None or len(statuses) < SEARCH_LIMIT or oldest is None:
                break
            if page == self.max_pages - 1:
                log.warning(
                    "%s: %s: more new results than %d pages; older ones skipped",
                    self.name,
                    feed.label,
                    self.max_pages,
                )
            params = {**params, "max_id": oldest}
        return newest

    def _link(self, response: httpx.Response, rel: str) -> str | None:
        """A pagination link, followed only on the instance itself (it carries our token)."""
        url = response.links.get(rel, {}).get("url")
        if not url or _origin(url) != self._origin:
            return None
        return url

    # -- statuses -> mentions ---------------------------------------------------------------

    def _add_status(
        self, status: Any, feed: Feed, collect: _Collect, edited: bool = False, to_us: bool = False
    ) -> None:
        try:
            mention, is_edit = self.to_mention(status)
            mention.to_us = to_us or self._addressed(_original(status))
            parent = _optional_text(_original(status), "in_reply_to_id")
        except _Malformed as exc:
            collect.batch.skipped += 1
            sid = status.get("id") if isinstance(status, dict) else None
            log.warning("%s: %s: status %r skipped: %s", self.name, feed.label, sid, exc)
            return
        collect.add(mention, edited or is_edit)
        if parent is not None and mention.reply_to == clean_line(parent):
            collect.orphans.append((mention, parent))

    def to_mention(self, status: Any) -> tuple[Mention, bool]:
        """A Mention (and whether it is an edit of a status seen before); _Malformed if unusable."""
        if not isinstance(status, dict):
            raise _Malformed("not an object")
        reblog = status.get("reblog")
        # A boost is stored once, as the boosted status: the same uri from every feed.
        original = reblog if isinstance(reblog, dict) else status
        try:
            return self._convert(status, original)
        except KeyError as exc:
            raise _Malformed(f"missing {exc.args[0]!r}") from None
        except (TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise _Malformed(f"{type(exc).__name__}: {exc}") from None

    def _convert(self, status: dict[str, Any], original: dict[str, Any]) -> tuple[Mention, bool]:
        local_id = _text(original, "id")
        remote_id = clean_line(_text(original, "uri"))
        published = parse_remote_time(_text(original, "created_at"))
        account = original["account"]
        if not isinstance(account, dict):
            raise _Malformed("account is not an object")
        acct = _text(account, "acct")
        content = original.get("content") or ""
        spoiler = original.get("spoiler_text") or ""
        if not isinstance(content, str) or not isinstance(spoiler, str):
            raise _Malformed("content is not text")
        tags = tuple(
            clean_line(t["name"])
            for t in original.get("tags") or ()
            if isinstance(t, dict) and isinstance(t.get("name"), str)
        )
        edited_at = _optional_text(original, "edited_at")
        parent = _optional_text(original, "in_reply_to_id")
        text = html_to_text(content)
        if spoiler.strip():
            text = f"CW: {spoiler.strip()}\n\n{text}"
        # Replies name their parent by its local id; the thread is known only if we saw the parent.
        reply_to = thread_id = None
        if parent is not None:
            known = self._known.get(parent)
            reply_to, thread_id = (known.uri, known.root) if known else (clean_line(parent), clean_line(parent))
        prior = self._known.get(local_id)
        is_edit = prior is not None and edited_at is not None and edited_at != prior.edited_at
        self._remember(local_id, _Known(remote_id, thread_id or remote_id, edited_at))
        author = acct if "@" in acct else f"{acct}@{self._domain}"
        language = _optional_text(original, "language")
        mention = Mention(
            source=self.name,
            remote_id=remote_id,
            network=NETWORK,
            author="@" + clean_line(author),
            author_name=clean_line(_optional_text(account, "display_name") or _optional_text(account, "username")),
            text=clean(text),
            published_at=published,
            url=safe_url(_optional_text(original, "url")) or safe_url(remote_id),
            lang=clean_line(language) or None,
            reply_to=reply_to or None,
            thread_id=thread_id or None,
            tags=tags,
            raw=status,
        )
        return mention, is_edit

    def _remember(self, local_id: str, known: _Known) -> None:
        self._known[local_id] = known
        self._known.move_to_end(local_id)
        while len(self._known) > KNOWN_LIMIT:
            self._known.popitem(last=False)

    def resolve_delete(self, local_id: str) -> str | None:
        """The uri of a deleted status, if this process saw it (deletes carry only the local id)."""
        known = self._known.get(local_id)
        return known.uri if known else None


# -- the streaming source -------------------------------------------------------------------


@dataclass(frozen=True)
class _Event:
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
        queue: asyncio.Queue[_Event | BaseException] = asyncio.Queue()
        live = [f for f in self.feeds if f.kind != "search"]
        polled = [f for f in self.feeds if f.kind == "search"]
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
            collect = _Collect()
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
                    collect = _Collect()
                    await self._poll_feeds(polled, positions, collect)
                    self._searched_at = loop.time()
                    next_poll = self._searched_at + self.repoll_interval
                    yield self._finish(collect, positions)
                    continue
                # Whatever else is already queued joins this batch: one transaction, not one per event.
                collect = _Collect()
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
            url = _dig(info, "configuration", "urls", "streaming")
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
        if feed.kind == "tag":
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
                            queue.put_nowait(_Event(feed, name, "\n".join(data)))
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

    def apply_event(self, event: _Event, positions: dict[str, str], collect: _Collect) -> None:
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
            status = _mention_status(payload)
            if status is None:
                return  # follows, favourites… (the stream sends every type)
        else:
            status = payload
            item_id = status.get("id") if isinstance(status, dict) else None
        if isinstance(item_id, str) and item_id and event.name != "status.update":
            positions[feed.key] = newer(positions.get(feed.key), item_id) or item_id
            # Already returned (by the backfill, or another feed) in this process: not again. Ids are
            # not compared with the position: a post fetched late can carry an older id.
            if _status_id(status) in self._known:
                return
        to_us = event.name == "notification"  # a mention notification: addressed to us by definition
        self._add_status(status, feed, collect, edited=event.name == "status.update", to_us=to_us)


# -- helpers --------------------------------------------------------------------------------


def _text(obj: dict[str, Any], key: str) -> str:
    value = obj[key]
    if not isinstance(value, str) or not value:
        raise _Malformed(f"{key!r} is not a non-empty string")
    return value


def _optional_text(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)
    return value if isinstance(value, str) and value else None


def _status_id(status: Any) -> str | None:
    """The local id a status is remembered by (a boost's is the boosted status')."""
    if not isinstance(status, dict):
        return None
    reblog = status.get("reblog")
    value = (reblog if isinstance(reblog, dict) else status).get("id")
    return value if isinstance(value, str) else None


def _original(status: Any) -> dict[str, Any]:
    """The status itself, or the boosted one for a boost."""
    if not isinstance(status, dict):
        return {}
    reblog = status.get("reblog")
    return reblog if isinstance(reblog, dict) else status


def _mention_status(notification: Any) -> Any:
    """The status of a `mention` notification; None for any other kind."""
    if not isinstance(notification, dict) or notification.get("type") not in NOTIFIED:
        return None
    return notification.get("status")


def _json_list(response: httpx.Response, what: str) -> list[Any]:
    body = json_body(response, what)
    if not isinstance(body, list):
        raise SourceError(f"{what}: unexpected answer (not a list)")
    return body


def _dig(obj: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return (parts.scheme, parts.netloc.lower())


def build(name: str, options: MastodonOptions, context: SourceContext) -> MastodonSource:
    """Stream only when asked and a token is configured; otherwise poll (no `stream` attribute)."""
    if options.stream and options.token_env and os.environ.get(options.token_env):
        return MastodonStreamingSource(name, options, context)
    return MastodonSource(name, options, context)


TYPE = SourceType(
    option_keys=("instance", "token_env", "hashtags", "notifications", "search", "stream", "allow_insecure"),
    parse_options=parse_options,
    build=build,
    default_interval=timedelta(seconds=60),
)
