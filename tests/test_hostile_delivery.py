"""Every sender against a hostile server (tests/fakes_hostile.py): what a server answers is stored and
shown only once clean, a wild Retry-After never leaves an item stuck, and no secret reaches a log."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from monitor.core.config import ServiceTarget, Watchlist
from monitor.core.models import ActionKind
from monitor.core.timeutil import now_ms
from monitor.db.store import Store
from monitor.engine import actions
from monitor.engine.delivery import DeliveryWorker
from tests.fakes_delivery import TOKEN, bluesky_view, mastodon_status, outbox_rows, payload_of, seed
from tests.fakes_delivery import watchlist as make_watchlist
from tests.fakes_feed import rss, rss_item
from tests.fakes_hostile import (
    CLEAR,
    OSC0,
    RETRY_AFTERS,
    Hostile,
    answer,
    deep,
    escaped,
    has_escape,
    hostile,
    rate_limited,
    raw,
)

DAY_MS = 86_400_000
OPEN311_PATH = "/requests.json"


@pytest.fixture
async def peer() -> AsyncIterator[Hostile]:
    async with hostile() as server:
        yield server


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_MASTODON_TOKEN", TOKEN)
    monkeypatch.setenv("TEST_BSKY_PASSWORD", TOKEN)
    monkeypatch.setenv("TEST_OPEN311_KEY", "FAKE-OPEN311-KEY-9182")


def webhook(peer: Hostile, tmp_path: Path, query: str = "") -> Watchlist:
    return make_watchlist(tmp_path, targets=(ServiceTarget("webhook", url=peer.url + "/hook" + query),))


def open311(peer: Hostile, tmp_path: Path) -> Watchlist:
    target = ServiceTarget("open311", url=peer.url, service_code="voirie-001", api_key_env="TEST_OPEN311_KEY")
    return make_watchlist(tmp_path, targets=(target,))


async def escalate(store: Store, wl: Watchlist) -> int:
    [mid] = await seed(store, "masto", "mastodon", [mastodon_status(1, host="127.0.0.1")])
    payload = {"service": "voirie", "service_name": "Voirie", "note": "trou"}
    await actions.act(store, wl, mid, ActionKind.ESCALATE, "alice", payload)
    return mid


async def reply(store: Store, wl: Watchlist, network: str) -> int:
    source, raws = (
        ("masto", [mastodon_status(1, host="127.0.0.1")]) if network == "mastodon" else ("sky", [bluesky_view(1)])
    )
    [mid] = await seed(store, source, network, raws)
    await actions.act(store, wl, mid, ActionKind.REPLY, "alice", {"text": "Merci, c'est transmis !", "template": None})
    return mid


def bluesky_session(peer: Hostile) -> None:
    session = {"did": "did:plc:desk", "handle": "desk.bsky.social", "accessJwt": "a", "refreshJwt": "r"}
    peer.play("/xrpc/com.atproto.server.createSession", answer(session))
    peer.play("/xrpc/com.atproto.repo.getRecord", answer({"error": "RecordNotFound", "message": "none"}, 400))


def clean_row(row: dict[str, Any]) -> bool:
    return not any(has_escape(str(row[k] or "")) for k in ("remote_id", "remote_url", "remote_status", "last_error"))


# -- a wild Retry-After never leaves an item in `sending` ---------------------------------------------


@pytest.mark.parametrize("value", RETRY_AFTERS)
async def test_a_wild_retry_after_on_delivery_schedules_a_bounded_retry(
    value: str, peer: Hostile, tmp_path: Path, store: Store
) -> None:
    peer.play("/hook", rate_limited(value))
    wl = webhook(peer, tmp_path)
    await escalate(store, wl)
    before = now_ms()
    await DeliveryWorker(store, wl).run_once()
    after = now_ms()
    [row] = outbox_rows(store.path)
    assert row["state"] == "pending" and "429" in row["last_error"]
    # Bounds from the clock read around the attempt: however long it took, the retry is within a day of it.
    assert before - 60_000 <= row["next_attempt_at"] <= after + DAY_MS


# -- what servers answer is cleaned before it is stored or shown ---------------------------------------


async def test_a_mastodon_reply_answer_with_escapes_and_a_script_url_is_stored_clean(
    peer: Hostile, tmp_path: Path, store: Store
) -> None:
    peer.play("/api/v1/statuses", answer({"id": escaped("4242"), "url": "javascript:alert(1)", "uri": "x"}))
    wl = make_watchlist(tmp_path, mastodon_url=peer.url)
    await reply(store, wl, "mastodon")
    await DeliveryWorker(store, wl).run_once()
    [row] = outbox_rows(store.path)
    assert row["state"] == "sent" and row["remote_id"] == "4242"
    assert row["remote_url"] is None  # neither the script nor an unusable uri
    assert clean_row(row)


async def test_a_mastodon_reply_answer_with_an_http_url_keeps_it_cleaned(
    peer: Hostile, tmp_path: Path, store: Store
) -> None:
    peer.play("/api/v1/statuses", answer({"id": "7", "url": "https://127.0.0.1/@desk/7" + OSC0}))
    wl = make_watchlist(tmp_path, mastodon_url=peer.url)
    await reply(store, wl, "mastodon")
    await DeliveryWorker(store, wl).run_once()
    [row] = outbox_rows(store.path)
    assert row["remote_url"] == "https://127.0.0.1/@desk/7" and clean_row(row)


async def test_a_422_that_clears_the_screen_is_stored_as_plain_text(
    peer: Hostile, tmp_path: Path, store: Store
) -> None:
    peer.play("/api/v1/statuses", answer({"error": f"Validation failed{CLEAR}{OSC0}: text too long"}, 422))
    wl = make_watchlist(tmp_path, mastodon_url=peer.url)
    await reply(store, wl, "mastodon")
    await DeliveryWorker(store, wl).run_once()
    [row] = outbox_rows(store.path)
    assert row["state"] == "failed" and "Validation failed: text too long" in row["last_error"]
    assert clean_row(row)


async def test_a_bluesky_refusal_with_escapes_is_stored_clean(peer: Hostile, tmp_path: Path, store: Store) -> None:
    bluesky_session(peer)
    peer.play("/xrpc/com.atproto.repo.createRecord", answer({"error": "InvalidRequest", "message": escaped("no")}, 400))
    wl = make_watchlist(tmp_path, pds_url=peer.url)
    await reply(store, wl, "bluesky")
    await DeliveryWorker(store, wl).run_once()
    [row] = outbox_rows(store.path)
    assert row["state"] == "failed" and "InvalidRequest" in row["last_error"] and clean_row(row)


async def test_a_bluesky_answer_with_escapes_is_stored_clean(peer: Hostile, tmp_path: Path, store: Store) -> None:
    bluesky_session(peer)
    peer.play("/xrpc/com.atproto.repo.createRecord", answer({"uri": escaped("at://did:plc:desk/p/1"), "cid": "c"}))
    wl = make_watchlist(tmp_path, pds_url=peer.url)
    await reply(store, wl, "bluesky")
    await DeliveryWorker(store, wl).run_once()
    [row] = outbox_rows(store.path)
    assert row["state"] == "sent" and row["remote_id"] == "at://did:plc:desk/p/1" and clean_row(row)


async def test_a_webhook_id_that_sets_the_window_title_is_stored_clean(
    peer: Hostile, tmp_path: Path, store: Store
) -> None:
    peer.play("/hook", answer({"id": escaped("ticket-9")}, 201))
    wl = webhook(peer, tmp_path)
    await escalate(store, wl)
    await DeliveryWorker(store, wl).run_once()
    [row] = outbox_rows(store.path)
    assert (row["state"], row["remote_id"]) == ("sent", "ticket-9") and clean_row(row)


async def test_a_webhook_answer_nested_100000_deep_still_counts_as_delivered(
    peer: Hostile, tmp_path: Path, store: Store
) -> None:
    peer.play("/hook", deep(status=201))
    wl = webhook(peer, tmp_path)
    await escalate(store, wl)
    await DeliveryWorker(store, wl).run_once()
    [row] = outbox_rows(store.path)
    assert (row["state"], row["remote_id"]) == ("sent", None)


async def test_an_open311_request_id_and_notes_with_escapes_are_stored_clean(
    peer: Hostile, tmp_path: Path, store: Store
) -> None:
    peer.play(OPEN311_PATH, answer([{"service_request_id": escaped("638344")}]))
    notes = [{"service_request_id": "638344", "status": "open", "status_notes": escaped("on our way")}]
    peer.play("/requests/638344.json", answer(notes))
    wl = open311(peer, tmp_path)
    await escalate(store, wl)
    worker = DeliveryWorker(store, wl, open311_every=0)
    await worker.run_once()
    [row] = outbox_rows(store.path)
    assert (row["state"], row["remote_id"]) == ("sent", "638344")
    await worker.check_open311()
    [row] = outbox_rows(store.path)
    assert row["remote_status"] == "open" and clean_row(row)


async def test_a_script_link_stored_earlier_is_never_forwarded_to_a_webhook(
    peer: Hostile, tmp_path: Path, store: Store
) -> None:
    peer.play("/hook", answer({"id": "t-1"}, 201))
    wl = webhook(peer, tmp_path)
    post = mastodon_status(1, host="127.0.0.1")
    post["url"] = "javascript:alert(document.cookie)"
    [mid] = await seed(store, "masto", "mastodon", [post])  # as a row written before links were checked
    await actions.act(store, wl, mid, ActionKind.ESCALATE, "alice", {"service": "voirie", "note": "trou"})
    await DeliveryWorker(store, wl).run_once()
    [row] = outbox_rows(store.path)
    body = payload_of(row)
    assert row["state"] == "sent" and body["link"] == "" and body["mention"]["url"] == ""


# -- secrets never reach a log --------------------------------------------------------------------------


@pytest.fixture
def http_log() -> Iterator[io.StringIO]:
    """What httpx and our own loggers write, through the redaction the CLI installs."""
    from monitor.core import logredact

    text = io.StringIO()
    handler = logging.StreamHandler(text)
    handler.addFilter(lambda r: not r.name.startswith("aiohttp"))  # the fake server's own access log
    root, httpx_logger = logging.getLogger(), logging.getLogger("httpx")
    levels = root.level, httpx_logger.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    httpx_logger.setLevel(logging.INFO)
    logredact.install()
    try:
        yield text
    finally:
        root.removeHandler(handler)
        root.setLevel(levels[0])
        httpx_logger.setLevel(levels[1])
        for name in ("httpx", "httpcore"):
            for f in [f for f in logging.getLogger(name).filters if isinstance(f, logredact.RedactFilter)]:
                logging.getLogger(name).removeFilter(f)


async def test_webhook_and_open311_secrets_in_urls_are_redacted_from_logs(
    peer: Hostile, tmp_path: Path, store: Store, http_log: io.StringIO
) -> None:
    peer.play("/hook", answer({"id": "t-1"}, 201))
    peer.play(OPEN311_PATH, answer([{"service_request_id": "5"}]))
    peer.play("/requests/5.json", answer([{"service_request_id": "5", "status": "open"}]))
    hook = webhook(peer, tmp_path, "?token=FAKE-WEBHOOK-SECRET-7731")
    await escalate(store, hook)
    await DeliveryWorker(store, hook).run_once()
    wl = open311(peer, tmp_path)
    await escalate(store, wl)
    worker = DeliveryWorker(store, wl, open311_every=0)
    await worker.run_once()
    await worker.check_open311()  # GET …/requests/5.json?api_key=…
    assert any(s.path.endswith("api_key=FAKE-OPEN311-KEY-9182") for s in peer.seen)  # it was sent…
    logged = http_log.getvalue()
    assert "HTTP Request" in logged and "token=***" in logged and "api_key=***" in logged
    assert "FAKE-WEBHOOK-SECRET-7731" not in logged and "FAKE-OPEN311-KEY-9182" not in logged  # …never logged


async def test_collect_with_log_never_writes_a_secret_from_a_feed_url(peer: Hostile, tmp_path: Path) -> None:
    """The CLI's --log (what the systemd unit uses) goes through the redaction."""
    peer.play("/feed.rss", raw(rss(rss_item("a", "Toulouse", "x", "Tue, 12 Mar 2024 10:02:17 +0100")), "text/xml"))
    path = tmp_path / "watchlist.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            city: Toulouse
            database: {tmp_path / "monitor.db"}
            terms:
              - name: ville
                keywords: [Toulouse]
            sources:
              - name: presse
                type: feed
                urls: ["{peer.url}/feed.rss?api_key=FAKE-FEED-SECRET-3141&user=x"]
            """
        ),
        encoding="utf-8",
    )
    log = tmp_path / "monitor.log"
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor", "collect", "--once", "--no-deliver", "-w", str(path), "--log", str(log),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)},
    )  # fmt: skip
    out, err = await child.communicate()
    assert child.returncode == 0, err.decode()
    logged = log.read_text()
    assert "HTTP Request" in logged and "api_key=***" in logged
    assert "FAKE-FEED-SECRET-3141" not in logged
