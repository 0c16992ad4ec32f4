"""Mastodon's JSON as the sources read it: ids and cursors, the feeds, and a batch being collected.

Ids are opaque strings; they sort as numbers, so they are only ever compared by (length, text).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import httpx

from monitor.core.models import Batch, Mention
from monitor.networks.base import SourceError
from monitor.networks.http import json_body

log = logging.getLogger(__name__)

NOTIFIED = ("mention", "quote")  # notifications kept: addressed to us (quotes of our posts: Mastodon 4.5+)


# -- ids and cursors ------------------------------------------------------------------------


def id_key(value: str) -> tuple[int, str]:
    """Mastodon ids are strings of digits: longer is newer, then lexical order (never int())."""
    return (len(value), value)


def newer(a: str | None, b: str | None) -> str | None:
    if a is None:
        return b
    if b is None:
        return a
    return b if id_key(b) > id_key(a) else a


def decode_cursor(cursor: str | None) -> dict[str, str]:
    if not cursor:
        return {}
    try:
        data = json.loads(cursor)
    except json.JSONDecodeError:
        log.warning("unreadable mastodon cursor ignored; starting from the newest posts")
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): v for k, v in data.items() if isinstance(v, str) and v}


def encode_cursor(positions: dict[str, str]) -> str:
    return json.dumps(positions, sort_keys=True, ensure_ascii=False)


class FeedKind(StrEnum):
    TAG = "tag"  # a hashtag timeline
    NOTIFICATIONS = "notifications"  # mentions and quotes of the token's account
    SEARCH = "search"  # statuses search (no stream: polled)


@dataclass(frozen=True)
class Feed:
    kind: FeedKind
    arg: str = ""

    @property
    def key(self) -> str:
        if self.kind is FeedKind.TAG:
            return "tag:" + self.arg.lower()
        if self.kind is FeedKind.SEARCH:
            return "search:" + self.arg
        return self.kind.value

    @property
    def label(self) -> str:
        if self.kind is FeedKind.TAG:
            return f"hashtag #{self.arg}"
        if self.kind is FeedKind.SEARCH:
            return f"search {self.arg!r}"
        return "notifications"


@dataclass(slots=True)
class Known:
    uri: str
    root: str
    edited_at: str | None


class Malformed(Exception):
    pass


@dataclass
class Collect:
    """One batch being built: mentions deduplicated by remote id, in arrival order."""

    batch: Batch = field(default_factory=Batch)
    seen: dict[str, Mention] = field(default_factory=dict)
    orphans: list[tuple[Mention, str]] = field(default_factory=list)  # replies and their parent's local id

    def add(self, mention: Mention, edited: bool = False) -> None:
        first = self.seen.setdefault(mention.remote_id, mention)
        if first is mention:
            self.batch.mentions.append(mention)
        else:
            first.to_us = first.to_us or mention.to_us  # found by a hashtag, and as a mention of us
        if edited:
            self.batch.edits.append(mention)


# -- helpers --------------------------------------------------------------------------------


def text_field(obj: dict[str, Any], key: str) -> str:
    value = obj[key]
    if not isinstance(value, str) or not value:
        raise Malformed(f"{key!r} is not a non-empty string")
    return value


def optional_text(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)
    return value if isinstance(value, str) and value else None


def status_local_id(status: Any) -> str | None:
    """The local id a status is remembered by (a boost's is the boosted status')."""
    if not isinstance(status, dict):
        return None
    reblog = status.get("reblog")
    value = (reblog if isinstance(reblog, dict) else status).get("id")
    return value if isinstance(value, str) else None


def original_status(status: Any) -> dict[str, Any]:
    """The status itself, or the boosted one for a boost."""
    if not isinstance(status, dict):
        return {}
    reblog = status.get("reblog")
    return reblog if isinstance(reblog, dict) else status


def mention_status(notification: Any) -> Any:
    """The status of a `mention` notification; None for any other kind."""
    if not isinstance(notification, dict) or notification.get("type") not in NOTIFIED:
        return None
    return notification.get("status")


def json_list(response: httpx.Response, what: str) -> list[Any]:
    body = json_body(response, what)
    if not isinstance(body, list):
        raise SourceError(f"{what}: unexpected answer (not a list)")
    return body


def dig(obj: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return (parts.scheme, parts.netloc.lower())
