"""Bluesky posts as mentions: a postView (or a notification) to a Mention, its rich text to plain text.

Lexicons: app.bsky.feed.post, app.bsky.richtext.facet (byte offsets into the UTF-8 text).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from monitor.core.models import Mention
from monitor.core.sanitize import clean, clean_line, safe_url
from monitor.core.timeutil import remote_time
from monitor.networks.bluesky.options import DID, HANDLE
from monitor.networks.bluesky.xrpc import dig

log = logging.getLogger(__name__)

NETWORK = "bluesky"
POST_TYPE = "app.bsky.feed.post"
LINK_FEATURE = "app.bsky.richtext.facet#link"
TAG_FEATURE = "app.bsky.richtext.facet#tag"
MENTION_FEATURE = "app.bsky.richtext.facet#mention"
INVALID_HANDLE = "handle.invalid"  # what the AppView says when a handle does not resolve back to its DID
_POST_URI = re.compile(r"^at://([^/?#]+)/app\.bsky\.feed\.post/([A-Za-z0-9._~:-]{1,512})$")


def addressed(view: dict[str, Any], me: str | None) -> bool:
    """A post found by search that replies to, quotes or mentions the city's account (not its own)."""
    record = view.get("record")
    if me is None or not isinstance(record, dict) or dig(view, "author", "did") == me:
        return False
    reply = found if isinstance(found := record.get("reply"), dict) else {}
    embed = found if isinstance(found := record.get("embed"), dict) else {}
    targets = [_ref_uri(reply.get("parent")), _ref_uri(reply.get("root")), _ref_uri(embed.get("record"))]
    targets.append(_ref_uri(dig(embed, "record", "record")))  # recordWithMedia: a quote with pictures
    if any(uri and uri.startswith(f"at://{me}/") for uri in targets):
        return True
    facets = record.get("facets")
    return any(
        isinstance(f, dict) and feature.get("$type") == MENTION_FEATURE and feature.get("did") == me
        for f in (facets if isinstance(facets, list) else ())
        for feature in (f.get("features") if isinstance(f.get("features"), list) else ())
        if isinstance(feature, dict)
    )


def post_mention(source: str, view: dict[str, Any], record: Any, author: Any) -> Mention | None:
    """A Mention from a postView (or a notification, which carries the same three parts)."""
    uri = view.get("uri")
    try:
        if not isinstance(record, dict) or not isinstance(author, dict):
            raise ValueError("no record or author")
        if record.get("$type", POST_TYPE) != POST_TYPE:
            raise ValueError(f"record is a {record.get('$type')!r}")
        text = record["text"]
        if not isinstance(text, str):
            raise ValueError("text is not a string")
        if not isinstance(uri, str) or (match := _POST_URI.match(uri)) is None:
            raise ValueError("not a post AT-URI")
        repo, rkey = match.groups()
        handle, did = author.get("handle"), author.get("did")
        if not isinstance(handle, str) or not handle:
            raise ValueError("author has no handle")
        indexed = remote_time(view.get("indexedAt"))
        published = remote_time(record.get("createdAt")) or indexed
        if published is None:
            raise ValueError("no createdAt")
        if indexed is not None and published > indexed:
            published = indexed  # a clock ahead (or a lie) must not pin a post to the top
        body, links, tags = _rich_text(text, record)
        reply = found if isinstance(found := record.get("reply"), dict) else {}
        langs = record.get("langs")
        lang = clean_line(langs[0]) if isinstance(langs, list) and langs and isinstance(langs[0], str) else ""
        verified = HANDLE.match(handle) is not None and handle != INVALID_HANDLE
        true_did = did if isinstance(did, str) and DID.match(did) else repo
        actor = handle if verified else true_did
        return Mention(
            source=source,
            remote_id=uri,
            network=NETWORK,
            # A handle that does not verify is shown as nothing of the kind: the (shortened) DID
            # tells two such authors apart, where "handle.invalid" made them look the same.
            author=clean_line(handle) if verified else short_did(true_did),
            author_name=clean_line(author.get("displayName") if isinstance(author.get("displayName"), str) else ""),
            text=body,
            published_at=published,
            url=f"https://bsky.app/profile/{actor}/post/{rkey}",
            lang=lang or None,
            reply_to=_ref_uri(reply.get("parent")),
            thread_id=_ref_uri(reply.get("root")),
            tags=tags,
            raw=view,
        )
    except (KeyError, TypeError, ValueError, IndexError, OverflowError) as exc:
        log.warning("%s: post %s skipped: %s", source, clean_line(str(uri))[:200], exc)
        return None


def short_did(did: str) -> str:
    """did:plc:ewvi7nxzyoun6zhxrhs64oiz -> did:plc:ewvi7nxzyo… (enough to tell accounts apart)."""
    did = clean_line(did)
    return did if len(did) <= 20 else did[:18] + "…"


def _rich_text(text: str, record: dict[str, Any]) -> tuple[str, list[str], tuple[str, ...]]:
    """The sanitised text (plus the targets of links shown shortened), the link targets and the tags."""
    data = text.encode("utf-8")
    links: list[str] = []
    hidden: list[str] = []
    tags: list[str] = []
    facets = record.get("facets")
    for facet in facets if isinstance(facets, list) else ():
        if not isinstance(facet, dict) or not isinstance(facet.get("features"), list):
            continue
        index = found if isinstance(found := facet.get("index"), dict) else {}
        start, end = index.get("byteStart"), index.get("byteEnd")
        shown = ""
        if isinstance(start, int) and isinstance(end, int) and 0 <= start <= end <= len(data):
            shown = data[start:end].decode("utf-8", errors="replace")  # offsets are UTF-8 bytes
        for feature in facet["features"]:
            if not isinstance(feature, dict):
                continue
            kind = feature.get("$type")
            if kind == LINK_FEATURE and isinstance(feature.get("uri"), str):
                uri = safe_url(feature["uri"])  # javascript:, data: … are not links
                if uri and uri not in links:
                    links.append(uri)
                    # Clients show "example.com/long/pa..." for the full address; a custom client may
                    # show any words at all. Either way the operator must see where it leads.
                    if _bare(shown) != _bare(uri) and _bare(uri) not in text:
                        hidden.append(uri)
            elif kind == TAG_FEATURE and isinstance(feature.get("tag"), str):
                tags.append(feature["tag"])
    extra = record.get("tags")
    tags += [t for t in extra if isinstance(t, str)] if isinstance(extra, list) else []
    body = clean(text)
    if hidden:
        body = (body + "\n\n" + "\n".join(hidden)).strip()
    unique: dict[str, str] = {}
    for tag in tags:
        tag = clean_line(tag).lstrip("#")
        if tag:
            unique.setdefault(tag.casefold(), tag)
    return body, links, tuple(unique.values())


def _bare(url: str) -> str:
    url = url.strip()
    for prefix in ("https://", "http://"):
        if url.lower().startswith(prefix):
            url = url[len(prefix) :]
    return url.rstrip("/")


def _ref_uri(ref: Any) -> str | None:
    uri = ref.get("uri") if isinstance(ref, dict) else None
    return uri if isinstance(uri, str) and uri.startswith("at://") else None
