"""Every source against a hostile server (tests/fakes_hostile.py): absurd headers, dates out of range,
huge, endless, dripping or deeply nested bodies, redirects. A bad item or header never stops a source,
nor another source, nor the app; what the peer sends is bounded where it enters."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from monitor.core.config import Watchlist
from monitor.core.timeutil import fmt_local, now_ms
from monitor.db.store import Store
from monitor.engine.collector import Collector, SourceStatus
from monitor.networks import SourceContext, SourceError, load_watchlist
from monitor.networks import http as plumbing
from monitor.networks.base import Source
from monitor.networks.bluesky.source import BlueskyOptions, BlueskySource
from monitor.networks.feed import FeedOptions, FeedSource
from monitor.networks.mastodon.source import MastodonOptions, MastodonSource, MastodonStreamingSource
from monitor.ui.widgets.sources_bar import render_sources
from tests.conftest import wait_until
from tests.fakes_feed import rss, rss_item
from tests.fakes_hostile import (
    BAD_DATES,
    RETRY_AFTERS,
    Answer,
    Hostile,
    answer,
    deep,
    drip,
    endless,
    hostile,
    rate_limited,
    raw,
    redirect,
)
from tests.fakes_mastodon import status
from tests.fakes_xrpc import Account, post_view
from tests.test_app import make_app, wait_for

TAG_PATH = "/api/v1/timelines/tag/Toulouse"
SEARCH_PATH = "/xrpc/app.bsky.feed.searchPosts"
SESSION_PATH = "/xrpc/com.atproto.server.createSession"
FEED_PATH = "/feed.rss"
GOOD_FEED = "/good.rss"
ENV = "TEST_HOSTILE_BSKY_PASSWORD"
ALICE = Account("did:plc:alice0000000000000000000", "alice.bsky.social", display_name="Alice")
KINDS = ("mastodon", "bluesky", "feed")
DAY_MS = 86_400_000  # the longest wait a peer may impose


@pytest.fixture
async def peer() -> AsyncIterator[Hostile]:
    async with hostile() as server:
        server.play(GOOD_FEED, raw(rss(rss_item("bon-1", "Tram en panne à Toulouse", "Ligne T1", NOW_RFC)), RSS))
        yield server


RSS = "application/rss+xml"
NOW_RFC = "Tue, 12 Mar 2024 10:02:17 +0100"


@pytest.fixture
def wl(tmp_path: Path) -> Watchlist:
    path = tmp_path / "watchlist.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            city: Toulouse
            database: {tmp_path / "monitor.db"}
            terms:
              - name: ville
                keywords: [Toulouse]
            sources:
              - name: spare
                type: feed
                urls: [http://127.0.0.1:9/unused.rss]
            """
        ),
        encoding="utf-8",
    )
    return load_watchlist(path)


def source_on(kind: str, peer: Hostile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str = "") -> Source:
    """A source of `kind` reading from the hostile peer (the paths it calls are scripted by the test)."""
    name = name or kind
    if kind == "mastodon":
        return MastodonSource(name, MastodonOptions(peer.url, hashtags=("Toulouse",)), SourceContext())
    if kind == "bluesky":
        monkeypatch.setenv(ENV, "app-pass-word-test")
        session = {"did": "did:plc:desk", "handle": "desk.bsky.social", "accessJwt": "a", "refreshJwt": "r"}
        peer.play(SESSION_PATH, answer(session))
        options = BlueskyOptions("desk.bsky.social", ENV, peer.url, ("Toulouse",), notifications=False)
        return BlueskySource(name, options, SourceContext(state_dir=tmp_path))
    return FeedSource(name, FeedOptions((peer.url + FEED_PATH,)), SourceContext())


def path_of(kind: str) -> str:
    return {"mastodon": TAG_PATH, "bluesky": SEARCH_PATH, "feed": FEED_PATH}[kind]


def good_feed(peer: Hostile) -> FeedSource:
    return FeedSource("good", FeedOptions((peer.url + GOOD_FEED,)), SourceContext())


