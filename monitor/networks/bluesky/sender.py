"""Replies on Bluesky: com.atproto.repo.createRecord with a record key (TID) we choose.

The key is generated once per draft, so after an uncertain failure (a timeout, a crash between the
PDS accepting and our commit) we ask com.atproto.repo.getRecord for it before posting again.
Facets (mentions, links) use UTF-8 byte offsets, as the app.bsky.richtext.facet lexicon requires.
The session is the Bluesky source's own (its file in the state folder), reused and refreshed.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from monitor.core.config import SourceSpec
from monitor.core.timeutil import utcnow
from monitor.db.outbox import OutboxItem
from monitor.networks.base import SourceContext, SourceError
from monitor.networks.bluesky.source import BlueskyOptions, session_path
from monitor.networks.bluesky.xrpc import XrpcClient
from monitor.networks.sending import DeliveryError, Sent, answer, body, classify

POST = "app.bsky.feed.post"
# From the atproto docs' facet examples: a handle after a start, space or '(' ; a bare http(s) URL.
_MENTION = re.compile(
    rb"(?:^|[\s(])(@([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)"
)
_URL = re.compile(rb"(?:^|[\s(])(https?://[^\s)\]]+[^\s.,;:!?)\]'\"])")


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

    async def _login(self) -> dict[str, str]:
        try:
            session = await self.xrpc.current()
        except SourceError as exc:
            raise _delivery_error(exc) from exc
        return {"did": session.did}

    async def _xrpc(self, method: str, nsid: str, what: str, **kwargs: Any) -> httpx.Response:
        """An authenticated call, the session opened, reused or renewed by the shared XRPC client."""
        try:
            return await self.xrpc.raw(method, nsid, **kwargs)
        except SourceError as exc:
            raise _delivery_error(exc) from exc

    async def _existing(self, did: str, rkey: str) -> dict[str, Any] | None:
        what = "bluesky: look for an earlier attempt"
        r = await self._xrpc(
            "GET", "com.atproto.repo.getRecord", what, params={"repo": did, "collection": POST, "rkey": rkey}
        )
        if r.status_code == 400 and _error(r) == "RecordNotFound":
            return None
        return body(classify(r, what), what)

    async def _strong_ref(self, parent: dict[str, Any]) -> tuple[dict[str, str], dict[str, str] | None]:
        """The parent's uri+cid and its own reply root, fetched when the mention did not carry them."""
        what = "bluesky: read the original"
        r = classify(await self._xrpc("GET", "app.bsky.feed.getPosts", what, params={"uris": parent["uri"]}), what)
        posts = body(r, what).get("posts") or []
        if not posts:
            raise DeliveryError(f"{what}: not found (deleted?)", "permanent")
        post = posts[0]
        root = ((post.get("record") or {}).get("reply") or {}).get("root")
        return {"uri": post["uri"], "cid": post["cid"]}, root

    async def _dids(self, text: str, known: dict[str, str]) -> dict[str, str]:
        dids = dict(known)
        for handle in handles(text):
            if handle in dids:
                continue
            r = await self._xrpc(
                "GET",
                "com.atproto.identity.resolveHandle",
                "bluesky: resolve a handle",
                params={"handle": handle},
            )
            if r.status_code == 200:
                dids[handle] = str(body(r, "bluesky: resolve a handle").get("did") or "")
        return {h: d for h, d in dids.items() if d}

    async def send(self, item: OutboxItem) -> Sent:
        p = item.payload
        session = await self._login()
        did, rkey = session["did"], str(p["rkey"])
        url = f"https://bsky.app/profile/{did}/post/{rkey}"
        if item.attempts > 1 and (found := await self._existing(did, rkey)) is not None:
            return Sent(str(found.get("uri")), url)  # an earlier attempt got through
        parent: dict[str, Any] = dict(p.get("parent") or {})
        if not parent.get("uri"):
            raise DeliveryError("bluesky: the original has no record URI", "permanent")
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
        r = await self._xrpc(
            "POST",
            "com.atproto.repo.createRecord",
            what,
            json={"repo": did, "collection": POST, "rkey": rkey, "record": record},
        )
        if r.status_code == 400 and (found := await self._existing(did, rkey)) is not None:
            return Sent(str(found.get("uri")), url)  # the key was taken: by our own earlier attempt
        if r.status_code == 400:
            raise DeliveryError(f"{what}: refused (400: {_error(r)} {_message(r)})".rstrip(), "permanent")
        data = body(classify(r, what), what)
        return Sent(str(data["uri"]), url)


def _delivery_error(exc: SourceError) -> DeliveryError:
    """A session or network failure, as the outbox sees it: credentials and config are not retried."""
    if exc.kind == "rate":
        return DeliveryError(str(exc), "rate", exc.retry_after)
    return DeliveryError(str(exc), "permanent" if exc.kind in ("auth", "config") else "transient")


def _error(r: httpx.Response) -> str:
    return str(answer(r).get("error") or "")


def _message(r: httpx.Response) -> str:
    return str(answer(r).get("message") or "")[:200]
