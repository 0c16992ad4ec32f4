"""The RSS/Atom source against a loopback HTTP server: parsing, conditional GETs, failures, storage."""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fakes_feed import (
    GOOGLE_ALERTS_ATOM,
    LADEPECHE_ITEMS,
    LADEPECHE_RSS,
    REDDIT_SEARCH_ATOM,
    FeedServer,
    Reply,
    feed_server_fixture,  # noqa: F401  (the feed_server fixture)
    rss,
    rss_item,
)

from monitor.core.config import ConfigError
from monitor.db.store import Store
from monitor.engine.collector import Collector
from monitor.networks import load_watchlist
from monitor.networks.base import SourceContext, SourceError
from monitor.networks.demo import DemoOptions, DemoSource
from monitor.networks.feed import FeedOptions, FeedSource, unwrap_link
from monitor.networks.htmltext import Layout, html_to_text

ETAG = '"5f2a-61327b4c"'
LAST_MODIFIED = "Tue, 12 Mar 2024 10:02:17 GMT"


def source(*urls: str) -> FeedSource:
    return FeedSource("presse", FeedOptions(tuple(urls)), SourceContext())


async def poll(src: FeedSource, cursor: str | None = None):  # noqa: ANN201
    try:
        return await src.poll(cursor)
    finally:
        await src.aclose()


# -- configuration ---------------------------------------------------------------------------


def write_watchlist(tmp_path: Path, sources: str) -> Path:
    path = tmp_path / "watchlist.yaml"
    path.write_text(
        "city: Toulouse\nterms:\n  - name: transports\n    keywords: [Tisséo, métro, tram]\nsources:\n" + sources,
        encoding="utf-8",
    )
    return path


def test_watchlist_feed_source_reads_urls_and_defaults_to_ten_minutes(tmp_path: Path) -> None:
    path = write_watchlist(
        tmp_path,
        "  - name: presse-locale\n"
        "    type: feed\n"
        "    urls:\n"
        "      - https://www.ladepeche.fr/communes/toulouse,31555.rss\n"
        "      - https://www.google.com/alerts/feeds/0123456789/1234567890\n",
    )
    spec = load_watchlist(path).sources[0]
    assert spec.type == "feed"
    assert spec.poll_interval == timedelta(minutes=10)
    assert spec.options == FeedOptions(
        (
            "https://www.ladepeche.fr/communes/toulouse,31555.rss",
            "https://www.google.com/alerts/feeds/0123456789/1234567890",
        )
    )


@pytest.mark.parametrize(
    ("urls", "line", "problem"),
    [
        ("    urls:\n      - https://a.example/rss\n      - ftp://b.example/rss\n", 10, "not a web address"),
        ("    urls:\n      - https://a.example/rss\n      - https://a.example/rss\n", 10, "duplicate feed"),
        ("    urls: []\n", 8, "no feed addresses"),
        ("    url: https://a.example/rss\n", 8, "unknown key 'url'"),
    ],
)
def test_watchlist_feed_errors_name_the_line(tmp_path: Path, urls: str, line: int, problem: str) -> None:
    path = write_watchlist(tmp_path, "  - name: presse\n    type: feed\n" + urls)
    with pytest.raises(ConfigError) as caught:
        load_watchlist(path)
    assert caught.value.line == line
    assert problem in caught.value.problem


# -- payloads --------------------------------------------------------------------------------


async def test_press_rss_items_become_plain_text_mentions(feed_server: FeedServer) -> None:
    url = feed_server.serve("/communes/toulouse,31555.rss", Reply(LADEPECHE_RSS))
    batch = await poll(source(url))
    assert [m.remote_id for m in batch.mentions] == ["11820117", "11820483"]  # oldest first
    metro = batch.mentions[1]
    assert metro.network == "feed"
    assert metro.source == "presse"
    assert metro.author == "Jean Dupont"
    assert metro.author_name == "Jean Dupont"
    assert metro.text == (
        "Toulouse : la ligne B du métro fermée ce week-end pour travaux\n\n"
        "Des travaux de maintenance sur la ligne B de Tisséo obligent à fermer la ligne samedi et dimanche.\n"
        "Des bus relais desserviront toutes les stations."
    )
    assert "<" not in metro.text and "&nbsp;" not in metro.text and "image.jpg" not in metro.text
    assert metro.url == "https://www.ladepeche.fr/2024/03/12/11820483.php"
    assert metro.published_at == datetime(2024, 3, 12, 9, 5, tzinfo=UTC)
    assert metro.tags == ("Toulouse", "Transports")
    assert metro.lang == "fr"
    assert metro.raw == {
        "feed": url,
        "id": "11820483",
        "link": "https://www.ladepeche.fr/2024/03/12/11820483.php",
        "title": "Toulouse : la ligne B du métro fermée ce week-end pour travaux",
        "published": "Tue, 12 Mar 2024 10:05:00 +0100",
    }
    json.dumps(metro.raw)  # storable as is


