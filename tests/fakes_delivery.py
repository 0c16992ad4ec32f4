"""Loopback servers for delivery tests: a Mastodon that honours Idempotency-Key, an XRPC PDS, a webhook
receiver and an Open311 endpoint. Each records what it accepted, so tests count what really arrived.

Payloads follow the documented shapes (docs.joinmastodon.org Status / Error entities, the atproto
lexicons for createRecord / getRecord / createSession, GeoReport v2 for Open311).
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from aiohttp import web

from monitor.core.config import Service, ServiceTarget, SourceSpec, Targets, Template, Watchlist
from monitor.core.models import MatchResult, Mention, Priority
from monitor.core.timeutil import utcnow
from monitor.db.store import Store
from monitor.networks.bluesky.source import BlueskyOptions

TOKEN = "secret-token-never-shown"


@dataclass
class Forced:
    """The next answers of a route, in order, before it behaves normally again."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class Loopback:
    """Common plumbing: an aiohttp app on 127.0.0.1:<random port>, forced answers, a request log."""

    def __init__(self) -> None:
        self.app = web.Application()
        self.forced: dict[str, list[Forced]] = {}
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        self.delay: tuple[float, float] = (0.0, 0.0)  # random response delay range (crash test)
        self.rng = random.Random(0)
        self.runner: web.AppRunner | None = None
        self.url = ""
        self.on_accept: Callable[[], None] | None = None  # called once per newly accepted item
        self.on_answer: Callable[[], None] | None = None  # called on every success answer, a repeat's too

    def force(self, route: str, *answers: Forced) -> None:
        self.forced.setdefault(route, []).extend(answers)

    async def _forced(self, route: str) -> web.Response | None:
        if self.forced.get(route):
            f = self.forced[route].pop(0)
            if f.delay:
                await asyncio.sleep(f.delay)
            return web.json_response(f.body, status=f.status, headers=f.headers)
        return None

    def _answered(self) -> None:
        if self.on_answer:
            self.on_answer()

    async def _pause(self) -> None:
        low, high = self.delay
        if high:
            await asyncio.sleep(self.rng.uniform(low, high))

    async def start(self) -> None:
        self.runner = web.AppRunner(self.app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self.runner:
            await self.runner.cleanup()


class FakeMastodon(Loopback):
    """POST /api/v1/statuses (Idempotency-Key honoured per token, as Mastodon does) and /api/v2/search."""

    def __init__(self) -> None:
        super().__init__()
        self.statuses: dict[str, dict[str, Any]] = {}  # id -> created status
        self.by_key: dict[str, str] = {}
        self.remote: dict[str, str] = {}  # uri of a remote status -> our local id (for search)
        self.lose_responses = 0
        self.app.router.add_post("/api/v1/statuses", self.post_status)
        self.app.router.add_get("/api/v2/search", self.search)

    def _auth(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"error": "The access token is invalid"}, status=401)
        return None

    async def post_status(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        self.requests.append(("POST", "/api/v1/statuses", dict(request.headers), form))
        if (denied := self._auth(request)) is not None:
            return denied
        await self._pause()
        if (forced := await self._forced("statuses")) is not None:
            return forced
        key = request.headers.get("Idempotency-Key")
        if key and key in self.by_key:
            self._answered()
            return web.json_response(self.statuses[self.by_key[key]])
        if len(str(form.get("status", ""))) > 500:
            return web.json_response({"error": "Validation failed: Text character limit of 500 exceeded"}, status=422)
        sid = str(109_000_000_000_000_000 + len(self.statuses) + 1)
        status = {
            "id": sid,
            "created_at": utcnow().isoformat(),
            "in_reply_to_id": form.get("in_reply_to_id"),
            "in_reply_to_account_id": None,
            "sensitive": False,
            "spoiler_text": "",
            "visibility": form.get("visibility", "public"),
            "language": form.get("language"),
            "uri": f"{self.url}/users/toulouse/statuses/{sid}",
            "url": f"{self.url}/@toulouse/{sid}",
            "replies_count": 0,
            "reblogs_count": 0,
            "favourites_count": 0,
            "content": f"<p>{form.get('status', '')}</p>",
            "reblog": None,
            "account": {"id": "1", "username": "toulouse", "acct": "toulouse"},
            "media_attachments": [],
            "mentions": [],
            "tags": [],
            "emojis": [],
            "card": None,
            "poll": None,
        }
        self.statuses[sid] = status
        if key:
            self.by_key[key] = sid
        if self.on_accept:
            self.on_accept()
        if self.lose_responses:  # accepted, but the answer never arrives in time
            self.lose_responses -= 1
            await asyncio.sleep(2.0)
        self._answered()
        return web.json_response(status)

    async def search(self, request: web.Request) -> web.Response:
        self.requests.append(("GET", "/api/v2/search", dict(request.headers), dict(request.query)))
        if (denied := self._auth(request)) is not None:
            return denied
        q = request.query.get("q", "")
        local = self.remote.get(q) if request.query.get("resolve") == "true" else None
        statuses = [{"id": local, "uri": q, "url": q}] if local else []
        return web.json_response({"accounts": [], "statuses": statuses, "hashtags": []})

    def created_for(self, in_reply_to: str) -> list[dict[str, Any]]:
        return [s for s in self.statuses.values() if s["in_reply_to_id"] == in_reply_to]


class FakePds(Loopback):
    """createSession, createRecord (rkey given or not), getRecord, getPosts, resolveHandle."""

    DID = "did:plc:toulousemetropole"

    def __init__(self) -> None:
        super().__init__()
        self.records: dict[str, dict[str, Any]] = {}  # rkey -> record
        self.posts: dict[str, dict[str, Any]] = {}  # uri -> post view (others' posts, for getPosts)
        self.handles: dict[str, str] = {}
        self.creates = 0
        for nsid, handler in (
            ("com.atproto.server.createSession", self.create_session),
            ("com.atproto.repo.createRecord", self.create_record),
        ):
            self.app.router.add_post(f"/xrpc/{nsid}", handler)
        for nsid, handler in (
            ("com.atproto.repo.getRecord", self.get_record),
            ("app.bsky.feed.getPosts", self.get_posts),
            ("com.atproto.identity.resolveHandle", self.resolve_handle),
        ):
            self.app.router.add_get(f"/xrpc/{nsid}", handler)

    @staticmethod
    def error(status: int, error: str, message: str) -> web.Response:
        return web.json_response({"error": error, "message": message}, status=status)

    async def create_session(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(("POST", "createSession", dict(request.headers), {"identifier": body.get("identifier")}))
        if body.get("password") != TOKEN:
            return self.error(401, "AuthenticationRequired", "Invalid identifier or password")
        return web.json_response(
            {
                "did": self.DID,
                "handle": body["identifier"],
                "accessJwt": "jwt-1",
                "refreshJwt": "refresh-1",
                "active": True,
            }
        )

    def _authed(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == "Bearer jwt-1"

    async def create_record(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(("POST", "createRecord", dict(request.headers), body))
        if not self._authed(request):
            return self.error(401, "AuthenticationRequired", "Authentication Required")
        await self._pause()
        if (forced := await self._forced("createRecord")) is not None:
            return forced
        rkey = body.get("rkey") or f"auto{len(self.records)}"
        if rkey in self.records:
            return self.error(400, "InvalidRequest", "Record already exists")
        record = body["record"]
        if len(record.get("text", "")) > 3000:
            return self.error(
                400,
                "InvalidRequest",
                "Invalid app.bsky.feed.post record: Record/text must not be longer than 300 graphemes",
            )
        self.creates += 1
        self.records[rkey] = record
        uri = f"at://{body['repo']}/{body['collection']}/{rkey}"
        return web.json_response(
            {
                "uri": uri,
                "cid": f"bafyreig{rkey}",
                "commit": {"cid": "bafyc", "rev": "3l"},
                "validationStatus": "valid",
            }
        )

    async def get_record(self, request: web.Request) -> web.Response:
        q = request.query
        self.requests.append(("GET", "getRecord", dict(request.headers), dict(q)))
        record = self.records.get(q.get("rkey", ""))
        if record is None:
            return self.error(
                400,
                "RecordNotFound",
                f"Could not locate record: at://{q.get('repo')}/{q.get('collection')}/{q.get('rkey')}",
            )
        return web.json_response(
            {
                "uri": f"at://{q['repo']}/{q['collection']}/{q['rkey']}",
                "cid": f"bafyreig{q['rkey']}",
                "value": record,
            }
        )

    async def get_posts(self, request: web.Request) -> web.Response:
        uris = request.query.getall("uris", [])
        return web.json_response({"posts": [self.posts[u] for u in uris if u in self.posts]})

    async def resolve_handle(self, request: web.Request) -> web.Response:
        handle = request.query.get("handle", "")
        if handle not in self.handles:
            return self.error(400, "InvalidRequest", "Unable to resolve handle")
        return web.json_response({"did": self.handles[handle]})


class Receiver(Loopback):
    """A webhook receiver that dedupes on Idempotency-Key, as docs/delivery.md asks receivers to."""

    def __init__(self) -> None:
        super().__init__()
        self.accepted: dict[str, dict[str, Any]] = {}
        self.app.router.add_post("/hook", self.hook)

    async def hook(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(("POST", "/hook", dict(request.headers), body))
        await self._pause()
        if (forced := await self._forced("hook")) is not None:
            return forced
        key = request.headers.get("Idempotency-Key", "")
        first = key not in self.accepted
        if first:
            self.accepted[key] = body
            if self.on_accept:
                self.on_accept()
        self._answered()
        return web.json_response({"id": f"ticket-{list(self.accepted).index(key) + 1}"}, status=201 if first else 200)


class FakeOpen311(Loopback):
    """GeoReport v2: POST /requests.json and GET /requests/{id}.json."""

    def __init__(self) -> None:
        super().__init__()
        self.requests_made: dict[str, dict[str, Any]] = {}
        self.app.router.add_post("/requests.json", self.post)
        self.app.router.add_get("/requests/{id}.json", self.get)

    async def post(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        self.requests.append(("POST", "/requests.json", dict(request.headers), form))
        if form.get("api_key") != TOKEN:
            return web.json_response([{"code": 403, "description": "Invalid api_key"}], status=403)
        rid = str(638344 + len(self.requests_made))
        self.requests_made[rid] = {"form": form, "status": "open", "status_notes": ""}
        return web.json_response([{"service_request_id": rid, "service_notice": "Received", "account_id": None}])

    async def get(self, request: web.Request) -> web.Response:
        rid = request.match_info["id"]
        r = self.requests_made.get(rid)
        if r is None:
            return web.json_response([{"code": 404, "description": "not found"}], status=404)
        return web.json_response(
            [
                {
                    "service_request_id": rid,
                    "status": r["status"],
                    "status_notes": r["status_notes"],
                    "service_name": "Voirie",
                    "service_code": r["form"]["service_code"],
                    "description": r["form"]["description"],
                    "requested_datetime": "2026-03-02T10:00:00+01:00",
                    "updated_datetime": "2026-03-02T11:00:00+01:00",
                }
            ]
        )


@asynccontextmanager
async def serving(server: Loopback) -> AsyncIterator[Any]:
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


# -- a watchlist and a database with mentions to answer ---------------------------------------


def watchlist(
    tmp: Path,
    mastodon_url: str = "http://127.0.0.1:9",
    pds_url: str = "http://127.0.0.1:9",
    targets: tuple[ServiceTarget, ...] = (),
) -> Watchlist:
    """A typed watchlist (built directly: source option shapes are the sources' own dataclasses)."""
    return Watchlist(
        path=tmp / "watchlist.yaml",
        city="Toulouse Métropole",
        timezone="Europe/Paris",
        database=tmp / "monitor.db",
        targets=Targets(),
        terms=(),
        ignore=(),
        priority_rules=(),
        sources=(
            SourceSpec(
                "masto",
                "mastodon",
                timedelta(seconds=60),
                SimpleNamespace(instance=mastodon_url, token_env="TEST_MASTODON_TOKEN"),
            ),
            SourceSpec(
                "sky",
                "bluesky",
                timedelta(seconds=60),
                # As the watchlist builds it: an explicit pds, so no DID-document lookup (plc None).
                BlueskyOptions(handle="toulouse.bsky.social", app_password_env="TEST_BSKY_PASSWORD", pds=pds_url),
            ),
            SourceSpec("demo", "demo", timedelta(seconds=60), SimpleNamespace()),
        ),
        services=(Service("voirie", "Voirie et espace public", targets=targets),),
        templates=(Template("resolu", "Résolu", "{author} C'est réparé, merci !", lang="fr", use="followup"),),
    )


def mastodon_status(n: int, host: str = "piaille.fr", visibility: str = "public") -> dict[str, Any]:
    """A Status as our instance returns it (a remote status has a local id and a remote uri)."""
    return {
        "id": str(110_000 + n),
        "uri": f"https://{host}/users/citizen{n}/statuses/{900 + n}",
        "url": f"https://{host}/@citizen{n}/{900 + n}",
        "created_at": "2026-03-02T09:00:00.000Z",
        "visibility": visibility,
        "language": "fr",
        "content": "<p>Nid de poule à Toulouse</p>",
        "account": {"id": str(5000 + n), "username": f"citizen{n}", "acct": f"citizen{n}@{host}"},
        "in_reply_to_id": None,
        "reblog": None,
        "mentions": [],
        "tags": [],
    }


def bluesky_view(n: int, reply_root: dict[str, str] | None = None) -> dict[str, Any]:
    uri = f"at://did:plc:citizen{n}/app.bsky.feed.post/3lcitizen{n:04d}"
    record: dict[str, Any] = {
        "$type": "app.bsky.feed.post",
        "text": "Nid de poule à Toulouse",
        "createdAt": "2026-03-02T09:00:00.000Z",
        "langs": ["fr"],
    }
    if reply_root:
        record["reply"] = {"root": reply_root, "parent": reply_root}
    return {
        "uri": uri,
        "cid": f"bafyreicitizen{n}",
        "record": record,
        "indexedAt": "2026-03-02T09:00:01.000Z",
        "author": {
            "did": f"did:plc:citizen{n}",
            "handle": f"citizen{n}.bsky.social",
            "displayName": f"Citizen {n}",
        },
        "replyCount": 0,
        "repostCount": 0,
        "likeCount": 0,
        "quoteCount": 0,
    }


async def seed(store: Store, source: str, network: str, raws: list[dict[str, Any]]) -> list[int]:
    """Store mentions as the real sources would (remote_id = uri, raw = the payload); returns their ids."""
    mentions = []
    for raw in raws:
        if network == "mastodon":
            author, url, rid = raw["account"]["acct"], raw["url"], raw["uri"]
        else:
            author, url, rid = raw["author"]["handle"], "https://bsky.app/x", raw["uri"]
        mentions.append(
            Mention(
                source=source,
                remote_id=rid,
                network=network,
                author=author,
                text="Nid de poule à Toulouse",
                published_at=utcnow(),
                url=url,
                lang="fr",
                raw=raw,
            )
        )
    await store.ingest(source, [(m, MatchResult(("voirie",), Priority.NORMAL)) for m in mentions], None)
    ids = {(r.source, r.remote_id): r.id for r in await store.changes_since(0, limit=1_000_000)}  # either engine
    return [ids[(source, m.remote_id)] for m in mentions]


def outbox_rows(db: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM outbox ORDER BY id")]
    finally:
        conn.close()


def payload_of(row: dict[str, Any]) -> dict[str, Any]:
    """An outbox row's payload: SQLite's JSON text, or PostgreSQL's jsonb already parsed."""
    payload = row["payload"]
    return json.loads(payload) if isinstance(payload, str) else payload


def secret_on_disk(folder: Path) -> bool:
    """Whether the test credential appears in any of the database's files (main, WAL, SHM)."""
    files = list(folder.glob("monitor.db*"))
    assert files
    return any(TOKEN.encode() in f.read_bytes() for f in files)
