"""HTML from peers as plain text, streamed from the standard library's html.parser: the one place it is read.

Two layouts. STATUS, for Mastodon's sanitised status HTML: Mastodon sends `<p>`, `<br>`, `<span>` and
`<a>` (remote servers may add lists, quotes and code). Paragraphs become blank-line separated, `<br>` a
newline, mentions and hashtags their visible `@user` / `#tag`. A long link is shown shortened, its hidden
parts in `<span class="invisible">` and the shown part in `<span class="ellipsis">`: the shown part alone
is misleading, so such a link becomes its full href. The result still goes through
monitor.core.sanitize.clean().

No tree is built (building one was three quarters of the ingest time): the parser's events drive
a stack of open elements that nests exactly as BeautifulSoup's html.parser builder nests them,
which this module replaced. tests/test_mastodon_html.py compares the two on real and fuzzed HTML.
Mastodon's own subset (p, br, a, span, lists, inline formatting) is read faster still by
monitor.networks.htmlfast, to the same text; anything else comes here.

LINES, for feed titles and summaries: every string as written, a line break around each block and at
`<br>`, then spaces collapsed line by line and empty lines dropped (links, images and lists get no
special reading). The same test compares it with the BeautifulSoup walk it replaced.
"""

from __future__ import annotations

import threading
from enum import StrEnum
from html.parser import HTMLParser

from monitor.networks.htmlfast import status_text
from monitor.networks.htmlrules import (
    BLANK_LINE_BLOCKS,
    ENTITIES,
    LINE_BLOCKS,
    SKIPPED,
    SPACES,
    STRING_CONTAINERS,
    VOID,
    Writer,
    link_text,
    numeric_reference,
)

