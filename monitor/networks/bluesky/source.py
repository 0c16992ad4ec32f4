"""Bluesky: posts found by app.bsky.feed.searchPosts, and the account's mentions, replies and quotes.

Both need a session through the account's PDS (see bluesky_xrpc). The cursor is one JSON string:
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
from urllib.parse import urlsplit

from monitor.core.models import Batch, Mention
from monitor.core.sanitize import clean, clean_line, safe_url
from monitor.core.timeutil import remote_time
from monitor.core.yamlread import ENV_NAME, Node
from monitor.networks.base import SourceContext, SourceError, SourceType
from monitor.networks.bluesky.xrpc import PLC_DIRECTORY, XrpcClient, dig
from monitor.networks.http import secure_origin

log = logging.getLogger(__name__)

NETWORK = "bluesky"
DEFAULT_PDS = "https://bsky.social"
SEARCH_POSTS = "app.bsky.feed.searchPosts"
LIST_NOTIFICATIONS = "app.bsky.notification.listNotifications"
POST_TYPE = "app.bsky.feed.post"
LINK_FEATURE = "app.bsky.richtext.facet#link"
TAG_FEATURE = "app.bsky.richtext.facet#tag"
MENTION_FEATURE = "app.bsky.richtext.facet#mention"
NOTIFY_REASONS = ("mention", "reply", "quote")
INVALID_HANDLE = "handle.invalid"  # what the AppView says when a handle does not resolve back to its DID
PAGE_SIZE = 100  # the most both endpoints allow: the lookback re-reads a few minutes each poll
DEFAULT_MAX_PAGES = 5
LOOKBACK = timedelta(minutes=5)
SEEN_CAP = 200  # posts remembered per position, so the lookback does not return them twice

_HANDLE = re.compile(r"^([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$")
_DID = re.compile(r"^did:[a-z]+:[a-zA-Z0-9._:%-]{1,2000}$")
_POST_URI = re.compile(r"^at://([^/?#]+)/app\.bsky\.feed\.post/([A-Za-z0-9._~:-]{1,512})$")


@dataclass(frozen=True)
class BlueskyOptions:
    handle: str
    app_password_env: str
    pds: str = DEFAULT_PDS
    search: tuple[str, ...] = ()
    notifications: bool = True
    max_pages: int = DEFAULT_MAX_PAGES
    allow_insecure: bool = False  # a test PDS on plain http, not on this machine
    # Without `pds:` in the watchlist, the account's PDS comes from its DID document, found from here.
    plc: str | None = None


def parse_options(fields: dict[str, Node], node: Node) -> BlueskyOptions:
    if "handle" not in fields:
        node.fail("missing key 'handle' in a bluesky source", "the account's handle, e.g. name.bsky.social")
    if "app_password_env" not in fields:
        node.fail(
            "missing key 'app_password_env' in a bluesky source",
            "the name of the environment variable that holds the app password",
        )
    handle = fields["handle"].str().strip().lstrip("@")
    if not (_HANDLE.match(handle) or _DID.match(handle)):
        fields["handle"].fail(f"{handle!r} is not a handle", "a handle such as name.bsky.social")
    env = fields["app_password_env"].str().strip()
    if not ENV_NAME.match(env):
        fields["app_password_env"].fail(
            "this is not an environment variable name (never put the password itself here)",
            "a name such as BLUESKY_APP_PASSWORD",
        )
    allow_insecure = fields["allow_insecure"].bool() if "allow_insecure" in fields else False
    pds = _pds(fields["pds"], allow_insecure) if "pds" in fields else DEFAULT_PDS
    search: list[str] = []
    for query in fields["search"].str_list() if "search" in fields else []:
        if query.strip() and query.strip() not in search:
            search.append(query.strip())
    notifications = fields["notifications"].bool() if "notifications" in fields else True
    if not search and not notifications:
        node.fail("this bluesky source watches nothing", "search terms, or notifications: true")
    max_pages = fields["max_pages"].int(minimum=1) if "max_pages" in fields else DEFAULT_MAX_PAGES
    plc = None if "pds" in fields else PLC_DIRECTORY  # an explicit pds is used as it is
    return BlueskyOptions(handle, env, pds, tuple(search), notifications, max_pages, allow_insecure, plc)


def _pds(node: Node, allow_insecure: bool = False) -> str:
    url = node.str().strip().rstrip("/")
    parts = urlsplit(url)
    # The app password crosses this link: plain http only to this machine (tests, a local PDS) or when asked.
    if not parts.hostname or not secure_origin(url, allow_insecure):
        node.fail(f"{url!r} is not an https address", "the PDS address, e.g. https://bsky.social")
    if parts.path or parts.query or parts.fragment:
        node.fail(f"{url!r} has a path", "the PDS root only, e.g. https://bsky.social")
    return url


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
            for view in items:
                self._take(batch, taken, view, view.get("record"), view.get("author"), self._addressed(view))
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

    def _addressed(self, view: dict[str, Any]) -> bool:
        """A post found by search that replies to, quotes or mentions the city's account (not its own)."""
        me = self.xrpc.session.did if self.xrpc.session else None
        record = view.get("record")
        if me is None or not isinstance(record, dict) or dig(view, "author", "did") == me:
            return False
        reply = found if isinstance(found := record.get("reply"), dict) else {}
        embed = found if isinstance(found := record.get("embed"), dict) else {}
        targets = [_ref_uri(reply.get("parent")), _ref_uri(reply.get("root")), _ref_uri(embed.get("record"))]
        targets.append(_ref_uri(dig(embed, "record", "record")))  # recordWithMedia: a quote with pictures
        if any(uri and uri.startswith(f"at://{me}/") for uri in targets):
            return True
        facets = record.get("facets")
        return any(
            isinstance(f, dict) and feature.get("$type") == MENTION_FEATURE and feature.get("did") == me
            for f in (facets if isinstance(facets, list) else ())
            for feature in (f.get("features") if isinstance(f.get("features"), list) else ())
            if isinstance(feature, dict)
        )

    def _take(self, batch: Batch, taken: set[str], view: dict[str, Any], record: Any, author: Any, to_us: bool) -> None:
        uri = view["uri"]
        if uri in taken:
            if to_us:  # found by a search, and as a notification: addressed to us
                for m in batch.mentions:
                    m.to_us = m.to_us or m.remote_id == uri
            return
        mention = self.mention(view, record, author)
        if mention is None:
            batch.skipped += 1
            return
        mention.to_us = to_us
        taken.add(uri)
        batch.mentions.append(mention)

    def mention(self, view: dict[str, Any], record: Any, author: Any) -> Mention | None:
        """A Mention from a postView (or a notification, which carries the same three parts)."""
        uri = view.get("uri")
        try:
            if not isinstance(record, dict) or not isinstance(author, dict):
                raise ValueError("no record or author")
            if record.get("$type", POST_TYPE) != POST_TYPE:
                raise ValueError(f"record is a {record.get('$type')!r}")
            text = record["text"]
            if not isinstance(text, str):
                raise ValueError("text is not a string")
            if not isinstance(uri, str) or (match := _POST_URI.match(uri)) is None:
                raise ValueError("not a post AT-URI")
            repo, rkey = match.groups()
            handle, did = author.get("handle"), author.get("did")
            if not isinstance(handle, str) or not handle:
                raise ValueError("author has no handle")
            indexed = remote_time(view.get("indexedAt"))
            published = remote_time(record.get("createdAt")) or indexed
            if published is None:
                raise ValueError("no createdAt")
            if indexed is not None and published > indexed:
                published = indexed  # a clock ahead (or a lie) must not pin a post to the top
            body, links, tags = _rich_text(text, record)
            reply = found if isinstance(found := record.get("reply"), dict) else {}
            langs = record.get("langs")
            lang = clean_line(langs[0]) if isinstance(langs, list) and langs and isinstance(langs[0], str) else ""
            verified = _HANDLE.match(handle) is not None and handle != INVALID_HANDLE
            true_did = did if isinstance(did, str) and _DID.match(did) else repo
            actor = handle if verified else true_did
            return Mention(
                source=self.name,
                remote_id=uri,
                network=NETWORK,
                # A handle that does not verify is shown as nothing of the kind: the (shortened) DID
                # tells two such authors apart, where "handle.invalid" made them look the same.
                author=clean_line(handle) if verified else short_did(true_did),
                author_name=clean_line(author.get("displayName") if isinstance(author.get("displayName"), str) else ""),
                text=body,
                published_at=published,
                url=f"https://bsky.app/profile/{actor}/post/{rkey}",
                lang=lang or None,
                reply_to=_ref_uri(reply.get("parent")),
                thread_id=_ref_uri(reply.get("root")),
                tags=tags,
                raw=view,
            )
        except (KeyError, TypeError, ValueError, IndexError, OverflowError) as exc:
            log.warning("%s: post %s skipped: %s", self.name, clean_line(str(uri))[:200], exc)
            return None


