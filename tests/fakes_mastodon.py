"""A small Mastodon server on 127.0.0.1 for the source's tests: REST timelines, notifications and
search with Mastodon's pagination (min_id/max_id/since_id, Link rel="next"/"prev"), rate-limit
headers, scripted faults, and SSE streams with ":thump" heartbeats. Payloads follow the shapes of
docs.joinmastodon.org (entities/Status, Account, MediaAttachment, PreviewCard, Notification).
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from yarl import URL

from tests.conftest import WAIT

TOKEN = "s3cr3t-t0ken-value-never-logged"
HOST = "mastodon.test"


def id_key(value: str) -> tuple[int, str]:
    return (len(value), value)


def account(
    username: str = "trwnh",
    domain: str | None = None,
    display_name: str = "infinite love ⴳ",
    account_id: str = "14715",
) -> dict[str, Any]:
    """An Account entity with every documented field."""
    acct = f"{username}@{domain}" if domain else username
    site = f"https://{domain or HOST}"
    return {
        "id": account_id,
        "username": username,
        "acct": acct,
        "display_name": display_name,
        "locked": False,
        "bot": False,
        "discoverable": True,
        "indexable": True,
        "group": False,
        "created_at": "2016-11-24T00:00:00.000Z",
        "note": "<p>i have approximate knowledge of many things.</p>",
        "url": f"{site}/@{username}",
        "uri": f"{site}/users/{username}",
        "avatar": f"https://files.{HOST}/accounts/avatars/000/014/715/original/e430cc93d56f5ac2.png",
        "avatar_static": f"https://files.{HOST}/accounts/avatars/000/014/715/original/e430cc93d56f5ac2.png",
        "header": f"https://files.{HOST}/accounts/headers/000/014/715/original/5c6fc24edb3bb873.jpg",
        "header_static": f"https://files.{HOST}/accounts/headers/000/014/715/original/5c6fc24edb3bb873.jpg",
        "followers_count": 2520,
        "following_count": 266,
        "statuses_count": 59817,
        "last_status_at": "2024-05-17",
        "hide_collections": False,
        "noindex": False,
        "emojis": [
            {
                "shortcode": "blobaww",
                "url": f"https://files.{HOST}/custom_emojis/images/000/011/739/original/blobaww.png",
                "static_url": f"https://files.{HOST}/custom_emojis/images/000/011/739/static/blobaww.png",
                "visible_in_picker": True,
                "category": "Blobs",
            }
        ],
        "roles": [],
        "fields": [
            {
                "name": "Website",
                "value": '<a href="https://trwnh.com" target="_blank" rel="nofollow noopener noreferrer me">'
                '<span class="invisible">https://</span><span class="">trwnh.com</span>'
                '<span class="invisible"></span></a>',
                "verified_at": "2019-08-29T04:14:55.571+00:00",
            }
        ],
    }


def status(
    status_id: str,
    content: str = "<p>Bonjour Toulouse</p>",
    *,
    tags: Iterable[str] = (),
    acct: dict[str, Any] | None = None,
    uri: str | None = None,
    created_at: str = "2024-05-17T14:45:41.171Z",
    in_reply_to_id: str | None = None,
    edited_at: str | None = None,
    spoiler_text: str = "",
    language: str | None = "fr",
    reblog: dict[str, Any] | None = None,
    media: bool = True,
) -> dict[str, Any]:
    """A Status entity with every documented field (media, mentions, tags, emojis, card, poll)."""
    author = acct or account()
    username = author["username"]
    site = f"https://{author['acct'].split('@', 1)[1]}" if "@" in author["acct"] else f"https://{HOST}"
    uri = uri or f"{site}/users/{username}/statuses/{status_id}"
    return {
        "id": status_id,
        "created_at": created_at,
        "in_reply_to_id": in_reply_to_id,
        "in_reply_to_account_id": "14715" if in_reply_to_id else None,
        "sensitive": bool(spoiler_text),
        "spoiler_text": spoiler_text,
        "visibility": "public",
        "language": language,
        "uri": uri,
        "url": None if reblog else f"{site}/@{username}/{status_id}",
        "replies_count": 0,
        "reblogs_count": 1,
        "favourites_count": 3,
        "edited_at": edited_at,
        "favourited": False,
        "reblogged": False,
        "muted": False,
        "bookmarked": False,
        "pinned": False,
        "content": "" if reblog else content,
        "filtered": [],
        "reblog": reblog,
        "application": {"name": "Web", "website": None},
        "account": author,
        "media_attachments": []
        if not media or reblog
        else [
            {
                "id": "22345792",
                "type": "image",
                "url": f"https://files.{HOST}/media_attachments/files/022/345/792/original/57859aede991da25.jpeg",
                "preview_url": f"https://files.{HOST}/media_attachments/files/022/345/792/small/57859aede991da25.jpeg",
                "remote_url": None,
                "text_url": f"https://{HOST}/media/2N4uvkuUtPVrkZGysms",
                "meta": {
                    "original": {
                        "width": 640,
                        "height": 480,
                        "size": "640x480",
                        "aspect": 1.3333333333333333,
                    },
                    "small": {"width": 461, "height": 346, "size": "461x346", "aspect": 1.3323699421965318},
                    "focus": {"x": -0.27, "y": 0.51},
                },
                "description": "Un nid de poule rue de Metz",
                "blurhash": "UFBWY:8_0Jxv4mx]t8t64.%M-:IUWGWAt6M}",
            }
        ],
        "mentions": [{"id": "14715", "username": "trwnh", "url": f"https://{HOST}/@trwnh", "acct": "trwnh"}],
        "tags": [{"name": t, "url": f"https://{HOST}/tags/{t}"} for t in tags],
        "emojis": [],
        "card": None
        if reblog
        else {
            "url": "https://www.toulouse.fr/web/guest/actualites",
            "title": "Actualités",
            "description": "Les actualités de la ville",
            "type": "link",
            "author_name": "",
            "author_url": "",
            "provider_name": "",
            "provider_url": "",
            "html": "",
            "width": 400,
            "height": 200,
            "image": None,
            "embed_url": "",
            "blurhash": None,
        },
        "poll": None,
    }


def boost(boost_id: str, original: dict[str, Any], by: dict[str, Any] | None = None) -> dict[str, Any]:
    """A reblog wrapper: its own id, uri and account, the boosted status in `reblog`."""
    booster = by or account("booster", "other.example", "Booster", "999")
    return status(
        boost_id,
        acct=booster,
        uri=f"https://other.example/users/booster/statuses/{boost_id}/activity",
        reblog=original,
    )


def notification(notification_id: str, st: dict[str, Any] | None, kind: str = "mention") -> dict[str, Any]:
    """A Notification entity."""
    return {
        "id": notification_id,
        "type": kind,
        "created_at": "2024-05-17T14:45:42.000Z",
        "group_key": f"ungrouped-{notification_id}",
        "account": (st or {}).get("account") or account("zsc", None, "zsc", "971724"),
        "status": st,
    }


@dataclass
class Fault:
    """What the next matching request gets instead of the normal answer."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    delay: float = 0.0
    truncate: bool = False
    hold: asyncio.Event | None = None  # answer only once the test sets it: a slow peer, without a clock


