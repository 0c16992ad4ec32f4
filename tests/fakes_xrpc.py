"""A fake atproto PDS for tests: a real aiohttp server on 127.0.0.1 speaking XRPC.

It keeps state like the real one: accounts with app passwords, sessions (access and refresh tokens,
which expire and rotate), posts (as app.bsky.feed.defs#postView), notifications, and records
written with com.atproto.repo.createRecord. It counts every call, records every request, and can be
told to fail the next calls of a method (500, 429 with ratelimit headers, a malformed body).

Extend it with `fake.route(nsid, method, handler, auth=True)`; a handler receives the fake, the
aiohttp request, the query parameters, the JSON body (or None) and the caller's DID, and returns a
JSON-able dict or an aiohttp Response. Payload builders (`post_view`, `notification`, facets) copy
the shapes of the lexicons (app.bsky.feed.defs, app.bsky.richtext.facet, app.bsky.feed.post).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import secrets
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

Handler = Callable[["FakeXrpc", web.Request, MultiDictProxy[str], Any, "str | None"], Awaitable[Any]]

TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
_tid_clock = itertools.count(int(time.time() * 1_000_000))


def tid() -> str:
    """A record key shaped like atproto's TIDs (13 base32-sortable characters)."""
    n = next(_tid_clock) << 10
    return "".join(TID_ALPHABET[(n >> (5 * i)) & 31] for i in reversed(range(13)))


def cid(seed: str) -> str:
    digest = hashlib.sha256(seed.encode()).digest()
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    bits = int.from_bytes(digest, "big")
    return "bafyrei" + "".join(alphabet[(bits >> (5 * i)) & 31] for i in range(52))


def iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse(value: str) -> datetime:
    when = datetime.fromisoformat(value)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


# -- payload builders -----------------------------------------------------------------------


def byte_slice(text: str, fragment: str) -> dict[str, int]:
    """The UTF-8 byte offsets of the first `fragment` in `text` (app.bsky.richtext.facet#byteSlice)."""
    start = text.index(fragment)
    byte_start = len(text[:start].encode("utf-8"))
    return {"byteStart": byte_start, "byteEnd": byte_start + len(fragment.encode("utf-8"))}


def link_facet(text: str, shown: str, uri: str) -> dict[str, Any]:
    return {
        "index": byte_slice(text, shown),
        "features": [{"$type": "app.bsky.richtext.facet#link", "uri": uri}],
    }


def tag_facet(text: str, hashtag: str) -> dict[str, Any]:
    return {
        "index": byte_slice(text, hashtag),
        "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": hashtag.lstrip("#")}],
    }


def mention_facet(text: str, shown: str, did: str) -> dict[str, Any]:
    return {
        "index": byte_slice(text, shown),
        "features": [{"$type": "app.bsky.richtext.facet#mention", "did": did}],
    }


@dataclass
class Account:
    did: str
    handle: str
    app_password: str = ""
    display_name: str = ""

    def basic(self) -> dict[str, Any]:
        """app.bsky.actor.defs#profileViewBasic"""
        return {
            "did": self.did,
            "handle": self.handle,
            "displayName": self.display_name,
            "avatar": f"https://cdn.bsky.app/img/avatar/plain/{self.did}/{cid(self.did)}@jpeg",
            "associated": {"chat": {"allowIncoming": "following"}},
            "viewer": {"muted": False, "blockedBy": False},
            "labels": [],
            "createdAt": "2023-09-12T08:14:03.112Z",
        }

    def profile(self) -> dict[str, Any]:
        """app.bsky.actor.defs#profileView (what notifications carry)"""
        return {**self.basic(), "description": "", "indexedAt": "2024-11-02T10:00:00.000Z"}


def strong_ref(view: dict[str, Any]) -> dict[str, str]:
    return {"uri": view["uri"], "cid": view["cid"]}


