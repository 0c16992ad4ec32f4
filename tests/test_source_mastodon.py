"""The Mastodon source against a real HTTP server on 127.0.0.1 (tests/fakes_mastodon.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import textwrap
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitor.core.config import ConfigError, Term, Watchlist
from monitor.core.models import Batch
from monitor.db.store import Store
from monitor.engine.collector import Collector
from monitor.networks import SourceContext, SourceError, StreamingSource, load_watchlist
from monitor.networks.htmltext import html_to_text
from monitor.networks.mastodon import source as m
from tests.conftest import WAIT, wait_until
from tests.fakes_mastodon import HOST, TOKEN, FakeMastodon, Fault, account, boost, notification, status
from tests.recorded import answer, cassette, sse_events

# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture
async def server() -> AsyncIterator[FakeMastodon]:
    fake = FakeMastodon()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.close()


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("MASTODON_TOKEN", TOKEN)
    return TOKEN


def watchlist(tmp_path: Path, instance: str, options: str) -> Watchlist:
    body = textwrap.dedent(
        """\
        city: Toulouse Métropole
        database: monitor.db
        terms:
          - name: ville
            keywords: [Toulouse]
            hashtags: [Toulouse]
          - name: voirie
            keywords: [nid de poule, travaux]
        sources:
          - name: masto
            type: mastodon
            instance: {instance}
        """
    ).format(instance=instance)
    body += textwrap.indent(textwrap.dedent(options), "    ")
    path = tmp_path / "watchlist.yaml"
    path.write_text(body, encoding="utf-8")
    return load_watchlist(path)


def options(wl: Watchlist) -> m.MastodonOptions:
    return wl.sources[0].options


def rows(db: Path) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return conn.execute(
            "SELECT remote_id, author, text, edited_at, deleted_at, terms FROM mentions ORDER BY id"
        ).fetchall()


def stored_cursor(db: Path) -> str | None:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        row = conn.execute("SELECT cursor FROM cursors WHERE source = 'masto'").fetchone()
    return row[0] if row else None


def toulouse(status_id: str, extra: str = "", **kw: Any) -> dict[str, Any]:
    html = (
        f'<p>Travaux rue {status_id} à <a href="https://{HOST}/tags/Toulouse" class="mention hashtag" '
        f'rel="tag">#<span>Toulouse</span></a>{extra}</p>'
    )
    return status(status_id, html, tags=["toulouse"], **kw)


# -- configuration --------------------------------------------------------------------------


def test_options_are_read_from_the_watchlist(tmp_path: Path) -> None:
    wl = watchlist(
        tmp_path,
        "https://mastodon.social/",
        """\
        token_env: MASTODON_TOKEN
        hashtags: ["#Toulouse", Tisseo, toulouse]
        notifications: true
        search: ["Toulouse Métropole"]
        stream: true
        """,
    )
    opts = options(wl)
    assert opts == m.MastodonOptions(
        instance="https://mastodon.social",
        token_env="MASTODON_TOKEN",
        hashtags=("Toulouse", "Tisseo"),
        notifications=True,
        search=("Toulouse Métropole",),
        stream=True,
    )
    assert wl.sources[0].poll_interval == timedelta(seconds=60)


@pytest.mark.parametrize(
    ("snippet", "line", "words"),
    [
        ("notifications: true\n", 13, "notifications needs a logged-in token"),
        ("hashtags: [Toulouse]\nstream: true\n", 14, "stream needs a logged-in token"),
        ("token_env: abc-123.xyz\nhashtags: [x]\n", 13, "not an environment variable name"),
        ("hashtags: [Toulouse Métropole]\n", 13, "is not a hashtag"),
        ("hashtags: []\n", 10, "watches nothing"),
        ("hashtags: [a]\nlimit: 3\n", 14, "unknown key 'limit'"),
    ],
)
def test_config_mistakes_name_their_line(tmp_path: Path, snippet: str, line: int, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        watchlist(tmp_path, "https://mastodon.social", snippet)
    assert err.value.line == line
    assert words in str(err.value)


def test_instance_must_be_an_address(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not an instance address") as err:
        watchlist(tmp_path, "mastodon.social", "hashtags: [x]\n")
    assert err.value.line == 12


def test_polling_only_unless_streaming_is_asked_with_a_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wl = watchlist(tmp_path, "https://mastodon.social", "token_env: MASTODON_TOKEN\nhashtags: [x]\nstream: true\n")
    monkeypatch.delenv("MASTODON_TOKEN", raising=False)
    polling = m.build("masto", options(wl), SourceContext())
    assert not hasattr(polling, "stream") and not isinstance(polling, StreamingSource)
    monkeypatch.setenv("MASTODON_TOKEN", TOKEN)
    live = m.build("masto", options(wl), SourceContext())
    assert isinstance(live, StreamingSource)
    plain = watchlist(tmp_path, "https://mastodon.social", "token_env: MASTODON_TOKEN\nhashtags: [x]\n")
    assert not hasattr(m.build("masto", options(plain), SourceContext()), "stream")


# -- content --------------------------------------------------------------------------------


def test_html_becomes_plain_text_with_paragraphs_breaks_links_and_mentions() -> None:
    html = (
        "<p>&quot;Nid de poule&quot; rue de Metz</p><p>"
        '<span class="h-card"><a href="https://mastodon.social/@toulouse" class="u-url mention">'
        "@<span>toulouse</span></a></span> regardez<br>"
        '<a href="https://www.toulouse.fr/web/guest/actualites/travaux-rue-de-metz-2024" rel="nofollow">'
        '<span class="invisible">https://www.</span><span class="ellipsis">toulouse.fr/web/guest/actua</span>'
        '<span class="invisible">lites/travaux-rue-de-metz-2024</span></a> '
        '<a href="https://trwnh.com"><span class="invisible">https://</span><span class="">trwnh.com</span>'
        '<span class="invisible"></span></a> '
        '<a href="https://mastodon.social/tags/Toulouse" class="mention hashtag" rel="tag">'
        "#<span>Toulouse</span></a>"
        "</p><ul><li>un</li><li>deux</li></ul>"
    )
    assert html_to_text(html) == (
        '"Nid de poule" rue de Metz\n\n'
        "@toulouse regardez\n"
        "https://www.toulouse.fr/web/guest/actualites/travaux-rue-de-metz-2024 trwnh.com #Toulouse\n\n"
        "- un\n- deux"
    )


async def test_a_status_becomes_a_clean_mention(tmp_path: Path) -> None:
    wl = watchlist(tmp_path, "https://mastodon.social", "hashtags: [Toulouse]\n")
    source = m.MastodonSource("masto", options(wl), SourceContext())
    parent = toulouse("1100")
    reply = status(
        "1101",
        "<p>Encore\x1b]52;c;ZXZpbA==\x07 bloqué \u202eà Toulouse</p>",
        acct=account("alice", "piaille.fr", "Alice \x1b[31mRouge", "77"),
        in_reply_to_id="1100",
        spoiler_text="travaux",
        tags=["Toulouse", "Tisseo"],
        created_at="2024-05-17T16:45:41.171+02:00",
    )
    first, _ = source.to_mention(parent)
    mention, edited = source.to_mention(reply)
    await source.aclose()
    assert first.author == "@trwnh@mastodon.social"  # a local account gets the instance's host
    assert mention.remote_id == "https://piaille.fr/users/alice/statuses/1101"
    assert mention.author == "@alice@piaille.fr" and mention.author_name == "Alice Rouge"
    assert mention.text == "CW: travaux\n\nEncore bloqué à Toulouse"
    assert mention.url == "https://piaille.fr/@alice/1101" and mention.lang == "fr"
    assert mention.tags == ("Toulouse", "Tisseo") and mention.network == "mastodon"
    assert mention.published_at == datetime(2024, 5, 17, 14, 45, 41, 171000, tzinfo=UTC)
    assert mention.reply_to == first.remote_id and mention.thread_id == first.remote_id
    assert not edited and mention.raw == reply


async def test_odd_statuses_are_read_or_skipped_never_fatal(tmp_path: Path, server: FakeMastodon) -> None:
    deep = toulouse("1200")
    deep["content"] = "<div>" * 5000 + "Toulouse au fond" + "<p>a <![ bogus [ x ]]> b</p>"
    odd = toulouse("1201")
    odd["account"]["display_name"] = 42
    odd["url"] = ["not", "a", "url"]
    for st in (deep, odd, toulouse("1202", created_at="hier soir")):
        server.add_tag_status("toulouse", st)
    source = m.MastodonSource(
        "masto", options(watchlist(tmp_path, server.base, "hashtags: [Toulouse]\n")), SourceContext()
    )
    batch = await source.poll(None)
    await source.aclose()
    assert batch.skipped == 1  # the unreadable date
    by_id = {x.remote_id.rsplit("/", 1)[1]: x for x in batch.mentions}
    assert by_id["1200"].text == "Toulouse au fond\n\na <![ bogus [ x ]]> b"
    assert by_id["1201"].author_name == "trwnh" and by_id["1201"].url == by_id["1201"].remote_id


# -- polling --------------------------------------------------------------------------------


async def test_first_poll_takes_the_newest_page_then_follows_prev_links_forward(
    tmp_path: Path, server: FakeMastodon
) -> None:
    for n in range(965, 1010):  # ids of growing length: "999" < "1000" as numbers, not as text
        server.add_tag_status("toulouse", toulouse(str(n)))
    source = m.MastodonSource(
        "masto", options(watchlist(tmp_path, server.base, "hashtags: [Toulouse]\n")), SourceContext()
    )
    first = await source.poll(None)
    assert len(first.mentions) == 40 and m.decode_cursor(first.cursor) == {"tag:toulouse": "1009"}
    assert "min_id" not in server.hits("tag")[0].query

    for n in range(1010, 1095):  # 85 new: three pages forward
        server.add_tag_status("toulouse", toulouse(str(n)))
    second = await source.poll(first.cursor)
    await source.aclose()
    ids = [x.remote_id.rsplit("/", 1)[1] for x in second.mentions]
    assert sorted(ids, key=m.id_key) == [str(i) for i in range(1010, 1095)]
    assert m.decode_cursor(second.cursor) == {"tag:toulouse": "1094"}
    forward = server.hits("tag")[1:]
    assert [u.query.get("min_id") for u in forward] == ["1009", "1049", "1089"]


async def test_an_empty_or_unknown_hashtag_timeline_is_not_an_error(tmp_path: Path, server: FakeMastodon) -> None:
    server.fail_next("tag", Fault(status=404, body='{"error": "Record not found"}'))
    source = m.MastodonSource("masto", options(watchlist(tmp_path, server.base, "hashtags: [a, b]\n")), SourceContext())
    batch = await source.poll('{"tag:a": "5"}')
    await source.aclose()
    assert batch.mentions == [] and m.decode_cursor(batch.cursor) == {"tag:a": "5"}


async def test_restricted_hashtag_timeline_is_an_auth_error_with_a_clear_message(
    tmp_path: Path, server: FakeMastodon
) -> None:
    server.require_token_for_tags = True
    source = m.MastodonSource(
        "masto", options(watchlist(tmp_path, server.base, "hashtags: [Toulouse]\n")), SourceContext()
    )
    with pytest.raises(SourceError) as err:
        await source.poll(None)
    await source.aclose()
    assert err.value.kind == "auth"
    assert "logged-in users (401)" in str(err.value) and "token_env" in str(err.value)


async def test_a_rejected_token_names_the_variable_never_the_token(
    tmp_path: Path, server: FakeMastodon, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("MASTODON_TOKEN", "wrong-token-value")
    wl = watchlist(tmp_path, server.base, "token_env: MASTODON_TOKEN\nnotifications: true\n")
    source = m.MastodonSource("masto", options(wl), SourceContext())
    with pytest.raises(SourceError) as err:
        await source.poll(None)
    await source.aclose()
    assert err.value.kind == "auth" and "MASTODON_TOKEN" in str(err.value)
    assert "wrong-token-value" not in str(err.value) and "wrong-token-value" not in caplog.text
    assert server.requests[0][2]["Authorization"] == "Bearer wrong-token-value"


async def test_an_unset_token_variable_is_a_config_error_naming_it(
    tmp_path: Path, server: FakeMastodon, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MASTODON_TOKEN", raising=False)
    wl = watchlist(tmp_path, server.base, "token_env: MASTODON_TOKEN\nhashtags: [Toulouse]\n")
    source = m.build("masto", options(wl), SourceContext())
    with pytest.raises(SourceError, match="MASTODON_TOKEN is not set") as err:
        await source.poll(None)
    await source.aclose()
    assert err.value.kind == "config" and server.requests == []


async def test_rate_limited_answers_carry_the_wait(tmp_path: Path, server: FakeMastodon) -> None:
    reset = (datetime.now(UTC) + timedelta(seconds=90)).isoformat().replace("+00:00", "Z")
    server.fail_next(
        "tag",
        Fault(status=429, headers={"Retry-After": "7"}),
        Fault(
            status=429,
            headers={"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset},
        ),
    )
    source = m.MastodonSource(
        "masto", options(watchlist(tmp_path, server.base, "hashtags: [Toulouse]\n")), SourceContext()
    )
    with pytest.raises(SourceError) as first:
        await source.poll(None)
    with pytest.raises(SourceError) as second:
        await source.poll(None)
    await source.aclose()
    assert (first.value.kind, first.value.retry_after) == ("rate", 7.0)
    assert second.value.kind == "rate" and 80 < (second.value.retry_after or 0) <= 90


async def test_slows_down_between_pages_when_the_limit_is_nearly_used(tmp_path: Path, server: FakeMastodon) -> None:
    reset = (datetime.now(UTC) + timedelta(seconds=120)).isoformat().replace("+00:00", "Z")
    server.rate_headers = {
        "X-RateLimit-Limit": "300",
        "X-RateLimit-Remaining": "4",
        "X-RateLimit-Reset": reset,
    }
    for n in range(100, 190):
        server.add_tag_status("toulouse", toulouse(str(n)))
    source = m.MastodonSource(
        "masto",
        options(watchlist(tmp_path, server.base, "hashtags: [Toulouse]\n")),
        SourceContext(),
        max_pacing=5.0,
    )
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    source._sleep = record  # type: ignore[method-assign]
    await source.poll('{"tag:toulouse": "99"}')
    await source.aclose()
    assert len(server.hits("tag")) == 3
    assert len(waits) == 2 and all(w == 5.0 for w in waits)  # ~30 s each, bounded to max_pacing


async def test_a_slow_answer_is_a_transient_timeout(tmp_path: Path, server: FakeMastodon) -> None:
    server.fail_next("tag", Fault(delay=1.0))
    ctx = SourceContext(http_factory=lambda **kw: httpx.AsyncClient(**{**kw, "timeout": httpx.Timeout(0.2)}))
    source = m.MastodonSource("masto", options(watchlist(tmp_path, server.base, "hashtags: [Toulouse]\n")), ctx)
    with pytest.raises(SourceError, match="timed out") as err:
        await source.poll(None)
    await source.aclose()
    assert err.value.kind == "transient"


@pytest.mark.parametrize(
    "fault", [Fault(truncate=True), Fault(body='[{"id": "1", "content": '), Fault(body='{"error": "?"}')]
)
async def test_a_broken_page_fails_the_poll_and_keeps_the_cursor(
    tmp_path: Path, server: FakeMastodon, fault: Fault
) -> None:
    server.add_tag_status("toulouse", toulouse("200"))
    wl = watchlist(tmp_path, server.base, "hashtags: [Toulouse]\n")
    source = m.MastodonSource("masto", options(wl), SourceContext())
    store = await Store.open(wl.database)
    collector = Collector(wl, store, sources=[source])
    server.fail_next("tag", fault)
    first = await collector.run_once()
    assert first["masto"] is not None and collector.status["masto"].state == "backoff"
    assert rows(wl.database) == [] and stored_cursor(wl.database) is None
    second = await collector.run_once()  # the next poll recovers
    await store.close()
    await source.aclose()
    assert second == {"masto": None}
    assert [r[0] for r in rows(wl.database)] == [f"https://{HOST}/users/trwnh/statuses/200"]


async def test_a_server_error_then_recovery_stores_everything_once(tmp_path: Path, server: FakeMastodon) -> None:
    for n in range(300, 305):
        server.add_tag_status("toulouse", toulouse(str(n)))
    wl = watchlist(tmp_path, server.base, "hashtags: [Toulouse]\n")
    source = m.MastodonSource("masto", options(wl), SourceContext())
    store = await Store.open(wl.database)
    collector = Collector(wl, store, sources=[source])
    server.fail_next("tag", Fault(status=503))
    assert "server error 503" in (await collector.run_once())["masto"]
    assert await collector.run_once() == {"masto": None}
    server.add_tag_status("toulouse", toulouse("305"))
    assert await collector.run_once() == {"masto": None}
    await store.close()
    await source.aclose()
    assert [r[0].rsplit("/", 1)[1] for r in rows(wl.database)] == ["300", "301", "302", "303", "304", "305"]
    assert m.decode_cursor(stored_cursor(wl.database)) == {"tag:toulouse": "305"}


async def test_a_status_missing_its_account_is_skipped_and_the_page_kept(tmp_path: Path, server: FakeMastodon) -> None:
    broken = toulouse("401")
    del broken["account"]
    for st in (toulouse("400"), broken, toulouse("402"), {"id": "403", "uri": 7}):
        server.add_tag_status("toulouse", st)
    wl = watchlist(tmp_path, server.base, "hashtags: [Toulouse]\n")
    source = m.MastodonSource("masto", options(wl), SourceContext())
    store = await Store.open(wl.database)
    collector = Collector(wl, store, sources=[source])
    assert await collector.run_once() == {"masto": None}
    await store.close()
    await source.aclose()
    assert [r[0].rsplit("/", 1)[1] for r in rows(wl.database)] == ["400", "402"]
    assert collector.status["masto"].skipped == 2
    assert m.decode_cursor(stored_cursor(wl.database)) == {"tag:toulouse": "403"}  # skipped ones are covered


async def test_a_boost_is_stored_once_as_the_boosted_status(tmp_path: Path, server: FakeMastodon, token: str) -> None:
    original = toulouse("500")
    server.add_tag_status("toulouse", original)
    server.add_tag_status("toulouse", boost("501", original))
    server.notifications = [
        notification("9001", original),
        notification("9002", None, "follow"),
        notification("9003", toulouse("502"), "favourite"),
    ]
    wl = watchlist(tmp_path, server.base, "token_env: MASTODON_TOKEN\nhashtags: [Toulouse]\nnotifications: true\n")
    source = m.MastodonSource("masto", options(wl), SourceContext())
    store = await Store.open(wl.database)
    collector = Collector(wl, store, sources=[source])
    assert await collector.run_once() == {"masto": None}
    server.add_tag_status("toulouse", boost("503", original, account("carol", "mamot.fr", "Carol", "5")))
    assert await collector.run_once() == {"masto": None}
    await store.close()
    await source.aclose()
    # A local account's handle gets the instance's account domain (its `domain`), not the web host.
    assert [(r[0], r[1]) for r in rows(wl.database)] == [(original["uri"], f"@trwnh@{HOST}")]
    notified = server.hits("notifications")[0]
    assert notified.query.getall("types[]") == ["mention", "quote"]
    assert m.decode_cursor(stored_cursor(wl.database)) == {"tag:toulouse": "503", "notifications": "9001"}


async def test_search_pages_back_to_the_position_and_drops_older_results(
    tmp_path: Path, server: FakeMastodon, token: str
) -> None:
    query = "Toulouse Métropole"
    server.search_results[query] = [toulouse(str(n)) for n in range(600, 650)]
    wl = watchlist(tmp_path, server.base, f'token_env: MASTODON_TOKEN\nsearch: ["{query}"]\n')
    source = m.MastodonSource("masto", options(wl), SourceContext())
    batch = await source.poll(m.encode_cursor({f"search:{query}": "604"}))
    await source.aclose()
    got = sorted((x.remote_id.rsplit("/", 1)[1] for x in batch.mentions), key=m.id_key)
    assert got == [str(n) for n in range(605, 650)]
    assert m.decode_cursor(batch.cursor) == {f"search:{query}": "649"}
    calls = server.hits("search")
    assert [(u.query["min_id"], u.query.get("max_id"), u.query["type"]) for u in calls] == [
        ("604", None, "statuses"),
        ("604", "610", "statuses"),
    ]
    assert all(h.get("Authorization") == f"Bearer {TOKEN}" for r, _, h in server.requests if r == "search")


# -- streaming ------------------------------------------------------------------------------


SILENCE = 1.0  # the streams' silence limit in these tests: the server sends ":thump" every 0.05 s


def live_source(wl: Watchlist, **kw: Any) -> m.MastodonStreamingSource:
    return m.MastodonStreamingSource("masto", options(wl), SourceContext(), **kw)


async def next_batch(stream: AsyncIterator[Batch], within: float = WAIT) -> Batch:
    return await asyncio.wait_for(anext(stream), within)


async def test_stream_backfills_then_applies_updates_edits_and_deletes_to_sqlite(
    tmp_path: Path, server: FakeMastodon, token: str
) -> None:
    server.add_tag_status("toulouse", toulouse("700"))
    server.add_tag_status("toulouse", toulouse("701"))
    wl = watchlist(
        tmp_path,
        server.base,
        "token_env: MASTODON_TOKEN\nhashtags: [Toulouse]\nnotifications: true\nstream: true\n",
    )
    source = live_source(wl, silence_timeout=5.0)
    store = await Store.open(wl.database)
    collector = Collector(wl, store, sources=[source])
    async with contextlib.aclosing(source.stream(await store.cursor("masto"))) as stream:
        backfill = await next_batch(stream)
        await collector.ingest(source, backfill)
        assert len(backfill.mentions) == 2
        await server.wait_streams(2)
        # Discovered from /api/v2/instance: the streaming server is on its own port.
        streamed = [u for r, u, _ in server.requests if r.startswith("stream:")]
        assert {f"http://{u.host}:{u.port}" for u in streamed} == {server.streaming_base}
        assert {u.query.get("tag") for u in streamed} == {"Toulouse", None}

        server.push("hashtag", "update", toulouse("702"), tag="toulouse", crlf=True)
        await collector.ingest(source, await next_batch(stream))
        edited = toulouse("700", " : nid de poule signalé", edited_at="2024-05-17T15:00:00.000Z")
        server.push("hashtag", "status.update", edited, tag="toulouse")
        await collector.ingest(source, await next_batch(stream))
        server.push("hashtag", "delete", "701", tag="toulouse")
        await collector.ingest(source, await next_batch(stream))
        server.push("hashtag", "update", toulouse("699"), tag="toulouse")  # fetched late: an older id
        await collector.ingest(source, await next_batch(stream))
        server.push("notification", "notification", notification("9100", toulouse("703")))
        server.push("notification", "notification", notification("9101", None, "follow"))
        server.push("notification", "filters_changed", "undefined")
        await collector.ingest(source, await next_batch(stream))
    await store.close()
    await source.aclose()
    by_id = {r[0].rsplit("/", 1)[1]: r for r in rows(wl.database)}
    assert list(by_id) == ["700", "701", "702", "699", "703"]
    assert by_id["700"][2] == "Travaux rue 700 à #Toulouse : nid de poule signalé" and by_id["700"][3] is not None
    assert by_id["700"][5].split("\x1f") == ["ville", "voirie"]
    assert by_id["701"][4] is not None and by_id["702"][4] is None  # marked deleted, never erased
    assert m.decode_cursor(stored_cursor(wl.database)) == {"tag:toulouse": "702", "notifications": "9100"}


async def test_a_silent_stream_is_detected_while_heartbeats_keep_it_alive(
    tmp_path: Path, server: FakeMastodon, token: str
) -> None:
    wl = watchlist(tmp_path, server.base, "token_env: MASTODON_TOKEN\nhashtags: [Toulouse]\nstream: true\n")
    source = live_source(wl, silence_timeout=SILENCE)
    async with contextlib.aclosing(source.stream(None)) as stream:
        await next_batch(stream)
        await server.wait_streams(1)
        pending = asyncio.ensure_future(anext(stream))
        # Heartbeats for twice the silence limit: counted as the server sends them (at least
        # server.heartbeat apart), so the stream lived that long however slow the machine is.
        thumps = server.thumps + 2 * SILENCE / server.heartbeat
        await wait_until(lambda: server.thumps >= thumps or pending.done())
        assert not pending.done()
        server.silence()
        with pytest.raises(SourceError, match=f"silent for {SILENCE:g}s") as err:
            await asyncio.wait_for(pending, WAIT)
    await source.aclose()
    assert err.value.kind == "transient"


async def test_reconnect_backfills_from_the_cursor_without_gap_or_duplicate(
    tmp_path: Path, server: FakeMastodon, token: str
) -> None:
    for n in ("800", "801"):
        server.add_tag_status("toulouse", toulouse(n))
    wl = watchlist(tmp_path, server.base, "token_env: MASTODON_TOKEN\nhashtags: [Toulouse]\nstream: true\n")
    source = live_source(wl, silence_timeout=SILENCE)
    store = await Store.open(wl.database)
    collector = Collector(wl, store, sources=[source])
    async with contextlib.aclosing(source.stream(await store.cursor("masto"))) as stream:
        await collector.ingest(source, await next_batch(stream))
        await server.wait_streams(1)
        server.push("hashtag", "update", server.add_tag_status("toulouse", toulouse("802")), tag="toulouse")
        await collector.ingest(source, await next_batch(stream))
        server.silence()
        with pytest.raises(SourceError):
            await next_batch(stream)
    # Posted while disconnected: only the REST backfill can bring these.
    server.add_tag_status("toulouse", toulouse("803"))
    server.add_tag_status("toulouse", toulouse("804"))
    slow = asyncio.Event()
    server.fail_next("tag", Fault(hold=slow))  # the backfill is slow: live posts arrive meanwhile
    asked = len(server.hits("tag"))
    async with contextlib.aclosing(source.stream(await store.cursor("masto"))) as stream:
        pending = asyncio.ensure_future(anext(stream))
        await server.wait_streams(2)
        await wait_until(lambda: len(server.hits("tag")) > asked)  # the backfill is in flight
        # Reaches the stream while the backfill is held: only the queue has it.
        server.push("hashtag", "update", toulouse("805"), tag="toulouse")
        server.push("hashtag", "update", toulouse("804"), tag="toulouse")  # also in the backfill
        slow.set()
        backfill = await asyncio.wait_for(pending, WAIT)
        await collector.ingest(source, backfill)
        live = await next_batch(stream)
        await collector.ingest(source, live)
    assert [x.remote_id.rsplit("/", 1)[1] for x in backfill.mentions] == ["803", "804"]
    assert [x.remote_id.rsplit("/", 1)[1] for x in live.mentions] == ["805"]  # 804 is not sent twice
    await store.close()
    await source.aclose()
    assert server.hits("tag")[-1].query["min_id"] == "802"
    assert sorted(r[0].rsplit("/", 1)[1] for r in rows(wl.database)) == [
        "800",
        "801",
        "802",
        "803",
        "804",
        "805",
    ]
    assert m.decode_cursor(stored_cursor(wl.database)) == {"tag:toulouse": "805"}


async def test_malformed_stream_events_are_counted_and_skipped(
    tmp_path: Path, server: FakeMastodon, token: str
) -> None:
    wl = watchlist(tmp_path, server.base, "token_env: MASTODON_TOKEN\nhashtags: [Toulouse]\nstream: true\n")
    source = live_source(wl)
    async with contextlib.aclosing(source.stream(None)) as stream:
        await next_batch(stream)
        await server.wait_streams(1)
        server.push("hashtag", "update", '{"id": "900", "content": ', tag="toulouse")
        server.push("hashtag", "update", toulouse("901"), tag="toulouse")
        got = await next_batch(stream)
        if not got.mentions:  # the two events may arrive as two batches
            got.mentions = (await next_batch(stream)).mentions
    await source.aclose()
    assert got.skipped == 1 and [x.remote_id.rsplit("/", 1)[1] for x in got.mentions] == ["901"]


async def test_a_rejected_stream_is_an_auth_error(tmp_path: Path, server: FakeMastodon, token: str) -> None:
    server.fail_next("stream:hashtag", Fault(status=401))
    wl = watchlist(tmp_path, server.base, "token_env: MASTODON_TOKEN\nhashtags: [Toulouse]\nstream: true\n")
    source = live_source(wl)
    with pytest.raises(SourceError) as err:
        async with contextlib.aclosing(source.stream(None)) as stream:
            await next_batch(stream)
    await source.aclose()
    assert err.value.kind == "auth" and "MASTODON_TOKEN" in str(err.value) and TOKEN not in str(err.value)
    assert server.hits("tag") == []  # no backfill before the stream is listening


async def test_searches_are_polled_while_streaming(tmp_path: Path, server: FakeMastodon, token: str) -> None:
    query = "Toulouse Métropole"
    server.search_results[query] = [toulouse("950")]
    wl = watchlist(tmp_path, server.base, f'token_env: MASTODON_TOKEN\nsearch: ["{query}"]\nstream: true\n')
    source = live_source(wl, repoll_interval=0.1)
    async with contextlib.aclosing(source.stream(None)) as stream:
        first = await next_batch(stream)
        server.search_results[query].append(toulouse("951"))
        later = await next_batch(stream)
    await source.aclose()
    assert [x.remote_id.rsplit("/", 1)[1] for x in first.mentions] == ["950"]
    assert [x.remote_id.rsplit("/", 1)[1] for x in later.mentions] == ["951"]
    assert [u.query.get("min_id") for u in server.hits("search")][:2] == [None, "950"]
    assert not [r for r, _, _ in server.requests if r.startswith("stream:")]  # search has no stream


async def test_the_collector_runs_a_streaming_source_live(tmp_path: Path, server: FakeMastodon, token: str) -> None:
    server.add_tag_status("toulouse", toulouse("960"))
    wl = watchlist(tmp_path, server.base, "token_env: MASTODON_TOKEN\nhashtags: [Toulouse]\nstream: true\n")
    store = await Store.open(wl.database)
    collector = Collector(wl, store, context=SourceContext())  # builds the source from the watchlist
    assert isinstance(collector.sources[0], m.MastodonStreamingSource)

    async def stored(count: int) -> list[tuple[Any, ...]]:
        await wait_until(lambda: len(rows(wl.database)) >= count, what=f"{count} mentions stored")
        return rows(wl.database)

    task = asyncio.create_task(collector.run())
    try:
        await stored(1)
        await server.wait_streams(1)
        server.push("hashtag", "update", toulouse("961"), tag="toulouse")
        found = await stored(2)
        assert collector.status["masto"].state == "live"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await store.close()
    assert [r[0].rsplit("/", 1)[1] for r in found] == ["960", "961"]


async def test_a_stream_that_dies_at_once_backs_off_and_says_it_loops(
    tmp_path: Path, server: FakeMastodon, token: str
) -> None:
    server.search_results["Toulouse Métropole"] = [toulouse("970")]
    wl = watchlist(
        tmp_path,
        server.base,
        'token_env: MASTODON_TOKEN\nhashtags: [Toulouse]\nsearch: ["Toulouse Métropole"]\nstream: true\n',
    )
    store = await Store.open(wl.database)
    collector = Collector(wl, store, context=SourceContext())
    delays: list[float] = []
    shown: list[str] = []
    collector.on_status = lambda st: shown.append(f"{st.state}: {st.detail}")

    async def record(delay: float) -> None:
        delays.append(delay)
        await asyncio.sleep(0)

    collector._sleep = record  # type: ignore[method-assign]
    task = asyncio.create_task(collector.run())
    try:
        for drop in range(1, 7):  # each time: connected, caught up over REST, then closed by the server
            await wait_until(lambda: len(server.streams) == 1 and len(server.hits("tag")) >= drop)  # noqa: B023
            server.streams[0].queue.put_nowait(None)
            await wait_until(lambda: len(delays) >= drop)  # noqa: B023
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await store.close()
    for n, delay in enumerate(delays, start=1):  # doubles with each drop, whatever the catch-up brought
        assert 2 ** (n - 1) <= delay <= 2**n, delays
    assert any(line.startswith("backoff: stream reconnecting in a loop (6 drops in a row)") for line in shown)
    assert any(line == "live: reconnected after 5 drops in a row" for line in shown)
    # Instance and account are asked once; each catch-up asks one page per feed, nothing more.
    assert len(server.hits("instance")) == 1 and len(server.hits("me")) == 1
    assert len(server.hits("tag")) <= len(server.hits("stream:hashtag"))
    assert len(server.hits("search")) == 1  # not streamed: no gap to fill, polled at its own pace


# -- recorded payloads (Mastodon.py's cassettes, tests/data/mastodon_py, MIT licence beside them) --------

MPY = "mastodon_py"


def recorded_statuses(name: str) -> list[dict[str, Any]]:
    return [r.json() for r in cassette(MPY, name) if r.method == "POST" and r.uri.endswith("/api/v1/statuses")]


async def test_a_reply_arriving_before_its_parent_in_one_page_names_the_parent_uri(
    tmp_path: Path, server: FakeMastodon
) -> None:
    parent, reply = recorded_statuses("test_status_reply")  # "Toot, finally!" and "@mastodonpy_test_2 same!"
    assert reply["in_reply_to_id"] == parent["id"]
    server.add_tag_status("toulouse", parent)
    server.add_tag_status("toulouse", reply)  # the page lists it first: newest first
    wl = watchlist(tmp_path, server.base, "hashtags: [Toulouse]\n")
    source = m.MastodonSource("masto", options(wl), SourceContext())
    try:
        batch = await source.poll(None)
    finally:
        await source.aclose()
    by_uri = {x.remote_id: x for x in batch.mentions}
    linked = by_uri[reply["uri"]]
    assert (linked.reply_to, linked.thread_id) == (parent["uri"], parent["uri"])


async def test_local_authors_take_the_account_domain_the_instance_declares(
    tmp_path: Path, server: FakeMastodon
) -> None:
    server.instance = answer(MPY, "test_instance", "GET", "/api/v2/instance").json()  # domain: localhost:3000
    parent, _ = recorded_statuses("test_status_reply")
    server.add_tag_status("toulouse", parent)
    wl = watchlist(tmp_path, server.base, "hashtags: [Toulouse]\n")  # served from 127.0.0.1:<port>
    source = m.MastodonSource("masto", options(wl), SourceContext())
    try:
        [mention] = (await source.poll(None)).mentions
    finally:
        await source.aclose()
    assert mention.author == "@mastodonpy_test_2@localhost:3000"


async def test_a_delete_after_a_restart_marks_the_post_seen_before_it(
    tmp_path: Path, server: FakeMastodon, token: str
) -> None:
    events = sse_events(answer(MPY, "test_stream_user_direct", "GET", "/streaming/user").body)
    posted = json.loads(next(d for e, d in events if e == "update"))  # "only real cars respond."
    deleted = next(d for e, d in events if e == "delete")
    assert deleted == posted["id"]
    server.add_tag_status("toulouse", posted)
    wl = watchlist(tmp_path, server.base, "token_env: MASTODON_TOKEN\nhashtags: [Toulouse]\nstream: true\n")
    wl = replace(wl, terms=(Term("cars", keywords=("cars",)),))
    store = await Store.open(wl.database)
    first = m.MastodonSource("masto", options(wl), SourceContext())
    await Collector(wl, store, sources=[first]).run_once()
    await first.aclose()
    assert rows(wl.database)[0][0] == posted["uri"]
    restarted = live_source(wl, silence_timeout=5.0)  # a new process: it never saw the post
    collector = Collector(wl, store, sources=[restarted])
    async with contextlib.aclosing(restarted.stream(await store.cursor("masto"))) as stream:
        await collector.ingest(restarted, await next_batch(stream))
        await server.wait_streams(1)
        server.push("hashtag", "delete", deleted, tag="toulouse")
        await collector.ingest(restarted, await next_batch(stream))
    await store.close()
    await restarted.aclose()
    assert rows(wl.database)[0][4] is not None  # deleted_at


async def test_mentions_and_replies_to_our_account_are_kept_without_a_term_and_marked_to_us(
    tmp_path: Path, server: FakeMastodon, token: str
) -> None:
    # A mention notification ("@mastodonpy_test hello!") and, on a hashtag, a reply to our post.
    server.notifications = answer(MPY, "test_notifications_mentions_only", "GET", "/api/v1/notifications").json()
    ours, reply = recorded_statuses("test_status_reply")  # "Toot, finally!" and "@mastodonpy_test_2 same!"
    server.me = ours["account"]  # we are mastodonpy_test_2 here
    server.add_tag_status("toulouse", ours)
    server.add_tag_status("toulouse", reply)
    wl = watchlist(tmp_path, server.base, "token_env: MASTODON_TOKEN\nhashtags: [Toulouse]\nnotifications: true\n")
    store = await Store.open(wl.database)
    source = m.MastodonSource("masto", options(wl), SourceContext())
    try:
        assert await Collector(wl, store, sources=[source]).run_once() == {"masto": None}
    finally:
        await source.aclose()
        await store.close()
    with contextlib.closing(sqlite3.connect(wl.database)) as conn:
        stored = dict(conn.execute("SELECT text, to_us FROM mentions").fetchall())
    assert stored == {"@mastodonpy_test hello!": 1, "@mastodonpy_test_2 same!": 1}  # not our own post
    assert len(server.hits("me")) == 1


async def test_a_quote_of_our_post_is_kept_as_addressed_to_us(tmp_path: Path, server: FakeMastodon, token: str) -> None:
    # Mastodon 4.5's `quote` notification: no cassette has one yet, so the shape is the documented one.
    ours, _ = recorded_statuses("test_status_reply")
    quoting = status("9300", "<p>Toujours rien, un mois après</p>", acct=account("zoe", "piaille.fr", "Zoé", "77"))
    quoting["quote"] = {"state": "accepted", "quoted_status": ours}
    server.notifications = [notification("9301", quoting, "quote"), notification("9302", ours, "favourite")]
    wl = watchlist(tmp_path, server.base, "token_env: MASTODON_TOKEN\nnotifications: true\n")
    source = m.MastodonSource("masto", options(wl), SourceContext())
    try:
        [mention] = (await source.poll(None)).mentions
    finally:
        await source.aclose()
    assert mention.text == "Toujours rien, un mois après" and mention.to_us
