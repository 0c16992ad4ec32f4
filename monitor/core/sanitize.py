"""One sanitiser for text from strangers: mentions, and every answer a server gives (delivery results,
error texts), applied where it enters the system, before storage or display.

Textual strips only a few C0 controls; ESC sequences (OSC 52 clipboard writes, window titles,
screen clears) and C1 controls would otherwise reach the operator's terminal. Bidi overrides and
zero-width characters are removed so that what is shown is what was written.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit

# ESC-introduced sequences: CSI (ESC [ ... final), OSC/DCS/SOS/PM/APC (… terminated by BEL or ST),
# and the two-byte ESC forms. Their 8-bit C1 equivalents are handled the same way.
_SEQUENCES = re.compile(
    r"""
    (?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?      # CSI
    | (?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])                 # OSC, DCS, SOS, PM, APC
      [^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?                   # … up to BEL or ST
    | \x1b[\x20-\x2f]*[\x30-\x7e]?                            # other ESC sequences
    """,
    re.VERBOSE,
)

_BIDI_AND_INVISIBLE = (
    "\u200b\u200c\u200e\u200f"  # zero-width space/non-joiner, LRM, RLM (ZWJ kept: emoji sequences)
    "\u202a\u202b\u202c\u202d\u202e"  # embeddings and overrides
    "\u2066\u2067\u2068\u2069"  # isolates
    "\u2060\u2061\u2062\u2063\u2064\ufeff\u061c\u180e"
)
_CONTROLS = (
    "".join(chr(c) for c in range(0x20) if chr(c) not in "\n\t") + "\x7f" + "".join(chr(c) for c in range(0x80, 0xA0))
)
_DROP = str.maketrans("", "", _CONTROLS + _BIDI_AND_INVISIBLE)
_BLANK_LINES = re.compile(r"\n{3,}")
# Anything scrub() would change besides the ends and NFC: ESC and C1 start every sequence; \r is folded.
_UNSAFE = re.compile("[" + re.escape(_CONTROLS + _BIDI_AND_INVISIBLE) + "]|\n\n\n")
# An http(s) URL with a plain host (letters, digits, dots, hyphens) and maybe a port, then a path, query,
# fragment or nothing: urlsplit() finds its scheme and a non-empty host.
_PLAIN_WEB_URL = re.compile(r"(?i:https?)://[A-Za-z0-9.-]+(?::[0-9]*)?(?:[/?#]|\Z)")


def clean(text: str | None) -> str:
    """Text safe to show in a terminal: no escape sequences, controls, bidi overrides or zero-widths."""
    if not text:
        return ""
    # Most text from strangers is already safe: one search instead of four passes (ingest runs this
    # for every field of every status).
    if _UNSAFE.search(text) is None and unicodedata.is_normalized("NFC", text):
        return text.strip()
    return scrub(text)


def scrub(text: str) -> str:
    """clean() without its shortcut for text that is already safe."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _SEQUENCES.sub("", text)
    text = text.translate(_DROP)
    text = unicodedata.normalize("NFC", text)
    return _BLANK_LINES.sub("\n\n", text).strip()


def clean_line(text: str | None) -> str:
    """As clean(), folded to one line (names, handles, titles)."""
    return " ".join(clean(text).split())


def safe_url(text: str | None) -> str:
    """A link from outside, cleaned, if it is http(s); '' otherwise (javascript:, data:, file: …)."""
    url = clean_line(text)
    if _PLAIN_WEB_URL.match(url):
        return url  # what urlsplit() would accept, known without splitting it (ingest checks every post's)
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unbalanced [ in the host
        return ""
    return url if parts.scheme.lower() in ("http", "https") and parts.netloc else ""
