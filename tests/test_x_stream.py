"""X's filtered stream against a loopback fake (aiohttp on 127.0.0.1, a real chunked stream): rules kept in
step with the queries, a backfill by recent search at every (re)connect, and a plan without the stream
falling back to search polling with a clear state."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from monitor.core.config import Term
from monitor.core.models import Batch
from monitor.core.retry import ErrorKind
from monitor.db.store import Store
from monitor.engine.collector import Collector
from monitor.networks import SourceContext, SourceError, load_watchlist
from monitor.networks.x.options import Budget, XOptions
from monitor.networks.x.source import build
from monitor.networks.x.stream import TAG, XStreamSource
from tests.conftest import wait_until
from tests.fakes_x import CITY_ID, LoopbackX, tweet

TERMS = (Term("voirie", keywords=("nid-de-poule",)),)
QUERY = "nid-de-poule -is:retweet"
FORBIDDEN = {  # docs.x.com: what an app whose plan lacks the endpoint gets
    "client_id": "101010", "detail": "When authenticating requests to the Twitter API v2 endpoints, you must use"
    " keys and tokens from a Twitter developer App that is attached to a Project.", "registration_url":
    "https://developer.twitter.com/en/docs/projects/overview", "title": "Client Forbidden",
    "required_enrollment": "Appropriate Level of API Access", "reason": "client-not-enrolled",
    "type": "https://api.twitter.com/2/problems/client-forbidden",
}  # fmt: skip


class StreamingX(LoopbackX):
    """LoopbackX with the rules and the stream: lines put in `lines` are sent; None closes the connection."""

    def __init__(self) -> None:
        super().__init__()
        self.rules: list[dict[str, str]] = [
            {"id": "1", "value": "old query", "tag": TAG},  # the desk's, no longer wanted
            {"id": "2", "value": "from:someone", "tag": "other-tool"},  # not the desk's: left alone
        ]
        self.lines: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.plan_allows = True
        self.connections = 0
        self.server.app.router.add_get("/2/tweets/search/stream/rules", self.get_rules)
        self.server.app.router.add_post("/2/tweets/search/stream/rules", self.post_rules)
        self.server.app.router.add_get("/2/tweets/search/stream", self.stream)

    async def get_rules(self, request: web.Request) -> web.Response:
        if not self.plan_allows:
            return web.json_response(FORBIDDEN, status=403)
        body: dict[str, Any] = {"meta": {"sent": "2026-11-20T09:00:00.000Z", "result_count": len(self.rules)}}
        if self.rules:
            body["data"] = self.rules
        return web.json_response(body)

    async def post_rules(self, request: web.Request) -> web.Response:
        payload = await request.json()
        gone = set(payload.get("delete", {}).get("ids", []))
        self.rules = [r for r in self.rules if r["id"] not in gone]
        for n, rule in enumerate(payload.get("add", [])):
            self.rules.append({"id": str(100 + len(self.rules) + n), **rule})
        return web.json_response({"meta": {"summary": {"created": len(payload.get("add", []))}}}, status=201)

    async def stream(self, request: web.Request) -> web.StreamResponse:
        self.connections += 1
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        while (line := await self.lines.get()) is not None:
            await response.write(line)
        return response

    def send(self, post: dict[str, Any]) -> None:
        body = {"data": {k: v for k, v in post.items() if k[0] != "_"}, "includes": {"users": [post["_author"]]},
                "matching_rules": [{"id": "101", "tag": TAG}]}  # fmt: skip
        self.lines.put_nowait(json.dumps(body).encode() + b"\r\n")


@pytest.fixture
async def x(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[StreamingX]:
    monkeypatch.setenv("TEST_X_BEARER", "bearer")
    server = StreamingX()
    await server.start()
    try:
        yield server
    finally:
        server.lines.put_nowait(None)
        await server.stop()


def source(x: StreamingX, monthly: float = 5.0, username: str = "toulouse") -> XStreamSource:
    options = XOptions(user_id=CITY_ID, bearer_token_env="TEST_X_BEARER", api=x.url, stream=True,
                       username=username, budget=Budget(monthly))  # fmt: skip
    built = build("x", options, SourceContext(terms=TERMS))
    assert isinstance(built, XStreamSource)
    return built


async def take(stream: AsyncIterator[Batch], n: int) -> list[Batch]:
    return [await anext(stream) for _ in range(n)]


def search_since(x: StreamingX) -> list[str | None]:
    return [q.get("since_id") for _, p, q, _ in x.server.requests if p == "/2/tweets/search/recent"]


async def test_rules_follow_the_queries_then_backfill_then_streamed_posts(x: StreamingX) -> None:
    x.reads.add(tweet("Un nid-de-poule rue de Metz"))
    src = source(x)
    try:
        stream = src.stream(None)
        [backfill] = await take(stream, 1)
        assert [m.text for m in backfill.mentions] == ["Un nid-de-poule rue de Metz"]
        assert sorted((r["value"], r["tag"]) for r in x.rules) == [
            ("@toulouse", TAG), ("from:someone", "other-tool"), (QUERY, TAG)
        ]  # fmt: skip
        live = tweet("Encore un nid-de-poule avenue de Muret")
        x.lines.put_nowait(b"\r\n")  # keep-alive
        x.send(live)
        [batch] = await take(stream, 1)
        assert [m.remote_id for m in batch.mentions] == [live["id"]]
        assert json.loads(batch.cursor or "")["feeds"][f"search:{QUERY}"]["since"] == live["id"]
        assert batch.spend is not None and batch.spend.reads_usd > 0
        x.lines.put_nowait(None)  # X drops the connection
        with pytest.raises(SourceError) as dropped:
            await anext(stream)
        assert dropped.value.kind is ErrorKind.TRANSIENT
    finally:
        await src.aclose()


async def test_a_reconnect_backfills_by_search_from_the_last_streamed_post(x: StreamingX) -> None:
    src = source(x)
    try:
        stream = src.stream(None)
        await take(stream, 1)
        live = tweet("nid-de-poule boulevard de Strasbourg")
        x.send(live)
        [batch] = await take(stream, 1)
        x.lines.put_nowait(None)
        with pytest.raises(SourceError):
            await anext(stream)
        missed = tweet("nid-de-poule pendant la coupure")  # posted while disconnected
        x.reads.add(live, missed)
        again = src.stream(batch.cursor)
        [backfill] = await take(again, 1)
        assert [m.remote_id for m in backfill.mentions] == [missed["id"]]
        assert search_since(x)[-1] == live["id"]
        await again.aclose()
    finally:
        await src.aclose()


async def test_without_a_username_rule_the_mentions_timeline_is_read_between_streamed_posts(x: StreamingX) -> None:
    src = source(x, username="")
    src.mentions_repoll = 0.0  # due at the next line: a keep-alive is enough
    try:
        stream = src.stream(None)
        await take(stream, 1)
        assert sorted(r["value"] for r in x.rules if r["tag"] == TAG) == [QUERY]
        mention = tweet("@toulouse lampadaire éteint rue Alsace-Lorraine")  # matches no term, kept: to us
        x.reads.add(mention, mention=True)
        x.lines.put_nowait(b"\r\n")
        [batch] = await take(stream, 1)
        assert [(m.remote_id, m.to_us) for m in batch.mentions] == [(mention["id"], True)]
        assert json.loads(batch.cursor or "")["feeds"]["mentions"]["since"] == mention["id"]
        await stream.aclose()
    finally:
        await src.aclose()


async def test_a_stream_that_spends_the_month_keeps_what_it_paid_for_then_hangs_up(x: StreamingX) -> None:
    x.reads.add(tweet("Un nid-de-poule rue de Metz"))
    src = source(x, monthly=0.22)  # a page still fits ($0.02 a post at most, ten a page) until $0.20 is left
    try:
        stream = src.stream(None)
        await take(stream, 1)  # the backfill: a post and its author, $0.015
        live = tweet("nid-de-poule place Wilson")
        x.send(live)
        [batch] = await take(stream, 1)  # $0.015 more: paid for, so kept
        assert [m.remote_id for m in batch.mentions] == [live["id"]]
        with pytest.raises(SourceError) as spent:
            await anext(stream)
        assert spent.value.kind is ErrorKind.RATE and "budget reached until" in str(spent.value)
        with pytest.raises(SourceError):  # and no reconnect before the month turns
            await anext(src.stream(batch.cursor))
        assert x.connections == 1
    finally:
        await src.aclose()


async def test_a_plan_without_the_stream_polls_search_and_says_so(x: StreamingX, tmp_path: Path) -> None:
    x.plan_allows = False
    x.reads.add(tweet("Un nid-de-poule rue de Metz"))
    path = tmp_path / "w.yaml"
    path.write_text(
        f"city: Toulouse\ndatabase: monitor.db\nterms:\n  - name: voirie\n    keywords: [nid-de-poule]\nsources:\n"
        f'  - name: x\n    type: x\n    stream: true\n    api: {x.url}\n    user_id: "{CITY_ID}"\n'
        f"    bearer_token_env: TEST_X_BEARER\n    budget:\n      monthly: 5\n"
    )
    watchlist = load_watchlist(path)
    store = await Store.open(watchlist.database)
    collector = Collector(watchlist, store, SourceContext())
    task = asyncio.create_task(collector.run())
    try:
        await wait_until(lambda: "polling recent search" in collector.status["x"].detail, what="the fallback state")
        await wait_until(lambda: collector.status["x"].stored == 1, what="the polled post")
        assert "this month" in collector.status["x"].detail  # the spend is still shown beside it
        assert x.connections == 0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await collector.aclose()
        await store.close()
