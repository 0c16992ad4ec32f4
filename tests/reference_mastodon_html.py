"""The BeautifulSoup-based Mastodon HTML to text that monitor.networks.mastodon.html replaced, kept
unchanged as the reference its streamed parser must match (tests/test_mastodon_html.py).

It built a tree per status: three quarters of the ingest time. beautifulsoup4 is a test dependency
for this module.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator

from bs4 import BeautifulSoup, NavigableString, PageElement, ParserRejectedMarkup, Tag
from bs4.builder import HTMLParserTreeBuilder

_BLANK_LINE_BLOCKS = frozenset({"p", "blockquote", "pre", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6"})
_LINE_BLOCKS = frozenset({"div", "li", "tr", "dt", "dd"})
_SKIPPED = frozenset({"script", "style", "template", "head", "title"})
_SPACES = re.compile(r"[ \t\r\n\f\v]+")
_local = threading.local()


def _builder() -> HTMLParserTreeBuilder:
    """One tree builder per thread: building it per status costs about 5% of the parse.

    `class` stays a plain string (no multi-valued attributes): cheaper, and _classes() splits it.
    """
    builder = getattr(_local, "builder", None)
    if builder is None:
        builder = _local.builder = HTMLParserTreeBuilder(multi_valued_attributes=None)
    return builder


class _Writer:
    """Collects text, turning requests for line breaks into at most the breaks asked for."""

    __slots__ = ("parts", "pending", "started")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.pending = 0  # newlines owed before the next text
        self.started = False

    def text(self, value: str) -> None:
        if not value:
            return
        if self.pending and self.started:
            self.parts.append("\n" * self.pending)
        self.pending = 0
        self.parts.append(value)
        self.started = True

    def newline(self) -> None:
        """A hard break (<br>): always emitted, even twice in a row."""
        self.parts.append("\n")
        self.pending = 0
        self.started = True

    def block(self, lines: int) -> None:
        self.pending = max(self.pending, lines)

    def result(self) -> str:
        lines = "".join(self.parts).split("\n")
        return "\n".join(line.strip(" ") for line in lines).strip("\n")


def html_to_text(html: str | None) -> str:
    """Plain text of a status' HTML `content` (not yet sanitised for the terminal)."""
    if not html:
        return ""
    if "<" not in html and "&" not in html:
        return html.strip()
    try:
        soup = BeautifulSoup(html, builder=_builder())
    except ParserRejectedMarkup:
        # html.parser gives up on some odd declarations ("<![ x"); read those as text instead.
        try:
            soup = BeautifulSoup(html.replace("<!", "&lt;!"), builder=_builder())
        except ParserRejectedMarkup as exc:
            raise ValueError("HTML the parser cannot read") from exc
    writer = _Writer()
    _walk(soup, writer)
    return writer.result()


def _walk(root: Tag, out: _Writer) -> None:
    """Depth-first over the tree with an explicit stack: deeply nested markup cannot overflow."""
    # Each frame: the children left to visit, whether inside <pre>, the breaks owed on leaving.
    stack: list[tuple[Iterator[PageElement], bool, int]] = [(iter(root.children), False, 0)]
    while stack:
        children, preformatted, after = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            if after:
                out.block(after)
            continue
        if type(child) is NavigableString:  # not comments, CDATA or doctypes
            text = str(child)
            out.text(text if preformatted else _SPACES.sub(" ", text))
            continue
        if not isinstance(child, Tag):
            continue
        name = child.name
        if name in _SKIPPED:
            continue
        if name == "br":
            out.newline()
        elif name == "a":
            out.text(_link_text(child))
        elif name == "img":  # remote servers' inline emoji: keep the shortcode/alt text
            out.text(str(child.get("alt") or ""))
        elif name in _BLANK_LINE_BLOCKS:
            out.block(2)
            stack.append((iter(child.children), preformatted or name == "pre", 2))
        elif name in _LINE_BLOCKS:
            out.block(1)
            if name == "li":
                out.text("- ")
            stack.append((iter(child.children), preformatted, 1))
        else:
            stack.append((iter(child.children), preformatted, 0))


def _link_text(a: Tag) -> str:
    """A link's visible text; the full href when Mastodon shortened it for display."""
    visible: list[str] = []
    shortened = seen_visible = False
    for part in a.descendants:
        if type(part) is not NavigableString:
            continue
        parent = part.parent
        around = _classes(parent) if parent is not a else ()
        if "invisible" in around:
            # A hidden tail after the shown part means the URL was cut ("https://" before it is not).
            shortened = shortened or (seen_visible and bool(part.strip()))
            continue
        shortened = shortened or "ellipsis" in around
        visible.append(str(part))
        seen_visible = seen_visible or bool(part.strip())
    text = _SPACES.sub(" ", "".join(visible)).strip()
    classes = _classes(a)
    if "mention" in classes or "hashtag" in classes:
        return text
    href = str(a.get("href") or "")
    if shortened and href.startswith(("https://", "http://")):
        return href
    return text or href


def _classes(tag: Tag | None) -> tuple[str, ...]:
    if tag is None:
        return ()
    value = tag.get("class")
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(value.split())
    return tuple(value)