# LINES: the elements with a line break before and after.
_LINES_BLOCKS = frozenset(
    {"p", "div", "li", "ul", "ol", "table", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote"}
)


class Layout(StrEnum):
    STATUS = "status"  # Mastodon: paragraphs, list items, shortened links, emoji shortcodes
    LINES = "lines"  # feeds: one line per block, no blank lines


# What an open element means for the text: shown (children walked), skipped, a link, or inside one.
_SHOWN, _SKIP, _LINK, _IN_LINK = range(4)


# An open element: (name, role, line breaks owed on leaving a shown block, its class attribute inside a link).
_Open = tuple[str, int, int, str | None]


class _TextParser(HTMLParser):
    """html.parser events to text, one status at a time (reset between them). Called for every tag of
    every status: the handlers are written for speed (a test pins each rule against the tree walk)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)  # references resolved below, as the replaced builder did

    def reset(self) -> None:
        super().reset()
        self.out = Writer()
        self.data: list[str] = []  # text not yet flushed: adjacent chunks form one text node
        self.handle_data = self.data.append  # type: ignore[method-assign,assignment]  # the most frequent event: no frame
        self.stack: list[_Open] = []
        self.open_names: dict[str, int] = {}
        self.closed_void: list[str] = []  # `<br>` already closed: a later `</br>` is ignored
        self.containers = 0  # open script/style/template/rt/rp
        self.hidden = 0  # open elements whose content is not walked (skipped, or a link's)
        self.pre = 0  # shown <pre> ancestors: their text keeps its spaces
        self.link: list[tuple[str, str | None]] | None = None  # a link's strings and their parent's class
        self.link_attrs: dict[str, str] = {}

    def updatepos(self, i: int, j: int) -> int:
        """Line and column are for error messages, which html.parser no longer raises: not counted."""
        return j

    def text(self) -> str:
        self.close()
        self._flush()
        while self.stack:
            self._pop()
        return self._result()

    def _result(self) -> str:
        return self.out.result()

    # -- tree shape --------------------------------------------------------------------------

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in VOID:
            self._start(tag, attrs)
            return
        # Opened and closed at once: only what entering it shows.
        if self.data:
            self._flush()
        self._void(tag, attrs)
        self.closed_void.append(tag)

    def _void(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if not self.hidden:
            if tag == "br":
                self.out.newline()
            elif tag == "img":  # remote servers' inline emoji: keep the shortcode/alt text
                self.out.text(_attr(attrs, "alt") or "")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in VOID:
            self.handle_starttag(tag, attrs)
            self.closed_void.pop()
        else:
            self._start(tag, attrs)
            self._pop_to(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.closed_void and tag in self.closed_void:
            self.closed_void.remove(tag)
            return
        if self.data:
            self._flush()
        if self.stack and self.stack[-1][0] == tag:  # well-formed markup: the innermost closes
            self._pop()
        elif self.open_names.get(tag):
            self._pop_to(tag)

    def _start(self, name: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.data:
            self._flush()
        after = 0
        if self.hidden:
            if self.link is not None:
                role, classes = _IN_LINK, _attr(attrs, "class")
            else:
                role, classes = _SKIP, None
        elif name in SKIPPED:
            role, classes = _SKIP, None
        elif name == "a":
            role, classes = _LINK, None
            self.link = []
            self.link_attrs = {key: value or "" for key, value in attrs}
        else:
            role, classes = _SHOWN, None
            if name in BLANK_LINE_BLOCKS:
                self.out.block(2)
                after = 2
                if name == "pre":
                    self.pre += 1
            elif name in LINE_BLOCKS:
                self.out.block(1)
                after = 1
                if name == "li":
                    self.out.text("- ")
        self.stack.append((name, role, after, classes))
        self.open_names[name] = self.open_names.get(name, 0) + 1
        if name in STRING_CONTAINERS:
            self.containers += 1
        if role != _SHOWN:
            self.hidden += 1

    def _pop_to(self, name: str) -> None:
        """Close up to the most recent open element of that name; nothing if none is open."""
        if not self.open_names.get(name):
            return
        while self.stack and self._pop() != name:
            pass

    def _pop(self) -> str:
        name, role, after, _ = self.stack.pop()
        self.open_names[name] -= 1
        if name in STRING_CONTAINERS:
            self.containers -= 1
        if role == _SHOWN:
            if after:
                self.out.block(after)
            if name == "pre":
                self.pre -= 1
        else:
            self.hidden -= 1
            if role == _LINK:
                self.out.text(link_text(self.link or [], self.link_attrs))
                self.link = None
        return name

    # -- text ---------------------------------------------------------------------------------

    def handle_data(self, data: str) -> None:
        self.data.append(data)

    def handle_charref(self, name: str) -> None:
        self.data.append(numeric_reference(name))

    def handle_entityref(self, name: str) -> None:
        self.data.append(ENTITIES.get(name, "&" + name))

    # Comments, declarations, CDATA and processing instructions end a text node and show nothing.
    def handle_comment(self, data: str) -> None:
        self._flush()

    def handle_decl(self, decl: str) -> None:
        self._flush()

    def unknown_decl(self, data: str) -> None:
        self._flush()

    def handle_pi(self, data: str) -> None:
        self._flush()

    def _flush(self) -> None:
        data = self.data
        text = data[0] if len(data) == 1 else "".join(data)
        data.clear()
        if self.containers:
            return  # script, style, ruby annotation: not plain text
        if not self.hidden:
            self.out.text(text if self.pre else SPACES.sub(" ", text))
        elif self.link is not None:
            self.link.append((text, self.stack[-1][3]))  # the link's own class is None


def _attr(attrs: list[tuple[str, str | None]], key: str) -> str | None:
    """An attribute's value, the last one if repeated ('' when given without a value)."""
    value = None
    for name, given in attrs:
        if name == key:
            value = given or ""
    return value


class _LinesParser(_TextParser):
    """The LINES layout on the same tree shape: strings as written (inside script, style, template and ruby
    annotations excepted, CDATA included), "\n" around each block and at each <br>, even inside those."""

    def reset(self) -> None:
        super().reset()
        self.raw: list[str] = []

    def _result(self) -> str:
        return _collapse_lines("".join(self.raw))

    def _void(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.raw.append("\n")

    def _start(self, name: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.data:
            self._flush()
        if name in _LINES_BLOCKS:
            self.raw.append("\n")
        self.stack.append((name, _SHOWN, 0, None))
        self.open_names[name] = self.open_names.get(name, 0) + 1
        if name in STRING_CONTAINERS:
            self.containers += 1

    def _pop(self) -> str:
        name = self.stack.pop()[0]
        self.open_names[name] -= 1
        if name in STRING_CONTAINERS:
            self.containers -= 1
        if name in _LINES_BLOCKS:
            self.raw.append("\n")
        return name

    def _flush(self) -> None:
        text = "".join(self.data)
        self.data.clear()
        if not self.containers:
            self.raw.append(text)

    def unknown_decl(self, data: str) -> None:
        self._flush()
        if data.upper().startswith("CDATA["):
            self.raw.append(data[len("CDATA[") :])  # text, even inside a container (BeautifulSoup's CData)


def _collapse_lines(text: str) -> str:
    """Each line's spaces collapsed (any Unicode space), empty lines dropped."""
    lines = (" ".join(line.split()) for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


_local = threading.local()
_PARSERS = {Layout.STATUS: _TextParser, Layout.LINES: _LinesParser}


def _parser(layout: Layout) -> _TextParser:
    """One parser per thread and layout, reset for each text: building one costs more than a short status."""
    parser: _TextParser | None = getattr(_local, layout.value, None)
    if parser is None:
        parser = _PARSERS[layout]()
        setattr(_local, layout.value, parser)
    return parser


def html_to_text(html: str | None, layout: Layout = Layout.STATUS) -> str:
    """Plain text of HTML from a peer (not yet sanitised for the terminal): a status' `content` as Mastodon
    shows it, or (LINES) a feed's title or summary. ValueError for HTML the parser cannot read."""
    if not html:
        return ""
    if "<" not in html and "&" not in html:
        return html.strip() if layout is Layout.STATUS else _collapse_lines(html)
    if layout is Layout.STATUS and (text := status_text(html)) is not None:
        return text  # Mastodon's own subset, read without html.parser
    return parsed_text(html, layout)


def parsed_text(html: str, layout: Layout = Layout.STATUS) -> str:
    """html_to_text() read with html.parser, whatever the markup (the fast path's reference)."""
    parser = _parser(layout)
    try:
        return _parse(parser, html)
    except AssertionError:
        # html.parser gives up on some odd declarations ("<![ x"); read those as text instead.
        try:
            return _parse(parser, html.replace("<!", "&lt;!"))
        except AssertionError as exc:
            raise ValueError("HTML the parser cannot read") from exc


def _parse(parser: _TextParser, html: str) -> str:
    parser.reset()
    try:
        parser.feed(html)
        return parser.text()
    finally:
        parser.reset()  # drop the status' text now, and leave no half-parsed state behind