def short_did(did: str) -> str:
    """did:plc:ewvi7nxzyoun6zhxrhs64oiz -> did:plc:ewvi7nxzyo… (enough to tell accounts apart)."""
    did = clean_line(did)
    return did if len(did) <= 20 else did[:18] + "…"


def _rich_text(text: str, record: dict[str, Any]) -> tuple[str, list[str], tuple[str, ...]]:
    """The sanitised text (plus the targets of links shown shortened), the link targets and the tags."""
    data = text.encode("utf-8")
    links: list[str] = []
    hidden: list[str] = []
    tags: list[str] = []
    facets = record.get("facets")
    for facet in facets if isinstance(facets, list) else ():
        if not isinstance(facet, dict) or not isinstance(facet.get("features"), list):
            continue
        index = found if isinstance(found := facet.get("index"), dict) else {}
        start, end = index.get("byteStart"), index.get("byteEnd")
        shown = ""
        if isinstance(start, int) and isinstance(end, int) and 0 <= start <= end <= len(data):
            shown = data[start:end].decode("utf-8", errors="replace")  # offsets are UTF-8 bytes
        for feature in facet["features"]:
            if not isinstance(feature, dict):
                continue
            kind = feature.get("$type")
            if kind == LINK_FEATURE and isinstance(feature.get("uri"), str):
                uri = safe_url(feature["uri"])  # javascript:, data: … are not links
                if uri and uri not in links:
                    links.append(uri)
                    # Clients show "example.com/long/pa..." for the full address; a custom client may
                    # show any words at all. Either way the operator must see where it leads.
                    if _bare(shown) != _bare(uri) and _bare(uri) not in text:
                        hidden.append(uri)
            elif kind == TAG_FEATURE and isinstance(feature.get("tag"), str):
                tags.append(feature["tag"])
    extra = record.get("tags")
    tags += [t for t in extra if isinstance(t, str)] if isinstance(extra, list) else []
    body = clean(text)
    if hidden:
        body = (body + "\n\n" + "\n".join(hidden)).strip()
    unique: dict[str, str] = {}
    for tag in tags:
        tag = clean_line(tag).lstrip("#")
        if tag:
            unique.setdefault(tag.casefold(), tag)
    return body, links, tuple(unique.values())


def _bare(url: str) -> str:
    url = url.strip()
    for prefix in ("https://", "http://"):
        if url.lower().startswith(prefix):
            url = url[len(prefix) :]
    return url.rstrip("/")


def _ref_uri(ref: Any) -> str | None:
    uri = ref.get("uri") if isinstance(ref, dict) else None
    return uri if isinstance(uri, str) and uri.startswith("at://") else None


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


TYPE = SourceType(
    option_keys=("pds", "handle", "app_password_env", "search", "notifications", "max_pages", "allow_insecure"),
    parse_options=parse_options,
    build=BlueskySource,
    default_interval=timedelta(seconds=60),
)