async def test_google_alerts_links_are_unwrapped_and_bold_tags_removed(feed_server: FeedServer) -> None:
    url = feed_server.serve(
        "/alerts/feeds/0123456789/1234567890",
        Reply(GOOGLE_ALERTS_ATOM, content_type="text/xml; charset=UTF-8"),
    )
    batch = await poll(source(url))
    assert len(batch.mentions) == 2
    panne = batch.mentions[1]
    assert panne.remote_id == "tag:google.com,2013:googlealerts/feed:9038475610293847561"
    assert panne.url == "https://actu.fr/occitanie/toulouse_31555/panne-ligne-a_60912345.html"
    assert panne.text == (
        "Panne sur la ligne A du métro Tisséo : le trafic reprend\n\n"
        "Le métro Tisséo a été arrêté pendant 40 minutes ce mardi matin entre Jolimont et Basso-Cambo. ..."
    )
    # Alerts have an empty <author><name>: the alert's own title stands in.
    assert panne.author == "Google Alert - tisséo"
    assert panne.author_name == ""
    assert panne.published_at == datetime(2024, 3, 12, 8, 41, 15, tzinfo=UTC)
    assert batch.mentions[0].url == "https://www.ladepeche.fr/2024/03/11/tarifs-tisseo-11818822.php"


async def test_bundled_demo_shows_google_alerts_links_unwrapped_as_the_readme_says() -> None:
    demo = DemoSource("demo", DemoOptions(loop=False), SourceContext(replay_all=True))
    wrapped = [it["url"] for it in demo.items if "google.com/url" in (it.get("url") or "")]
    urls = [m.url for m in (await demo.poll(None)).mentions]
    assert wrapped  # the file keeps the links as Google sends them
    assert not [u for u in urls if "google.com/url" in u]
    assert unwrap_link(wrapped[0]) in urls


async def test_reddit_search_feed_keeps_the_user_and_drops_markup(feed_server: FeedServer) -> None:
    url = feed_server.serve(
        "/r/toulouse/search.rss?q=tisseo&sort=new&restrict_sr=on",
        Reply(REDDIT_SEARCH_ATOM, content_type="application/atom+xml; charset=UTF-8"),
    )
    [post] = (await poll(source(url))).mentions
    assert post.remote_id == "t3_1bcx7qz"
    assert post.author == "/u/garonne_velo"
    assert post.author_name == "/u/garonne_velo"
    assert post.tags == ("toulouse",)
    assert post.url == "https://www.reddit.com/r/toulouse/comments/1bcx7qz/tram_t1_bloqu%C3%A9/"
    assert post.text.startswith(
        "Tram T1 bloqué depuis 20 min ? (Tisséo muet)\n\n"
        "Ça fait 20 minutes qu'on attend le tram T1 à Palais de Justice, aucune info sur les panneaux."
    )
    assert "SC_OFF" not in post.text and "&quot;" not in post.text and "&#39;" not in post.text


async def test_entry_without_guid_is_keyed_by_link_then_by_a_hash(feed_server: FeedServer) -> None:
    body = rss(
        "<item><title>Travaux rue de Metz</title><link>https://example.fr/metz</link>"
        "<pubDate>Tue, 12 Mar 2024 10:05:00 +0100</pubDate></item>",
        "<item><title>Métro : pas de lien</title><pubDate>Tue, 12 Mar 2024 11:05:00 +0100</pubDate></item>",
        "<item><title>Métro : pas de lien</title><pubDate>Tue, 12 Mar 2024 11:05:00 +0100</pubDate></item>",
        "<item><title>Sans date</title></item>",
    ).encode()
    url = feed_server.serve("/sans-guid.rss", Reply(body))
    before = datetime.now(tz=UTC)
    mentions = {m.text: m for m in (await poll(source(url))).mentions}
    assert mentions["Travaux rue de Metz"].remote_id == "https://example.fr/metz"
    hashed = mentions["Métro : pas de lien"].remote_id
    assert hashed.startswith("sha256:") and len(hashed) == 7 + 64
    undated = mentions["Sans date"]
    assert undated.published_at >= before and undated.published_at.tzinfo is not None


