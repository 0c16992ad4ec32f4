"""The X source against a fake API v2 (tests/fakes_x.py, httpx.MockTransport): queries, posts, paging,
rate limits, and the whole path through the collector into SQLite."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakes_x import CITY_ID, FakeX, tweet

from monitor.core.config import ConfigError, Term
from monitor.core.retry import ErrorKind
from monitor.core.timeutil import MAX_DELAY
from monitor.db.api import Database
from monitor.db.store import Store
from monitor.engine.collector import Collector
from monitor.networks import SourceContext, SourceError, load_watchlist
from monitor.networks.x.options import Budget, XOptions
from monitor.networks.x.posts import post_mention, read_page
from monitor.networks.x.query import MAX_QUERY, build_queries
from monitor.networks.x.source import XSource

ENV = "TEST_X_BEARER"
TERMS = (
    Term("ville", keywords=("Toulouse", "Capitole"), exclude=("Stade Toulousain",)),
    Term("transports", keywords=("Tisséo", "ligne B"), hashtags=("#metro",), accounts=("@tisseo",)),
)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeX:
    monkeypatch.setenv(ENV, "AAAAAAAAAAAAAAAAAAAAAbearer")
    return FakeX()


class Sources:
    def __init__(self, fake: FakeX) -> None:
        self.fake, self.open, self.waits = fake, [], []

    def __call__(self, terms: tuple[Term, ...] = TERMS, **kw: Any) -> XSource:
        options = XOptions(user_id=CITY_ID, bearer_token_env=ENV, api="https://api.x.com", **kw)
        source = XSource("x", options, SourceContext(http_factory=self.fake.factory, terms=terms))

        async def record(seconds: float) -> None:
            self.waits.append(seconds)

        source.sleep = record
        self.open.append(source)
        return source


@pytest.fixture
async def make(fake: FakeX) -> Any:
    sources = Sources(fake)
    yield sources
    for source in sources.open:
        await source.aclose()


# -- queries --------------------------------------------------------------------------------


def test_query_has_keywords_hashtags_accounts_exclusions_and_no_retweets() -> None:
    assert build_queries(TERMS) == [
        '(Toulouse OR Capitole OR Tisséo OR "ligne B" OR #metro OR @tisseo) -"Stade Toulousain" -is:retweet'
    ]
    assert build_queries(TERMS, retweets=True)[0].endswith('-"Stade Toulousain"')


def test_a_query_longer_than_the_limit_is_split_each_carrying_every_exclusion() -> None:
    words = tuple(f"quartier{n:03d}" for n in range(120))
    queries = build_queries((Term("q", keywords=words, exclude=("pub",)),))
    assert len(queries) > 1
    assert all(len(q) <= MAX_QUERY and q.endswith(" -pub -is:retweet") for q in queries)
    found = [w for q in queries for w in q.split(" -pub")[0].strip("()").split(" OR ")]
    assert found == list(words)  # each once, none lost


# -- posts ----------------------------------------------------------------------------------


def test_long_post_text_links_expanded_and_author_from_includes() -> None:
    long = "Nid-de-poule énorme avenue de Grande-Bretagne &amp; rue Bayard " * 6 + "https://t.co/AbC123"
    post = tweet(
        "Nid-de-poule… https://t.co/AbC123",
        ("99", "marie_t", "Marie T."),
        urls=[("https://t.co/AbC123", "https://photos.example/trou.jpg")],
        hashtags=[],
        note=long,
        reply_to="1859999999999999999",
    )
    page = read_page({"data": [post], "includes": {"users": [post["_author"]]}, "meta": {"result_count": 1}})
    m = post_mention("x", page.posts[0], page.users)
    assert m is not None
    assert m.text.endswith("rue Bayard https://photos.example/trou.jpg") and "&amp;" not in m.text
    assert len(m.text) > 280
    assert (m.author, m.author_name, m.lang) == ("marie_t", "Marie T.", "fr")
    assert m.url == f"https://x.com/marie_t/status/{post['id']}"
    assert m.reply_to == m.thread_id == "1859999999999999999"


@pytest.mark.parametrize(
    "breakage",
    [
        {"id": "not-an-id"},
        {"created_at": None},
        {"author_id": "404"},  # an author absent from includes that no error explains
        {"text": ["not", "text"]},
    ],
)
def test_malformed_posts_are_logged_and_skipped(breakage: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    post = {**tweet("Toulouse"), **breakage}
    users = {post["_author"]["id"]: post["_author"]}
    assert post_mention("x", post, users) is None
    assert "skipped" in caplog.text


def test_a_page_of_the_wrong_shape_is_an_empty_page() -> None:
    for body in (None, [], {"data": "x", "includes": [], "meta": {"next_token": "\x1b[2J", "newest_id": "abc"}}):
        page = read_page(body)
        assert (page.posts, page.users, page.next_token, page.newest_id) == ([], {}, None, None)


# -- polling --------------------------------------------------------------------------------


async def test_mentions_are_read_and_marked_to_us_and_search_uses_the_terms(fake: FakeX, make: Sources) -> None:
    fake.add(tweet("@toulouse le lampadaire est cassé", reply_to="1850000000000000000"), mention=True)
    fake.add(tweet("Bouchons à Toulouse"), tweet("RT Toulouse", retweet_of="1850000000000000001"))
    batch = await make().poll(None)
    texts = {m.text: m.to_us for m in batch.mentions}
    assert texts == {"@toulouse le lampadaire est cassé": True, "Bouchons à Toulouse": False}
    search = fake.calls("/2/tweets/search/recent")[0].url.params
    assert search["query"] == build_queries(TERMS)[0]
    assert "note_tweet" in search["tweet.fields"] and "author_id" in search["expansions"]
    mentions = fake.calls(f"/2/users/{CITY_ID}/mentions")[0]
    assert mentions.headers["authorization"] == "Bearer AAAAAAAAAAAAAAAAAAAAAbearer"


async def test_paging_resumes_at_next_token_and_then_moves_since_id(fake: FakeX, make: Sources) -> None:
    source = make(terms=(), max_pages=2)
    fake.add(*[tweet(f"vieux {n}") for n in range(3)], mention=True)
    first = await source.poll(None)  # a first poll takes the latest page only
    assert len(first.mentions) == 3
    fake.add(*[tweet(f"nouveau {n}") for n in range(250)], mention=True)
    second = await source.poll(first.cursor)
    assert len(second.mentions) == 200  # two pages, then the round waits in the cursor
    assert json.loads(second.cursor or "")["feeds"]["mentions"]["next"] == "200"
    third = await source.poll(second.cursor)
    assert len(third.mentions) == 50
    seen = [m.text for m in second.mentions + third.mentions]
    assert sorted(seen) == sorted(f"nouveau {n}" for n in range(250))  # none twice, none lost
    fourth = await source.poll(third.cursor)
    assert fourth.mentions == []
    last = fake.calls(f"/2/users/{CITY_ID}/mentions")[-1].url.params
    assert last["since_id"] == max((m.remote_id for m in second.mentions), key=int)
    assert "pagination_token" not in last


async def test_429_waits_until_the_epoch_reset(fake: FakeX, make: Sources) -> None:
    reset = int(time.time()) + 300
    headers = {"x-rate-limit-remaining": "0", "x-rate-limit-reset": str(reset)}
    fake.failures.append(httpx.Response(429, headers=headers, json={"title": "Too Many Requests"}))
    with pytest.raises(SourceError) as caught:
        await make().poll(None)
    assert caught.value.kind is ErrorKind.RATE
    assert 250 < (caught.value.retry_after or 0) <= 300


async def test_a_reset_far_in_the_future_is_bounded(fake: FakeX, make: Sources) -> None:
    fake.failures.append(httpx.Response(429, headers={"x-rate-limit-reset": "1e12"}))
    with pytest.raises(SourceError) as caught:
        await make().poll(None)
    assert caught.value.retry_after == MAX_DELAY


async def test_remaining_nearly_used_spreads_the_calls_until_the_reset(fake: FakeX, make: Sources) -> None:
    fake.remaining = 5
    await make(terms=()).poll(None)
    assert make.waits and 0 < make.waits[0] <= 30.0


@pytest.mark.parametrize(
    ("status", "said"),
    [(401, "bearer token in TEST_X_BEARER was rejected"), (403, "access level or credits")],
)
async def test_401_and_403_say_which_credential_or_access_is_missing(
    fake: FakeX, make: Sources, status: int, said: str
) -> None:
    fake.failures.append(httpx.Response(status, json={"title": "Forbidden", "detail": "client-not-enrolled"}))
    with pytest.raises(SourceError) as caught:
        await make().poll(None)
    assert caught.value.kind is ErrorKind.AUTH and said in str(caught.value)


async def test_partial_errors_keep_the_posts_they_come_with(fake: FakeX, make: Sources) -> None:
    fake.add(tweet("Toulouse: panne de feux"))
    fake.extra["errors"] = [{"value": "1", "detail": "Could not find user with ids: [1].", "title": "Not Found Error",
                             "resource_type": "user", "parameter": "ids", "resource_id": "1",
                             "type": "https://api.twitter.com/2/problems/resource-not-found"}]  # fmt: skip
    batch = await make(mentions=False).poll(None)
    assert [m.text for m in batch.mentions] == ["Toulouse: panne de feux"]


def not_found(kind: str, rid: str, detail: str, parameter: str) -> dict[str, Any]:
    """A partial error as docs.x.com documents it (200 OK, beside `data`)."""
    return {"value": rid, "detail": detail, "title": "Not Found Error", "resource_type": kind,
            "parameter": parameter, "resource_id": rid,
            "type": "https://api.twitter.com/2/problems/resource-not-found"}  # fmt: skip


def test_withheld_post_and_author_are_shown_as_withheld_not_dropped() -> None:
    post = tweet("Manif place du Capitole", ("77", "collectif_t", "Collectif T"))
    post["withheld"] = {"copyright": False, "country_codes": ["FR", "DE"], "scope": "tweet"}
    post["_author"]["withheld"] = {"country_codes": ["XX"], "scope": "user"}
    page = read_page({"data": [post], "includes": {"users": [post["_author"]]}})
    m = post_mention("x", page.posts[0], page.users)
    assert m is not None
    assert m.text == "[withheld in FR, DE] Manif place du Capitole"
    assert m.author_name == "Collectif T (withheld everywhere)"
    copyright_post = {**post, "withheld": {"copyright": True, "country_codes": ["XY"]}}
    assert (post_mention("x", copyright_post, page.users) or m).text.startswith("[withheld for copyright] ")


async def test_a_suspended_author_s_post_is_kept_with_a_clear_mark(fake: FakeX, make: Sources) -> None:
    post = tweet("Toulouse: travaux bruyants la nuit", ("666", "gone_user", "Gone"))
    del post["_author"]  # X leaves a suspended author out of includes and says why in errors
    fake.add(post)
    fake.extra["errors"] = [not_found("user", "666", "User has been suspended: [666].", "author_id")]
    batch = await make(mentions=False).poll(None)
    assert [(m.author, m.author_name, m.url) for m in batch.mentions] == [
        ("(suspended)", "⊘ account suspended", f"https://x.com/i/web/status/{post['id']}")
    ]
    assert batch.deletes == []


async def test_a_held_post_x_reports_deleted_is_marked_deleted_as_on_mastodon(fake: FakeX, tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(WATCHLIST.format(user_id=CITY_ID, env=ENV))
    first = tweet("Toulouse: arbre tombé rue d'Alsace")
    fake.add(first)
    watchlist = load_watchlist(path)
    store = await Store.open(watchlist.database)
    collector = Collector(watchlist, store, SourceContext(http_factory=fake.factory))
    try:
        assert await collector.run_once() == {"x": None}
        fake.add(tweet("Toulouse: l'arbre est toujours là ?", reply_to=first["id"], to_user="2244994945"))
        fake.extra["errors"] = [
            not_found("tweet", first["id"], f"Could not find tweet with referenced_tweets.id: [{first['id']}].",
                      "referenced_tweets.id"),
            not_found("tweet", "1859000000000000001", "Could not find tweet with referenced_tweets.id: "
                      "[1859000000000000001].", "referenced_tweets.id"),  # never held: nothing to mark
        ]  # fmt: skip
        source = collector.sources[0]
        assert isinstance(source, XSource)
        source.meter.next_due = None  # the budget's pacing is tested elsewhere: poll again now
        assert await collector.run_once() == {"x": None}
    finally:
        await collector.aclose()
        await store.close()
    conn = sqlite3.connect(watchlist.database)
    rows = conn.execute("SELECT remote_id, deleted_at IS NOT NULL FROM mentions ORDER BY remote_id").fetchall()
    conn.close()
    assert sorted(rows) == sorted([(first["id"], 1), (fake.search_posts[0]["id"], 0)])


# -- configuration and the whole path --------------------------------------------------------

WATCHLIST = """\
city: Toulouse Métropole
database: monitor.db
terms:
  - name: ville
    keywords: [Toulouse]
