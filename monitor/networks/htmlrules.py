"""The reading rules both HTML readers share (monitor.networks.htmltext's html.parser walk and
monitor.networks.htmlfast's reader of Mastodon's own subset): what each element means for the text, how
references read, how text and line breaks are written, and how a link reads.
"""

from __future__ import annotations

import re
from html.entities import html5

BLANK_LINE_BLOCKS = frozenset({"p", "blockquote", "pre", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6"})
LINE_BLOCKS = frozenset({"div", "li", "tr", "dt", "dd"})
SKIPPED = frozenset({"script", "style", "template", "head", "title"})
SPACES = re.compile(r"[ \t\r\n\f\v]+")

# How the replaced tree builder shaped the tree (bs4's HTMLTreeBuilder defaults): void elements close
# at once; text under these containers is not plain text (script, ruby annotations...). Its folding of
# whitespace-only text is not copied: the spaces collapse below all the same.
VOID = frozenset(
    {
        "area", "base", "basefont", "bgsound", "br", "col", "command", "embed", "frame", "hr", "image", "img",
        "input", "isindex", "keygen", "link", "menuitem", "meta", "nextid", "param", "source", "spacer", "track",
        "wbr",
    }
)  # fmt: skip
STRING_CONTAINERS = frozenset({"rp", "rt", "script", "style", "template"})

# Named references without their semicolon; the first spelling in sorted order wins.
ENTITIES: dict[str, str] = {}
for _name, _char in sorted(html5.items()):
    ENTITIES.setdefault(_name.removesuffix(";"), _char)


class Writer:
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
        return "\n".join([line.strip(" ") for line in lines]).strip("\n")


def numeric_reference(name: str) -> str:
    """A numeric character reference (`233` or `xE9`, as html.parser passes it) as the HTML standard reads it."""
    number = int(name[1:], 16) if name[0] in "xX" else int(name)
    if number == 0 or number > 0x10FFFF or 0xD800 <= number <= 0xDFFF:
        return "\ufffd"
    if 0x80 <= number <= 0x9F:  # a Windows-1252 byte written as a reference
        try:
            return bytes([number]).decode("cp1252")
        except UnicodeDecodeError:
            pass
    return chr(number)


def link_text(parts: list[tuple[str, str | None]], attrs: dict[str, str]) -> str:
    """A link's visible text; the full href when Mastodon shortened it for display.

    `parts` are its strings with the class of the element directly around each (None: the link itself).
    """
    visible: list[str] = []
    shortened = seen_visible = False
    for part, around_class in parts:
        around = around_class.split() if around_class else ()
        if "invisible" in around:
            # A hidden tail after the shown part means the URL was cut ("https://" before it is not).
            shortened = shortened or (seen_visible and bool(part.strip()))
            continue
        shortened = shortened or "ellipsis" in around
        visible.append(part)
        seen_visible = seen_visible or bool(part.strip())
    text = SPACES.sub(" ", "".join(visible)).strip()
    classes = (attrs.get("class") or "").split()
    if "mention" in classes or "hashtag" in classes:
        return text
    href = attrs.get("href") or ""
    if shortened and href.startswith(("https://", "http://")):
        return href
    return text or href
