"""A loopback feed server that honours conditional GETs, and feed payloads shaped like the real ones.

The payloads copy the shape of what the sites serve: La Dépêche's RSS 2.0 (CDATA HTML descriptions,
dc:creator, enclosure images), a Google Alerts Atom feed (redirect links, <b> in title and content,
empty <author><name>) and a Reddit search feed (Atom, /u/ authors, subreddit categories).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web


@dataclass
class Reply:
    body: bytes = b""
    status: int = 200
    content_type: str = "application/rss+xml; charset=UTF-8"
    etag: str | None = None
    last_modified: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Seen:
    path: str
    headers: dict[str, str]


class FeedServer:
    """Serves a queue of replies per path (the last one repeats) and records every request."""

    def __init__(self) -> None:
        self.replies: dict[str, list[Reply]] = {}
        self.requests: list[Seen] = []
        self.base = ""

    def url(self, path: str) -> str:
        return self.base + path

    def serve(self, path: str, *replies: Reply) -> str:
        self.replies[path] = list(replies)
        return self.url(path)

    def seen(self, path: str) -> list[Seen]:
        return [r for r in self.requests if r.path == path]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(Seen(request.path_qs, dict(request.headers)))
        queue = self.replies.get(request.path_qs) or self.replies.get(request.path)
        if not queue:
            return web.Response(status=404, text="not found")
        reply = queue.pop(0) if len(queue) > 1 else queue[0]
        headers = dict(reply.headers)
        if reply.etag:
            headers["ETag"] = reply.etag
        if reply.last_modified:
            headers["Last-Modified"] = reply.last_modified
        if reply.status == 200 and _not_modified(request, reply):
            return web.Response(status=304, headers=headers)
        headers["Content-Type"] = reply.content_type
        return web.Response(status=reply.status, body=reply.body, headers=headers)


def _not_modified(request: web.Request, reply: Reply) -> bool:
    """RFC 9110 §13.1: If-None-Match decides when present; else an exact If-Modified-Since match."""
    inm = request.headers.get("If-None-Match")
    if inm is not None:
        return reply.etag is not None and reply.etag in [t.strip() for t in inm.split(",")]
    ims = request.headers.get("If-Modified-Since")
    return ims is not None and reply.last_modified is not None and ims == reply.last_modified


@pytest.fixture(name="feed_server")
async def feed_server_fixture() -> AsyncIterator[FeedServer]:
    server = FeedServer()
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host="127.0.0.1", port=0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    server.base = f"http://127.0.0.1:{port}"
    try:
        yield server
    finally:
        await runner.cleanup()


def rss_item(guid: str, title: str, description: str, when: str, creator: str = "", extra: str = "") -> str:
    creator_tag = f"<dc:creator><![CDATA[{creator}]]></dc:creator>" if creator else ""
    return f"""
    <item>
      <title><![CDATA[{title}]]></title>
      <link>https://www.ladepeche.fr/2024/03/12/{guid}.php</link>
      <description><![CDATA[{description}]]></description>
      <pubDate>{when}</pubDate>
      <guid isPermaLink="false">{guid}</guid>
      {creator_tag}{extra}
    </item>"""


def rss(*items: str, title: str = "Toulouse - ladepeche.fr", encoding: str = "UTF-8") -> str:
    return f"""<?xml version="1.0" encoding="{encoding}"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom"
     xmlns:media="http://search.yahoo.com/mrss/">
  <channel>
    <title>{title}</title>
    <link>https://www.ladepeche.fr/communes/toulouse,31555.html</link>
    <description>Toute l'actualité de Toulouse en temps réel</description>
    <language>fr-FR</language>
    <copyright>ladepeche.fr</copyright>
    <lastBuildDate>Tue, 12 Mar 2024 11:02:17 +0100</lastBuildDate>
    <atom:link href="https://www.ladepeche.fr/communes/toulouse,31555.rss" rel="self" type="application/rss+xml"/>
    <image>
      <url>https://www.ladepeche.fr/images/header/logo_ddm.png</url>
      <title>Toulouse - ladepeche.fr</title>
      <link>https://www.ladepeche.fr/communes/toulouse,31555.html</link>
    </image>{"".join(items)}
  </channel>