sources:
  - name: x
    type: x
    user_id: "{user_id}"
    bearer_token_env: {env}
    budget:
      monthly: 25
"""


def test_watchlist_entry_parses_with_documented_default_prices(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(WATCHLIST.format(user_id=CITY_ID, env=ENV))
    options = load_watchlist(path).sources[0].options
    assert options.budget == Budget(25.0, read=0.005, create=0.015, create_with_link=0.20)


@pytest.mark.parametrize(("values", "problem"), [({"user_id": "@toulouse"}, "not an X user id"),
                                                 ({"env": "AAAA-secret"}, "not an environment variable")])  # fmt: skip
def test_bad_x_options_are_errors_at_their_line(tmp_path: Path, values: dict[str, str], problem: str) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(WATCHLIST.format(**{"user_id": CITY_ID, "env": ENV, **values}))
    with pytest.raises(ConfigError) as caught:
        load_watchlist(path)
    assert problem in str(caught.value) and caught.value.line > 6


async def test_collector_keeps_mentions_whatever_the_terms_with_the_cursor(
    fake: FakeX, tmp_path: Path, database: Database
) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(WATCHLIST.format(user_id=CITY_ID, env=ENV))
    fake.add(tweet("@toulouse merci pour la réparation"), mention=True)  # no term: kept, it is to us
    fake.add(tweet("Fuite d'eau à Toulouse"), tweet("Rien à voir"))
    watchlist = load_watchlist(path)
    store = database  # on each engine: the spend is added in the ingest's transaction on both
    collector = Collector(watchlist, store, SourceContext(http_factory=fake.factory))
    try:
        assert await collector.run_once() == {"x": None}
        assert await collector.run_once() == {"x": None}  # nothing twice
        assert "this month" in collector.status["x"].detail
        cursor = json.loads(await store.cursor("x") or "")
        spend = await store.spend()
        rows = sorted((r.network, r.text) for r in await store.changes_since(0))
    finally:
        await collector.aclose()
    assert rows == [("x", "@toulouse merci pour la réparation"), ("x", "Fuite d'eau à Toulouse")]
    assert set(cursor["feeds"]) == {"mentions", "search:Toulouse -is:retweet"}
    # three posts, and their author once in each page's includes; the second poll found nothing and cost nothing
    assert [(s.source, s.reads_usd) for s in spend] == [("x", pytest.approx(3 * 0.005 + 2 * 0.010))]


async def test_a_position_older_than_seven_days_starts_again_from_the_latest(fake: FakeX, make: Sources) -> None:
    source = make(mentions=False)
    fake.add(tweet("Toulouse: vieux"))
    old_cursor = (await source.poll(None)).cursor
    fake.add(tweet("Toulouse: nouveau"))
    stale = {"errors": [{"parameters": {"since_id": ["1860000000000000000"]},
                         "message": "Invalid 'since_id':'1860000000000000000'. 'since_id' must be a tweet id created"
                                    " after 2026-11-23T09:00:00Z."}],
             "title": "Invalid Request", "detail": "One or more parameters to your request was invalid.",
             "type": "https://api.twitter.com/2/problems/invalid-request"}  # fmt: skip
    fake.failures_at["/2/tweets/search/recent"] = [httpx.Response(400, json=stale)]
    batch = await source.poll(old_cursor)
    assert [m.text for m in batch.mentions] == ["Toulouse: nouveau", "Toulouse: vieux"]  # the latest page again
    assert "since_id" not in fake.calls("/2/tweets/search/recent")[-1].url.params


async def test_another_bad_request_is_refused_not_a_reset(fake: FakeX, make: Sources) -> None:
    fake.failures.append(httpx.Response(400, json={"errors": [{"parameters": {"query": ["x"]}, "message": "bad"}],
                                                   "title": "Invalid Request"}))  # fmt: skip
    with pytest.raises(SourceError) as caught:
        await make(mentions=False).poll(None)
    assert caught.value.kind is ErrorKind.REFUSED


async def test_a_peer_naming_since_id_when_none_was_sent_is_refused_not_looped(fake: FakeX, make: Sources) -> None:
    body = {"errors": [{"parameters": {"since_id": ["1"]}, "message": "stale"}], "title": "Invalid Request"}
    fake.failures_at["/2/tweets/search/recent"] = [httpx.Response(400, json=body) for _ in range(3)]
    with pytest.raises(SourceError) as caught:
        await make(mentions=False).poll(None)
    assert caught.value.kind is ErrorKind.REFUSED and len(fake.requests) == 1
