"""Mastodon replies through the outbox, against a loopback Mastodon that honours Idempotency-Key."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitor.core.models import ActionKind
from monitor.core.timeutil import now_ms
from monitor.db import outbox
from monitor.db.store import Store
from monitor.engine import actions
from monitor.engine.delivery import DeliveryWorker
from monitor.networks.base import SourceContext
from monitor.networks.mastodon.sender import narrowest, with_mention
from tests.conftest import WAIT
from tests.fakes_delivery import (
    TOKEN,
    FakeMastodon,
    Forced,
    mastodon_status,
    outbox_rows,
    secret_on_disk,
    seed,
    serving,
    watchlist,
)


@pytest.fixture
async def masto() -> AsyncIterator[FakeMastodon]:
    async with serving(FakeMastodon()) as server:
        yield server


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_MASTODON_TOKEN", TOKEN)


def timeout_after(seconds: float) -> Callable[..., httpx.AsyncClient]:
    return lambda **kwargs: httpx.AsyncClient(**{**kwargs, "timeout": httpx.Timeout(seconds)})


async def reply(store: Store, wl: Any, mention_id: int, text: str = "Merci, c'est transmis !") -> None:
    await actions.act(store, wl, mention_id, ActionKind.REPLY, "alice", {"text": text, "template": None})


def worker(store: Store, wl: Any, timeout: float = WAIT, **kwargs: Any) -> DeliveryWorker:
    """Generous HTTP timeouts: only a test about a lost answer asks for a short one."""
    return DeliveryWorker(store, wl, SourceContext(http_factory=timeout_after(timeout)), **kwargs)


async def test_reply_to_a_remote_status_is_resolved_then_posted_with_mention_language_and_key(
    tmp_path: Path, masto: FakeMastodon, store: Store
) -> None:
    wl = watchlist(tmp_path, mastodon_url=masto.url)
    raw = mastodon_status(1, visibility="unlisted")
    masto.remote[raw["uri"]] = "777"  # our instance's copy of the remote status
    [mid] = await seed(store, "masto", "mastodon", [raw])
    await reply(store, wl, mid)

    [row] = outbox_rows(store.path)
    assert (row["state"], row["kind"], row["target"]) == ("pending", "reply", "source:masto")

    assert await worker(store, wl).run_once() == 1
    [created] = masto.statuses.values()
    assert created["in_reply_to_id"] == "777"
    assert created["content"] == "<p>@citizen1@piaille.fr Merci, c'est transmis !</p>"
    assert (created["language"], created["visibility"]) == ("fr", "unlisted")
    post = next(r for r in masto.requests if r[1] == "/api/v1/statuses")
    assert post[2]["Idempotency-Key"] == row["idem_key"]
    [row] = outbox_rows(store.path)
    assert (row["state"], row["remote_id"], row["remote_url"]) == ("sent", created["id"], created["url"])


async def test_a_local_status_is_answered_by_its_id_without_a_search(
    tmp_path: Path, masto: FakeMastodon, store: Store
) -> None:
    wl = watchlist(tmp_path, mastodon_url=masto.url)
    raw = mastodon_status(2, host="127.0.0.1", visibility="direct")
    [mid] = await seed(store, "masto", "mastodon", [raw])
    await reply(store, wl, mid, "@citizen2@127.0.0.1 Bonjour")
    await worker(store, wl).run_once()
    [created] = masto.statuses.values()
    assert created["in_reply_to_id"] == raw["id"]
    assert created["visibility"] == "direct"  # never wider than the original
    assert created["content"] == "<p>@citizen2@127.0.0.1 Bonjour</p>"  # not mentioned twice
    assert not [r for r in masto.requests if r[1] == "/api/v2/search"]


async def test_a_retry_after_a_lost_answer_reuses_the_key_and_posts_once(
    tmp_path: Path, masto: FakeMastodon, store: Store
) -> None:
    wl = watchlist(tmp_path, mastodon_url=masto.url)
    raw = mastodon_status(3, host="127.0.0.1")
    [mid] = await seed(store, "masto", "mastodon", [raw])
    await reply(store, wl, mid)
    masto.lose_responses = 1  # the answer comes after 2 s: far too late for a 0.5 s timeout
    await worker(store, wl, timeout=0.5).run_once()
    [row] = outbox_rows(store.path)
    assert row["state"] == "pending" and "timed out" in row["last_error"]
    await store.write(lambda c: c.execute("UPDATE outbox SET next_attempt_at = 0"), "test")  # due now
    await worker(store, wl).run_once()  # the retry, as after a restart: the key comes from the outbox
    posts = [r for r in masto.requests if r[1] == "/api/v1/statuses"]
    assert len(posts) == 2 and posts[0][2]["Idempotency-Key"] == posts[1][2]["Idempotency-Key"]
    assert len(masto.created_for(raw["id"])) == 1
    assert outbox_rows(store.path)[0]["state"] == "sent"


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (Forced(422, {"error": "Validation failed: Text character limit of 500 exceeded"}), "invalid (422)"),
        (Forced(404, {"error": "Record not found"}), "not found (HTTP 404)"),
        (Forced(403, {"error": "This action is not allowed"}), "credentials rejected (403)"),
    ],
)
async def test_a_refusal_fails_the_item_with_the_reason_and_is_not_retried(
    tmp_path: Path, masto: FakeMastodon, store: Store, answer: Forced, reason: str
) -> None:
    wl = watchlist(tmp_path, mastodon_url=masto.url)
    [mid] = await seed(store, "masto", "mastodon", [mastodon_status(4, host="127.0.0.1")])
    await reply(store, wl, mid)
    masto.force("statuses", answer)
    w = worker(store, wl)
    await w.run_once()
    assert await w.run_once() == 0  # nothing left to try
    [row] = outbox_rows(store.path)
    assert row["state"] == "failed" and reason in row["last_error"] and row["attempts"] == 1
    assert answer.body["error"] in row["last_error"]


async def test_a_rejected_token_fails_as_credentials(
    tmp_path: Path, masto: FakeMastodon, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_MASTODON_TOKEN", "stale")
    wl = watchlist(tmp_path, mastodon_url=masto.url)
    [mid] = await seed(store, "masto", "mastodon", [mastodon_status(5, host="127.0.0.1")])
    await reply(store, wl, mid)
    await worker(store, wl).run_once()
    [row] = outbox_rows(store.path)
    assert row["state"] == "failed" and "credentials rejected (401)" in row["last_error"]
    assert not masto.statuses


async def test_a_missing_token_fails_without_calling_the_server(
    tmp_path: Path, masto: FakeMastodon, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TEST_MASTODON_TOKEN")
    wl = watchlist(tmp_path, mastodon_url=masto.url)
    [mid] = await seed(store, "masto", "mastodon", [mastodon_status(6, host="127.0.0.1")])
    await reply(store, wl, mid)
    await worker(store, wl).run_once()
    [row] = outbox_rows(store.path)
    assert row["state"] == "failed" and "TEST_MASTODON_TOKEN" in row["last_error"]
    assert not masto.requests


async def test_429_waits_for_retry_after_then_sends(tmp_path: Path, masto: FakeMastodon, store: Store) -> None:
    wl = watchlist(tmp_path, mastodon_url=masto.url)
    [mid] = await seed(store, "masto", "mastodon", [mastodon_status(7, host="127.0.0.1")])
    await reply(store, wl, mid)
    masto.force("statuses", Forced(429, {"error": "Too many requests"}, {"Retry-After": "120"}))
    w = worker(store, wl)
    before = now_ms()
    await w.run_once()
    after = now_ms()
    [row] = outbox_rows(store.path)
    assert row["state"] == "pending" and "rate limited" in row["last_error"]
    # 120 s from when the answer came, however long the pass took on a busy machine
    assert before + 119_000 <= row["next_attempt_at"] <= after + 121_000
    assert await w.run_once() == 0  # not due yet
    await store.write(lambda c: c.execute("UPDATE outbox SET next_attempt_at = 0"), "test")
    await w.run_once()
    assert outbox_rows(store.path)[0]["state"] == "sent"


async def test_operator_retries_a_failed_item_and_cancels_another(
    tmp_path: Path, masto: FakeMastodon, store: Store
) -> None:
    wl = watchlist(tmp_path, mastodon_url=masto.url)
    a, b = await seed(
        store,
        "masto",
        "mastodon",
        [mastodon_status(8, host="127.0.0.1"), mastodon_status(9, host="127.0.0.1")],
    )
    await reply(store, wl, a)
    await reply(store, wl, b)
    masto.force("statuses", Forced(502, {"error": "bad gateway"}), Forced(502, {"error": "bad gateway"}))
    w = worker(store, wl)
    await w.run_once()
    await store.write(lambda c: c.execute("UPDATE outbox SET state = 'failed'"), "test")
    box = outbox.Outbox(store)
    assert await box.retry(a) == 1
    assert await box.cancel(b) == 1
    await w.run_once()
    states = {r["mention_id"]: r["state"] for r in outbox_rows(store.path)}
    assert states == {a: "sent", b: "cancelled"}
    assert len(masto.statuses) == 1


async def test_the_token_is_never_written_to_the_database(tmp_path: Path, masto: FakeMastodon, store: Store) -> None:
    wl = watchlist(tmp_path, mastodon_url=masto.url)
    [mid] = await seed(store, "masto", "mastodon", [mastodon_status(10, host="127.0.0.1")])
    await reply(store, wl, mid)
    await worker(store, wl).run_once()
    assert outbox_rows(store.path)[0]["state"] == "sent"
    assert not secret_on_disk(tmp_path)


def test_visibility_is_never_widened_and_the_author_is_mentioned_once() -> None:
    assert narrowest("private") == "private"
    assert narrowest("bogus") == "public"
    assert narrowest("unlisted", "direct") == "direct"
    assert with_mention("Bonjour", "@ana@piaille.fr") == "@ana@piaille.fr Bonjour"
    assert with_mention("@Ana@Piaille.fr merci", "ana@piaille.fr") == "@Ana@Piaille.fr merci"


async def test_the_after_send_hook_runs_once_the_server_has_the_reply_and_before_it_is_recorded(
    tmp_path: Path, masto: FakeMastodon, store: Store
) -> None:
    """The crash test parks a worker there (a parameter: the package reads no test switch from the environment)."""
    wl = watchlist(tmp_path, mastodon_url=masto.url)
    raw = mastodon_status(9, host="127.0.0.1")
    [mid] = await seed(store, "masto", "mastodon", [raw])
    await reply(store, wl, mid)
    seen: list[tuple[int, str]] = []

    async def after_send(item: outbox.OutboxItem) -> None:
        seen.append((len(masto.created_for(raw["id"])), outbox_rows(store.path)[0]["state"]))

    assert await worker(store, wl, after_send=after_send).run_once() == 1
    assert seen == [(1, "sending")]  # the server has it, the database not yet
    assert outbox_rows(store.path)[0]["state"] == "sent"
