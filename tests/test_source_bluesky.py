"""The Bluesky source against a fake PDS on 127.0.0.1 (tests/fakes_xrpc.py): sessions, paging, posts."""

from __future__ import annotations

import json
import logging
import sqlite3
import stat
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from fakes_xrpc import (
    Account,
    FakeXrpc,
    follow_notification,
    like_notification,
    link_facet,
    mention_facet,
    notification,
    post_view,
    tag_facet,
)

from monitor.core.config import ConfigError
from monitor.db.store import Store
from monitor.engine.collector import Collector
from monitor.networks import SOURCE_TYPES, SourceContext, SourceError, load_watchlist
from monitor.networks.bluesky.source import LOOKBACK, BlueskyOptions, BlueskySource, session_path, short_did

ENV = "TEST_BLUESKY_APP_PASSWORD"
LINK = "app.bsky.richtext.facet#link"
APP_PASSWORD = "abcd-efgh-ijkl-mnop"
HANDLE = "toulouse-metropole.bsky.social"
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
async def pds(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv(ENV, APP_PASSWORD)
    async with FakeXrpc() as fake:
        fake.add_account(HANDLE, APP_PASSWORD, "Toulouse Métropole")
        yield fake


@pytest.fixture
def alice(pds: FakeXrpc) -> Account:
    return pds.add_account("alice.bsky.social", display_name="Alice Martin")


@pytest.fixture
def desk(pds: FakeXrpc) -> Account:
    return next(a for a in pds.accounts.values() if a.handle == HANDLE)


class Sources:
    """Builds sources on the fake PDS and closes them after the test."""

    def __init__(self, pds: FakeXrpc, state_dir: Path) -> None:
        self.pds, self.state_dir, self.open = pds, state_dir, []
        self.waits: list[float] = []

    def __call__(
        self, search: tuple[str, ...] = ("Toulouse",), notifications: bool = False, **kw: Any
    ) -> BlueskySource:
        options = BlueskyOptions(
            handle=kw.pop("handle", HANDLE), app_password_env=ENV, pds=self.pds.url, search=search,
            notifications=notifications, **kw,
        )  # fmt: skip
        source = BlueskySource("bluesky", options, SourceContext(state_dir=self.state_dir))

        async def record_wait(seconds: float) -> None:
            self.waits.append(seconds)

        source.xrpc.sleep = record_wait
        self.open.append(source)
        return source


@pytest.fixture
async def make(pds: FakeXrpc, tmp_path: Path) -> Any:
    sources = Sources(pds, tmp_path)
    yield sources
    for source in sources.open:
        await source.aclose()


def searches(pds: FakeXrpc) -> list[Any]:
    return [r for r in pds.requests if r.nsid == "app.bsky.feed.searchPosts"]


# -- sessions -------------------------------------------------------------------------------


async def test_a_second_instance_reuses_the_saved_session_instead_of_logging_in(
    pds: FakeXrpc,
    make: Sources,
    alice: Account,
    desk: Account,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    pds.add_posts(post_view(alice, "Bouchons sur la rocade de Toulouse", NOW))
    first = await make().poll(None)
    assert len(first.mentions) == 1
    assert pds.calls["com.atproto.server.createSession"] == 1

    again = make()  # a restart: a new instance, same state folder
    await again.poll(first.cursor)
    await make().poll(None)
    assert pds.calls["com.atproto.server.createSession"] == 1
    assert pds.calls["app.bsky.feed.searchPosts"] == 3

    path = session_path(tmp_path, "bluesky")
    assert path is not None and path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    saved = json.loads(path.read_text())
    assert saved["did"] == desk.did and saved["identifier"] == HANDLE
    assert APP_PASSWORD not in path.read_text()
    # Secrets never reach the log.
    tokens = [saved["accessJwt"], saved["refreshJwt"], APP_PASSWORD]
    assert not any(t in record.getMessage() for record in caplog.records for t in tokens)
    assert all(r.authorization == f"Bearer {saved['accessJwt']}" for r in searches(pds))


async def test_expired_access_token_is_refreshed_saved_and_the_call_retried_once(
    pds: FakeXrpc, make: Sources, alice: Account, tmp_path: Path
) -> None:
    pds.add_posts(post_view(alice, "Toulouse: le métro B est arrêté", NOW))
    source = make()
    await source.poll(None)
    old = json.loads(session_path(tmp_path, "bluesky").read_text())  # type: ignore[union-attr]

    pds.expire_access_tokens()
    pds.add_posts(post_view(alice, "Toulouse: reprise du métro B", NOW + timedelta(seconds=30)))
    batch = await source.poll(None)

    assert [m.text for m in batch.mentions][0] == "Toulouse: reprise du métro B"
    assert pds.calls["com.atproto.server.refreshSession"] == 1
    assert pds.calls["com.atproto.server.createSession"] == 1
    refresh = next(r for r in pds.requests if r.nsid == "com.atproto.server.refreshSession")
    assert refresh.authorization == f"Bearer {old['refreshJwt']}"
    new = json.loads(session_path(tmp_path, "bluesky").read_text())  # type: ignore[union-attr]
    assert new["accessJwt"] != old["accessJwt"] and new["refreshJwt"] != old["refreshJwt"]
    last_two = searches(pds)[-2:]
    assert [r.authorization for r in last_two] == [f"Bearer {old['accessJwt']}", f"Bearer {new['accessJwt']}"]

    # A restarted instance picks up the refreshed session, not the stale one.
    await make().poll(None)
    assert searches(pds)[-1].authorization == f"Bearer {new['accessJwt']}"
    assert pds.calls["com.atproto.server.createSession"] == 1


async def test_rejected_refresh_token_opens_a_new_session(pds: FakeXrpc, make: Sources, alice: Account) -> None:
    pds.add_posts(post_view(alice, "Toulouse sous la pluie", NOW))
    source = make()
    await source.poll(None)
    pds.expire_access_tokens()
    pds.revoke_refresh_tokens()

    batch = await source.poll(None)

    assert len(batch.mentions) == 1
    assert pds.calls["com.atproto.server.refreshSession"] == 1
    assert pds.calls["com.atproto.server.createSession"] == 2


async def test_refresh_that_fails_for_a_server_error_keeps_the_session(
    pds: FakeXrpc, make: Sources, alice: Account, tmp_path: Path
) -> None:
    source = make()
    await source.poll(None)
    saved = session_path(tmp_path, "bluesky").read_text()  # type: ignore[union-attr]
    pds.expire_access_tokens()
    pds.fail("com.atproto.server.refreshSession", 502, {"error": "UpstreamFailure", "message": "Upstream Failure"})

    with pytest.raises(SourceError) as caught:
        await source.poll(None)

    assert caught.value.kind == "transient"
    assert pds.calls["com.atproto.server.createSession"] == 1  # no new login for a server hiccup
    assert session_path(tmp_path, "bluesky").read_text() == saved  # type: ignore[union-attr]
    await source.poll(None)  # the refresh token still works
    assert pds.calls["com.atproto.server.refreshSession"] == 2


async def test_session_refreshed_by_another_process_is_adopted_without_refreshing_again(
    pds: FakeXrpc, make: Sources, alice: Account
) -> None:
    app, collector = make(), make()
    await app.poll(None)
    await collector.poll(None)
    pds.expire_access_tokens()
    await app.poll(None)  # refreshes and saves
    assert pds.calls["com.atproto.server.refreshSession"] == 1

    await collector.poll(None)  # its token is stale too: it reads the file instead of refreshing

    assert pds.calls["com.atproto.server.refreshSession"] == 1
    assert pds.calls["com.atproto.server.createSession"] == 1


async def test_a_session_saved_for_another_handle_is_not_reused(
    pds: FakeXrpc, make: Sources, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pds.add_account("autre.bsky.social", "wxyz-wxyz-wxyz-wxyz")
    await make().poll(None)
    monkeypatch.setenv(ENV, "wxyz-wxyz-wxyz-wxyz")
    await make(handle="autre.bsky.social").poll(None)
    assert pds.calls["com.atproto.server.createSession"] == 2
    saved = json.loads(session_path(tmp_path, "bluesky").read_text())  # type: ignore[union-attr]
    assert saved["handle"] == "autre.bsky.social"


async def test_wrong_app_password_is_an_auth_error(
    pds: FakeXrpc, make: Sources, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, "not-the-right-one")
    with pytest.raises(SourceError) as caught:
        await make().poll(None)
    assert caught.value.kind == "auth"
    assert "credentials rejected" in str(caught.value)
    assert "not-the-right-one" not in str(caught.value)


async def test_unset_password_variable_is_a_config_error_naming_it_before_any_request(
    pds: FakeXrpc, make: Sources, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV)
    with pytest.raises(SourceError) as caught:
        await make().poll(None)
    assert caught.value.kind == "config"
    assert ENV in str(caught.value)
    assert pds.requests == []


# -- search paging --------------------------------------------------------------------------


async def test_search_pages_back_to_the_known_posts_and_returns_only_new_ones(
    pds: FakeXrpc, make: Sources, alice: Account
) -> None:
    # Ten minutes apart: the third is older than the lookback behind the second.
    old = [post_view(alice, f"Toulouse ancien {i}", NOW - timedelta(hours=1, minutes=10 * i)) for i in range(3)]
    pds.add_posts(*old)
    source = make()
    source.page_size = 2
    first = await source.poll(None)
    assert [m.remote_id for m in first.mentions] == [old[0]["uri"], old[1]["uri"]]  # one page at first start
    assert len(searches(pds)) == 1

    new = [post_view(alice, f"Toulouse nouveau {i}", NOW - timedelta(seconds=10 * i)) for i in range(5)]
    pds.add_posts(*new)
    pds.requests.clear()
    second = await source.poll(first.cursor)

    assert [m.remote_id for m in second.mentions] == [v["uri"] for v in new]
    calls = searches(pds)
    assert [r.param("cursor") for r in calls] == [None, "2", "4"]
    assert {r.param("sort") for r in calls} == {"latest"}
    assert {r.param("limit") for r in calls} == {"2"}
    assert calls[0].param("q") == "Toulouse"
    since = datetime.fromisoformat(calls[0].param("since").replace("Z", "+00:00"))  # type: ignore[union-attr]
    assert since == datetime.fromisoformat(old[0]["indexedAt"].replace("Z", "+00:00")) - LOOKBACK

    pds.requests.clear()
    third = await source.poll(second.cursor)
    assert third.mentions == []  # the lookback re-reads the last minutes, but returns nothing twice
    assert third.cursor == second.cursor


async def test_search_stops_at_known_posts_even_when_the_server_ignores_since(
    pds: FakeXrpc, make: Sources, alice: Account
) -> None:
    pds.honour_since = False
    pds.add_posts(
        *[post_view(alice, f"Toulouse ancien {i}", NOW - timedelta(hours=2, minutes=10 * i)) for i in range(9)]
    )
    source = make()
    source.page_size = 2
    first = await source.poll(None)
    new = [post_view(alice, f"Toulouse nouveau {i}", NOW - timedelta(seconds=i)) for i in range(3)]
    pds.add_posts(*new)
    pds.requests.clear()

    batch = await source.poll(first.cursor)

    assert [m.remote_id for m in batch.mentions] == [v["uri"] for v in new]
    # Pages: [new 0, new 1], [new 2, known 0], [known 1, old 2]. Known 1 is older than the newest known
    # post minus the lookback: paging stops there, not at the end of the nine old posts.
    assert len(searches(pds)) == 3


async def test_late_indexed_post_behind_a_known_one_is_found_and_known_ones_are_not_repeated(
    pds: FakeXrpc, make: Sources, alice: Account
) -> None:
    seen = post_view(alice, "Toulouse, place du Capitole", NOW - timedelta(seconds=30))
    pds.add_posts(seen)
    source = make()
    first = await source.poll(None)
    # Written before `seen` but indexed after our poll: it sorts behind it.
    late = post_view(
        alice,
        "Toulouse, fuite d'eau rue Alsace",
        NOW + timedelta(seconds=5),
        created_at=NOW - timedelta(seconds=60),
    )
    pds.add_posts(late)

    batch = await source.poll(first.cursor)

    assert [m.remote_id for m in batch.mentions] == [late["uri"]]


async def test_paging_stops_at_max_pages(
    pds: FakeXrpc, make: Sources, alice: Account, caplog: pytest.LogCaptureFixture
) -> None:
    pds.add_posts(post_view(alice, "Toulouse hier", NOW - timedelta(days=1)))
    source = make(max_pages=3)
    source.page_size = 2
    first = await source.poll(None)
    pds.add_posts(*[post_view(alice, f"Toulouse {i}", NOW - timedelta(seconds=i)) for i in range(10)])
    pds.requests.clear()

    batch = await source.poll(first.cursor)

    assert len(searches(pds)) == 3 and len(batch.mentions) == 6
    assert "more than 3 pages" in caplog.text


async def test_one_post_found_by_two_queries_is_one_mention(pds: FakeXrpc, make: Sources, alice: Account) -> None:
    text = "Travaux #Toulouse ligne B"
    pds.add_posts(post_view(alice, text, NOW, facets=[tag_facet(text, "#Toulouse")], tags=["Toulouse"]))
    batch = await make(search=("Toulouse", "#Toulouse")).poll(None)
    assert len(batch.mentions) == 1
    cursor = json.loads(batch.cursor or "")
    assert set(cursor["search"]) == {"Toulouse", "#Toulouse"}


# -- notifications --------------------------------------------------------------------------


async def test_notifications_keep_mentions_replies_and_quotes_only(
    pds: FakeXrpc, make: Sources, alice: Account, desk: Account
) -> None:
    bob = pds.add_account("bob.example.fr", display_name="Bob")
    ours = post_view(desk, "Travaux sur la ligne A ce week-end", NOW - timedelta(hours=1))
    text = "@toulouse-metropole.bsky.social un nid de poule énorme avenue de Muret"
    mention = post_view(
        alice,
        text,
        NOW - timedelta(minutes=3),
        facets=[mention_facet(text, "@toulouse-metropole.bsky.social", desk.did)],
    )
    reply = post_view(bob, "Et le bus 14 ?", NOW - timedelta(minutes=2), reply_to=ours)
    quote = post_view(alice, "Enfin une bonne nouvelle", NOW - timedelta(minutes=1), embed=True)
    pds.notify(
        desk,
        notification(mention, alice, "mention"),
        notification(reply, bob, "reply", subject=ours["uri"]),
        notification(quote, alice, "quote", subject=ours["uri"]),
        like_notification(bob, ours["uri"], NOW),
        follow_notification(alice, desk.did, NOW - timedelta(minutes=5)),
    )
    pds.honour_since = True

    batch = await make(search=(), notifications=True).poll(None)

    assert [m.remote_id for m in batch.mentions] == [quote["uri"], reply["uri"], mention["uri"]]
    request = next(r for r in pds.requests if r.nsid == "app.bsky.notification.listNotifications")
    assert request.params_all("reasons") == ["mention", "reply", "quote"]
    by_uri = {m.remote_id: m for m in batch.mentions}
    assert by_uri[reply["uri"]].author == "bob.example.fr" and by_uri[reply["uri"]].author_name == "Bob"
    assert by_uri[reply["uri"]].reply_to == ours["uri"] and by_uri[reply["uri"]].thread_id == ours["uri"]
    assert by_uri[mention["uri"]].text == text
    assert batch.skipped == 0


async def test_notifications_of_other_reasons_are_dropped_even_if_the_server_sends_them(
    pds: FakeXrpc, make: Sources, alice: Account, desk: Account
) -> None:
    ours = post_view(desk, "Bonne soirée Toulouse", NOW - timedelta(hours=1))
    reply = post_view(alice, "Merci !", NOW - timedelta(minutes=1), reply_to=ours)
    items = [like_notification(alice, ours["uri"], NOW), notification(reply, alice, "reply")]

    async def ignores_reasons(fake: FakeXrpc, request: Any, params: Any, body: Any, did: Any) -> Any:
        return {"notifications": items}

    pds.route("app.bsky.notification.listNotifications", "GET", ignores_reasons)
    source = make(search=(), notifications=True)
    batch = await source.poll(None)
    assert [m.remote_id for m in batch.mentions] == [reply["uri"]]
    again = await source.poll(batch.cursor)
    assert again.mentions == []  # both are covered by the cursor


# -- what a mention keeps --------------------------------------------------------------------


async def test_post_becomes_a_mention_with_link_tags_reply_and_bsky_app_url(
    pds: FakeXrpc, make: Sources, alice: Account, desk: Account
) -> None:
    root = post_view(desk, "Info trafic Toulouse", NOW - timedelta(hours=2), rkey="3lbq2wkjpt22a")
    parent = post_view(desk, "Suite", NOW - timedelta(hours=1), reply_to=root, root=root)
    text = "Métro 🚇 à Toulouse : détails sur tisseo.fr/actualites/trava... #Tisséo #metro"
    facets = [
        link_facet(text, "tisseo.fr/actualites/trava...", "https://www.tisseo.fr/actualites/travaux-ligne-b"),
        tag_facet(text, "#Tisséo"),
        tag_facet(text, "#metro"),
    ]
    view = post_view(
        alice, text, NOW, rkey="3lbqa7u5xkc2s", created_at="2024-11-21T09:58:12.345", langs=["fr", "en"],
        facets=facets, tags=["Toulouse", "tisséo"], reply_to=parent, root=root,
    )  # fmt: skip
    pds.add_posts(view)

    [mention] = (await make().poll(None)).mentions

    assert mention.remote_id == f"at://{alice.did}/app.bsky.feed.post/3lbqa7u5xkc2s"
    assert mention.url == "https://bsky.app/profile/alice.bsky.social/post/3lbqa7u5xkc2s"
    assert mention.network == "bluesky"
    assert mention.author == "alice.bsky.social" and mention.author_name == "Alice Martin"
    assert mention.text == text + "\n\nhttps://www.tisseo.fr/actualites/travaux-ligne-b"
    assert mention.tags == ("Tisséo", "metro", "Toulouse")
    assert mention.lang == "fr"
    assert mention.reply_to == parent["uri"] and mention.thread_id == root["uri"]
    assert mention.published_at == datetime(2024, 11, 21, 9, 58, 12, 345000, tzinfo=UTC)
    assert mention.raw == view


async def test_link_shown_in_full_is_not_repeated_and_facet_offsets_are_utf8_bytes(
    pds: FakeXrpc, make: Sources, alice: Account
) -> None:
    text = "Été 🌞 Toulouse https://www.toulouse.fr/web/guide"
    guide = "https://www.toulouse.fr/web/guide"
    out_of_range = {"index": {"byteStart": 40, "byteEnd": 4000}, "features": [{"$type": LINK, "uri": guide}]}
    view = post_view(alice, text, NOW, facets=[link_facet(text, guide, guide), out_of_range])
    assert view["record"]["facets"][0]["index"] == {
        "byteStart": 20,
        "byteEnd": 53,
    }  # not 15..48 (code points)
    pds.add_posts(view)
    [mention] = (await make().poll(None)).mentions
    assert mention.text == text


async def test_link_with_misleading_text_shows_where_it_leads(pds: FakeXrpc, make: Sources, alice: Account) -> None:
    text = "Toulouse : formulaire officiel de la mairie"
    view = post_view(alice, text, NOW, facets=[link_facet(text, "formulaire officiel", "https://phish.example/login")])
    pds.add_posts(view)
    [mention] = (await make().poll(None)).mentions
    assert mention.text.endswith("\n\nhttps://phish.example/login")


async def test_text_and_names_from_the_network_are_sanitised(pds: FakeXrpc, make: Sources) -> None:
    evil = pds.add_account("evil.bsky.social", display_name="Eve\x1b]0;pwned\x07 \u202eevil")
    pds.add_posts(post_view(evil, "Toulouse \x1b[2J\x1b]52;c;ZXZpbA==\x07ok\u200b", NOW, langs=["fr\x1b[31m"]))
    [mention] = (await make().poll(None)).mentions
    assert mention.text == "Toulouse ok"
    assert mention.author_name == "Eve evil"
    assert mention.lang == "fr"


async def test_invalid_handle_links_by_did_and_future_created_at_is_capped(pds: FakeXrpc, make: Sources) -> None:
    odd = pds.add_account("handle.invalid")
    view = post_view(odd, "Toulouse", NOW, rkey="3lbqb2c4d5e6f", created_at=NOW + timedelta(days=300))
    pds.add_posts(view)
    [mention] = (await make().poll(None)).mentions
    assert mention.url == f"https://bsky.app/profile/{odd.did}/post/3lbqb2c4d5e6f"
    assert mention.published_at == NOW


# -- errors ---------------------------------------------------------------------------------


async def test_post_missing_record_is_skipped_and_counted_and_the_page_kept(
    pds: FakeXrpc, make: Sources, alice: Account, caplog: pytest.LogCaptureFixture
) -> None:
    good = [post_view(alice, f"Toulouse {i}", NOW - timedelta(seconds=i)) for i in range(3)]
    broken = post_view(alice, "Toulouse cassé", NOW - timedelta(seconds=1, milliseconds=500))
    del broken["record"]
    no_uri = post_view(alice, "Toulouse sans uri", NOW - timedelta(seconds=2, milliseconds=500))
    del no_uri["uri"]

    async def page(fake: FakeXrpc, request: Any, params: Any, body: Any, did: Any) -> Any:
        return {"posts": [good[0], broken, good[1], "garbage", no_uri, good[2]]}

    pds.route("app.bsky.feed.searchPosts", "GET", page)
    batch = await make().poll(None)

    assert [m.remote_id for m in batch.mentions] == [v["uri"] for v in good]
    assert batch.skipped == 3
    assert "skipped" in caplog.text


async def test_rate_limited_search_reports_the_wait_until_the_epoch_reset(
    pds: FakeXrpc, make: Sources, alice: Account
) -> None:
    before = time.time()
    reset = int(before) + 120
    pds.rate_limit_next("app.bsky.feed.searchPosts", reset)
    with pytest.raises(SourceError) as caught:
        await make().poll(None)
    after = time.time()
    assert caught.value.kind == "rate"
    # The wait left when the answer was read, whenever that was between the two readings: no bound on the poll's time.
    assert caught.value.retry_after is not None and reset - after - 1 <= caught.value.retry_after <= reset - before + 1


async def test_low_remaining_quota_spreads_the_next_calls(pds: FakeXrpc, make: Sources, alice: Account) -> None:
    pds.rate_remaining = 50  # of 3000: under 10% left
    pds.add_posts(post_view(alice, "Toulouse", NOW))
    await make().poll(None)
    assert make.waits and all(0 < w <= 30 for w in make.waits)


async def test_server_error_fails_the_poll_without_a_cursor_and_the_next_poll_recovers(
    pds: FakeXrpc, make: Sources, alice: Account
) -> None:
    pds.add_posts(post_view(alice, "Toulouse", NOW))
    source = make(search=("Toulouse", "Tisséo"))
    pds.fail("app.bsky.feed.searchPosts", 500)
    with pytest.raises(SourceError) as caught:
        await source.poll(None)
    assert caught.value.kind == "transient" and "500" in str(caught.value)

    batch = await source.poll(None)
    assert len(batch.mentions) == 1 and batch.cursor


async def test_malformed_json_is_a_transient_error_and_the_next_poll_recovers(
    pds: FakeXrpc, make: Sources, alice: Account
) -> None:
    pds.add_posts(post_view(alice, "Toulouse", NOW))
    source = make()
    pds.malformed_next("app.bsky.feed.searchPosts")
    with pytest.raises(SourceError) as caught:
        await source.poll(None)
    assert caught.value.kind == "transient" and "malformed JSON" in str(caught.value)
    assert len((await source.poll(None)).mentions) == 1


async def test_bad_query_string_is_a_config_error_naming_it(pds: FakeXrpc, make: Sources) -> None:
    pds.fail("app.bsky.feed.searchPosts", 400, {"error": "BadQueryString", "message": "bad query"})
    with pytest.raises(SourceError) as caught:
        await make().poll(None)
    assert caught.value.kind == "config" and "BadQueryString" in str(caught.value)


async def test_unreadable_cursor_starts_again_from_the_latest(pds: FakeXrpc, make: Sources, alice: Account) -> None:
    pds.add_posts(post_view(alice, "Toulouse", NOW))
    batch = await make().poll("{not json")
    assert len(batch.mentions) == 1


# -- configuration --------------------------------------------------------------------------

WATCHLIST = """\
city: Toulouse Métropole
database: monitor.db
terms:
  - name: ville
    keywords: [Toulouse]
  - name: transports
    keywords: [Tisséo, métro]
sources:
  - name: bluesky
    type: bluesky
    pds: {pds}
    handle: {handle}
    app_password_env: {env}
    search: [Toulouse, "#Toulouse", Tisséo]
    notifications: true
"""


def write_watchlist(tmp_path: Path, **values: str) -> Path:
    path = tmp_path / "watchlist.yaml"
    path.write_text(WATCHLIST.format(**{"pds": "https://bsky.social", "handle": HANDLE, "env": ENV, **values}))
    return path


def test_watchlist_entry_parses_into_options(tmp_path: Path) -> None:
    spec = load_watchlist(write_watchlist(tmp_path)).sources[0]
    assert "bluesky" in SOURCE_TYPES
    assert spec.options == BlueskyOptions(
        handle=HANDLE,
        app_password_env=ENV,
        pds="https://bsky.social",
        search=("Toulouse", "#Toulouse", "Tisséo"),
        notifications=True,
    )
    assert spec.poll_interval == timedelta(seconds=60)


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"pds": "http://bsky.social"}, "not an https address"),
        ({"pds": "https://bsky.social/xrpc"}, "has a path"),
        ({"env": "abcd-efgh-ijkl-mnop"}, "not an environment variable name"),
        ({"handle": "not a handle"}, "not a handle"),
    ],
)
def test_bad_options_are_errors_at_their_line(tmp_path: Path, values: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_watchlist(write_watchlist(tmp_path, **values))
    assert problem in str(caught.value)
    assert caught.value.line > 9


def test_a_source_without_search_or_notifications_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    text = WATCHLIST.format(pds="https://bsky.social", handle=HANDLE, env=ENV)
    path.write_text(text.replace('    search: [Toulouse, "#Toulouse", Tisséo]\n', "").replace("true", "false"))
    with pytest.raises(ConfigError, match="watches nothing"):
        load_watchlist(path)


# -- the whole path -------------------------------------------------------------------------


async def test_collector_stores_bluesky_mentions_and_cursor_in_sqlite(
    pds: FakeXrpc, alice: Account, desk: Account, tmp_path: Path
) -> None:
    pds.add_posts(
        post_view(alice, "Fuite d'eau à Toulouse, rue de Metz", NOW - timedelta(minutes=2), rkey="3lbqc1"),
        post_view(alice, "Le Stade Toulousain gagne", NOW - timedelta(minutes=1)),  # no watch term: filtered
    )
    ours = post_view(desk, "Info Tisséo", NOW - timedelta(hours=1))
    reply = post_view(alice, "Le métro est encore en panne", NOW, reply_to=ours, rkey="3lbqc2")
    pds.notify(desk, notification(reply, alice, "reply", subject=ours["uri"]))
    watchlist = load_watchlist(write_watchlist(tmp_path, pds=pds.url))
    store = await Store.open(watchlist.database)
    collector = Collector(watchlist, store, SourceContext(state_dir=tmp_path))
    try:
        assert await collector.run_once() == {"bluesky": None}
        assert collector.status["bluesky"].stored == 2
        assert await collector.run_once() == {"bluesky": None}  # nothing twice
        cursor = await store.cursor("bluesky")
    finally:
        await collector.aclose()
        await store.close()

    conn = sqlite3.connect(watchlist.database)
    rows = conn.execute(
        "SELECT remote_id, network, author, author_name, url, terms, reply_to, raw FROM mentions ORDER BY published_at"
    ).fetchall()
    conn.close()
    assert [(r[0], r[1], r[2], r[3], r[4]) for r in rows] == [
        (f"at://{alice.did}/app.bsky.feed.post/3lbqc1", "bluesky", "alice.bsky.social", "Alice Martin",
         "https://bsky.app/profile/alice.bsky.social/post/3lbqc1"),
        (f"at://{alice.did}/app.bsky.feed.post/3lbqc2", "bluesky", "alice.bsky.social", "Alice Martin",
         "https://bsky.app/profile/alice.bsky.social/post/3lbqc2"),
    ]  # fmt: skip
    assert rows[0][5] == "ville" and rows[1][5] == "transports" and rows[1][6] == ours["uri"]
    assert json.loads(rows[1][7])["cid"] == reply["cid"]  # kept for the reply's strong ref
    assert cursor is not None and set(json.loads(cursor)) == {"v", "search", "notifications"}
    assert pds.calls["com.atproto.server.createSession"] == 1


async def test_fake_pds_create_record_then_get_record_round_trip(pds: FakeXrpc, desk: Account) -> None:
    """The fake's write path, for reply delivery later: a post written is found by getRecord."""
    async with httpx.AsyncClient(base_url=pds.url) as client:
        login = await client.post(
            "/xrpc/com.atproto.server.createSession", json={"identifier": HANDLE, "password": APP_PASSWORD}
        )
        token = login.json()["accessJwt"]
        record = {
            "$type": "app.bsky.feed.post",
            "text": "Merci Toulouse",
            "createdAt": "2024-11-21T10:00:00.000Z",
        }
        created = await client.post(
            "/xrpc/com.atproto.repo.createRecord",
            json={"repo": desk.did, "collection": "app.bsky.feed.post", "record": record},
            headers={"Authorization": f"Bearer {token}"},
        )
        rkey = created.json()["uri"].rsplit("/", 1)[1]
        got = await client.get(
            "/xrpc/com.atproto.repo.getRecord",
            params={"repo": HANDLE, "collection": "app.bsky.feed.post", "rkey": rkey},
        )
    assert created.status_code == 200 and got.json()["value"] == record
    assert got.json()["uri"] == created.json()["uri"]


# -- addressed to us, identity ---------------------------------------------------------------


async def test_replies_and_quotes_to_the_desk_are_kept_without_a_term_and_marked_to_us(
    pds: FakeXrpc, alice: Account, desk: Account, tmp_path: Path
) -> None:
    bob = pds.add_account("bob.example.fr", display_name="Bob")
    ours = post_view(desk, "Fermeture du pont Neuf ce soir", NOW - timedelta(hours=1))
    reply = post_view(bob, "Et on passe par où ?", NOW - timedelta(minutes=3), reply_to=ours)  # no term, no @
    quote = post_view(alice, "Enfin une bonne nouvelle", NOW - timedelta(minutes=2), embed=True)
    spam = post_view(bob, "free bitcoin for you", NOW - timedelta(minutes=2), reply_to=ours)
    pds.notify(
        desk,
        notification(reply, bob, "reply", subject=ours["uri"]),
        notification(quote, alice, "quote", subject=ours["uri"]),
        notification(spam, bob, "reply", subject=ours["uri"]),
    )
    found = post_view(alice, "Toulouse : même question que Bob", NOW - timedelta(minutes=1), reply_to=ours)
    other = post_view(alice, "Toulouse sous la pluie", NOW)
    pds.add_posts(found, other)
    path = write_watchlist(tmp_path, pds=pds.url)
    path.write_text(path.read_text() + "ignore: [free bitcoin]\n")
    watchlist = load_watchlist(path)
    store = await Store.open(watchlist.database)
    collector = Collector(watchlist, store, SourceContext(state_dir=tmp_path))
    try:
        assert await collector.run_once() == {"bluesky": None}
        assert await collector.run_once() == {"bluesky": None}  # nothing twice
    finally:
        await collector.aclose()
        await store.close()
    conn = sqlite3.connect(watchlist.database)
    stored = dict(conn.execute("SELECT remote_id, to_us FROM mentions").fetchall())
    conn.close()
    assert stored == {reply["uri"]: 1, quote["uri"]: 1, found["uri"]: 1, other["uri"]: 0}


async def test_authors_whose_handle_does_not_verify_are_told_apart_and_never_shown_as_verified(
    pds: FakeXrpc, make: Sources
) -> None:
    # Two real DIDs (from MarshalX/atproto's recorded test data) whose handles no longer verify.
    one = Account("did:plc:kvwvcn5iqfooopmyzvb4qzba", "handle.invalid")
    two = Account("did:plc:z72i7hdynmk6r22z27h6tvur", "handle.invalid")
    pds.add_posts(post_view(one, "Toulouse 1", NOW), post_view(two, "Toulouse 2", NOW - timedelta(seconds=1)))
    authors = [m.author for m in (await make().poll(None)).mentions]
    assert len(set(authors)) == 2 and "handle.invalid" not in authors
    assert sorted(authors) == sorted(short_did(a.did) for a in (one, two))
    assert all(a.startswith("did:") for a in authors)


async def test_the_account_pds_comes_from_its_did_document_via_the_plc_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A real session answer (MarshalX/atproto's test data): test.marshal.dev, did:plc:kvwvcn…, whose DID
    # document names its PDS. Only that endpoint is rewritten, to the fake PDS on this machine.
    recorded = json.loads((Path(__file__).parent / "data" / "atproto_marshalx" / "did_doc.json").read_text())
    did, handle, document = recorded["did"], recorded["handle"], recorded["didDoc"]
    plc_hits: list[str] = []

    async def plc(request: web.Request) -> web.Response:
        plc_hits.append(request.path)
        if request.path != f"/{did}":
            return web.json_response({"message": "DID not registered"}, status=404)
        return web.json_response(document)

    monkeypatch.setenv(ENV, APP_PASSWORD)
    app = web.Application()
    app.router.add_get("/{did}", plc)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    plc_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    async with FakeXrpc() as entry, FakeXrpc() as home:
        entry.route("com.atproto.identity.resolveHandle", "GET", resolve_to(did), auth=False)
        home.accounts[did] = Account(did, handle, APP_PASSWORD, "Python SDK")
        document["service"][0]["serviceEndpoint"] = home.url
        home.add_posts(post_view(home.accounts[did], "Toulouse", NOW))
        options = BlueskyOptions(handle, ENV, entry.url, ("Toulouse",), False, plc=plc_url)
        source = BlueskySource("bluesky", options, SourceContext(state_dir=tmp_path))
        try:
            [mention] = (await source.poll(None)).mentions
        finally:
            await source.aclose()
            await runner.cleanup()
        assert mention.author == handle
        assert plc_hits == [f"/{did}"]
        assert entry.calls == {"com.atproto.identity.resolveHandle": 1}  # nothing else at the entry
        assert home.calls["com.atproto.server.createSession"] == 1 and home.calls["app.bsky.feed.searchPosts"] == 1
        saved = json.loads(session_path(tmp_path, "bluesky").read_text())  # type: ignore[union-attr]
        assert saved["pds"] == home.url


def resolve_to(did: str) -> Any:
    async def handler(fake: FakeXrpc, request: web.Request, params: Any, body: Any, caller: str | None) -> Any:
        return {"did": did}

    return handler


def test_an_explicit_pds_is_used_as_it_is_and_none_is_resolved(tmp_path: Path) -> None:
    spec = load_watchlist(write_watchlist(tmp_path)).sources[0]
    assert spec.options.plc is None
    path = write_watchlist(tmp_path)
    path.write_text(path.read_text().replace("    pds: https://bsky.social\n", ""))
    assert load_watchlist(path).sources[0].options.plc == "https://plc.directory"