def post_view(
    author: Account,
    text: str,
    indexed_at: datetime,
    *,
    created_at: datetime | str | None = None,
    rkey: str | None = None,
    langs: list[str] | None = None,
    facets: list[dict[str, Any]] | None = None,
    tags: list[str] | None = None,
    reply_to: dict[str, Any] | None = None,
    root: dict[str, Any] | None = None,
    embed: bool = False,
) -> dict[str, Any]:
    """An app.bsky.feed.defs#postView with an app.bsky.feed.post record, as searchPosts returns it."""
    rkey = rkey or tid()
    uri = f"at://{author.did}/app.bsky.feed.post/{rkey}"
    created = created_at if isinstance(created_at, str) else iso(created_at or indexed_at - timedelta(seconds=1))
    record: dict[str, Any] = {"$type": "app.bsky.feed.post", "text": text, "createdAt": created}
    record["langs"] = langs if langs is not None else ["fr"]
    if facets:
        record["facets"] = facets
    if tags:
        record["tags"] = tags
    if reply_to is not None:
        record["reply"] = {"root": strong_ref(root or reply_to), "parent": strong_ref(reply_to)}
    view: dict[str, Any] = {
        "uri": uri,
        "cid": cid(uri),
        "author": author.basic(),
        "record": record,
        "replyCount": 0,
        "repostCount": 1,
        "likeCount": 3,
        "quoteCount": 0,
        "indexedAt": iso(indexed_at),
        "viewer": {"threadMuted": False, "embeddingDisabled": False},
        "labels": [],
    }
    if embed:
        external = {
            "uri": "https://www.tisseo.fr/actualites",
            "title": "Actualités Tisséo",
            "description": "Info trafic et travaux",
        }
        record["embed"] = {"$type": "app.bsky.embed.external", "external": external}
        view["embed"] = {"$type": "app.bsky.embed.external#view", "external": external}
    return view


def notification(
    view: dict[str, Any], author: Account, reason: str, subject: str | None = None, is_read: bool = False
) -> dict[str, Any]:
    """An app.bsky.notification.listNotifications#notification about the post in `view`."""
    item: dict[str, Any] = {
        "uri": view["uri"],
        "cid": view["cid"],
        "author": author.profile(),
        "reason": reason,
        "record": view["record"],
        "isRead": is_read,
        "indexedAt": view["indexedAt"],
        "labels": [],
    }
    if subject:
        item["reasonSubject"] = subject
    return item


def like_notification(liker: Account, subject: str, indexed_at: datetime) -> dict[str, Any]:
    uri = f"at://{liker.did}/app.bsky.feed.like/{tid()}"
    return {
        "uri": uri,
        "cid": cid(uri),
        "author": liker.profile(),
        "reason": "like",
        "reasonSubject": subject,
        "record": {
            "$type": "app.bsky.feed.like",
            "subject": {"uri": subject, "cid": cid(subject)},
            "createdAt": iso(indexed_at),
        },
        "isRead": False,
        "indexedAt": iso(indexed_at),
        "labels": [],
    }


def follow_notification(follower: Account, subject_did: str, indexed_at: datetime) -> dict[str, Any]:
    uri = f"at://{follower.did}/app.bsky.graph.follow/{tid()}"
    return {
        "uri": uri,
        "cid": cid(uri),
        "author": follower.profile(),
        "reason": "follow",
        "record": {"$type": "app.bsky.graph.follow", "subject": subject_did, "createdAt": iso(indexed_at)},
        "isRead": False,
        "indexedAt": iso(indexed_at),
        "labels": [],
    }


# -- the server -----------------------------------------------------------------------------


@dataclass
class Fault:
    status: int
    body: Any  # a dict (sent as JSON), bytes/str (sent as is)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Seen:
    """One request as the server received it."""

    nsid: str
    method: str
    params: list[tuple[str, str]]
    authorization: str | None
    body: Any

    def param(self, name: str) -> str | None:
        return next((v for k, v in self.params if k == name), None)

    def params_all(self, name: str) -> list[str]:
        return [v for k, v in self.params if k == name]


