"""The fast reader of Mastodon's own HTML subset (monitor.networks.htmlfast) reads every status it accepts
exactly as the html.parser walk does, and hands everything else to that walk: on the recorded statuses, on
well-formed markup of the subset, and on fuzzed markup at the subset's edges (references, nesting, malformed
tags, attributes with quotes and `>`, CDATA, comments, script and style).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.networks import htmlfast
from monitor.networks.htmlfast import status_text
from monitor.networks.htmltext import html_to_text, parsed_text
from tests import reference_mastodon_html as reference
from tests.test_mastodon_html import SHAPES, recorded_html

FUZZ = settings(max_examples=1500, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_the_statuses_mastodon_sent_take_the_fast_path_and_read_the_same() -> None:
    for html in recorded_html():
        assert status_text(html) == parsed_text(html), html


@pytest.mark.parametrize("html", SHAPES)
def test_the_shapes_remote_servers_send_read_the_same_either_way(html: str) -> None:
    fast = status_text(html)
    assert fast is None or fast == parsed_text(html)


# Just outside the subset: each is left to html.parser, which reads it as the tree walk did.
EDGES = [
    '<p><a href="https://x.test/a>b">link</a></p>',  # ">" inside a quoted value
    "<p><a href='https://x.test/'>single quotes</a></p>",
    "<p><a href=https://x.test/>unquoted</a></p>",
    '<p><a href="https://x.test/" >space before the end</a></p>',
    '<p><a  href="https://x.test/">two spaces</a></p>',
    '<p><a href="https://x.test/" class="mention"/>self-closed</a></p>',
    "<P>upper case</P>",
    "<p>fish &amp chips &ampx; &#233 &#x; &#12a; &a.b; & alone</p>",
    "<p>a < b and c<d</p>",
    "<p>unclosed",
    "<p>stray</p></p>",
    "<p>crossed <span>x</p></span>",
    "<p>br</br>in the wrong way</p>",
    "<p/>x<p>y</p>",
    '<p><a href="https://x.test/">in <a href="https://y.test/">a link</a></a></p>',
    '<p><a href="https://x.test/">a<br>break</a></p>',
    '<p><a href="https://x.test/"><p>block</p></a></p>',
    "<p>x<!-- comment -->y<![CDATA[z]]>w</p>",
    "<p>a<script>alert('<p>')</script>b<style>p { x: '>' }</style>c</p>",
    "<pre>  kept  </pre><textarea> t </textarea><title>t</title>",
    "<p>ruby <ruby>漢<rt>kan</rt></ruby></p>",
    "<p>img <img alt=':x:' src='e.png'> and <hr> rule</p>",
    "<p>end tag with space</p ><p>x</ p>",
    "<!DOCTYPE html><p>x</p><?pi?>",
]


@pytest.mark.parametrize("html", EDGES)
def test_markup_outside_the_subset_falls_back_to_html_parser(html: str) -> None:
    assert status_text(html) is None
    assert html_to_text(html) == reference.html_to_text(html)


# -- well-formed markup of the subset: always read fast, always the same --------------------------

CLASSES = ["invisible", "ellipsis", "mention hashtag", "u-url mention", "h-card", "", "a &amp; b"]
HREFS = ["https://example.org/a?b=1&amp;c=2", "http://x.test", "javascript:alert(1)", "", "/relative"]
REFERENCES = ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;", "&nbsp;", "&eacute;", "&unknown;", "&AMP;", "&frac12;",
              "&#233;", "&#xE9;", "&#X1F600;", "&#150;", "&#x81;", "&#0;", "&#xD800;", "&#1114112;"]  # fmt: skip
words = st.text(alphabet=st.sampled_from(list("ab é😀 \n\t.:/-#@>\"'\u00a0")), min_size=1, max_size=8)
text = st.lists(st.one_of(words, st.sampled_from(REFERENCES)), min_size=1, max_size=4).map("".join)
INLINE = ["span", "b", "strong", "i", "em", "u", "del", "s", "code", "small", "sub", "sup"]
BLOCKS = ["p", "blockquote", "ul", "ol", "li", "div", "h1", "h6", "tr", "dt", "dd"]


class_attr = st.one_of(st.just(""), st.sampled_from(CLASSES).map(lambda c: f' class="{c}"'))


@st.composite
def element(draw: st.DrawFn, names: list[str], children: st.SearchStrategy[str]) -> str:
    name = draw(st.sampled_from(names))
    return f"<{name}{draw(class_attr)}>{''.join(draw(st.lists(children, max_size=4)))}</{name}>"


@st.composite
def link(draw: st.DrawFn) -> str:
    """A link as Mastodon writes them: text and classed spans, possibly nested, nothing else."""
    inside = st.recursive(text, lambda children: element(INLINE, children), max_leaves=6)
    attrs = f' href="{draw(st.sampled_from(HREFS))}"{draw(class_attr)} rel="nofollow noopener" target="_blank"'
    return f"<a{attrs}>{''.join(draw(st.lists(inside, max_size=4)))}</a>"


statuses = st.recursive(
    st.one_of(text, link(), st.sampled_from(["<br>", "<br/>", "<br />", '<br class="x">'])),
    lambda children: element(INLINE + BLOCKS, children),
    max_leaves=12,
)


@FUZZ
@given(st.lists(statuses, min_size=1, max_size=4).map("".join))
def test_well_formed_markup_of_the_subset_is_read_fast_and_the_same(html: str) -> None:
    fast = status_text(html)
    assert fast is not None
    assert fast == parsed_text(html)
    assert html_to_text(html) == reference.html_to_text(html)


# -- fuzzed markup at the edges: when the fast reader accepts it, it reads it the same ---------------

EDGE_TOKENS = [
    "<p>", "</p>", "<br>", "</br>", "<br/>", "<br />", "<p/>", "<span>", "</span>", '<span class="invisible">',
    '<span class="ellipsis">', "</a>", '<a href="https://x.test/a">', '<a class="mention hashtag" href="/t">',
    '<a href="x>y">', "<a href='x'>", "<a href=x>", '<a href="x" >', '<a  href="x">', '<a href="x"/>',
    '<a href="x" class="a" class="invisible">', '<span class="a&quot;b">', '<span class="&lt;">', "<A>", "</A>",
    "<P>", "< p>", "</ p>", "</p >", "</>", "<>", "<", ">", "&", "&amp;", "&amp", "&ampx;", "&#233", "&#233;",
    "&#x;", "&#12a;", "&a.b;", "&;", "&#;", "<!-- c -->", "<!---->", "<!-- <p> -->", "<![CDATA[ <p> ]]>",
    "<!DOCTYPE html>", "<?pi?>", "<!x>", "<script>", "</script>", "<style>", "</style>", "<pre>", "</pre>",
    "<textarea>", "</textarea>", "<title>", "</title>", "<li>", "</li>", "<ul>", "</ul>", "<img alt=':x:'>",
    "<hr>", "<rt>", "</rt>", "<b>", "</b>", "<code>", "</code>", "<h1>", "</h1>", "<blockquote>", "</blockquote>",
    "\n", "\t", "  ", "\r\n", "\u00a0",
]  # fmt: skip
edge_tokens = st.one_of(st.sampled_from(EDGE_TOKENS), words, statuses)


@FUZZ
@given(st.lists(edge_tokens, max_size=25).map("".join))
def test_fuzzed_markup_at_the_edges_reads_the_same_when_read_fast(html: str) -> None:
    fast = status_text(html)
    if fast is not None:
        assert fast == parsed_text(html)


def test_the_table_of_tags_read_stays_bounded_however_many_and_long_the_links() -> None:
    for n in range(3 * htmlfast._READ_LIMIT):
        html = f'<p><a href="https://x.test/{n}" rel="nofollow"><span class="ellipsis">x.test/{n}</span></a></p>'
        assert status_text(html) == f"https://x.test/{n}"
    assert len(htmlfast._READ) <= htmlfast._READ_LIMIT
    href = "https://x.test/" + "long/" * 20_000
    assert status_text(f'<p><a href="{href}"><span class="ellipsis">x.test/long</span></a></p>') == href
    assert max(map(len, htmlfast._READ)) <= htmlfast._READ_LONGEST
