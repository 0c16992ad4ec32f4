"""Bluesky replies through the outbox: createRecord with our TID, getRecord before any second attempt."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitor.core.models import ActionKind
from monitor.db.store import Store
from monitor.engine import actions
from monitor.engine.delivery import DeliveryWorker
from monitor.networks.base import SourceContext
from monitor.networks.bluesky.sender import facets
from tests.conftest import WAIT
from tests.fakes_delivery import (
    TOKEN,
    FakePds,
    Forced,
    bluesky_view,
    outbox_rows,
    payload_of,
    seed,
    serving,
    watchlist,
)


@pytest.fixture
async def pds() -> AsyncIterator[FakePds]:
    async with serving(FakePds()) as server:
        yield server


@pytest.fixture(autouse=True)
def password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_BSKY_PASSWORD", TOKEN)


def worker(store: Store, wl: Any, timeout: float = WAIT) -> DeliveryWorker:
    """Generous HTTP timeouts: only a test about a lost answer asks for a short one."""

    def factory(**kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(**{**kwargs, "timeout": httpx.Timeout(timeout)})

    return DeliveryWorker(store, wl, SourceContext(http_factory=factory))


async def test_reply_is_a_record_with_our_tid_strong_refs_langs_and_byte_offset_facets(
    tmp_path: Path, pds: FakePds, store: Store
) -> None:
    wl = watchlist(tmp_path, pds_url=pds.url)
    root = {"uri": "at://did:plc:root/app.bsky.feed.post/3lroot", "cid": "bafyreiroot"}
    view = bluesky_view(1, reply_root=root)
    [mid] = await seed(store, "sky", "bluesky", [view])
    text = "@citizen1.bsky.social Merci ! Suivi : https://toulouse.fr/signalement?id=é 🚧"
    await actions.act(store, wl, mid, ActionKind.REPLY, "alice", {"text": text})
    [row] = outbox_rows(store.path)
    rkey = payload_of(row)["rkey"]
    assert len(rkey) == 13

    await worker(store, wl).run_once()
    record = pds.records[rkey]
    assert record["reply"] == {"root": root, "parent": {"uri": view["uri"], "cid": view["cid"]}}
    assert record["langs"] == ["fr"] and record["text"] == text and record["createdAt"].endswith("Z")
    encoded = text.encode()
    mention, link = record["facets"]
    assert encoded[mention["index"]["byteStart"] : mention["index"]["byteEnd"]] == b"@citizen1.bsky.social"
    assert mention["features"] == [{"$type": "app.bsky.richtext.facet#mention", "did": "did:plc:citizen1"}]
    span = encoded[link["index"]["byteStart"] : link["index"]["byteEnd"]].decode()
    assert span == "https://toulouse.fr/signalement?id=é" == link["features"][0]["uri"]
    [row] = outbox_rows(store.path)
    assert row["state"] == "sent"
    assert row["remote_url"] == f"https://bsky.app/profile/{FakePds.DID}/post/{rkey}"


async def test_a_top_level_post_is_its_own_root(tmp_path: Path, pds: FakePds, store: Store) -> None:
    wl = watchlist(tmp_path, pds_url=pds.url)
    view = bluesky_view(2)
    [mid] = await seed(store, "sky", "bluesky", [view])
    await actions.act(store, wl, mid, ActionKind.REPLY, "alice", {"text": "Merci"})
    await worker(store, wl).run_once()
    [record] = pds.records.values()
    ref = {"uri": view["uri"], "cid": view["cid"]}
    assert record["reply"] == {"root": ref, "parent": ref}
    assert "facets" not in record


async def test_after_a_lost_answer_the_retry_finds_the_record_and_does_not_post_again(
    tmp_path: Path, pds: FakePds, store: Store
) -> None:
    wl = watchlist(tmp_path, pds_url=pds.url)
    [mid] = await seed(store, "sky", "bluesky", [bluesky_view(3)])
    await actions.act(store, wl, mid, ActionKind.REPLY, "alice", {"text": "Merci"})
    w = worker(store, wl, timeout=0.5)
    # The PDS writes the record, but its answer comes too late for us (2 s, against a 0.5 s timeout).
    rkey = payload_of(outbox_rows(store.path)[0])["rkey"]
    pds.records[rkey] = {"text": "Merci", "$type": "app.bsky.feed.post"}
    pds.force("createRecord", Forced(200, {}, delay=2.0))
    await w.run_once()
    assert outbox_rows(store.path)[0]["state"] == "pending"
    await store.write(lambda c: c.execute("UPDATE outbox SET next_attempt_at = 0"), "test")
    await worker(store, wl).run_once()  # the retry, as after a restart
    [row] = outbox_rows(store.path)
    assert row["state"] == "sent" and row["attempts"] == 2
    assert [r[1] for r in pds.requests].count("createRecord") == 1  # only the lost one
    assert ("GET", "getRecord") in [(r[0], r[1]) for r in pds.requests]


async def test_a_record_refused_as_invalid_fails_and_is_not_retried(tmp_path: Path, pds: FakePds, store: Store) -> None:
    wl = watchlist(tmp_path, pds_url=pds.url)
    [mid] = await seed(store, "sky", "bluesky", [bluesky_view(4)])
    await actions.act(store, wl, mid, ActionKind.REPLY, "alice", {"text": "x" * 3001})
    w = worker(store, wl)
    await w.run_once()
    assert await w.run_once() == 0
    [row] = outbox_rows(store.path)
    assert row["state"] == "failed" and "300 graphemes" in row["last_error"]


async def test_a_wrong_app_password_fails_as_credentials(
    tmp_path: Path, pds: FakePds, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_BSKY_PASSWORD", "wrong")
    wl = watchlist(tmp_path, pds_url=pds.url)
    [mid] = await seed(store, "sky", "bluesky", [bluesky_view(5)])
    await actions.act(store, wl, mid, ActionKind.REPLY, "alice", {"text": "Merci"})
    await worker(store, wl).run_once()
    [row] = outbox_rows(store.path)
    assert row["state"] == "failed" and "credentials rejected (401)" in row["last_error"]


async def test_replies_reuse_the_saved_session_across_restarts(tmp_path: Path, pds: FakePds, store: Store) -> None:
    wl = watchlist(tmp_path, pds_url=pds.url)
    mids = await seed(store, "sky", "bluesky", [bluesky_view(10), bluesky_view(11), bluesky_view(12)])
    context = SourceContext(state_dir=tmp_path)  # where the Bluesky source keeps its session file
    for mid in mids[:2]:  # two replies at once: one createSession between them
        await actions.act(store, wl, mid, ActionKind.REPLY, "alice", {"text": "Merci"})
    first = DeliveryWorker(store, wl, context)
    await first.run_once()
    await first.aclose()
    await actions.act(store, wl, mids[2], ActionKind.REPLY, "alice", {"text": "Merci"})
    again = DeliveryWorker(store, wl, context)  # a new process: the session is read back, not re-opened
    await again.run_once()
    await again.aclose()
    assert [r[1] for r in pds.requests].count("createSession") == 1
    assert [row["state"] for row in outbox_rows(store.path)] == ["sent", "sent", "sent"]


def test_facets_count_utf8_bytes_not_characters() -> None:
    text = "é @ana.bsky.social"
    [f] = facets(text, {"ana.bsky.social": "did:plc:ana"})
    assert (f["index"]["byteStart"], f["index"]["byteEnd"]) == (3, 19)
    assert facets("@unknown.example hi", {}) == []
