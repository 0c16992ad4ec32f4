"""Text from strangers reaches the terminal without escape sequences, controls or bidi tricks."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core.sanitize import clean, clean_line, safe_url, scrub
from tests.conftest import HOSTILE_TEXTS


@pytest.mark.parametrize(
    "raw, shown",
    [
        ("a\x1b[2Jb", "ab"),
        ("a\x1b[31mred\x1b[0m", "ared"),
        ("x\x1b]52;c;ZWNobyBoYWNrZWQ=\x07y", "xy"),
        ("x\x1b]0;title\x1b\\y", "xy"),
        ("x\x1bP1;2|data\x1b\\y", "xy"),
        ("x\x9b31my", "xy"),  # 8-bit CSI
        ("x\x85\x9cy", "xy"),
        ("a\x00b\x07c\x08d\x7fe", "abcde"),
        ("\u202eevil\u202c", "evil"),
        ("zero\u200bwidth\ufeff", "zerowidth"),
        ("line1\r\nline2\rline3", "line1\nline2\nline3"),
        ("[bold]kept[/] as text", "[bold]kept[/] as text"),
        ("famille 👩‍👩‍👧 ok", "famille 👩‍👩‍👧 ok"),  # ZWJ emoji survive
    ],
)
def test_clean(raw: str, shown: str) -> None:
    assert clean(raw) == shown


def test_no_control_bytes_survive_any_hostile_text() -> None:
    for text in HOSTILE_TEXTS:
        out = clean(text)
        assert not any(ord(c) < 32 and c not in "\n\t" for c in out)
        assert not any(0x7F <= ord(c) < 0xA0 for c in out)
        assert "\u202e" not in out and "\x1b" not in out


def test_clean_line_folds_whitespace() -> None:
    assert clean_line("  Marie\n  \t Dupont ") == "Marie Dupont"


# Text that is already safe takes a shortcut; it must give what the four passes give.
_SPECIAL = [
    *"\x1b\x9b\x90\x9c\x07\r\n\t \x00\x7f\x85[]0;m",
    "\n\n\n",
    "e\u0301",
    "\u00e9",
    "\u202e",
    "\u200b",
    "\ufeff",
]


@settings(max_examples=800, derandomize=True, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(_SPECIAL), st.characters()), max_size=30).map("".join))
def test_the_shortcut_for_safe_text_cleans_as_the_full_passes_do(text: str) -> None:
    assert clean(text) == scrub(text)


def _split_url(text: str) -> str:
    """safe_url() by urlsplit alone, as it was before its shortcut for plain web links."""
    url = clean_line(text)
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    return url if parts.scheme.lower() in ("http", "https") and parts.netloc else ""


_URL_PARTS = [
    "http", "https", "HTTPS", "hTtp", "ftp", "javascript", "data", ":", "//", "/", "x.test", "a-b", "..", ":80",
    ":8a", "[", "]", "[::1]", "@", "user:pw@", "?", "#", " ", "\t", "\n", "\x1b", "\u200b", "é", "%2F", "0", "\\",
]  # fmt: skip


_url_tail = st.lists(st.one_of(st.sampled_from(_URL_PARTS), st.characters()), max_size=8).map("".join)
_urls = st.tuples(
    st.sampled_from(["http", "https", "HTTPS", "ftp", "javascript", " http", ""]),
    st.sampled_from(["://", ":/", ":", "//", ":///", ""]),
    _url_tail,
).map("".join)


@settings(max_examples=1000, derandomize=True, deadline=None)
@given(st.one_of(_urls, _url_tail))
def test_the_shortcut_for_plain_web_links_accepts_what_urlsplit_accepts(text: str) -> None:
    assert safe_url(text) == _split_url(text)


@pytest.mark.parametrize(
    "url",
    ["https://x.test", "HTTP://x.test:8080/a?b#c", "https://a-b.example/p", "http://x.test?q", "https://x.test#f"],
)
def test_plain_web_links_are_kept(url: str) -> None:
    assert safe_url(url) == url == _split_url(url)


@pytest.mark.parametrize(
    "url, kept",
    [("http://[", ""), ("https://x]/", ""), ("https://", ""), ("http:///x", ""), ("javascript://x.test/", ""),
     ("https://[::1]:8080/", "https://[::1]:8080/"), ("https://u:p@x.test/", "https://u:p@x.test/"),
     ("https://:80/", "https://:80/"), (" https://x.test/\u200b", "https://x.test/")],
)  # fmt: skip
def test_links_past_the_shortcut_are_split(url: str, kept: str) -> None:
    assert safe_url(url) == kept == _split_url(url)