async def test_text_from_the_network_is_sanitised(feed_server: FeedServer) -> None:
    body = rss(
        rss_item(
            "evil",
            "Tisséo\x1b]52;c;Y3VybCBldmlsLnNoIHwgc2g=\x07 \u202eetatS\u202c annonce",
            "<p>Ligne A\x1b[2J rétablie\u200b.</p>",
            "Tue, 12 Mar 2024 10:05:00 +0100",
            creator="Bob\x1b[31m",
        )
    )
    body = body.replace("https://www.ladepeche.fr/2024/03/12/evil.php", "javascript:alert(1)")
    url = feed_server.serve("/evil.rss", Reply(body.encode()))
    [m] = (await poll(source(url))).mentions
    assert m.text == "Tisséo etatS annonce\n\nLigne A rétablie."
    assert m.author == "Bob"
    assert m.url == ""  # only http(s) links are kept


def test_html_to_text_and_unwrap_link_helpers() -> None:
    assert html_to_text("<ul><li>un</li><li>deux</li></ul><p>trois&nbsp;<i>quatre</i></p>", Layout.LINES) == (
        "un\ndeux\ntrois quatre"
    )
    assert html_to_text("<script>alert(1)</script>a < b", Layout.LINES) == "a < b"
    assert unwrap_link("https://www.google.fr/url?q=https://x.fr/a%3Fb%3D1&sa=U") == "https://x.fr/a?b=1"
    assert unwrap_link("https://www.google.com/url?url=javascript:alert(1)") == (
        "https://www.google.com/url?url=javascript:alert(1)"
    )
    assert unwrap_link("https://evil.example/url?url=https://x.fr/") == "https://evil.example/url?url=https://x.fr/"


# -- conditional GET -------------------------------------------------------------------------


async def test_second_poll_sends_validators_and_a_304_yields_nothing(feed_server: FeedServer) -> None:
    path = "/communes/toulouse,31555.rss"
    url = feed_server.serve(path, Reply(LADEPECHE_RSS, etag=ETAG, last_modified=LAST_MODIFIED))
    first = await poll(source(url))
    assert len(first.mentions) == 2
    assert json.loads(first.cursor or "") == {url: {"etag": ETAG, "last_modified": LAST_MODIFIED}}
    assert "If-None-Match" not in feed_server.seen(path)[0].headers

    second = await poll(source(url), first.cursor)
    sent = feed_server.seen(path)[1].headers
    assert sent["If-None-Match"] == ETAG
    assert sent["If-Modified-Since"] == LAST_MODIFIED
    assert second.mentions == []
    assert json.loads(second.cursor or "") == json.loads(first.cursor or "")


async def test_changed_feed_after_304_returns_its_entries_and_new_validators(feed_server: FeedServer) -> None:
    path = "/feed.rss"
    newer = rss(
        rss_item("3", "Tram T2 : nouvelle station", "<p>Ouverture</p>", "Wed, 13 Mar 2024 10:00:00 +0100"),
        *LADEPECHE_ITEMS,
    ).encode()
    url = feed_server.serve(
        path,
        Reply(LADEPECHE_RSS, etag='"v1"'),
        Reply(LADEPECHE_RSS, etag='"v1"'),
        Reply(newer, etag='"v2"'),
    )
    src = source(url)
    try:
        first = await src.poll(None)
        unchanged = await src.poll(first.cursor)
        changed = await src.poll(unchanged.cursor)
    finally:
        await src.aclose()
    assert [feed_server.seen(path)[i].headers.get("If-None-Match") for i in range(3)] == [
        None,
        '"v1"',
        '"v1"',
    ]
    assert unchanged.mentions == []
    assert {m.remote_id for m in changed.mentions} == {"3", "11820483", "11820117"}
    assert json.loads(changed.cursor or "") == {url: {"etag": '"v2"'}}


async def test_last_modified_alone_is_used_for_the_conditional_get(feed_server: FeedServer) -> None:
    path = "/lm.rss"
    url = feed_server.serve(path, Reply(LADEPECHE_RSS, last_modified=LAST_MODIFIED))
    first = await poll(source(url))
    second = await poll(source(url), first.cursor)
    assert "If-None-Match" not in feed_server.seen(path)[1].headers
    assert feed_server.seen(path)[1].headers["If-Modified-Since"] == LAST_MODIFIED
    assert second.mentions == []


