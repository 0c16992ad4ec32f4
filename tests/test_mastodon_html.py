"""The streamed HTML to text gives, byte for byte, the text of the BeautifulSoup walks it replaced: for
Mastodon statuses (tests/reference_mastodon_html.py) and for feeds (tests/reference_feed_html.py), on
recorded statuses, on the shapes remote servers send, and on fuzzed markup (unbalanced tags, stray end
tags, references, comments, declarations, ruby, <pre>).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from bs4.builder import HTMLTreeBuilder
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.networks import htmltext as mastodon_html
from monitor.networks.htmltext import Layout, html_to_text
from tests import reference_feed_html
from tests import reference_mastodon_html as reference
from tests.recorded import DATA, cassette, sse_events

HTML_FIELDS = ("content", "note", "spoiler_text", "value")


def _html_values(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in HTML_FIELDS and isinstance(item, str):
                yield item
            else:
                yield from _html_values(item)
    elif isinstance(value, list):
        for item in value:
            yield from _html_values(item)


def recorded_html() -> list[str]:
    """Every HTML field of the recorded Mastodon answers (REST bodies and streamed events)."""
    found: list[str] = []
    for path in sorted((DATA / "mastodon_py").glob("*.yaml")):
        for answer in cassette("mastodon_py", path.stem):
            try:
                found += _html_values(answer.json())
            except ValueError:  # an event stream
                for _, data in sse_events(answer.body):
                    try:
                        payload = json.loads(data)
                    except ValueError:
                        continue
                    if isinstance(payload, dict) and isinstance(payload.get("payload"), str):
                        payload = json.loads(payload["payload"])
                    found += _html_values(payload)
    return found


# What Mastodon and other fediverse servers send (Mastodon, Pleroma/Akkoma, Misskey, GoToSocial, Friendica).
SHAPES = [
    "<p>&quot;Nid de poule&quot; rue de Metz</p><p>"
    '<span class="h-card"><a href="https://mastodon.social/@toulouse" class="u-url mention">'
    "@<span>toulouse</span></a></span> regardez<br>"
    '<a href="https://www.toulouse.fr/web/guest/actualites/travaux-rue-de-metz-2024" rel="nofollow">'
    '<span class="invisible">https://www.</span><span class="ellipsis">toulouse.fr/web/guest/actua</span>'
    '<span class="invisible">lites/travaux-rue-de-metz-2024</span></a> '
    '<a href="https://trwnh.com"><span class="invisible">https://</span><span class="">trwnh.com</span>'
    '<span class="invisible"></span></a> '
    '<a href="https://mastodon.social/tags/Toulouse" class="mention hashtag" rel="tag">#<span>Toulouse</span></a>'
    "</p><ul><li>un</li><li>deux</li></ul>",
    "<p>Le métro est encore en panne ce matin &amp; voilà.</p><p>"
    '<a href="https://example.org/blog/2024/05/un-article" rel="nofollow noopener" target="_blank">'
    '<span class="invisible">https://</span><span class="ellipsis">example.org/blog/2024/05/un-art</span>'
    '<span class="invisible">icle</span></a><br>'
    '<a href="https://mastodon.example/tags/photo" class="mention hashtag" rel="tag">#<span>photo</span></a></p>',
    "Pleroma says hi<br/>line two<br/><br/>line four",
    '<p>Misskey <span class="h-card"><a href="https://misskey.io/@a" class="u-url mention">@a</a></span>'
    ' :blobcat: <img alt=":blobcat:" src="https://misskey.io/e.png" class="emoji"></p>',
    "<blockquote><p>quoted</p></blockquote><p>answer</p><pre><code>  x = 1\n  y = 2\n</code></pre>",
    "<ol><li><p>one</p></li><li>two<ul><li>nested</li></ul></li></ol><h2>Title</h2><div>div</div>",
    '<p>RE: <a href="https://gts.example/@b/statuses/01H">https://gts.example/@b/statuses/01H</a></p>',
    "<p>   spaced    out\ttext\n\nwith newlines   </p>  \n  <p> next </p>",
    "<p>Entities: &lt;b&gt; &#233;t&#xE9; &#150; &nbsp; &copy &unknown; &#0; &#x110000;</p>",
    "<p>Comment<!-- hidden -->ed and <![CDATA[cdata]]> and <?pi x?> and <!DOCTYPE html> done</p>",
    "<p>ruby <ruby>漢<rp>(</rp><rt>kan</rt><rp>)</rp></ruby> and <script>alert(1)</script><style>p{}</style></p>",
    '<p><a href="javascript:alert(1)"><span class="invisible">x</span><span class="ellipsis">y</span></a></p>',
    "<p>unclosed <b>bold <i>both</p> after</b> tail",
    "<textarea>  kept   spaces </textarea><pre>  pre  <b> bold </b></pre>",
    "text</br>more<br></br>again",
    "a <br> b </br> c <br/> d </br> e",
    "<![ x odd declaration",
    "<title>t</title><head>h</head><template>tp</template>body",
]


@pytest.mark.parametrize("html", recorded_html() + SHAPES)
def test_real_statuses_read_exactly_as_the_tree_walk_read_them(html: str) -> None:
    assert html_to_text(html) == reference.html_to_text(html)


def test_the_recorded_corpus_is_not_empty() -> None:
    assert len(recorded_html()) >= 10


def test_the_tree_rules_mirrored_are_beautifulsoups() -> None:
    assert mastodon_html.VOID == HTMLTreeBuilder.DEFAULT_EMPTY_ELEMENT_TAGS
    assert mastodon_html.STRING_CONTAINERS == set(HTMLTreeBuilder.DEFAULT_STRING_CONTAINERS)


# -- fuzzed markup ----------------------------------------------------------------------------------

NAMES = [
    "p", "br", "span", "a", "img", "pre", "code", "ul", "ol", "li", "blockquote", "div", "h1", "b", "i",
    "script", "style", "title", "head", "template", "ruby", "rt", "rp", "textarea", "tr", "dd", "hr", "wbr",
]  # fmt: skip
CLASSES = ["invisible", "ellipsis", "mention", "hashtag", "mention hashtag", "u-url mention", "h-card", ""]
HREFS = ["https://example.org/a-long-path", "http://x.test", "javascript:alert(1)", "", "/relative"]
ODD = [
    "&amp;", "&lt;", "&gt;", "&quot;", "&nbsp;", "&copy", "&eacute;", "&unknown;", "&", "&#", "&#x;",
    "&#233;", "&#xE9;", "&#150;", "&#x81;", "&#0;", "&#xD800;", "&#1114112;", "&#65534;", "&#x1F600;",
    "<!-- c -->", "<!---->", "<![CDATA[ c ]]>", "<!DOCTYPE html>", "<?pi?>", "<!x>", "<![ x", "<!",
    "</br>", "</p>", "</a>", "</span>", "</pre>", "<br/>", "<p/>", "<a/>", "<img/>", "< p>", "<", ">",
    "\n", "\t", "  ", "\r\n", "\f", "\v", "\u00a0",
]  # fmt: skip

texts = st.text(alphabet=st.sampled_from(list("ab é😀 \n\t.:/-#@")), max_size=8)


@st.composite
def start_tag(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from(NAMES))
    attrs = []
    if draw(st.booleans()):
        attrs.append(f'class="{draw(st.sampled_from(CLASSES))}"')
    if name == "a" and draw(st.booleans()):
        attrs.append(f'href="{draw(st.sampled_from(HREFS))}"')
    if name == "img" and draw(st.booleans()):
        attrs.append(f'alt="{draw(texts)}"')
    if draw(st.integers(0, 9)) == 0:  # repeated attribute: the last one counts
        attrs.append(f'class="{draw(st.sampled_from(CLASSES))}"')
    closing = "/" if draw(st.integers(0, 9)) == 0 else ""
    return "<" + " ".join([name, *attrs]) + closing + ">"


end_tag = st.sampled_from(NAMES).map(lambda name: f"</{name}>")
tokens = st.one_of(start_tag(), end_tag, texts, st.sampled_from(ODD))


@settings(max_examples=1500, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(tokens, max_size=30).map("".join))
def test_fuzzed_markup_reads_exactly_as_the_tree_walk_read_it(html: str) -> None:
    try:
        expected = reference.html_to_text(html)
    except ValueError:
        with pytest.raises(ValueError):
            html_to_text(html)
        return
    assert html_to_text(html) == expected


@st.composite
def shortened_link(draw: st.DrawFn) -> str:
    """Mastodon's link shapes, nested in the ways remote servers vary them."""
    parts = draw(
        st.lists(
            st.tuples(st.sampled_from(CLASSES + ["", "", ""]), texts, st.booleans()).map(
                lambda p: f'<span class="{p[0]}">{p[1]}</span>' if p[2] else p[1]
            ),
            max_size=5,
        )
    )
    attrs = f'href="{draw(st.sampled_from(HREFS))}" class="{draw(st.sampled_from(CLASSES))}"'
    return f"<p>{draw(texts)}<a {attrs}>{''.join(parts)}</a>{draw(texts)}</p>"


