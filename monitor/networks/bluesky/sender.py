"""Replies on Bluesky: com.atproto.repo.createRecord with a record key (TID) we choose.

The key is generated once per draft, so after an uncertain failure (a timeout, a crash between the
PDS accepting and our commit) we ask com.atproto.repo.getRecord for it before posting again.
Facets (mentions, links) use UTF-8 byte offsets, as the app.bsky.richtext.facet lexicon requires.
The session is the Bluesky source's own (its file in the state folder), reused and refreshed.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

import httpx

from monitor.core.config import SourceSpec
from monitor.core.models import MentionRow
from monitor.core.outbox import OutboxItem
from monitor.core.retry import ErrorKind
from monitor.core.timeutil import utcnow
from monitor.networks.base import NetworkError, SourceContext
from monitor.networks.bluesky.source import BlueskyOptions, session_path
from monitor.networks.bluesky.xrpc import XrpcClient
from monitor.networks.http import answer, check, json_body
from monitor.networks.replies import ReplyNetwork
from monitor.networks.sending import Sent

POST = "app.bsky.feed.post"
# From the atproto docs' facet examples: a handle after a start, space or '(' ; a bare http(s) URL.
_MENTION = re.compile(
    rb"(?:^|[\s(])(@([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)"
)
_URL = re.compile(rb"(?:^|[\s(])(https?://[^\s)\]]+[^\s.,;:!?)\]'\"])")
_B32 = "234567abcdefghijklmnopqrstuvwxyz"  # atproto's base32-sortable alphabet


def tid(micros: int | None = None, clock_id: int | None = None) -> str:
    """An atproto TID: 53 bits of microseconds then 10 bits of clock id, 13 base32-sortable chars."""
    micros = micros if micros is not None else time.time_ns() // 1000
    clock_id = clock_id if clock_id is not None else secrets.randbelow(1024)
    n = (micros << 10) | clock_id
    return "".join(_B32[(n >> (5 * i)) & 31] for i in reversed(range(13)))


def reply_fields(row: MentionRow, raw: dict[str, Any]) -> dict[str, Any]:
    """What a reply needs about the original post, taken when the operator acts: its strong ref and
    thread root, its author, and the reply's record key, chosen once so a retry never posts twice."""
    record = found if isinstance(found := raw.get("record"), dict) else {}
    author = found if isinstance(found := raw.get("author"), dict) else {}
    uri = str(raw.get("uri") or (row.remote_id if row.remote_id.startswith("at://") else ""))
    return {
        "parent": {"uri": uri, "cid": str(raw.get("cid") or "")},
        "root": (record.get("reply") or {}).get("root"),
        "author_did": str(author.get("did") or ""),
        "author_handle": str(author.get("handle") or row.author).lstrip("@"),
        "rkey": tid(),
    }


def facets(text: str, dids: dict[str, str]) -> list[dict[str, Any]]:
    """Mention and link facets with byte offsets; a handle we cannot resolve stays plain text."""
    raw = text.encode("utf-8")
    out: list[dict[str, Any]] = []
    for m in _MENTION.finditer(raw):
        handle = m.group(1)[1:].decode().lower()
        if handle in dids:
            out.append(
                {
                    "index": {"byteStart": m.start(1), "byteEnd": m.end(1)},
                    "features": [{"$type": "app.bsky.richtext.facet#mention", "did": dids[handle]}],
                }
            )
    for m in _URL.finditer(raw):
        out.append(
            {
                "index": {"byteStart": m.start(1), "byteEnd": m.end(1)},
                "features": [{"$type": "app.bsky.richtext.facet#link", "uri": m.group(1).decode()}],
            }
        )
    return out


def handles(text: str) -> list[str]:
    return [m.group(1)[1:].decode().lower() for m in _MENTION.finditer(text.encode("utf-8"))]