def xrpc_error(status: int, error: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": error, "message": message}, status=status, headers=headers)


class FakeXrpc:
    def __init__(self) -> None:
        self.accounts: dict[str, Account] = {}  # by DID
        self.posts: list[dict[str, Any]] = []  # postViews, in any order
        self.notifications: dict[str, list[dict[str, Any]]] = {}  # by the DID they are for
        self.records: dict[str, dict[str, Any]] = {}  # by AT-URI, written with createRecord
        self.access_tokens: dict[str, str] = {}  # token -> DID
        self.refresh_tokens: dict[str, str] = {}
        self.expired: set[str] = set()
        self.revoked: set[str] = set()
        self.calls: Counter[str] = Counter()
        self.requests: list[Seen] = []
        self.faults: dict[str, deque[Fault]] = {}
        self.honour_since = True  # False: behave like a server that ignores searchPosts' `since`
        self.rate_limit = 3000
        self.rate_remaining = 3000
        self.rate_window = 300
        self.routes: dict[tuple[str, str], tuple[Handler, bool]] = {}
        for (nsid, method), (handler, auth) in DEFAULT_ROUTES.items():
            self.routes[(nsid, method)] = (handler, auth)
        self._runner: web.AppRunner | None = None
        self.url = ""

    # -- set-up --------------------------------------------------------------------------

    def add_account(self, handle: str, app_password: str = "", display_name: str = "") -> Account:
        did = "did:plc:" + hashlib.sha256(handle.encode()).hexdigest()[:24]
        account = Account(did, handle, app_password, display_name)
        self.accounts[did] = account
        return account

    def add_posts(self, *views: dict[str, Any]) -> None:
        self.posts.extend(views)

    def notify(self, account: Account, *items: dict[str, Any]) -> None:
        self.notifications.setdefault(account.did, []).extend(items)

    def route(self, nsid: str, method: str, handler: Handler, auth: bool = True) -> None:
        self.routes[(nsid, method)] = (handler, auth)

    def fail(
        self, nsid: str, status: int, body: Any = None, headers: dict[str, str] | None = None, times: int = 1
    ) -> None:
        """The next `times` calls of `nsid` get this answer instead of the real one."""
        if body is None:
            body = {"error": "InternalServerError", "message": "Internal Server Error"}
        for _ in range(times):
            self.faults.setdefault(nsid, deque()).append(Fault(status, body, dict(headers or {})))

    def rate_limit_next(self, nsid: str, reset_at: int) -> None:
        """A 429 as the PDS sends it: ratelimit-* headers with the reset in epoch seconds."""
        headers = {
            "ratelimit-limit": str(self.rate_limit),
            "ratelimit-remaining": "0",
            "ratelimit-reset": str(reset_at),
            "ratelimit-policy": f"{self.rate_limit};w={self.rate_window}",
        }
        self.fail(nsid, 429, {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"}, headers)

    def malformed_next(self, nsid: str) -> None:
        self.fail(
            nsid,
            200,
            b'{"posts": [{"uri": "at://did:plc:x/app.bsky.feed.post/3',
            {"content-type": "application/json"},
        )

    def expire_access_tokens(self) -> None:
        self.expired.update(self.access_tokens)

    def revoke_refresh_tokens(self) -> None:
        self.revoked.update(self.refresh_tokens)

    def issue_session(self, account: Account) -> dict[str, Any]:
        access = "eyJ0eXAiOiJhdCtqd3QiLCJhbGciOiJIUzI1NiJ9." + secrets.token_urlsafe(24)
        refresh = "eyJ0eXAiOiJyZWZyZXNoK2p3dCIsImFsZyI6IkhTMjU2In0." + secrets.token_urlsafe(24)
        self.access_tokens[access] = account.did
        self.refresh_tokens[refresh] = account.did
        return {
            "accessJwt": access,
            "refreshJwt": refresh,
            "handle": account.handle,
            "did": account.did,
            "didDoc": {
                "@context": ["https://www.w3.org/ns/did/v1"],
                "id": account.did,
                "alsoKnownAs": [f"at://{account.handle}"],
                "service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": self.url}],
            },
            "email": f"{account.handle.split('.')[0]}@example.org",
            "emailConfirmed": True,
            "emailAuthFactor": False,
            "active": True,
        }

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> FakeXrpc:
        app = web.Application()
        app.router.add_route("*", "/xrpc/{nsid}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host="127.0.0.1", port=0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeXrpc:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- dispatch ------------------------------------------------------------------------

    def _rate_headers(self) -> dict[str, str]:
        self.rate_remaining = max(0, self.rate_remaining - 1)
        return {
            "ratelimit-limit": str(self.rate_limit),
            "ratelimit-remaining": str(self.rate_remaining),
            "ratelimit-reset": str(int(time.time()) + self.rate_window),
            "ratelimit-policy": f"{self.rate_limit};w={self.rate_window}",
        }

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        nsid = request.match_info["nsid"]
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            try:
                body = json.loads(raw) if raw else None
            except json.JSONDecodeError:
                return xrpc_error(400, "InvalidRequest", "Request body is not JSON")
        self.calls[nsid] += 1
        self.requests.append(
            Seen(nsid, request.method, list(request.query.items()), request.headers.get("Authorization"), body)
        )
        queue = self.faults.get(nsid)
        if queue:
            fault = queue.popleft()
            if isinstance(fault.body, dict):
                return web.json_response(fault.body, status=fault.status, headers=fault.headers)
            data = fault.body.encode() if isinstance(fault.body, str) else fault.body
            return web.Response(body=data, status=fault.status, headers=fault.headers)
        entry = self.routes.get((nsid, request.method))
        if entry is None:
            if any(n == nsid for n, _ in self.routes):
                return xrpc_error(405, "InvalidRequest", "Incorrect HTTP method")
            return xrpc_error(501, "MethodNotImplemented", "Method Not Implemented")
        handler, auth = entry
        did: str | None = None
        if auth:
            token = (request.headers.get("Authorization") or "").removeprefix("Bearer ")
            if not token:
                return xrpc_error(401, "AuthenticationRequired", "Authentication Required")
            if token in self.expired:
                return xrpc_error(400, "ExpiredToken", "Token has expired")
            did = self.access_tokens.get(token)
            if did is None:
                return xrpc_error(400, "InvalidToken", "Token could not be verified")
        result = await handler(self, request, request.query, body, did)
        if isinstance(result, web.StreamResponse):
            return result
        return web.json_response(result, headers=self._rate_headers())


# -- the methods ----------------------------------------------------------------------------

DEFAULT_ROUTES: dict[tuple[str, str], tuple[Handler, bool]] = {}


def xrpc(nsid: str, method: str, auth: bool = True) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        DEFAULT_ROUTES[(nsid, method)] = (handler, auth)
        return handler

    return register


def _page(items: list[dict[str, Any]], params: MultiDictProxy[str], default_limit: int) -> tuple[list[Any], str | None]:
    limit = int(params.get("limit", default_limit))
    if not 1 <= limit <= 100:
        raise web.HTTPBadRequest(text='{"error":"InvalidRequest","message":"limit out of range"}')
    start = int(params.get("cursor", "0") or 0)
    page = items[start : start + limit]
    more = start + limit < len(items)
    return page, str(start + limit) if more else None


@xrpc("com.atproto.server.createSession", "POST", auth=False)
async def create_session(fake: FakeXrpc, request: web.Request, params: Any, body: Any, did: str | None) -> Any:
    if not isinstance(body, dict) or not isinstance(body.get("identifier"), str) or "password" not in body:
        return xrpc_error(400, "InvalidRequest", 'Input must have the property "identifier"')
    ident = body["identifier"].lstrip("@").lower()
    account = next((a for a in fake.accounts.values() if ident in (a.handle.lower(), a.did)), None)
    if account is None or not secrets.compare_digest(str(body["password"]), account.app_password):
        return xrpc_error(401, "AuthenticationRequired", "Invalid identifier or password")
    return fake.issue_session(account)


@xrpc("com.atproto.server.refreshSession", "POST", auth=False)
async def refresh_session(fake: FakeXrpc, request: web.Request, params: Any, body: Any, did: str | None) -> Any:
    token = (request.headers.get("Authorization") or "").removeprefix("Bearer ")
    if not token:
        return xrpc_error(401, "AuthenticationRequired", "Authentication Required")
    if token in fake.revoked:
        return xrpc_error(400, "ExpiredToken", "Token has been revoked")
    owner = fake.refresh_tokens.get(token)
    if owner is None:
        return xrpc_error(400, "InvalidToken", "Token could not be verified")
    fake.revoked.add(token)  # refresh tokens rotate
    session = fake.issue_session(fake.accounts[owner])
    session.pop("email"), session.pop("emailConfirmed"), session.pop("emailAuthFactor")
    return session


@xrpc("app.bsky.feed.searchPosts", "GET")
async def search_posts(fake: FakeXrpc, request: web.Request, params: Any, body: Any, did: str | None) -> Any:
    q = params.get("q", "")
    if not q.strip():
        return xrpc_error(400, "InvalidRequest", 'Error: Params must have the property "q"')
    if params.get("sort", "latest") not in ("latest", "top"):
        return xrpc_error(400, "InvalidRequest", "Invalid sort")
    needle = q.casefold()

    def matches(view: dict[str, Any]) -> bool:
        record = view.get("record") if isinstance(view.get("record"), dict) else {}
        text = str(record.get("text", "")).casefold()
        tags = [str(t).casefold() for t in record.get("tags") or []]
        return needle in text or needle.lstrip("#") in tags

    def sort_at(view: dict[str, Any]) -> datetime:
        # The AppView sorts on sortAt: the earlier of createdAt and indexedAt.
        indexed = _parse(view["indexedAt"])
        record = view.get("record") if isinstance(view.get("record"), dict) else {}
        try:
            return min(indexed, _parse(record["createdAt"]))
        except (KeyError, TypeError, ValueError):
            return indexed

    hits = [v for v in fake.posts if matches(v)]
    if fake.honour_since and params.get("since"):
        since = _parse(params["since"].replace("Z", "+00:00"))
        hits = [v for v in hits if sort_at(v) >= since]
    hits.sort(key=sort_at, reverse=True)
    page, cursor = _page(hits, params, 25)
    out: dict[str, Any] = {"posts": page, "hitsTotal": len(hits)}
    if cursor:
        out["cursor"] = cursor
    return out


@xrpc("app.bsky.notification.listNotifications", "GET")
async def list_notifications(fake: FakeXrpc, request: web.Request, params: Any, body: Any, did: str | None) -> Any:
    items = list(fake.notifications.get(did or "", []))
    reasons = params.getall("reasons", [])
    if reasons:
        items = [n for n in items if n.get("reason") in reasons]
    items.sort(key=lambda n: _parse(n["indexedAt"]), reverse=True)
    page, cursor = _page(items, params, 50)
    out: dict[str, Any] = {"notifications": page, "priority": False, "seenAt": "2024-11-21T09:00:00.000Z"}
    if cursor:
        out["cursor"] = cursor
    return out


@xrpc("com.atproto.repo.createRecord", "POST")
async def create_record(fake: FakeXrpc, request: web.Request, params: Any, body: Any, did: str | None) -> Any:
    if not isinstance(body, dict) or body.get("repo") not in (did, fake.accounts[did or ""].handle):
        return xrpc_error(400, "InvalidRequest", "Invalid repo")
    collection, record = body.get("collection"), body.get("record")
    if not isinstance(collection, str) or not isinstance(record, dict):
        return xrpc_error(400, "InvalidRequest", "Input must have the properties collection and record")
    uri = f"at://{did}/{collection}/{body.get('rkey') or tid()}"
    fake.records[uri] = record
    if collection == "app.bsky.feed.post":
        author = fake.accounts[did or ""]
        fake.posts.append(
            {**post_view(author, record.get("text", ""), datetime.now(UTC)), "uri": uri, "record": record}
        )
    return {
        "uri": uri,
        "cid": cid(uri),
        "commit": {"cid": cid(uri + "#commit"), "rev": tid()},
        "validationStatus": "valid",
    }


@xrpc("com.atproto.repo.getRecord", "GET", auth=False)
async def get_record(fake: FakeXrpc, request: web.Request, params: Any, body: Any, did: str | None) -> Any:
    repo, collection, rkey = params.get("repo", ""), params.get("collection", ""), params.get("rkey", "")
    account = next((a for a in fake.accounts.values() if repo in (a.did, a.handle)), None)
    uri = f"at://{account.did if account else repo}/{collection}/{rkey}"
    record = fake.records.get(uri)
    if record is None:
        view = next((v for v in fake.posts if v["uri"] == uri), None)
        record = view["record"] if view else None
    if record is None:
        return xrpc_error(400, "RecordNotFound", f"Could not locate record: {uri}")
    return {"uri": uri, "cid": cid(uri), "value": record}
