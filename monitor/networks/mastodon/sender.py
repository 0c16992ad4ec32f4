"""Replies on Mastodon: POST /api/v1/statuses with an Idempotency-Key, so a retry never posts twice.

The reply must mention the author (the server does not add it), keep the original's language, and
never be more visible than the original. A status from another instance is first resolved to our
instance's id with GET /api/v2/search?resolve=true.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx

from monitor.core.config import SourceSpec
from monitor.core.models import MentionRow
from monitor.core.outbox import OutboxItem
from monitor.core.retry import ErrorKind
from monitor.networks.base import NetworkError, SourceContext
from monitor.networks.http import json_body, make_client, send
from monitor.networks.replies import ReplyNetwork
from monitor.networks.sending import Sent, secret

VISIBILITY = ("public", "unlisted", "private", "direct")  # widest first


def narrowest(*levels: str) -> str:
    """The least visible of the given levels (unknown values count as public)."""
    return max((v if v in VISIBILITY else "public" for v in levels), key=VISIBILITY.index)


def reply_fields(row: MentionRow, raw: dict[str, Any]) -> dict[str, Any]:
    """What a reply needs about the original Status, taken when the operator acts (the worker never
    reads the mention again): its id and uri, its visibility, and whom to mention."""
    account = found if isinstance(found := raw.get("account"), dict) else {}
    return {
        "status_id": str(raw.get("id") or row.remote_id),
        "uri": str(raw.get("uri") or row.url or ""),
        "visibility": str(raw.get("visibility") or "public"),
        "acct": str(account.get("acct") or row.author).lstrip("@"),
    }


def with_mention(text: str, acct: str) -> str:
    """Prefix @acct unless the text already mentions the author."""
    acct = acct.lstrip("@")
    if not acct or f"@{acct}".lower() in text.lower():
        return text
    return f"@{acct} {text}"


class MastodonSender:
    def __init__(self, spec: SourceSpec, context: SourceContext) -> None:
        self.name = spec.name
        self.base = str(spec.options.instance).rstrip("/")  # MastodonOptions: checked with the watchlist
        self.token_env: str | None = spec.options.token_env
        self.client: httpx.AsyncClient = make_client(context, self.base)

    async def aclose(self) -> None:
        await self.client.aclose()

    def _auth(self) -> dict[str, str]:
        return {"Authorization": "Bearer " + secret(self.token_env, f"mastodon {self.name}")}

    async def resolve(self, uri: str) -> str:
        """Our instance's id for a status that lives elsewhere (a remote status has a local copy)."""
        what = "mastodon: resolve the original"
        r = await send(
            self.client,
            "GET",
            "/api/v2/search",
            what,
            headers=self._auth(),
            params={"q": uri, "resolve": "true", "type": "statuses", "limit": "1"},
        )
        statuses = (json_body(r, what) or {}).get("statuses") or []
        if not statuses:
            raise NetworkError(f"{what}: not found (deleted?)", ErrorKind.CONFIG)
        return str(statuses[0]["id"])

    async def send(self, item: OutboxItem) -> Sent:
        p = item.payload
        uri = str(p.get("uri") or "")
        local = not uri or urlsplit(uri).hostname == urlsplit(self.base).hostname
        in_reply_to = str(p.get("status_id") or p.get("remote_id")) if local else await self.resolve(uri)
        form: dict[str, str] = {
            "status": with_mention(str(p["text"]), str(p.get("acct") or "")),
            "in_reply_to_id": in_reply_to,
            "visibility": narrowest(str(p.get("visibility") or "public")),
        }
        if p.get("lang"):
            form["language"] = str(p["lang"])
        what = "mastodon: post the reply"
        headers = {**self._auth(), "Idempotency-Key": item.idem_key}
        r = await send(self.client, "POST", "/api/v1/statuses", what, data=form, headers=headers)
        status = json_body(r, what)
        if not isinstance(status, dict) or "id" not in status:
            raise NetworkError(f"{what}: unexpected answer")
        return Sent(str(status["id"]), str(status.get("url") or status.get("uri") or ""))


REPLY = ReplyNetwork(reply_fields, MastodonSender)  # monitor.networks.replies names it
