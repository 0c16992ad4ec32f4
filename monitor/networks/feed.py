"""RSS and Atom feeds (press, Google Alerts, Reddit search) fetched with conditional GETs.

One source holds several feed URLs. The cursor is JSON of {url: {"etag", "last_modified"}}: the
validators of the last response whose entries were all returned, so a 304 means nothing new. A URL
that fails keeps its old validators while the others advance; only when every URL fails does the
poll raise (the most severe kind). Per-URL failures are logged and kept in `FeedSource.problems`.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser
import httpx
import yaml

from monitor.core.models import Batch, Mention
from monitor.core.sanitize import clean, clean_line, safe_url
from monitor.core.timeutil import parse_utc_fields, utcnow
from monitor.core.yamlread import Node
from monitor.networks.base import SourceContext, SourceError, SourceType
from monitor.networks.htmltext import Layout, html_to_text
from monitor.networks.http import make_client, send
from monitor.networks.links import unwrap_link

log = logging.getLogger(__name__)

ACCEPT = "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
MAX_PARALLEL = 4  # feeds fetched at once by one source
MAX_BODY_CHARS = 4000  # full articles (content:encoded) are cut: the desk needs the gist and the link
VALIDATORS = ("etag", "last_modified")
SEVERITY = {"transient": 0, "rate": 1, "auth": 2, "config": 3}


@dataclass(frozen=True)
class FeedOptions:
    urls: tuple[str, ...]


def parse_options(fields: dict[str, Node], node: Node) -> FeedOptions:
    if "urls" not in fields:
        node.fail("missing key 'urls' in a feed source", "urls: a list of RSS or Atom addresses")
    urls_node = fields["urls"]
    single = isinstance(urls_node.node, yaml.ScalarNode) and not urls_node.is_null()
    items = [urls_node] if single else urls_node.list()  # one address may be written without '- '
    if not items:
        fields["urls"].fail("no feed addresses", "at least one https:// address under 'urls'")
    urls: list[str] = []
    for item in items:
        url = item.str().strip()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            item.fail(f"{url!r} is not a web address", "an address starting with https://")
        if url in urls:
            item.fail(f"duplicate feed address {url!r}", "each address once")
        urls.append(url)
    return FeedOptions(tuple(urls))


def label(url: str) -> str:
    """A URL for logs and messages, without the query (search terms, and the odd access key)."""
    parts = urlsplit(url)
    text = f"{parts.hostname or ''}{parts.path}"
    return text if len(text) <= 60 else text[:57] + "..."


def utf8_with_stray_bytes(content: bytes) -> bytes | None:
    """UTF-8 spoiled by a few invalid bytes: the same with only those bytes replaced (U+FFFD).

    None for valid UTF-8, UTF-16/32, and text in another encoding (left to feedparser and chardet):
    a legacy encoding forms valid UTF-8 sequences only by accident, far fewer than its invalid ones.
    """
    if content[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in content[:4]:
        return None
    try:
        content.decode("utf-8")
        return None
    except UnicodeDecodeError:
        pass
    text = content.decode("utf-8", errors="replace")
    bad = text.count("\ufffd") - content.count("\ufffd".encode())
    good = sum(1 for ch in text if ord(ch) > 0x7F) - bad
    return text.encode("utf-8") if good >= 2 * bad else None


def _detail_text(value: str, detail: Any) -> str:
    kind = (detail or {}).get("type") or "text/html"
    return html_to_text(value, Layout.LINES) if "html" in kind else value


def _when(entry: Any) -> datetime | None:
    for key in ("published_parsed", "updated_parsed"):
        parsed = entry.get(key)
        if parsed:
            try:
                return parse_utc_fields(parsed)  # feedparser gives UTC
            except (TypeError, ValueError):
                continue
    return None


@dataclass
class FetchResult:
    url: str
    validators: dict[str, str] | None  # None: leave the stored ones as they are (304)
    mentions: list[Mention] = field(default_factory=list)
    skipped: int = 0


class FeedSource:
    def __init__(self, name: str, options: FeedOptions, context: SourceContext) -> None:
        self.name = name
        self.urls = options.urls
        self.context = context
        self.problems: dict[str, str] = {}  # url -> why its last fetch failed (cleared on success)
        self._not_before: dict[str, float] = {}  # url -> monotonic time its Retry-After ends
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            # Feeds move (http -> https, new paths): follow redirects rather than parse a 301 page.
            self._client = make_client(self.context, headers={"Accept": ACCEPT}, follow_redirects=True)
        return self._client

    async def poll(self, cursor: str | None) -> Batch:
        state = self._load_cursor(cursor)
        limit = asyncio.Semaphore(MAX_PARALLEL)

        async def one(url: str) -> FetchResult | SourceError:
            async with limit:
                try:
                    return await self._fetch(url, state.get(url, {}))
                except SourceError as exc:
                    return exc
                except Exception as exc:  # a parser bug on one feed must not hide the others
                    log.exception("feed %s: unexpected error", label(url))
                    return SourceError(f"{label(url)}: {type(exc).__name__}", "transient")

        results = await asyncio.gather(*(one(url) for url in self.urls))
        batch = Batch()
        errors: list[SourceError] = []
        for url, result in zip(self.urls, results, strict=True):
            if isinstance(result, SourceError):
                errors.append(result)
                self.problems[url] = str(result)
                if result.kind == "rate" and result.retry_after:
                    self._not_before[url] = time.monotonic() + result.retry_after
                continue
            self.problems.pop(url, None)
            if result.validators is not None:
                if result.validators:
                    state[url] = result.validators
                else:
                    state.pop(url, None)  # no validators: fetch in full next time
            batch.mentions.extend(result.mentions)
            batch.skipped += result.skipped
        if errors and len(errors) == len(self.urls):
            raise _combined(errors)
        for error in errors:
            log.warning("feed source %s: %s (other feeds collected)", self.name, error)
        batch.cursor = json.dumps(state, sort_keys=True, ensure_ascii=False)
        return batch

    def _load_cursor(self, cursor: str | None) -> dict[str, dict[str, str]]:
        if not cursor:
            return {}
        try:
            data = json.loads(cursor)
        except json.JSONDecodeError:
            log.warning("feed source %s: unreadable cursor ignored", self.name)
            return {}
        if not isinstance(data, dict):
            return {}
        state: dict[str, dict[str, str]] = {}
        for url in self.urls:  # addresses removed from the watchlist are forgotten
            value = data.get(url)
            if isinstance(value, dict):
                kept = {k: v for k, v in value.items() if k in VALIDATORS and isinstance(v, str)}
                if kept:
                    state[url] = kept
        return state

    async def _fetch(self, url: str, validators: dict[str, str]) -> FetchResult:
        wait = self._not_before.get(url, 0.0) - time.monotonic()
        if wait > 0:
            raise SourceError(f"{label(url)}: rate limited, waiting", "rate", wait)
        self._not_before.pop(url, None)
        headers = {}
        if validators.get("etag"):
            headers["If-None-Match"] = validators["etag"]
        if validators.get("last_modified"):
            headers["If-Modified-Since"] = validators["last_modified"]
        try:
            response = await send(self._http(), "GET", url, label(url), headers=headers)
        except SourceError as exc:
            if exc.kind != "auth":
                raise
            # A feed has no credentials to renew: a 401/403 is a bot wall or a private feed.
            raise SourceError(
                f"{label(url)}: access refused by the site (401/403: bot protection or a private feed)",
                "config",
            ) from exc
        if response.status_code == 304:
            # A 304 may refresh the validators (RFC 9110 §15.4.5); otherwise keep what we sent.
            fresh = _validators(response)
            return FetchResult(url, {**validators, **fresh} if fresh else None)
        if response.status_code not in (200, 203):
            raise SourceError(f"{label(url)}: unexpected HTTP {response.status_code}", "transient")
        content = response.content
        if not content.strip():
            raise SourceError(f"{label(url)}: empty document", "transient")
        # No content-location for feedparser: it would rewrite relative ids (Reddit's t3_...) into URLs
        # of wherever the feed was fetched from. Relative links are resolved here instead.
        # The HTTP charset takes part in feedparser's encoding guess (RFC 3023), with its fallbacks for
        # feeds that lie (UTF-8 declared as ISO-8859-1, Windows-1252 declared as UTF-8).
        content_type = response.headers.get("content-type")
        headers_for_parser = {"content-type": content_type} if content_type else {}
        repaired = utf8_with_stray_bytes(content)
        if repaired is not None:
            # Otherwise feedparser reads the whole document as Windows-1252 for one bad byte.
            log.info("feed %s: invalid UTF-8 bytes replaced", label(url))
            content, headers_for_parser = repaired, {"content-type": "application/xml; charset=utf-8"}
        mentions, skipped = await asyncio.to_thread(self._parse, url, str(response.url), content, headers_for_parser)
        # Validators are stored only for a document we could read, so a 304 never hides unread entries.
        return FetchResult(url, _validators(response), mentions, skipped)

    def _parse(self, url: str, base: str, content: bytes, headers: dict[str, str]) -> tuple[list[Mention], int]:
        # A stream, never a string: feedparser would fetch a string that looks like a URL or path.
        parsed = feedparser.parse(io.BytesIO(content), response_headers=headers)
        entries = parsed.get("entries") or []
        if not entries and not parsed.get("version"):
            problem = parsed.get("bozo_exception")
            why = type(problem).__name__ if problem else "no entries"
            raise SourceError(f"{label(url)}: not a feed ({why})", "transient")
        if parsed.get("bozo"):
            log.info("feed %s is not well-formed (%s); kept %d entries", label(url),
                     parsed.get("bozo_exception"), len(entries))  # fmt: skip
        feed = parsed.get("feed") or {}
        feed_title = clean_line(feed.get("title")) or (urlsplit(url).hostname or url)
        lang = _lang(feed.get("language"))
        mentions: list[Mention] = []
        skipped = 0
        for entry in entries:
            try:
                mentions.append(self._mention(url, base, entry, feed_title, lang))
            except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
                skipped += 1
                log.warning("feed %s: entry %r skipped: %r", label(url), entry.get("id"), exc)
        mentions.sort(key=lambda m: m.published_at)  # oldest first, as they happened
        return mentions, skipped

    def _mention(self, url: str, base: str, entry: Any, feed_title: str, lang: str | None) -> Mention:
        title = clean(_detail_text(entry.get("title") or "", entry.get("title_detail")))
        body_html, body_detail = entry.get("summary") or "", entry.get("summary_detail")
        if not body_html and entry.get("content"):
            body_html, body_detail = entry["content"][0].get("value") or "", entry["content"][0]
        elif body_detail is None and entry.get("content"):
            body_detail = entry["content"][0]  # Atom <content> only: feedparser copies it to summary
        body = clean(_detail_text(body_html, body_detail))
        if len(body) > MAX_BODY_CHARS:
            body = body[: MAX_BODY_CHARS - 1].rstrip() + "…"
        if body == title:
            body = ""
        text = clean(f"{title}\n\n{body}" if body else title)
        link = urljoin(base, entry.get("link") or "") if entry.get("link") else ""
        link = unwrap_link(link) if urlsplit(link).scheme in ("http", "https") else ""
        published = _when(entry)
        detail = entry.get("author_detail") or {}
        author_name = clean_line(detail.get("name") or entry.get("author"))
        remote_id = clean_line(entry.get("id")) or link
        if not remote_id:
            seed = f"{title}\x1f{entry.get('published') or entry.get('updated') or ''}"
            remote_id = "sha256:" + hashlib.sha256(seed.encode("utf-8")).hexdigest()
        now = utcnow()
        return Mention(
            source=self.name,
            remote_id=remote_id,
            network="feed",
            author=author_name or feed_title,
            author_name=author_name,
            text=text,
            url=safe_url(link),
            lang=_lang((entry.get("title_detail") or {}).get("language")) or lang,
            tags=tuple(t for t in (clean_line(tag.get("term")) for tag in entry.get("tags") or ()) if t),
            # A date in the future (a wrong clock or a scheduled post) would sort above everything.
            published_at=min(published, now) if published else now,
            raw={
                "feed": url,
                "id": entry.get("id"),
                "link": entry.get("link"),
                "title": entry.get("title"),
                "published": entry.get("published") or entry.get("updated"),
            },
        )

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _validators(response: httpx.Response) -> dict[str, str]:
    out = {}
    for header, key in (("etag", "etag"), ("last-modified", "last_modified")):
        value = response.headers.get(header, "")
        # Sent back as a header next time: a value we could not send would block the feed for good.
        if value and len(value) <= 512 and value.isascii() and value.isprintable():
            out[key] = value
    return out


def _lang(value: Any) -> str | None:
    """'fr-FR' -> 'fr'."""
    if not isinstance(value, str) or not value.strip():
        return None
    primary = value.strip().replace("_", "-").split("-")[0].lower()
    return primary if primary.isalpha() and len(primary) <= 3 else None


def _combined(errors: list[SourceError]) -> SourceError:
    """Every feed failed: one error of the most severe kind, naming each failure."""
    worst = max(errors, key=lambda e: SEVERITY.get(e.kind, 0))
    waits = [e.retry_after for e in errors if e.kind == worst.kind and e.retry_after is not None]
    message = "; ".join(str(e) for e in errors)
    return SourceError(message, worst.kind, min(waits) if waits else None)


TYPE = SourceType(
    option_keys=("urls",),
    parse_options=parse_options,
    build=FeedSource,
    default_interval=timedelta(minutes=10),
)