</rss>
"""  # noqa: E501


LADEPECHE_ITEMS = (
    rss_item(
        "11820483",
        "Toulouse : la ligne B du métro fermée ce week-end pour travaux",
        '<p><img src="https://images.ladepeche.fr/api/v1/images/view/65f0a1/large/image.jpg" '
        'width="1200" height="800" /></p><p>Des travaux de maintenance sur la ligne B de '
        "<strong>Tisséo</strong>&nbsp;obligent à fermer la ligne samedi et dimanche.<br/>"
        "Des bus relais desserviront toutes les stations.</p>",
        "Tue, 12 Mar 2024 10:05:00 +0100",
        creator="Jean Dupont",
        extra="""
      <category><![CDATA[Toulouse]]></category>
      <category><![CDATA[Transports]]></category>
      <enclosure url="https://images.ladepeche.fr/api/v1/images/view/65f0a1/large/image.jpg"
                 length="0" type="image/jpeg"/>""",
    ),
    rss_item(
        "11820117",
        "Stade Toulousain : le XV de départ face au Racing",
        "<p>Le manager a dévoilé sa composition pour le match de samedi soir.</p>",
        "Tue, 12 Mar 2024 08:30:00 +0100",
        creator="Pierre Martin",
        extra="<category><![CDATA[Rugby]]></category>",
    ),
)
LADEPECHE_RSS = rss(*LADEPECHE_ITEMS).encode("utf-8")

GOOGLE_ALERTS_ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:idx="urn:atom-extension:indexing">
<id>tag:google.com,2005:reader/user/0123456789/state/com.google/alerts/1234567890</id>
<title>Google Alert - tisséo</title>
<link href="https://www.google.com/alerts/feeds/0123456789/1234567890" rel="self"></link>
<updated>2024-03-12T09:15:02Z</updated>
<entry>
<id>tag:google.com,2013:googlealerts/feed:9038475610293847561</id>
<title type="html">Panne sur la ligne A du métro &lt;b&gt;Tisséo&lt;/b&gt; : le trafic reprend</title>
<link href="https://www.google.com/url?rct=j&amp;sa=t&amp;url=https://actu.fr/occitanie/toulouse_31555/panne-ligne-a_60912345.html&amp;ct=ga&amp;cd=CAIyGjE2YzBiYWRmMWQ5M2MzMGE6ZnI6ZnI6RlI&amp;usg=AOvVaw0Xq3n4Yk8bS2pQ1Rz9TfGh"></link>
<published>2024-03-12T08:41:15Z</published>
<updated>2024-03-12T08:41:15Z</updated>
<content type="html">Le métro &lt;b&gt;Tisséo&lt;/b&gt; a été arrêté pendant 40 minutes ce mardi matin entre Jolimont et Basso-Cambo.&amp;nbsp;...</content>
<author><name></name></author>
</entry>
<entry>
<id>tag:google.com,2013:googlealerts/feed:1748392018475610294</id>
<title type="html">Tarifs &lt;b&gt;Tisséo&lt;/b&gt; 2024 : ce qui change au 1er avril</title>
<link href="https://www.google.com/url?rct=j&amp;sa=t&amp;url=https://www.ladepeche.fr/2024/03/11/tarifs-tisseo-11818822.php&amp;ct=ga&amp;cd=CAIyGjE2YzBiYWRmMWQ5M2MzMGE6ZnI6ZnI6RlI&amp;usg=AOvVaw1Lk2m3Nb4Vc5Xz6Qw7ErTy"></link>
<published>2024-03-11T17:02:00Z</published>
<updated>2024-03-11T17:02:00Z</updated>
<content type="html">Le prix du ticket unitaire &lt;b&gt;Tisséo&lt;/b&gt; passe à 1,90 euro ...</content>
<author><name></name></author>
</entry>
</feed>
""".encode()  # noqa: E501

REDDIT_SEARCH_ATOM = """<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:media="http://search.yahoo.com/mrss/">
<category term="toulouse" label="r/toulouse"/>
<updated>2024-03-12T09:20:31+00:00</updated>
<icon>https://www.redditstatic.com/icon.png/</icon>
<id>/r/toulouse/search.rss?q=tisseo&amp;sort=new&amp;restrict_sr=on</id>
<link rel="self" href="https://www.reddit.com/r/toulouse/search.rss?q=tisseo&amp;sort=new&amp;restrict_sr=on" type="application/atom+xml" />
<link rel="alternate" href="https://www.reddit.com/r/toulouse/search?q=tisseo&amp;sort=new&amp;restrict_sr=on" type="text/html" />
<title>toulouse: search results - tisseo</title>
<entry>
<author><name>/u/garonne_velo</name><uri>https://www.reddit.com/user/garonne_velo</uri></author>
<category term="toulouse" label="r/toulouse"/>
<content type="html">&lt;!-- SC_OFF --&gt;&lt;div class=&quot;md&quot;&gt;&lt;p&gt;Ça fait 20 minutes qu&amp;#39;on attend le tram T1 à Palais de Justice, aucune info sur les panneaux. Quelqu&amp;#39;un sait ce qui se passe ?&lt;/p&gt; &lt;/div&gt;&lt;!-- SC_ON --&gt; &amp;#32; submitted by &amp;#32; &lt;a href=&quot;https://www.reddit.com/user/garonne_velo&quot;&gt; /u/garonne_velo &lt;/a&gt; &lt;br/&gt; &lt;span&gt;&lt;a href=&quot;https://www.reddit.com/r/toulouse/comments/1bcx7qz/tram_t1_bloqu%C3%A9/&quot;&gt;[link]&lt;/a&gt;&lt;/span&gt; &amp;#32; &lt;span&gt;&lt;a href=&quot;https://www.reddit.com/r/toulouse/comments/1bcx7qz/tram_t1_bloqu%C3%A9/&quot;&gt;[comments]&lt;/a&gt;&lt;/span&gt;</content>
<id>t3_1bcx7qz</id>
<link href="https://www.reddit.com/r/toulouse/comments/1bcx7qz/tram_t1_bloqu%C3%A9/" />
<updated>2024-03-12T09:12:44+00:00</updated>
<published>2024-03-12T09:12:44+00:00</published>
<title>Tram T1 bloqué depuis 20 min ? (Tisséo muet)</title>
</entry>
</feed>
""".encode()  # noqa: E501