async def test_feed_without_validators_is_fetched_in_full_each_time(feed_server: FeedServer) -> None:
    path = "/plain.rss"
    url = feed_server.serve(path, Reply(LADEPECHE_RSS))
    first = await poll(source(url), json.dumps({"https://gone.example/rss": {"etag": '"x"'}}))
    assert json.loads(first.cursor or "") == {}  # removed addresses are forgotten too
    second = await poll(source(url), first.cursor)
    assert len(second.mentions) == 2
    assert "If-None-Match" not in feed_server.seen(path)[1].headers


async def test_redirects_are_followed(feed_server: FeedServer) -> None:
    feed_server.serve("/old.rss", Reply(status=301, headers={"Location": "/new.rss"}))
    feed_server.serve("/new.rss", Reply(LADEPECHE_RSS, etag=ETAG))
    batch = await poll(source(feed_server.url("/old.rss")))
    assert len(batch.mentions) == 2
    assert json.loads(batch.cursor or "") == {feed_server.url("/old.rss"): {"etag": ETAG}}


# -- failures --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "kind", "words"),
    [
        (Reply(b"not found", status=404, content_type="text/html"), "config", "HTTP 404"),
        (Reply(b"gone", status=410, content_type="text/html"), "config", "HTTP 410"),
        (Reply(b"blocked", status=403, content_type="text/html"), "config", "access refused"),
        (Reply(b"oops", status=503, content_type="text/html"), "transient", "server error 503"),
        (Reply(b"<html>", status=500, content_type="text/html"), "transient", "server error 500"),
        (Reply(b"", content_type="application/rss+xml"), "transient", "empty document"),
        (
            Reply(
                b"<!DOCTYPE html><html><head><title>Consentement</title></head>"
                b"<body><form><p>Avant de continuer & accepter</form></body></html>",
                content_type="text/html; charset=utf-8",
            ),
            "transient",
            "not a feed",
        ),
        (Reply(b'{"error": "not a feed"}', content_type="application/json"), "transient", "not a feed"),
    ],
)
async def test_a_failing_feed_raises_the_right_kind(
    feed_server: FeedServer, reply: Reply, kind: str, words: str
) -> None:
    url = feed_server.serve("/feed.rss", reply)
    with pytest.raises(SourceError) as caught:
        await poll(source(url), json.dumps({url: {"etag": '"old"'}}))
    assert caught.value.kind == kind
    assert words in str(caught.value)
    assert "127.0.0.1" in str(caught.value)


async def test_429_honours_retry_after_and_does_not_call_again_before_it(feed_server: FeedServer) -> None:
    limited = feed_server.serve("/limited.rss", Reply(b"slow down", status=429, headers={"Retry-After": "120"}))
    src = source(limited)
    try:
        with pytest.raises(SourceError) as caught:
            await src.poll(None)
        assert caught.value.kind == "rate"
        assert caught.value.retry_after == pytest.approx(120)
        with pytest.raises(SourceError) as again:
            await src.poll(None)
        assert again.value.kind == "rate" and 0 < (again.value.retry_after or 0) <= 120
    finally:
        await src.aclose()
    assert len(feed_server.seen("/limited.rss")) == 1


async def test_one_failing_feed_keeps_its_validators_while_the_others_advance(
    feed_server: FeedServer,
) -> None:
    good = feed_server.serve("/good.rss", Reply(LADEPECHE_RSS, etag='"good-2"'))
    broken = feed_server.serve("/broken.rss", Reply(b"upstream down", status=502, content_type="text/plain"))
    cursor = json.dumps({good: {"etag": '"good-1"'}, broken: {"etag": '"broken-1"', "last_modified": LAST_MODIFIED}})
    src = source(good, broken)
    try:
        batch = await src.poll(cursor)
    finally:
        await src.aclose()
    assert len(batch.mentions) == 2
    assert json.loads(batch.cursor or "") == {
        good: {"etag": '"good-2"'},
        broken: {"etag": '"broken-1"', "last_modified": LAST_MODIFIED},
    }
    assert "server error 502" in src.problems[broken]
    assert good not in src.problems
    assert feed_server.seen("/broken.rss")[0].headers["If-None-Match"] == '"broken-1"'


