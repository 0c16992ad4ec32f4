"""Mastodon's own HTML subset read with one compiled regex: the fast path of htmltext's STATUS layout.

Mastodon sanitises every status to a few elements: `<p>`, `<br>`, `<a>` with `<span>`s inside (mentions,
hashtags, shortened links), and for remote posts lists, quotes and inline formatting. Read with
html.parser, each tag costs a dozen Python calls; here it costs one regex match and a few branches.

The reading is the html.parser walk's (monitor.networks.htmltext), on the same rules (htmlrules): each
text node, reference and element means the same. Anything outside the subset (another element, a
comment, a malformed or unbalanced tag, an attribute not written `name="value"`, a bare `&`, `<br>`
inside a link) returns None and the caller reads the status with html.parser instead: the subset is
only where both readers provably agree (tests/test_mastodon_html.py compares them on fuzzed HTML).
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

# A tag (what lies between "<" and ">"): a name, `name="value"` attributes (values without < > "), maybe
# "/" or " /". End tags are looked up whole. Lowercase names only: others fall back.
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
# The tags without attributes, looked up whole: (name, is an end tag, closes itself).
_BARE = {name: (name, False, False) for name in _NAMES} | {"/" + name: (name, True, False) for name in _NAMES}
_BARE |= {"br/": ("br", False, True), "br /": ("br", False, True)}


def _reference(match: re.Match[str]) -> str:
    name, number = match.groups()
    return ENTITIES.get(name, "&" + name) if number is None else numeric_reference(number)


def status_text(html: str) -> str | None:
    """The STATUS layout's text of `html`, or None when it is outside the subset read here."""
    out = Writer()
    open_: list[tuple[str, int, str | None]] = []  # (name, breaks owed on leaving, class inside a link)
    link: list[tuple[str, str | None]] | None = None  # the open link's strings, with their parent's class
    link_attrs: dict[str, str] = {}
    pieces = html.split("<")
    text = pieces[0]
    for number in range(len(pieces)):
        if number:  # a tag, then the text up to the next one
            tag, gt, text = pieces[number].partition(">")
            if not gt:
                return None  # a "<" that opens no tag
            bare = _BARE.get(tag)
            if bare is not None:
                name, end, closed = bare
                attrs = ""
            elif (start := _START.fullmatch(tag)) is not None and start[1] in _NAMES:
                name, attrs, slash = start.groups()
                end, closed = False, slash is not None
            else:
                return None  # a comment, an unknown element, an attribute written otherwise...
            if end:
                if not open_ or open_[-1][0] != name:
                    return None  # unbalanced: html.parser's recovery is not copied here
                _, after, _ = open_.pop()
                if name == "a":
                    out.text(link_text(link or [], link_attrs))
                    link = None
                elif after:
                    out.block(after)
            elif name == "br" and link is None:
                out.newline()
            elif closed:
                return None  # `<p/>` opens and closes at once in html.parser: not worth a branch
            elif name in _INLINE:
                open_.append((name, 0, _class(attrs) if link is not None else None))
            elif link is not None:
                return None  # a block, a <br> or a link inside a link
            elif name == "a":
                link = []
                link_attrs = {key: unescape(value) if "&" in value else value for key, value in _ATTR.findall(attrs)}
                open_.append((name, 0, None))
            else:
                after = _BLOCKS[name]
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


def _class(attrs: str) -> str | None:
    """The class attribute of an element inside a link, the last one if repeated."""
    value = None
    for key, given in _ATTR.findall(attrs):
        if key == "class":
            value = unescape(given) if "&" in given else given
    return value
