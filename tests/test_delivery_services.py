"""Escalations: a JSON webhook (with its documented payload), e-mail through Apprise to a local SMTP
server, and Open311 GeoReport v2 followed until the request is closed."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from monitor.core.config import ServiceTarget
from monitor.core.models import ActionKind, Status
from monitor.db.store import Store
from monitor.engine import actions
from monitor.engine.delivery import DeliveryWorker
from tests.fakes_delivery import (
    TOKEN,
    FakeOpen311,
    Forced,
    Receiver,
    mastodon_status,
    outbox_rows,
    secret_on_disk,
    seed,
    serving,
)
from tests.fakes_delivery import watchlist as make_watchlist


async def escalate(store: Store, wl: Any, n: int = 1) -> int:
    [mid] = await seed(store, "masto", "mastodon", [mastodon_status(n, host="127.0.0.1")])
    await actions.act(
        store,
        wl,
        mid,
        ActionKind.ESCALATE,
        "alice",
        {"service": "voirie", "service_name": "Voirie et espace public", "note": "trou profond"},
    )
    return mid


async def test_webhook_gets_the_documented_payload_with_an_idempotency_key(tmp_path: Path, store: Store) -> None:
    async with serving(Receiver()) as hook:
        wl = make_watchlist(tmp_path, targets=(ServiceTarget("webhook", url=hook.url + "/hook"),))
        mid = await escalate(store, wl)
        [row] = outbox_rows(store.path)
        assert (row["kind"], row["target"], row["state"]) == ("escalation", "service:voirie#0", "pending")
        await DeliveryWorker(store, wl).run_once()
        [(_, _, headers, body)] = hook.requests
        assert headers["Idempotency-Key"] == row["idem_key"] == body["idempotency_key"]
        assert headers["Content-Type"] == "application/json"
        assert body["reference"] == f"M-{mid:06d}" and body["operator"] == "alice" and body["note"] == "trou profond"
        assert body["service"] == {"id": "voirie", "name": "Voirie et espace public"}
        assert set(body["mention"]) == {"id", "source", "network", "author", "text", "url", "first_seen_at"}
        assert body["mention"]["id"] == mid and body["link"] == body["mention"]["url"]
        [row] = outbox_rows(store.path)
        assert (row["state"], row["remote_id"]) == ("sent", "ticket-1")


async def test_webhook_5xx_is_retried_and_4xx_fails(tmp_path: Path, store: Store) -> None:
    async with serving(Receiver()) as hook:
        wl = make_watchlist(tmp_path, targets=(ServiceTarget("webhook", url=hook.url + "/hook"),))
        await escalate(store, wl, 1)
        await escalate(store, wl, 2)
        hook.force("hook", Forced(503, {"error": "maintenance"}), Forced(400, {"error": "bad payload"}))
        await DeliveryWorker(store, wl).run_once()
        rows = sorted(outbox_rows(store.path), key=lambda r: r["state"])
        assert [r["state"] for r in rows] == ["failed", "pending"]
        assert "HTTP 400" in rows[0]["last_error"] and "server error 503" in rows[1]["last_error"]


async def test_webhook_address_from_the_environment_is_never_stored(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with serving(Receiver()) as hook:
        secret_url = hook.url + "/hook?token=" + TOKEN
        monkeypatch.setenv("TEST_HOOK_URL", secret_url)
        wl = make_watchlist(tmp_path, targets=(ServiceTarget("webhook", url_env="TEST_HOOK_URL"),))
        await escalate(store, wl)
        await DeliveryWorker(store, wl).run_once()
        assert len(hook.accepted) == 1 and outbox_rows(store.path)[0]["state"] == "sent"
        assert not secret_on_disk(tmp_path)


class Inbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd API)
        self.messages.append(envelope.content)
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


async def test_apprise_mailto_sends_one_email_to_the_local_smtp_server(
    tmp_path: Path, store: Store, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    url = f"mailto://127.0.0.1:{port}?from=desk@toulouse.example&to=voirie@toulouse.example&mode=insecure"
    wl = make_watchlist(tmp_path, targets=(ServiceTarget("apprise", url=url),))
    mid = await escalate(store, wl)
    await DeliveryWorker(store, wl).run_once()
    [raw] = inbox.messages
    mail = message_from_bytes(raw)
    assert mail["To"] and "voirie@toulouse.example" in mail["To"]
    assert f"M-{mid:06d}" in str(mail["Subject"])
    assert outbox_rows(store.path)[0]["state"] == "sent"


async def test_apprise_to_a_dead_smtp_server_is_retried(tmp_path: Path, store: Store) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nobody listens here
    url = f"mailto://127.0.0.1:{port}?from=desk@toulouse.example&to=voirie@toulouse.example&mode=insecure"
    wl = make_watchlist(tmp_path, targets=(ServiceTarget("apprise", url=url),))
    await escalate(store, wl)
    await DeliveryWorker(store, wl).run_once()
    [row] = outbox_rows(store.path)
    assert row["state"] == "pending" and "not accepted" in row["last_error"]


async def test_open311_request_is_filed_followed_and_closing_it_resolves_the_mention(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_311_KEY", TOKEN)
    async with serving(FakeOpen311()) as city:
        target = ServiceTarget("open311", url=city.url, service_code="pothole", api_key_env="TEST_311_KEY")
        wl = make_watchlist(tmp_path, targets=(target,))
        mid = await escalate(store, wl)
        worker = DeliveryWorker(store, wl, open311_every=0)
        await worker.run_once()
        [(rid, req)] = city.requests_made.items()
        assert req["form"]["service_code"] == "pothole" and req["form"]["api_key"] == TOKEN
        assert f"M-{mid:06d}" in req["form"]["description"]
        [row] = outbox_rows(store.path)
        assert (row["state"], row["remote_id"], row["remote_status"]) == ("sent", rid, "open")

        assert await worker.check_open311() == 0  # still open
        city.requests_made[rid].update(status="closed", status_notes="Rebouché le 3 mars")
        assert await worker.check_open311() == 1
        mention = await store.mention(mid)
        assert mention.status is Status.DONE
        last = (await store.actions(mid))[-1]
        assert (last.kind, last.operator) == (ActionKind.RESOLVE, "open311")
        assert "Rebouché le 3 mars" in last.payload["note"]
        assert last.payload["draft"].startswith("@citizen1@127.0.0.1 C'est réparé")
        assert outbox_rows(store.path)[0]["remote_status"] == "closed"
        assert await worker.check_open311() == 0  # closed requests are no longer polled


async def test_open311_with_a_wrong_key_fails_as_credentials(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_311_KEY", "wrong")
    async with serving(FakeOpen311()) as city:
        target = ServiceTarget("open311", url=city.url, service_code="pothole", api_key_env="TEST_311_KEY")
        wl = make_watchlist(tmp_path, targets=(target,))
        await escalate(store, wl)
        await DeliveryWorker(store, wl).run_once()
        [row] = outbox_rows(store.path)
        assert row["state"] == "failed" and "credentials rejected (403)" in row["last_error"]


async def test_dry_run_sends_nothing_and_marks_items_dry_run(tmp_path: Path, store: Store) -> None:
    async with serving(Receiver()) as hook:
        wl = make_watchlist(tmp_path, targets=(ServiceTarget("webhook", url=hook.url + "/hook"),))
        await escalate(store, wl)
        await DeliveryWorker(store, wl, dry_run=True).run_once()
        assert hook.requests == []
        [row] = outbox_rows(store.path)
        assert (row["state"], row["remote_url"]) == ("sent", "dry-run")
