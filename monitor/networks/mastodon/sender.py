"""Replies on Mastodon: POST /api/v1/statuses with an Idempotency-Key, so a retry never posts twice.

The reply must mention the author (the server does not add it), keep the original's language, and
never be more visible than the original. A status from another instance is first resolved to our
instance's id with GET /api/v2/search?resolve=true.

Assumption until the Mastodon source lands: its options carry the instance URL as `instance` (or
`base_url` / `server` / `url`) and the token's environment variable as `token_env`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx

from monitor.core.config import SourceSpec
from monitor.db.outbox import OutboxItem
from monitor.networks.base import SourceContext
from monitor.networks.http import make_client
from monitor.networks.sending import DeliveryError, Sent, body, classify, request, secret

VISIBILITY = ("public", "unlisted", "private", "direct")  # widest first


def narrowest(*levels: str) -> str:
    """The least visible of the given levels (unknown values count as public)."""
    return max((v if v in VISIBILITY else "public" for v in levels), key=VISIBILITY.index)


def instance_of(options: Any) -> str:
    for name in ("instance", "base_url", "server", "url"):
        value = getattr(options, name, None)
        if value:
            value = str(value)
            return value if "://" in value else "https://" + value
    raise DeliveryError("mastodon: the source has no instance URL", "permanent")


def with_mention(text: str, acct: str) -> str:
    """Prefix @acct unless the text already mentions the author."""
    acct = acct.lstrip("@")
    if not acct or f"@{acct}".lower() in text.lower():
        return text
    return f"@{acct} {text}"


class MastodonSender:
    def __init__(self, spec: SourceSpec, context: SourceContext) -> None:
        self.name = spec.name
        self.base = instance_of(spec.options).rstrip("/")
        self.token_env = getattr(spec.options, "token_env", None)
        self.client: httpx.AsyncClient = make_client(context, self.base)

    async def aclose(self) -> None:
        await self.client.aclose()

    def _auth(self) -> dict[str, str]:
        return {"Authorization": "Bearer " + secret(self.token_env, f"mastodon {self.name}")}

    async def resolve(self, uri: str) -> str:
        """Our instance's id for a status that lives elsewhere (a remote status has a local copy)."""
        what = "mastodon: resolve the original"
        r = classify(
            await request(
                self.client,
                "GET",
                "/api/v2/search",
                what,
                headers=self._auth(),
                params={"q": uri, "resolve": "true", "type": "statuses", "limit": "1"},
            ),
            what,
        )
        statuses = (body(r, what) or {}).get("statuses") or []
        if not statuses:
            raise DeliveryError(f"{what}: not found (deleted?)", "permanent")
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
        r = classify(await request(self.client, "POST", "/api/v1/statuses", what, data=form, headers=headers), what)
        status = body(r, what)
        if not isinstance(status, dict) or "id" not in status:
            raise DeliveryError(f"{what}: unexpected answer", "transient")
        return Sent(str(status["id"]), str(status.get("url") or status.get("uri") or ""))
