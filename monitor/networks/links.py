"""Links as the networks give them, made plain (no HTTP client needed: the demo uses it too)."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

_GOOGLE_HOST = re.compile(r"^(?:www\.)?google\.[a-z]{2,3}(?:\.[a-z]{2})?$")


def unwrap_link(link: str) -> str:
    """Google Alerts wraps every link in https://www.google.com/url?...&url=<target>: keep the target."""
    parts = urlsplit(link)
    if parts.path == "/url" and _GOOGLE_HOST.match((parts.hostname or "").lower()):
        query = parse_qs(parts.query)
        for key in ("url", "q"):
            target = (query.get(key) or [""])[0]
            if urlsplit(target).scheme in ("http", "https"):
                return target
    return link