class BlueskySender:
    def __init__(self, spec: SourceSpec, context: SourceContext) -> None:
        o: BlueskyOptions = spec.options  # a bluesky spec's options, checked when the watchlist was read
        self.name = spec.name
        # The source's own session file: replies reuse (and refresh) the session the source opened,
        # since createSession is limited to 30 per 5 minutes.
        self.xrpc = XrpcClient(
            context, o.pds, o.handle, o.app_password_env,
            session_path(context.state_dir, spec.name), label=f"{spec.name} (replies)", plc=o.plc,
        )  # fmt: skip

    async def aclose(self) -> None:
        await self.xrpc.aclose()

    async def _existing(self, did: str, rkey: str) -> dict[str, Any] | None:
        what = "bluesky: look for an earlier attempt"
        r = await self.xrpc.raw(
            "GET", "com.atproto.repo.getRecord", params={"repo": did, "collection": POST, "rkey": rkey}
        )
        if r.status_code == 400 and _error(r) == "RecordNotFound":
            return None
        found = json_body(check(r, what), what)
        if not isinstance(found, dict):
            raise NetworkError(f"{what}: unexpected answer")
        return found

    async def _strong_ref(self, parent: dict[str, Any]) -> tuple[dict[str, str], dict[str, str] | None]:
        """The parent's uri+cid and its own reply root, fetched when the mention did not carry them."""
        what = "bluesky: read the original"
        r = check(await self.xrpc.raw("GET", "app.bsky.feed.getPosts", params={"uris": parent["uri"]}), what)
        posts = json_body(r, what).get("posts") or []
        if not posts:
            raise NetworkError(f"{what}: not found (deleted?)", ErrorKind.CONFIG)
        post = posts[0]
        root = ((post.get("record") or {}).get("reply") or {}).get("root")
        return {"uri": post["uri"], "cid": post["cid"]}, root

    async def _dids(self, text: str, known: dict[str, str]) -> dict[str, str]:
        dids = dict(known)
        for handle in handles(text):
            if handle in dids:
                continue
            r = await self.xrpc.raw("GET", "com.atproto.identity.resolveHandle", params={"handle": handle})
            if r.status_code == 200:
                dids[handle] = str(json_body(r, "bluesky: resolve a handle").get("did") or "")
        return {h: d for h, d in dids.items() if d}

    async def send(self, item: OutboxItem) -> Sent:
        p = item.payload
        did, rkey = (await self.xrpc.current()).did, str(p["rkey"])
        url = f"https://bsky.app/profile/{did}/post/{rkey}"
        if item.attempts > 1 and (found := await self._existing(did, rkey)) is not None:
            return Sent(str(found.get("uri")), url)  # an earlier attempt got through
        parent: dict[str, Any] = dict(p.get("parent") or {})
        if not parent.get("uri"):
            raise NetworkError("bluesky: the original has no record URI", ErrorKind.CONFIG)
        root = p.get("root")
        if not parent.get("cid"):
            parent, root = await self._strong_ref(parent)
        text = str(p["text"])
        known = {str(p["author_handle"]).lower(): str(p["author_did"])} if p.get("author_did") else {}
        record: dict[str, Any] = {
            "$type": POST,
            "text": text,
            "createdAt": utcnow().isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "reply": {"root": root or parent, "parent": {"uri": parent["uri"], "cid": parent["cid"]}},
        }
        if p.get("lang"):
            record["langs"] = [str(p["lang"])]
        if found_facets := facets(text, await self._dids(text, known)):
            record["facets"] = found_facets
        what = "bluesky: post the reply"
        r = await self.xrpc.raw(
            "POST",
            "com.atproto.repo.createRecord",
            json={"repo": did, "collection": POST, "rkey": rkey, "record": record},
        )
        if r.status_code == 400 and (found := await self._existing(did, rkey)) is not None:
            return Sent(str(found.get("uri")), url)  # the key was taken: by our own earlier attempt
        if r.status_code == 400:
            raise NetworkError(f"{what}: refused (400: {_error(r)} {_message(r)})".rstrip(), ErrorKind.REFUSED)
        data = json_body(check(r, what), what)
        return Sent(str(data["uri"]), url)


def _error(r: httpx.Response) -> str:
    return str(answer(r).get("error") or "")


def _message(r: httpx.Response) -> str:
    return str(answer(r).get("message") or "")[:200]


REPLY = ReplyNetwork(reply_fields, BlueskySender)  # monitor.networks.replies names it