@dataclass
class _Stream:
    kind: str  # hashtag | notification
    tag: str
    queue: asyncio.Queue[bytes | None]
    host: str
    silent: bool = False


class FakeMastodon:
    """State and handlers; start() serves REST on one port and streaming on another."""

    def __init__(self, heartbeat: float = 0.05) -> None:
        self.tags: dict[str, list[dict[str, Any]]] = {}
        self.notifications: list[dict[str, Any]] = []
        self.search_results: dict[str, list[dict[str, Any]]] = {}
        self.requests: list[tuple[str, URL, dict[str, str]]] = []  # (route, url, headers)
        self.faults: dict[str, list[Fault]] = {}
        self.rate_headers: dict[str, str] = {}
        self.require_token_for_tags = False
        self.instance: dict[str, Any] | None = None  # a recorded /api/v2/instance answer instead of ours
        self.me: dict[str, Any] | None = None  # the token's account (verify_credentials); None: 404
        self.heartbeat = heartbeat
        self.streams: list[_Stream] = []
        self.opened = 0  # stream connections ever accepted
        self.thumps = 0  # heartbeats written, on every stream
        self.stream_opened = asyncio.Condition()
        self.base = ""
        self.streaming_base = ""
        self._runner: web.AppRunner | None = None

    # -- data -----------------------------------------------------------------------------

    def add_tag_status(self, tag: str, st: dict[str, Any]) -> dict[str, Any]:
        self.tags.setdefault(tag.lower(), []).append(st)
        return st

    def fail_next(self, route: str, *faults: Fault) -> None:
        self.faults.setdefault(route, []).extend(faults)

    def hits(self, route: str) -> list[URL]:
        return [url for r, url, _ in self.requests if r == route]

    # -- server ---------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/api/v1/timelines/tag/{tag}", self._tag)
        app.router.add_get("/api/v1/notifications", self._notifications)
        app.router.add_get("/api/v2/search", self._search)
        app.router.add_get("/api/v2/instance", self._instance)
        app.router.add_get("/api/v1/accounts/verify_credentials", self._verify_credentials)
        app.router.add_get("/api/v1/streaming/hashtag", self._stream_hashtag)
        app.router.add_get("/api/v1/streaming/user/notification", self._stream_notification)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        rest = web.TCPSite(self._runner, "127.0.0.1", 0)
        streaming = web.TCPSite(self._runner, "127.0.0.1", 0)
        await rest.start()
        await streaming.start()
        self.base = f"http://127.0.0.1:{_port(rest)}"
        self.streaming_base = f"http://127.0.0.1:{_port(streaming)}"

    async def close(self) -> None:
        for s in list(self.streams):
            s.queue.put_nowait(None)
        if self._runner is not None:
            await self._runner.cleanup()

    async def _answer(self, route: str, request: web.Request, build: Any) -> web.StreamResponse:
        self.requests.append((route, request.url, dict(request.headers)))
        queue = self.faults.get(route)
        fault = queue.pop(0) if queue else None
        if fault is not None and fault.delay:
            await asyncio.sleep(fault.delay)
        if fault is not None and fault.hold is not None:
            await fault.hold.wait()
        if fault is not None and fault.truncate:
            body = json.dumps(build()[0]).encode()
            response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
            response.content_length = len(body) + 500
            await response.prepare(request)
            await response.write(body[: len(body) // 2])
            assert request.transport is not None
            request.transport.close()
            return response
        if fault is not None and (fault.status != 200 or fault.body is not None):
            headers = {"Content-Type": "application/json", **self.rate_headers, **fault.headers}
            body = fault.body if fault.body is not None else json.dumps({"error": "scripted"})
            return web.Response(status=fault.status, text=body, headers=headers)
        payload, link = build()
        headers = {"Content-Type": "application/json; charset=utf-8", **self.rate_headers}
        if fault is not None:
            headers.update(fault.headers)
        if link:
            headers["Link"] = link
        return web.Response(text=json.dumps(payload), headers=headers)

    def _authorised(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {TOKEN}"

    async def _tag(self, request: web.Request) -> web.StreamResponse:
        tag = request.match_info["tag"].lower()
        if self.require_token_for_tags and not self._authorised(request):
            self.requests.append(("tag", request.url, dict(request.headers)))
            return web.json_response({"error": "This API requires an authenticated user"}, status=401)
        return await self._answer("tag", request, lambda: _page(request, self.tags.get(tag, []), 20, 40))

    async def _notifications(self, request: web.Request) -> web.StreamResponse:
        if not self._authorised(request):
            self.requests.append(("notifications", request.url, dict(request.headers)))
            return web.json_response({"error": "The access token is invalid"}, status=401)
        types = request.query.getall("types[]", [])
        items = [n for n in self.notifications if not types or n["type"] in types]
        return await self._answer("notifications", request, lambda: _page(request, items, 40, 80))

    async def _search(self, request: web.Request) -> web.StreamResponse:
        def build() -> tuple[Any, None]:
            q = request.query
            found = sorted(self.search_results.get(q["q"], []), key=lambda s: id_key(s["id"]), reverse=True)
            if "min_id" in q:
                found = [s for s in found if id_key(s["id"]) > id_key(q["min_id"])]
            if "max_id" in q:
                found = [s for s in found if id_key(s["id"]) < id_key(q["max_id"])]
            limit = min(int(q.get("limit", 20)), 40)
            return {"accounts": [], "statuses": found[:limit], "hashtags": []}, None

        return await self._answer("search", request, build)

    async def _verify_credentials(self, request: web.Request) -> web.StreamResponse:
        if not self._authorised(request):
            self.requests.append(("me", request.url, dict(request.headers)))
            return web.json_response({"error": "The access token is invalid"}, status=401)
        if self.me is None:
            self.requests.append(("me", request.url, dict(request.headers)))
            return web.json_response({"error": "Record not found"}, status=404)
        return await self._answer("me", request, lambda: (self.me, None))

    async def _instance(self, request: web.Request) -> web.StreamResponse:
        streaming = "ws://" + self.streaming_base.split("://", 1)[1]

        def build() -> tuple[Any, None]:
            if self.instance is not None:  # recorded elsewhere: only its streaming address is ours
                recorded = copy.deepcopy(self.instance)
                recorded.setdefault("configuration", {}).setdefault("urls", {})["streaming"] = streaming
                return recorded, None
            return {
                "domain": HOST,
                "title": "Mastodon test",
                "version": "4.3.0",
                "source_url": "https://github.com/mastodon/mastodon",
                "description": "A test server.",
                "usage": {"users": {"active_month": 12}},
                "thumbnail": {"url": f"https://files.{HOST}/site_uploads/files/000/000/001/@1x/thumb.png"},
                "languages": ["fr", "en"],
                "configuration": {
                    "urls": {"streaming": streaming, "status": None},
                    "accounts": {"max_featured_tags": 10, "max_pinned_statuses": 5},
                    "statuses": {
                        "max_characters": 500,
                        "max_media_attachments": 4,
                        "characters_reserved_per_url": 23,
                    },
                    "translation": {"enabled": False},
                },
                "registrations": {"enabled": False, "approval_required": False, "message": None},
                "contact": {"email": f"admin@{HOST}", "account": None},
                "rules": [],
            }, None

        return await self._answer("instance", request, build)

    # -- streaming ------------------------------------------------------------------------

    async def _stream_hashtag(self, request: web.Request) -> web.StreamResponse:
        return await self._sse(request, "hashtag", request.query.get("tag", "").lower())

    async def _stream_notification(self, request: web.Request) -> web.StreamResponse:
        return await self._sse(request, "notification", "")

    async def _sse(self, request: web.Request, kind: str, tag: str) -> web.StreamResponse:
        self.requests.append((f"stream:{kind}", request.url, dict(request.headers)))
        queue = self.faults.get(f"stream:{kind}")
        fault = queue.pop(0) if queue else None
        if fault is not None:
            return web.json_response({"error": "scripted"}, status=fault.status, headers=fault.headers)
        if not self._authorised(request):
            return web.json_response({"error": "Missing access token"}, status=401)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
        await response.prepare(request)
        await response.write(b":)\n")  # what Mastodon's streaming server sends first
        stream = _Stream(kind, tag, asyncio.Queue(), request.url.host or "")
        self.streams.append(stream)
        self.opened += 1
        async with self.stream_opened:
            self.stream_opened.notify_all()
        try:
            while True:
                try:
                    item = await asyncio.wait_for(stream.queue.get(), self.heartbeat)
                except TimeoutError:
                    if not stream.silent:
                        await response.write(b":thump\n")
                        self.thumps += 1
                    continue
                if item is None:
                    break
                await response.write(item)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.streams.remove(stream)
        return response

    async def wait_streams(self, count: int, within: float = WAIT) -> None:
        """Until `count` stream connections have been accepted since the start."""
        async with self.stream_opened:
            await asyncio.wait_for(self.stream_opened.wait_for(lambda: self.opened >= count), within)

    def push(self, kind: str, event: str, data: Any, tag: str = "", crlf: bool = False) -> int:
        """Send an event to the open streams of that kind (and tag); returns how many got it."""
        text = data if isinstance(data, str) else json.dumps(data)
        nl = "\r\n" if crlf else "\n"
        frame = f"event: {event}{nl}data: {text}{nl}{nl}".encode()
        targets = [s for s in self.streams if s.kind == kind and (not tag or s.tag == tag.lower())]
        for s in targets:
            s.queue.put_nowait(frame)
        return len(targets)

    def silence(self) -> None:
        for s in self.streams:
            s.silent = True


def _port(site: web.TCPSite) -> int:
    server = site._server  # aiohttp keeps the bound socket here
    assert server is not None
    return int(server.sockets[0].getsockname()[1])  # type: ignore[union-attr]


def _page(request: web.Request, items: list[dict[str, Any]], default: int, maximum: int) -> tuple[Any, str | None]:
    """Mastodon's pagination: newest first; min_id pages forward from the cursor; Link next/prev."""
    q = request.query
    limit = min(int(q.get("limit", default)), maximum)
    chosen = sorted(items, key=lambda i: id_key(i["id"]))
    if "max_id" in q:
        chosen = [i for i in chosen if id_key(i["id"]) < id_key(q["max_id"])]
    if "since_id" in q:
        chosen = [i for i in chosen if id_key(i["id"]) > id_key(q["since_id"])]
    if "min_id" in q:
        chosen = [i for i in chosen if id_key(i["id"]) > id_key(q["min_id"])][:limit]
    else:
        chosen = chosen[-limit:]
    page = [copy.deepcopy(i) for i in reversed(chosen)]
    if not page:
        return page, None
    keep = {k: v for k, v in q.items() if k in ("limit", "types[]", "local", "only_media")}
    base = request.url.with_query(None)
    next_url = base.with_query({**keep, "max_id": page[-1]["id"]})
    prev_url = base.with_query({**keep, "min_id": page[0]["id"]})
    return page, f'<{next_url}>; rel="next", <{prev_url}>; rel="prev"'


async def running(server: FakeMastodon) -> AsyncIterator[FakeMastodon]:
    await server.start()
    try:
        yield server
    finally:
        await server.close()
