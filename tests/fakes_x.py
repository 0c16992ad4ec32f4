"""A fake X API v2 for tests, served through httpx.MockTransport: recent search, the mentions
timeline, post creation and a user's own posts, with the documented shapes (data, includes, errors,
meta: newest_id / oldest_id / result_count / next_token) and x-rate-limit-* headers.

Posts are kept newest-first; since_id, max_results, next_token/pagination_token behave as documented.
Every request is recorded; `fail_next` queues error answers.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

CITY_ID = "1500000000000000001"
CITY = "toulouse"
BASE = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
DUPLICATE = {
    "detail": "You are not allowed to create a Tweet with duplicate content.",
    "type": "about:blank",
    "title": "Forbidden",
    "status": 403,
}
APP_ONLY = {
    "title": "Unsupported Authentication",
    "status": 403,
    "detail": "Authenticating with OAuth 2.0 Application-Only is forbidden for this endpoint.",
}
_ids = itertools.count(1_860_000_000_000_000_000, 7919)


def post_id() -> str:
    return str(next(_ids))


def tweet(
    text: str,
    author: tuple[str, str, str] = ("2244994945", "citizen", "A Citizen"),
    *,
    at: datetime | None = None,
    reply_to: str | None = None,
    to_user: str | None = None,
    urls: list[tuple[str, str]] = (),  # type: ignore[assignment]
    hashtags: list[str] = (),  # type: ignore[assignment]
    note: str | None = None,
    lang: str = "fr",
    retweet_of: str | None = None,
) -> dict[str, Any]:
    """A post as `data[]` holds it with the fields the source asks for (the data dictionary's shape)."""
    pid = post_id()
    entities: dict[str, Any] = {}
    if urls:
        entities["urls"] = [
            {"start": text.index(short), "end": text.index(short) + len(short), "url": short,
             "expanded_url": long, "display_url": long.split("//", 1)[-1][:24] + "…"}
            for short, long in urls
        ]  # fmt: skip
    if hashtags:
        entities["hashtags"] = [
            {"start": text.index("#" + h), "end": text.index("#" + h) + len(h) + 1, "tag": h} for h in hashtags
        ]
    post: dict[str, Any] = {
        "id": pid,
        "text": text,
        "author_id": author[0],
        "created_at": (at or BASE).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "conversation_id": pid,
        "lang": lang,
        "edit_history_tweet_ids": [pid],
    }
    if entities:
        post["entities"] = entities
    if reply_to:
        post["referenced_tweets"] = [{"type": "replied_to", "id": reply_to}]
        post["conversation_id"] = reply_to
        post["in_reply_to_user_id"] = to_user or CITY_ID
    if retweet_of:
        post["referenced_tweets"] = [{"type": "retweeted", "id": retweet_of}]
    if note is not None:
        post["note_tweet"] = {"text": note, "entities": entities}
    post["_author"] = {"id": author[0], "username": author[1], "name": author[2]}
    return post


def page_body(q: Any, posts: list[dict[str, Any]], token_name: str, extra: dict[str, Any]) -> dict[str, Any]:
    """One page as recent search and the mentions timeline answer: since_id, max_results, a page token."""
    size = int(q.get("max_results", "10"))
    assert 5 <= size <= 100, size
    size = min(size, int(extra.get("_page_cap", size)))  # X may answer fewer than asked, with a next_token
    since = int(q.get("since_id", "0"))
    newer = [p for p in posts if int(p["id"]) > since]
    start = int(q.get(token_name, "0") or 0)
    chunk = newer[start : start + size]
    body: dict[str, Any] = {"meta": {"result_count": len(chunk)}}
    if chunk:
        body["data"] = [{k: v for k, v in p.items() if not k.startswith("_")} for p in chunk]
        users = {p["_author"]["id"]: p["_author"] for p in chunk if "_author" in p}
        body["includes"] = {"users": list(users.values())}
        body["meta"].update({"newest_id": chunk[0]["id"], "oldest_id": chunk[-1]["id"]})
    if start + size < len(newer):
        body["meta"]["next_token"] = str(start + size)
    body.update((k, v) for k, v in extra.items() if not k.startswith("_"))
    return body


@dataclass
class FakeX:
    search_posts: list[dict[str, Any]] = field(default_factory=list)  # newest first
    mention_posts: list[dict[str, Any]] = field(default_factory=list)
    created: list[dict[str, Any]] = field(default_factory=list)  # POST /2/tweets bodies accepted
    requests: list[httpx.Request] = field(default_factory=list)
    failures: list[httpx.Response] = field(default_factory=list)
    failures_at: dict[str, list[httpx.Response]] = field(default_factory=dict)  # by path, before `failures`
    remaining: int = 450
    reset_at: int = field(default_factory=lambda: int(time.time()) + 900)
    extra: dict[str, Any] = field(default_factory=dict)  # merged into every read answer (errors, includes)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def factory(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self.transport(), **kwargs)

    def add(self, *posts: dict[str, Any], mention: bool = False) -> None:
        target = self.mention_posts if mention else self.search_posts
        for post in posts:
            target.insert(0, post)

    def calls(self, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path == path]

    def _headers(self) -> dict[str, str]:
        self.remaining = max(0, self.remaining - 1)
        return {
            "content-type": "application/json; charset=utf-8",
            "x-rate-limit-limit": "450",
            "x-rate-limit-remaining": str(self.remaining),
            "x-rate-limit-reset": str(self.reset_at),
        }

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.failures_at.get(request.url.path):
            return self.failures_at[request.url.path].pop(0)
        if self.failures:
            return self.failures.pop(0)
        path = request.url.path
        if path == "/2/tweets/search/recent":
            return self._page(request, self.search_posts, "next_token")
        if path == f"/2/users/{CITY_ID}/mentions":
            return self._page(request, self.mention_posts, "pagination_token")
        if path == "/2/tweets" and request.method == "POST":
            if not request.headers.get("authorization", "").startswith("OAuth "):
                return httpx.Response(403, json=APP_ONLY)
            return self._create(request)
        if path == f"/2/users/{CITY_ID}/tweets":
            return self._page(request, [c["_post"] for c in reversed(self.created)], "pagination_token")
        return httpx.Response(404, json={"title": "Not Found Error", "type": "about:blank", "status": 404,
                                         "detail": "Sorry, that page does not exist"})  # fmt: skip

    def _page(self, request: httpx.Request, posts: list[dict[str, Any]], token_name: str) -> httpx.Response:
        body = page_body(request.url.params, posts, token_name, self.extra)
        return httpx.Response(200, json=body, headers=self._headers())

    def _create(self, request: httpx.Request) -> httpx.Response:
        payload = json.loads(request.content)
        text = payload.get("text", "")
        for earlier in self.created:
            if earlier["text"] == text:
                return httpx.Response(403, json=DUPLICATE)
        pid = post_id()
        reply = payload.get("reply") or {}
        post = tweet(text, (CITY_ID, CITY, "Toulouse"), at=datetime.now(UTC) - timedelta(seconds=1),
                     reply_to=reply.get("in_reply_to_tweet_id"), to_user="2244994945")  # fmt: skip
        post["id"] = pid
        self.created.append({**payload, "_post": post})
        return httpx.Response(201, json={"data": {"id": pid, "text": text}}, headers=self._headers())


class LoopbackX:
    """The write side of the fake on a real aiohttp server on 127.0.0.1 (the crash test's children reach it
    over TCP): POST /2/tweets (OAuth 1.0a header required, duplicate text refused as X does) and
    GET /2/users/:id/tweets (the desk's own posts, newest first)."""

    def __init__(self) -> None:
        from tests.fakes_delivery import Loopback

        self.server = Loopback()
        self.posts: list[dict[str, Any]] = []  # created, oldest first
        self.refuse_duplicates = True  # X's own check, which the sender must not rely on alone
        self.server.app.router.add_post("/2/tweets", self.create)
        self.server.app.router.add_get(f"/2/users/{CITY_ID}/tweets", self.own)
        self.server.app.router.add_get(f"/2/users/{CITY_ID}", self.user)
        self.server.app.router.add_get("/2/users/me", self.me)
        self.access_level = "read-write"
        # The read side, for the end-to-end test: the same pages as FakeX, over TCP.
        self.reads = FakeX()
        self.server.app.router.add_get("/2/tweets/search/recent", self.search)
        self.server.app.router.add_get(f"/2/users/{CITY_ID}/mentions", self.mentions)

    async def search(self, request: Any) -> Any:
        return self._read(request, self.reads.search_posts, "next_token")

    async def mentions(self, request: Any) -> Any:
        return self._read(request, self.reads.mention_posts, "pagination_token")

    def _read(self, request: Any, posts: list[dict[str, Any]], token_name: str) -> Any:
        from aiohttp import web

        if request.headers.get("Authorization") != "Bearer bearer":
            return web.json_response({"title": "Unauthorized", "type": "about:blank", "status": 401,
                                      "detail": "Unauthorized"}, status=401)  # fmt: skip
        self.server.requests.append((request.method, request.path, dict(request.query), None))
        body = page_body(request.query, posts, token_name, self.reads.extra)
        headers = {k: v for k, v in self.reads._headers().items() if k != "content-type"}
        return web.json_response(body, headers=headers)

    async def user(self, request: Any) -> Any:
        from aiohttp import web

        if request.headers.get("Authorization") != "Bearer bearer":
            return web.json_response({"title": "Unauthorized", "type": "about:blank", "status": 401,
                                      "detail": "Unauthorized"}, status=401)  # fmt: skip
        return web.json_response({"data": {"id": CITY_ID, "name": "Toulouse", "username": CITY}})

    async def me(self, request: Any) -> Any:
        from aiohttp import web

        if not request.headers.get("Authorization", "").startswith("OAuth "):
            return web.json_response(APP_ONLY, status=403)
        data = {"data": {"id": CITY_ID, "name": "Toulouse", "username": CITY}}
        return web.json_response(data, headers={"x-access-level": self.access_level})

    @property
    def url(self) -> str:
        return self.server.url

    async def start(self) -> None:
        await self.server.start()

    async def stop(self) -> None:
        await self.server.stop()

    async def create(self, request: Any) -> Any:
        from aiohttp import web

        if not request.headers.get("Authorization", "").startswith("OAuth "):
            return web.json_response(APP_ONLY, status=403)
        payload = await request.json()
        await self.server._pause()
        text, parent = payload.get("text", ""), (payload.get("reply") or {}).get("in_reply_to_tweet_id")
        if self.refuse_duplicates and any(p["text"] == text for p in self.posts):
            return web.json_response(DUPLICATE, status=403)
        pid = post_id()
        self.posts.append({"id": pid, "text": text, "edit_history_tweet_ids": [pid],
                           "referenced_tweets": [{"type": "replied_to", "id": parent}]})  # fmt: skip
        self.server._answered()
        return web.json_response({"data": {"id": pid, "text": text}}, status=201)

    async def own(self, request: Any) -> Any:
        from aiohttp import web

        size = int(request.query.get("max_results", "10"))
        chunk = list(reversed(self.posts))[:size]
        body: dict[str, Any] = {"meta": {"result_count": len(chunk)}}
        if chunk:
            body["data"] = chunk
            body["meta"].update({"newest_id": chunk[0]["id"], "oldest_id": chunk[-1]["id"]})
            self.server._answered()  # an earlier reply may be among them: the child may hold it unrecorded
        return web.json_response(body)

    def created_for(self, parent: str) -> list[dict[str, Any]]:
        return [p for p in self.posts if p["referenced_tweets"][0]["id"] == parent]
