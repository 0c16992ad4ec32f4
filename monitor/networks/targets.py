"""The senders behind city-service targets (see services.py): imported only when a delivery goes to one."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import httpx

from monitor.core.config import Service, ServiceTarget
from monitor.core.outbox import OutboxItem
from monitor.core.retry import ErrorKind
from monitor.networks.base import NetworkError, SourceContext
from monitor.networks.http import answer, json_body, make_client, send
from monitor.networks.sending import Sent, secret
from monitor.networks.services import address, message


class AppriseSender:
    def __init__(self, service: Service, target: ServiceTarget, context: SourceContext | None = None) -> None:
        self.service, self.target = service, target

    async def aclose(self) -> None:
        return None

    async def send(self, item: OutboxItem) -> Sent:
        import apprise

        what = f"apprise ({self.service.id})"
        notifier = apprise.Apprise()
        if not notifier.add(address(self.target, what)):
            raise NetworkError(f"{what}: the address is not a valid Apprise URL", ErrorKind.CONFIG)
        title, text = message(item)
        # Apprise's e-mail plugin blocks (smtplib): keep it off the event loop.
        ok = await asyncio.to_thread(notifier.notify, body=text, title=title)
        if not ok:
            raise NetworkError(f"{what}: the notification was not accepted")
        return Sent(None, None)


class WebhookSender:
    def __init__(self, service: Service, target: ServiceTarget, context: SourceContext) -> None:
        self.service, self.target = service, target
        self.client: httpx.AsyncClient = make_client(context)

    async def aclose(self) -> None:
        await self.client.aclose()

    async def send(self, item: OutboxItem) -> Sent:
        what = f"webhook ({self.service.id})"
        payload = {**item.payload, "idempotency_key": item.idem_key}
        r = await send(
            self.client,
            "POST",
            address(self.target, what),
            what,
            content=json.dumps(payload, ensure_ascii=False).encode(),
            headers={"Content-Type": "application/json", "Idempotency-Key": item.idem_key},
        )
        remote_id = answer(r).get("id")
        return Sent(str(remote_id) if remote_id is not None else None, None)


class Open311Sender:
    """POST requests.json (service_code, description, api_key), then GET requests/{id}.json to follow it."""

    def __init__(self, service: Service, target: ServiceTarget, context: SourceContext) -> None:
        self.service, self.target = service, target
        self.client: httpx.AsyncClient = make_client(context)

    async def aclose(self) -> None:
        await self.client.aclose()

    def _base(self, what: str) -> str:
        return address(self.target, what).rstrip("/")

    async def send(self, item: OutboxItem) -> Sent:
        what = f"open311 ({self.service.id})"
        p = item.payload
        if not self.target.service_code:
            raise NetworkError(f"{what}: no service_code in the watchlist", ErrorKind.CONFIG)
        _, text = message(item)
        form = {
            "service_code": self.target.service_code,
            "description": text[:4000],
            "address_string": str(p.get("city") or ""),
        }
        if self.target.api_key_env:
            form["api_key"] = secret(self.target.api_key_env, what)
        if p.get("link"):
            form["media_url"] = str(p["link"])
        r = await send(self.client, "POST", self._base(what) + "/requests.json", what, data=form)
        data = json_body(r, what)
        first: dict[str, Any] = data[0] if isinstance(data, list) and data else data if isinstance(data, dict) else {}
        if first.get("service_request_id"):
            return Sent(str(first["service_request_id"]), None, "open")
        if first.get("token"):  # a batch endpoint: the id comes later from tokens/{token}.json
            return Sent("token:" + str(first["token"]), None, "submitted")
        raise NetworkError(f"{what}: no service_request_id or token in the answer")

    async def status(self, remote_id: str) -> tuple[str | None, str, str]:
        """(status, notes, request id) of a request; a token is exchanged for its id first."""
        what = f"open311 ({self.service.id}): follow the request"
        base = self._base(what)
        params = (
            {"api_key": os.environ[self.target.api_key_env]}
            if self.target.api_key_env and os.environ.get(self.target.api_key_env)
            else {}
        )
        if remote_id.startswith("token:"):
            r = await send(self.client, "GET", f"{base}/tokens/{remote_id[6:]}.json", what)
            data = json_body(r, what)
            first = data[0] if isinstance(data, list) and data else {}
            if not first.get("service_request_id"):
                return None, "", remote_id
            remote_id = str(first["service_request_id"])
        r = await send(self.client, "GET", f"{base}/requests/{remote_id}.json", what, params=params)
        data = json_body(r, what)
        first = data[0] if isinstance(data, list) and data else data if isinstance(data, dict) else {}
        return (str(first.get("status") or "") or None), str(first.get("status_notes") or ""), remote_id
