"""The BeautifulSoup-based feed HTML to text that monitor.networks.htmltext's LINES layout replaced, kept
unchanged as the reference it must match (tests/test_mastodon_html.py)."""

from __future__ import annotations

from bs4 import BeautifulSoup

_BLOCKS = ("p", "div", "li", "ul", "ol", "table", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote")


def html_to_text(html: str) -> str:
    """Plain text of an HTML fragment: block elements and <br> become line breaks, spaces collapse."""
    soup = BeautifulSoup(html, "html.parser")
    for tag in soup.find_all(("script", "style")):
        tag.decompose()
    for tag in soup.find_all("br"):
        tag.replace_with("\n")
    for tag in soup.find_all(_BLOCKS):
        tag.insert_before("\n")
        tag.insert_after("\n")
    lines = (" ".join(line.split()) for line in soup.get_text().split("\n"))
    return "\n".join(line for line in lines if line)
