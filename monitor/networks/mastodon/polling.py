"""Mastodon over REST: hashtag timelines, mentions of the city's account and keyword search, polled.

API: docs.joinmastodon.org (methods/timelines, notifications, search, instance; api/guidelines).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import httpx

from monitor.core.models import Batch, Mention
from monitor.core.sanitize import clean, clean_line, safe_url
from monitor.core.timeutil import parse_remote_time
from monitor.networks.base import SourceContext, SourceError
from monitor.networks.htmltext import html_to_text
from monitor.networks.http import check, json_body, make_client, pacing_delay, send
from monitor.networks.mastodon.options import MastodonOptions
from monitor.networks.mastodon.statuses import (
    NOTIFIED,
    Collect,
    Feed,
    FeedKind,
    Known,
    Malformed,
    decode_cursor,
    dig,
    encode_cursor,
    id_key,
    json_list,
    newer,
    optional_text,
    origin,
    original_status,
    status_local_id,
    text_field,
)

log = logging.getLogger(__name__)

NETWORK = "mastodon"
TAG_LIMIT = 40  # the documented maximum per page for timelines and search
NOTIFICATION_LIMIT = 80
SEARCH_LIMIT = 40
MAX_PAGES = 10  # per feed and poll; the cursor resumes where a poll stopped
MAX_PACING = 30.0  # never wait longer than this between two calls to spare the rate limit
KNOWN_LIMIT = 20_000  # statuses remembered (id -> uri, a few MB) to resolve deletes and replies


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
        self._origin = origin(options.instance)
        self.feeds: tuple[Feed, ...] = (
            *(Feed(FeedKind.TAG, t) for t in options.hashtags),
            *((Feed(FeedKind.NOTIFICATIONS),) if options.notifications else ()),
            *(Feed(FeedKind.SEARCH, q) for q in options.search),
        )
        self._known: OrderedDict[str, Known] = OrderedDict()  # local status id -> what we know
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
        collect = Collect()
        await self._poll_feeds(self.feeds, positions, collect)
        return self._finish(collect, positions)

    def _finish(self, collect: Collect, positions: dict[str, str]) -> Batch:
        """The batch with its cursor; replies whose parent came later in the same batch now name it."""
        # Parents before replies (ids grow with time), so a chain resolves down to its root.
        for mention, parent in sorted(collect.orphans, key=lambda mp: id_key(status_local_id(mp[0].raw) or "")):
            known = self._known.get(parent)
            if known is not None:
                mention.reply_to, mention.thread_id = known.uri, known.root
                own = self._known.get(status_local_id(mention.raw) or "")
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
        if me is None or dig(original, "account", "id") == me:
            return False
        mentioned = original.get("mentions")
        mentioned = mentioned if isinstance(mentioned, list) else ()
        return (
            original.get("in_reply_to_account_id") == me
            or any(isinstance(x, dict) and x.get("id") == me for x in mentioned)
            or dig(original, "quote", "quoted_status", "account", "id") == me
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

    async def _poll_feeds(self, feeds: Iterable[Feed], positions: dict[str, str], collect: Collect) -> None:
        for feed in feeds:
            if feed.kind is FeedKind.SEARCH:
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
        if response.status_code == 404 and feed.kind is FeedKind.TAG:
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

    async def _poll_timeline(self, feed: Feed, position: str | None, collect: Collect) -> str | None:
        """Tag timeline or mention notifications, forward from `position` by the Link rel="prev" pages."""
        if feed.kind is FeedKind.TAG:
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
            items = json_list(response, f"{self.name}: {feed.label}")
            # Pages come newest first: oldest first, a parent is known before its replies.
            for item in sorted(items, key=lambda i: id_key(str(i.get("id") if isinstance(i, dict) else ""))):
                item_id = item.get("id") if isinstance(item, dict) else None
                if isinstance(item_id, str) and item_id:
                    newest = newer(newest, item_id)
                if feed.kind is FeedKind.TAG:
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

    async def _poll_search(self, feed: Feed, position: str | None, collect: Collect) -> str | None:
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
        if not url or origin(url) != self._origin:
            return None
        return url

    # -- statuses -> mentions ---------------------------------------------------------------

    def _add_status(self, status: Any, feed: Feed, collect: Collect, edited: bool = False, to_us: bool = False) -> None:
        try:
            mention, is_edit = self.to_mention(status)
            mention.to_us = to_us or self._addressed(original_status(status))
            parent = optional_text(original_status(status), "in_reply_to_id")
        except Malformed as exc:
            collect.batch.skipped += 1
            sid = status.get("id") if isinstance(status, dict) else None
            log.warning("%s: %s: status %r skipped: %s", self.name, feed.label, sid, exc)
            return
        collect.add(mention, edited or is_edit)
        if parent is not None and mention.reply_to == clean_line(parent):
            collect.orphans.append((mention, parent))

    def to_mention(self, status: Any) -> tuple[Mention, bool]:
        """A Mention (and whether it is an edit of a status seen before); Malformed if unusable."""
        if not isinstance(status, dict):
            raise Malformed("not an object")
        reblog = status.get("reblog")
        # A boost is stored once, as the boosted status: the same uri from every feed.
        original = reblog if isinstance(reblog, dict) else status
        try:
            return self._convert(status, original)
        except KeyError as exc:
            raise Malformed(f"missing {exc.args[0]!r}") from None
        except (TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise Malformed(f"{type(exc).__name__}: {exc}") from None

    def _convert(self, status: dict[str, Any], original: dict[str, Any]) -> tuple[Mention, bool]:
        local_id = text_field(original, "id")
        remote_id = clean_line(text_field(original, "uri"))
        published = parse_remote_time(text_field(original, "created_at"))
        account = original["account"]
        if not isinstance(account, dict):
            raise Malformed("account is not an object")
        acct = text_field(account, "acct")
        content = original.get("content") or ""
        spoiler = original.get("spoiler_text") or ""
        if not isinstance(content, str) or not isinstance(spoiler, str):
            raise Malformed("content is not text")
        tags = tuple(
            clean_line(t["name"])
            for t in original.get("tags") or ()
            if isinstance(t, dict) and isinstance(t.get("name"), str)
        )
        edited_at = optional_text(original, "edited_at")
        parent = optional_text(original, "in_reply_to_id")
        text = html_to_text(content)
        if spoiler.strip():
            text = f"CW: {spoiler.strip()}\n\n{text}"
        # Replies name their parent by its local id; the thread is known only if we saw the parent.
        reply_to = thread_id = None
        if parent is not None:
            known = self._known.get(parent)
            reply_to, thread_id = (known.uri, known.root) if known else (clean_line(parent),) * 2
        prior = self._known.get(local_id)
        is_edit = prior is not None and edited_at is not None and edited_at != prior.edited_at
        self._remember(local_id, Known(remote_id, thread_id or remote_id, edited_at))
        author = acct if "@" in acct else f"{acct}@{self._domain}"
        language = optional_text(original, "language")
        mention = Mention(
            source=self.name,
            remote_id=remote_id,
            network=NETWORK,
            author="@" + clean_line(author),
            author_name=clean_line(optional_text(account, "display_name") or optional_text(account, "username")),
            text=clean(text),
            published_at=published,
            url=safe_url(optional_text(original, "url")) or safe_url(remote_id),
            lang=clean_line(language) or None,
            reply_to=reply_to or None,
            thread_id=thread_id or None,
            tags=tags,
            raw=status,
        )
        return mention, is_edit

    def _remember(self, local_id: str, known: Known) -> None:
        self._known[local_id] = known
        self._known.move_to_end(local_id)
        while len(self._known) > KNOWN_LIMIT:
            self._known.popitem(last=False)

    def resolve_delete(self, local_id: str) -> str | None:
        """The uri of a deleted status, if this process saw it (deletes carry only the local id)."""
        known = self._known.get(local_id)
        return known.uri if known else None
