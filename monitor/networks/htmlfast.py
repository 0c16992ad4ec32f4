"""Mastodon's own HTML subset read by splitting on tags: the fast path of htmltext's STATUS layout.

Mastodon sanitises every status to a few elements: `<p>`, `<br>`, `<a>` with `<span>`s inside (mentions,
hashtags, shortened links), and for remote posts lists, quotes and inline formatting. Read with
html.parser, each tag costs a dozen Python calls; here a status is split on "<" and each tag is looked
up in a table of the tags already read (the same few recur in every status).

The reading is the html.parser walk's (monitor.networks.htmltext), on the same rules (htmlrules): each
text node, reference and element means the same. Anything outside the subset (another element, a
comment, a malformed or unbalanced tag, an attribute not written `name="value"`, a bare `&`, `<br>`
inside a link) returns None and the caller reads the status with html.parser instead: the subset is
only where both readers provably agree (tests/test_mastodon_html_fast.py compares them on fuzzed HTML).
"""

from __future__ import annotations

import re
from html import unescape

from monitor.networks.htmlrules import (
    BLANK_LINE_BLOCKS,
    ENTITIES,
    LINE_BLOCKS,
    SPACES,
    Writer,
    link_text,
    numeric_reference,
)

# A start tag (what lies between "<" and ">"): a lowercase name, `name="value"` attributes (values without
# < > "), maybe "/" or " /". Anything else written between "<" and ">" falls back.
_START = re.compile(r'([a-z][a-z0-9]*)((?: [a-z][a-z-]*="[^"<>]*")*)( ?/)?')
_ATTR = re.compile(r' ([a-z][a-z-]*)="([^"]*)"')
_REF = re.compile(r"&(?:([a-zA-Z][a-zA-Z0-9]*)|#([0-9]+|[xX][0-9a-fA-F]+));")
# An "&" that does not start a reference read above (html.parser reads those its own way).
_BARE_AMP = re.compile(r"&(?!(?:[a-zA-Z][a-zA-Z0-9]*|#[0-9]+|#[xX][0-9a-fA-F]+);)")

# Blocks and the line breaks they owe on entering and leaving (<pre> keeps its spaces: not here).
_BLOCKS = {name: 2 for name in BLANK_LINE_BLOCKS - {"pre"}} | {name: 1 for name in LINE_BLOCKS}
# Elements that only wrap text (html.parser gives them no meaning of their own, in every version).
_INLINE = frozenset({"span", "b", "strong", "i", "em", "u", "del", "s", "code", "small", "sub", "sup"})
_NAMES = frozenset({"a", "br", *_BLOCKS, *_INLINE})

# What a tag is: its kind, its name, the line breaks a block owes, an inline element's class (None if it
# has none), a link's attributes (shared by every status using that tag: read only).
_END, _BR, _INLINE_TAG, _LINK, _BLOCK = range(5)
_Tag = tuple[int, str, int, str | None, dict[str, str] | None]
_READ: dict[str, _Tag | None] = {}  # tags read so far (None: outside the subset), up to _READ_LIMIT
_READ_LIMIT = 2048
_READ_LONGEST = 300  # longer tags (a long link's href) are read each time: the table stays under a few MB


def status_text(html: str) -> str | None:
    """The STATUS layout's text of `html`, or None when it is outside the subset read here."""
    out = Writer()
    open_: list[tuple[str, int, str | None]] = []  # (name, breaks owed on leaving, class inside a link)
    link: list[tuple[str, str | None]] | None = None  # the open link's strings, with their parent's class
    link_attrs: dict[str, str] = {}
    pieces = html.split("<")
    text = pieces[0]
    for number, piece in enumerate(pieces):
        if number:  # a tag, then the text up to the next one
            tag, gt, text = piece.partition(">")
            if not gt:
                return None  # a "<" that opens no tag
            read = _READ.get(tag) or _read(tag)
            if read is None:
                return None  # a comment, an unknown element, an attribute written otherwise...
            kind, name, after, classes, attrs = read
            if kind == _END:
                if not open_ or open_[-1][0] != name:
                    return None  # unbalanced: html.parser's recovery is not copied here
                _, after, _ = open_.pop()
                if name == "a":
                    out.text(link_text(link or [], link_attrs))
                    link = None
                elif after:
                    out.block(after)
            elif kind == _INLINE_TAG:
                open_.append((name, 0, classes if link is not None else None))
            elif link is not None:
                return None  # a block, a <br> or a link inside a link
            elif kind == _BR:
                out.newline()
            elif kind == _LINK:
                link, link_attrs = [], attrs or {}
                open_.append((name, 0, None))
            else:
                out.block(after)
                if name == "li":
                    out.text("- ")
                open_.append((name, after, None))
        if text:
            if "&" in text:
                if _BARE_AMP.search(text):
                    return None
                text = _REF.sub(_reference, text)
            if link is None:
                out.text(SPACES.sub(" ", text))
            else:
                link.append((text, open_[-1][2]))
    return None if open_ else out.result()


def _read(tag: str) -> _Tag | None:
    """What a tag is (see _Tag), remembered; None for a tag outside the subset."""
    read = _read_new(tag)
    if len(tag) <= _READ_LONGEST:
        if len(_READ) >= _READ_LIMIT:  # links' hrefs vary without end: forget them all now and then
            _READ.clear()
        _READ[tag] = read
    return read


def _read_new(tag: str) -> _Tag | None:
    if tag[:1] == "/":
        return (_END, tag[1:], 0, None, None) if tag[1:] in _NAMES else None
    start = _START.fullmatch(tag)
    if start is None or start[1] not in _NAMES:
        return None
    name, attrs, slash = start.groups()
    if name == "br":
        return (_BR, name, 0, None, None)
    if slash:
        return None  # `<p/>` opens and closes at once in html.parser: not worth a branch
    if name in _INLINE:
        return (_INLINE_TAG, name, 0, _attributes(attrs).get("class"), None)
    if name == "a":
        return (_LINK, name, 0, None, _attributes(attrs))
    return (_BLOCK, name, _BLOCKS[name], None, None)


def _attributes(attrs: str) -> dict[str, str]:
    """`name="value"` attributes as html.parser gives them: references read, the last of a name wins."""
    return {key: unescape(value) if "&" in value else value for key, value in _ATTR.findall(attrs)}


def _reference(match: re.Match[str]) -> str:
    name, number = match.groups()
    return ENTITIES.get(name, "&" + name) if number is None else numeric_reference(number)