async def test_every_feed_failing_raises_the_most_severe_kind(feed_server: FeedServer) -> None:
    a = feed_server.serve("/a.rss", Reply(b"", status=503))
    b = feed_server.serve("/b.rss", Reply(b"", status=410))
    c = feed_server.serve("/c.rss", Reply(b"", status=429, headers={"Retry-After": "30"}))
    with pytest.raises(SourceError) as caught:
        await poll(source(a, b, c))
    assert caught.value.kind == "config"
    for words in ("server error 503", "HTTP 410", "rate limited"):
        assert words in str(caught.value)


async def test_unreachable_server_is_transient() -> None:
    with pytest.raises(SourceError) as caught:
        await poll(source("http://127.0.0.1:9/feed.rss"))  # discard port: nothing listens
    assert caught.value.kind == "transient"


async def test_ill_formed_xml_keeps_the_entries_it_has(feed_server: FeedServer) -> None:
    body = (
        b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Mairie & co</title>'
        b"<item><title>Tram T1 & T2 perturb\xc3\xa9s</title><guid>1</guid></item>"
        b"<item><title>M\xc3\xa9tro ligne A</title><guid>2</guid></item>"
        b"<item><title>Coupure</title><guid>3</guid>"  # truncated: no closing tags
    )
    url = feed_server.serve("/ill.rss", Reply(body, etag='"ill"'))
    batch = await poll(source(url))
    assert [m.text for m in batch.mentions] == ["Tram T1 & T2 perturbés", "Métro ligne A", "Coupure"]
    assert json.loads(batch.cursor or "") == {url: {"etag": '"ill"'}}


async def test_well_formed_feed_without_entries_is_not_an_error(feed_server: FeedServer) -> None:
    url = feed_server.serve("/vide.rss", Reply(rss().encode(), etag='"empty"'))
    batch = await poll(source(url))
    assert batch.mentions == []
    assert json.loads(batch.cursor or "") == {url: {"etag": '"empty"'}}


# -- encodings -------------------------------------------------------------------------------

TEXT = "Métro à l'arrêt : « grève » – 5 € ; Œuvre"


@pytest.mark.parametrize(
    ("declared", "written", "content_type"),
    [
        ("ISO-8859-1", "utf-8", "application/rss+xml"),  # a CMS that lies in its XML declaration
        ("ISO-8859-1", "utf-8", "text/xml; charset=ISO-8859-1"),  # ... and in its HTTP header
        ("UTF-8", "windows-1252", "application/rss+xml"),  # an old export written in Latin
        ("UTF-8", "windows-1252", "application/rss+xml; charset=UTF-8"),
        ("windows-1252", "windows-1252", "application/rss+xml"),
        ("UTF-8", "utf-8", "text/xml"),  # text/xml without charset means US-ASCII to RFC 3023
    ],
)
async def test_wrongly_declared_encodings_still_give_readable_text(
    feed_server: FeedServer, declared: str, written: str, content_type: str
) -> None:
    body = rss(
        rss_item("e1", TEXT, f"<p>Grève : {TEXT}</p>", "Tue, 12 Mar 2024 10:05:00 +0100"), encoding=declared
    ).encode(written)
    url = feed_server.serve("/enc.rss", Reply(body, content_type=content_type))
    [m] = (await poll(source(url))).mentions
    assert m.text == f"{TEXT}\n\nGrève : {TEXT}"


async def test_iso_8859_1_feed_with_only_latin_characters_is_read_as_declared(
    feed_server: FeedServer,
) -> None:
    text = "Métro à l'arrêt, grève à Jolimont"
    body = rss(rss_item("l1", text, "", "Tue, 12 Mar 2024 10:05:00 +0100"), encoding="ISO-8859-1")
    url = feed_server.serve("/latin.rss", Reply(body.encode("iso-8859-1")))
    [m] = (await poll(source(url))).mentions
    assert m.text == text


# feedparser's own corpus (tests/data/feedparser, BSD licence beside it): feeds in legacy encodings
# that declare none, each naming in its header comment the encoding it is really in.
CORPUS = Path(__file__).parent / "data" / "feedparser"
UNDECLARED = ["eucjp", "euckr", "gb2312", "koi8r", "shiftjis", "tis620", "windows1255"]