@settings(max_examples=400, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(shortened_link(), min_size=1, max_size=3).map("".join))
def test_fuzzed_links_read_exactly_as_the_tree_walk_read_them(html: str) -> None:
    assert html_to_text(html) == reference.html_to_text(html)


def test_one_parser_per_thread_keeps_no_state_between_statuses() -> None:
    html_to_text("<p><a href='https://x.test'><span class='ellipsis'>unfinished")
    assert html_to_text("<p>next</p>") == "next"


# -- the feeds' layout -----------------------------------------------------------------------------

FEED_SHAPES = [
    "<ul><li>un</li><li>deux</li></ul><p>trois&nbsp;<i>quatre</i></p>",
    "<script>alert(1)</script>a < b",
    "a<template><br></template>b<rt>x<p>y</p>z</rt>c",
    "<title>Le titre</title><head>tête</head><p>corps<br/>ligne</p>",
    '<p><a href="https://x.test/long"><span class="invisible">https://</span>x.test/lo</a> <img alt="a"></p>',
    "<p>Comment<!-- hidden -->ed and <![CDATA[cdata]]> and <?pi x?> and <!DOCTYPE html> done</p>",
    "<template><![CDATA[in a container]]></template>",
    "  spaced\u00a0\u2028out \r\n text\x85\x1c end  ",
    "no markup at all,\n  two lines  \n\n",
]


@pytest.mark.parametrize("html", recorded_html() + SHAPES + FEED_SHAPES)
def test_feed_html_reads_exactly_as_the_tree_walk_read_it(html: str) -> None:
    try:
        expected = reference_feed_html.html_to_text(html)
    except Exception:  # BeautifulSoup rejected it (ParserRejectedMarkup): the whole feed failed; now it reads
        assert isinstance(html_to_text(html, Layout.LINES), str)
        return
    assert html_to_text(html, Layout.LINES) == expected


@settings(max_examples=1500, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(tokens, max_size=30).map("".join))
def test_fuzzed_feed_markup_reads_exactly_as_the_tree_walk_read_it(html: str) -> None:
    try:
        expected = reference_feed_html.html_to_text(html)
    except Exception:
        return  # see above
    assert html_to_text(html, Layout.LINES) == expected


def test_the_two_layouts_share_the_thread_without_mixing() -> None:
    html = "<p>un<br>deux</p><p>trois</p>"
    assert html_to_text(html) == "un\ndeux\n\ntrois"
    assert html_to_text(html, Layout.LINES) == "un\ndeux\ntrois"
    assert html_to_text(html) == "un\ndeux\n\ntrois"