def stored(db: Path, source: str) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return conn.execute(
            "SELECT remote_id, published_at, url FROM mentions WHERE source = ? ORDER BY id", (source,)
        ).fetchall()


def cursor_of(db: Path, source: str) -> str | None:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        row = conn.execute("SELECT cursor FROM cursors WHERE source = ?", (source,)).fetchone()
    return row[0] if row else None


async def closing(*sources: Source) -> None:
    for s in sources:
        await s.aclose()


# -- headers: Retry-After and rate-limit resets ------------------------------------------------


@pytest.mark.parametrize("value", RETRY_AFTERS)
@pytest.mark.parametrize("kind", KINDS)
async def test_a_wild_retry_after_is_bounded_and_the_other_sources_still_collect(
    kind: str, value: str, peer: Hostile, wl: Watchlist, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    peer.play(path_of(kind), rate_limited(value))
    bad, good = source_on(kind, peer, tmp_path, monkeypatch, "bad"), good_feed(peer)
    store = await Store.open(wl.database)
    try:
        collector = Collector(wl, store, sources=[bad, good])
        results = await collector.run_once()  # collect --once: it went on to the next source
        assert results["good"] is None and "429" in str(results["bad"])
        assert len(stored(wl.database, "good")) == 1
        st = collector.status["bad"]
        assert st.state == "backoff" and st.until_ms is not None
        assert now_ms() <= st.until_ms <= now_ms() + DAY_MS
        # What other processes read (and render at start) is bounded the same way.
        [until] = [u for n, _, _, u, _ in await store.source_states() if n == "bad"]
        assert until is not None and until <= now_ms() + DAY_MS
    finally:
        await store.close()
        await closing(bad, good)


@pytest.mark.parametrize("value", ["inf", "1e20"])
async def test_the_service_keeps_collecting_the_other_sources_after_a_wild_retry_after(
    value: str, peer: Hostile, wl: Watchlist, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    peer.play(TAG_PATH, rate_limited(value))
    bad, good = source_on("mastodon", peer, tmp_path, monkeypatch, "bad"), good_feed(peer)
    store = await Store.open(wl.database)
    collector = Collector(wl, store, sources=[bad, good])
    service = asyncio.create_task(collector.run())
    try:
        await wait_until(
            lambda: stored(wl.database, "good") and collector.status["bad"].state == "backoff" or service.done()
        )
        assert not service.done(), service.exception()
        assert len(stored(wl.database, "good")) == 1
        assert collector.status["bad"].state == "backoff"
    finally:
        service.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await service
        await store.close()


async def test_the_app_keeps_collecting_and_the_bar_tells_the_truth_after_retry_after_inf(
    peer: Hostile, wl: Watchlist, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    peer.play(TAG_PATH, rate_limited("inf"))
    bad, good = source_on("mastodon", peer, tmp_path, monkeypatch, "bad"), good_feed(peer)
    app = make_app(wl, sources=[bad, good])
    async with app.run_test(size=(120, 24)) as pilot:
        await wait_for(pilot, lambda: app.source_statuses.get("bad") is not None)
        await wait_for(pilot, lambda: app.source_statuses["bad"].state == "backoff")
        await wait_for(pilot, lambda: "backing off until" in str(app.screen.query_one("#sources").render()))
        await wait_for(pilot, lambda: app.source_statuses["good"].state == "polling")  # set just after its poll
        assert len(stored(wl.database, "good")) == 1
        assert app.is_running


async def test_an_app_starts_even_when_a_stored_retry_lies_in_the_year_33715(wl: Watchlist) -> None:
    store = await Store.open(wl.database)
    await store.set_source_state("spare", "backoff", "rate limited (429)", now_ms() + 10**15)  # as 1e12 s left it
    await store.close()
    app = make_app(wl, collect=False)
    async with app.run_test(size=(120, 24)) as pilot:
        await wait_for(pilot, lambda: "backing off until" in str(app.screen.query_one("#sources").render()))
        assert app.is_running


def test_a_wait_of_most_of_a_day_is_shown_with_its_date() -> None:
    until = now_ms() + 20 * 3600 * 1000
    text = render_sources([SourceStatus("masto", "backoff", "rate limited (429)", until)], UTC).plain
    assert f"backing off until {fmt_local(until, UTC)}" in text


# -- dates out of range ---------------------------------------------------------------------------


def _mastodon_page(when: str) -> Answer:
    return answer([status("110000000000000001", "<p>Nid de poule à Toulouse</p>", created_at=when)])


def _bluesky_page(created: str, indexed: str | None = None) -> Answer:
    view = post_view(ALICE, "Nid de poule à Toulouse", datetime.now(UTC), created_at=created)
    if indexed is not None:
        view["indexedAt"] = indexed
    return answer({"posts": [view]})


@pytest.mark.parametrize("when", BAD_DATES)
@pytest.mark.parametrize("field", ["created_at", "createdAt", "indexedAt"])
async def test_a_post_dated_out_of_range_is_stored_with_a_bounded_date_and_the_cursor_moves(
    field: str, when: str, peer: Hostile, wl: Watchlist, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kind = "mastodon" if field == "created_at" else "bluesky"
    ok = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    page = {
        "created_at": lambda: _mastodon_page(when),
        "createdAt": lambda: _bluesky_page(when),
        "indexedAt": lambda: _bluesky_page(ok, when),
    }[field]()
    peer.play(path_of(kind), page)
    source = source_on(kind, peer, tmp_path, monkeypatch)
    store = await Store.open(wl.database)
    try:
        results = await Collector(wl, store, sources=[source]).run_once()
        assert results == {kind: None}
        assert cursor_of(wl.database, kind) is not None
        rows = stored(wl.database, kind)
        if rows:  # kept with a sane date (an item without a usable date may be skipped and counted)
            [(_, published, _)] = rows
            assert 0 <= published <= now_ms() + DAY_MS + 60_000
    finally:
        await store.close()
        await source.aclose()


async def test_a_feed_entry_dated_year_one_or_9999_does_not_stop_the_feed(
    peer: Hostile, wl: Watchlist, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = [
        rss_item("old", "Toulouse hier", "x", "Mon, 01 Jan 0001 00:00:00 +0100"),
        rss_item("far", "Toulouse demain", "y", "Fri, 31 Dec 9999 23:59:59 -0100"),
        rss_item("now", "Toulouse maintenant", "z", NOW_RFC),
    ]
    peer.play(FEED_PATH, raw(rss(*items), RSS))
    source = source_on("feed", peer, tmp_path, monkeypatch)
    store = await Store.open(wl.database)
    try:
        assert await Collector(wl, store, sources=[source]).run_once() == {"feed": None}
        rows = stored(wl.database, "feed")
        assert len(rows) == 3 and all(0 <= published <= now_ms() + 60_000 for _, published, _ in rows)
    finally:
        await store.close()
        await source.aclose()


# -- bodies: nesting, size, time ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["mastodon", "bluesky"])
async def test_json_nested_100000_deep_is_a_malformed_answer_not_a_crash(
    kind: str, peer: Hostile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    peer.play(path_of(kind), deep())
    source = source_on(kind, peer, tmp_path, monkeypatch)
    try:
        with pytest.raises(SourceError, match="malformed JSON|nested deeper") as caught:
            await source.poll(None)
        assert caught.value.kind == "transient"
    finally:
        await source.aclose()


@pytest.mark.parametrize("kind", KINDS)
async def test_an_answer_larger_than_the_cap_is_refused(
    kind: str, peer: Hostile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plumbing, "MAX_BODY", 1024 * 1024, raising=False)
    peer.play(path_of(kind), endless("application/rss+xml" if kind == "feed" else "application/json"))
    source = source_on(kind, peer, tmp_path, monkeypatch)
    try:
        with pytest.raises(SourceError, match="larger than"):
            await source.poll(None)
    finally:
        await source.aclose()


@pytest.mark.parametrize("kind", KINDS)
async def test_a_body_dripping_a_byte_at_a_time_ends_at_the_total_time_cap(
    kind: str, peer: Hostile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each byte comes well within the read timeout: only a cap on the whole request ends it.
    monkeypatch.setattr(plumbing, "TOTAL_SECONDS", 1.0, raising=False)
    peer.play(path_of(kind), drip(0.05))
    source = source_on(kind, peer, tmp_path, monkeypatch)
    try:
        with pytest.raises(SourceError, match="no complete answer"):
            await source.poll(None)
    finally:
        await source.aclose()


ENDLESS_CHILD = """
import asyncio, sys
import httpx
from monitor.networks.http import send
from monitor.networks.base import SourceError

async def main():
    async with httpx.AsyncClient() as client:
        try:
            await send(client, "GET", sys.argv[1], "endless")
        except SourceError as exc:
            print("refused:", exc, flush=True)

asyncio.run(main())
"""


async def sample_every(_: float) -> None:
    await asyncio.sleep(0.02)


def vm_rss_mb(pid: int) -> float:
    with contextlib.suppress(FileNotFoundError, ProcessLookupError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmRSS from /proc")
async def test_memory_stays_bounded_under_an_endless_body(peer: Hostile) -> None:
    """Measured from the outside: the fetch runs in a child whose VmRSS we sample until it ends."""
    peer.play("/endless", endless())
    limit_mb = 250.0  # the interpreter with httpx is ~40 MB; the cap allows 8 MB of body (twice, joined)
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", ENDLESS_CHILD, peer.url + "/endless",
        stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)},
    )  # fmt: skip
    peak = 0.0
    try:

        def ended_or_outgrown() -> bool:
            nonlocal peak
            peak = max(peak, vm_rss_mb(child.pid))
            return child.returncode is not None or peak > limit_mb

        # Sampled often (a peak between samples is missed), waited for with the shared generous deadline.
        await wait_until(ended_or_outgrown, within=120, what="the endless fetch to end", pause=sample_every)
    finally:
        if child.returncode is None:
            child.kill()
        out = (await child.communicate())[0].decode()
    assert peak <= limit_mb, f"grew to {peak:.0f} MB"
    assert "refused: endless: answer larger than" in out


async def test_a_stream_line_without_end_is_cut_not_buffered(peer: Hostile, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plumbing, "MAX_LINE", 64 * 1024, raising=False)
    monkeypatch.setenv("TEST_HOSTILE_TOKEN", "FAKE-MASTODON-TOKEN-0451")
    peer.play("/api/v2/instance", answer({"error": "not here"}, 404))
    peer.play("/api/v1/streaming/hashtag", endless("text/event-stream"))  # "data: [0,0,0,… and no newline, ever
    peer.play(TAG_PATH, answer([]))
    options = MastodonOptions(peer.url, token_env="TEST_HOSTILE_TOKEN", hashtags=("Toulouse",), stream=True)
    source = MastodonStreamingSource("masto", options, SourceContext())
    try:
        with pytest.raises(SourceError, match="line longer"):
            async for _ in source.stream(None):
                pass
    finally:
        await source.aclose()


async def test_a_feed_moved_by_a_redirect_resolves_relative_links_against_its_new_address(
    peer: Hostile, wl: Watchlist, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    item = "<item><title>Toulouse : travaux</title><link>article-1.html</link><guid>a1</guid></item>"
    peer.play(FEED_PATH, redirect(peer.url + "/moved/feed.rss", 301))
    peer.play("/moved/feed.rss", raw(rss(item), RSS))
    source = source_on("feed", peer, tmp_path, monkeypatch)
    store = await Store.open(wl.database)
    try:
        assert await Collector(wl, store, sources=[source]).run_once() == {"feed": None}
        [(_, _, url)] = stored(wl.database, "feed")
        assert url == peer.url + "/moved/article-1.html"
    finally:
        await store.close()
        await source.aclose()


# -- where tokens go -----------------------------------------------------------------------------------


async def test_a_redirect_to_another_origin_never_carries_the_token(
    peer: Hostile, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_HOSTILE_TOKEN", "FAKE-MASTODON-TOKEN-0451")
    async with hostile("localhost") as elsewhere:
        elsewhere.play(TAG_PATH, answer([]))
        peer.play(TAG_PATH, redirect(elsewhere.url + TAG_PATH))
        options = MastodonOptions(peer.url, token_env="TEST_HOSTILE_TOKEN", hashtags=("Toulouse",))
        source = MastodonSource("masto", options, SourceContext())
        try:
            with pytest.raises(SourceError):
                await source.poll(None)
        finally:
            await source.aclose()
        assert all("authorization" not in {k.lower() for k in s.headers} for s in elsewhere.seen)


def _instance(streaming: str) -> Answer:
    return answer({"domain": "mastodon.test", "configuration": {"urls": {"streaming": streaming}}})


async def test_the_token_never_goes_to_a_streaming_host_of_another_origin(
    peer: Hostile, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_HOSTILE_TOKEN", "FAKE-MASTODON-TOKEN-0451")
    async with hostile("localhost") as elsewhere:
        peer.play("/api/v2/instance", _instance("ws://" + elsewhere.url.split("://", 1)[1]))
        options = MastodonOptions(peer.url, token_env="TEST_HOSTILE_TOKEN", hashtags=("Toulouse",), stream=True)
        source = MastodonStreamingSource("masto", options, SourceContext())
        try:
            assert await source._discover_streaming() == peer.url  # streams from the instance itself
        finally:
            await source.aclose()


@pytest.mark.parametrize(
    ("streaming", "trusted"),
    [
        ("wss://mastodon.example", True),
        ("wss://streaming.mastodon.example", True),
        ("ws://streaming.mastodon.example", False),  # plain http
        ("wss://evil.example", False),
        ("wss://mastodon.example.evil.example", False),
    ],
)
def test_only_the_instance_or_its_subdomains_over_https_get_the_token(streaming: str, trusted: bool) -> None:
    options = MastodonOptions("https://mastodon.example", token_env="T", hashtags=("x",), stream=True)
    source = MastodonStreamingSource("masto", options, SourceContext())
    url = streaming.replace("wss://", "https://").replace("ws://", "http://")
    assert source._may_carry_token(url) is trusted


def test_a_token_over_plain_http_needs_allow_insecure(tmp_path: Path) -> None:
    from monitor.core.config import ConfigError

    def load(extra: str) -> Callable[[], Watchlist]:
        path = tmp_path / "w.yaml"
        path.write_text(
            "city: T\nterms:\n  - name: t\n    keywords: [x]\nsources:\n  - name: m\n    type: mastodon\n"
            f"    instance: http://mastodon.lan\n    token_env: TOK\n    hashtags: [x]\n{extra}",
            encoding="utf-8",
        )
        return lambda: load_watchlist(path)

    with pytest.raises(ConfigError, match=r"w\.yaml:8: .*in clear"):
        load("")()
    assert load("    allow_insecure: true\n")().sources[0].options.allow_insecure


# -- links ------------------------------------------------------------------------------------------


async def test_a_javascript_url_is_never_stored(
    peer: Hostile, wl: Watchlist, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    post = status("110000000000000002", "<p>Toulouse</p>")
    post["url"] = "javascript:alert(document.cookie)"
    peer.play(TAG_PATH, answer([post]))
    source = source_on("mastodon", peer, tmp_path, monkeypatch)
    store = await Store.open(wl.database)
    try:
        await Collector(wl, store, sources=[source]).run_once()
        [(_, _, url)] = stored(wl.database, "mastodon")
        assert url == post["uri"]  # the status' https uri, not the script
    finally:
        await store.close()
        await source.aclose()