@pytest.mark.parametrize("name", UNDECLARED)
async def test_feed_without_declared_encoding_is_detected(feed_server: FeedServer, name: str) -> None:
    data = (CORPUS / f"chardet_{name}.xml").read_bytes()
    encoding = re.search(rb"encoding == '([^']+)'", data).group(1).decode()  # type: ignore[union-attr]
    first = re.search(r"<(title|description)>(.*?)</", data.decode(encoding), re.S).group(2)  # type: ignore[union-attr]
    url = feed_server.serve(f"/{name}.xml", Reply(data, content_type="application/xml"))
    [m] = (await poll(source(url))).mentions
    assert m.text.startswith(first.strip()[:25])


async def test_one_stray_byte_spoils_only_itself_not_the_whole_utf8_feed(feed_server: FeedServer) -> None:
    # bozo_linenoise.xml: valid ’ and ” then one byte that is not UTF-8 (feedparser reads it all as 1252).
    data = (CORPUS / "bozo_linenoise.xml").read_bytes()
    url = feed_server.serve("/noise.xml", Reply(data, content_type="application/rss+xml"))
    [m] = (await poll(source(url))).mentions
    assert m.text == "’”\ufffd"  # the "<>" is an empty tag to the HTML reader


async def test_french_utf8_feed_with_a_stray_byte_keeps_its_accents(feed_server: FeedServer) -> None:
    body = rss(rss_item("s1", TEXT, "", "Tue, 12 Mar 2024 10:05:00 +0100")).encode("utf-8")
    body = body.replace("Métro".encode(), b"M\xe9tro", 1)  # one Latin-1 byte in a UTF-8 feed
    url = feed_server.serve("/stray.rss", Reply(body, content_type="text/xml; charset=ISO-8859-1"))
    [m] = (await poll(source(url))).mentions
    assert m.text == TEXT.replace("Métro", "M\ufffdtro")


# -- source -> collector -> SQLite -----------------------------------------------------------


async def test_collector_stores_matching_entries_and_the_cursor(feed_server: FeedServer, tmp_path: Path) -> None:
    press = feed_server.serve("/communes/toulouse,31555.rss", Reply(LADEPECHE_RSS, etag='"p1"'))
    alerts = feed_server.serve(
        "/alerts/feeds/0123456789/1234567890",
        Reply(GOOGLE_ALERTS_ATOM, content_type="text/xml; charset=UTF-8", last_modified=LAST_MODIFIED),
    )
    reddit = feed_server.serve(
        "/r/toulouse/search.rss?q=tisseo&sort=new",
        Reply(REDDIT_SEARCH_ATOM, content_type="application/atom+xml", etag='W/"r1"'),
    )
    path = write_watchlist(
        tmp_path,
        f"  - name: presse-locale\n    type: feed\n    poll_interval: 1s\n"
        f"    urls:\n      - {press}\n      - {alerts}\n      - '{reddit}'\n",
    )
    watchlist = load_watchlist(path)
    db = tmp_path / "monitor.db"
    store = await Store.open(db)
    collector = Collector(watchlist, store)
    try:
        assert await collector.run_once() == {"presse-locale": None}
        status = collector.status["presse-locale"]
        assert (status.stored, status.filtered) == (4, 1)  # the rugby article matches no term
        assert await collector.run_once() == {"presse-locale": None}  # three 304s
        assert collector.status["presse-locale"].stored == 4
    finally:
        await collector.aclose()
        await store.close()

    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT remote_id, network, terms, url FROM mentions ORDER BY remote_id").fetchall()
    cursor = json.loads(conn.execute("SELECT cursor FROM cursors WHERE source = 'presse-locale'").fetchone()[0])
    conn.close()
    assert [r[0] for r in rows] == [
        "11820483",
        "t3_1bcx7qz",
        "tag:google.com,2013:googlealerts/feed:1748392018475610294",
        "tag:google.com,2013:googlealerts/feed:9038475610293847561",
    ]
    assert {r[1] for r in rows} == {"feed"}
    assert {r[2] for r in rows} == {"transports"}
    assert "https://actu.fr/occitanie/toulouse_31555/panne-ligne-a_60912345.html" in {r[3] for r in rows}
    assert cursor == {
        press: {"etag": '"p1"'},
        alerts: {"last_modified": LAST_MODIFIED},
        reddit: {"etag": 'W/"r1"'},
    }
    for p in ("/communes/toulouse,31555.rss", "/alerts/feeds/0123456789/1234567890"):
        assert len(feed_server.seen(p)) == 2
    assert feed_server.seen("/r/toulouse/search.rss?q=tisseo&sort=new")[1].headers["If-None-Match"] == 'W/"r1"'
