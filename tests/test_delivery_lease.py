"""Two delivery workers on one database, and a send that outlives the claim's lease.

Each test runs on both engines (one SQLite file or one PostgreSQL database, opened twice: two workers as in
two processes). A loopback webhook holds chosen requests until the test releases them; the claims' clock is
the test's, moved past the lease instead of waited for. What is pinned: a key reaches the receiver once,
unless a worker was stalled mid-send past its lease; then the second send carries the same key (the receiver
dedupes it) and the item is recorded once, by the worker that holds it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from monitor.core.config import ServiceTarget, Watchlist
from monitor.core.models import ActionKind
from monitor.core.timeutil import now_ms
from monitor.db.engines import open_database
from monitor.engine import actions
from monitor.engine.delivery import DeliveryWorker
from tests.conftest import WAIT, wait_until
from tests.engines import AnyStore, stored_rows, target_of
from tests.fakes_delivery import Receiver, mastodon_status, seed, serving, watchlist

LEASE = 60.0  # seconds of the test's clock, never of the wall's
FROZEN = 3600.0  # a worker that renews nothing while the test runs: a process stalled as a whole


class Clock:
    """The claims' time (ms), moved by the test."""

    def __init__(self) -> None:
        self.ms = now_ms()

    def __call__(self) -> int:
        return self.ms

    def past_the_lease(self) -> None:
        self.ms += int(2 * LEASE * 1000)


class GatedHook(Receiver):
    """The webhook receiver (deduping on Idempotency-Key) whose n-th request waits for `gates[n]`, when there
    is one, and is then answered 503 when n is in `unavailable`."""

    def __init__(self) -> None:
        super().__init__()
        self.gates: dict[int, asyncio.Event] = {}
        self.unavailable: set[int] = set()

    def hold(self, n: int) -> asyncio.Event:
        return self.gates.setdefault(n, asyncio.Event())

    async def _pause(self) -> None:
        n = len(self.requests) - 1  # Receiver.hook logged this request just before
        if n in self.gates:
            await self.gates[n].wait()
        if n in self.unavailable:
            raise web.HTTPServiceUnavailable(text='{"error": "try again"}', content_type="application/json")

    def keys(self) -> list[str]:
        return [headers["Idempotency-Key"] for _, _, headers, _ in self.requests]


@pytest.fixture
async def hook() -> AsyncIterator[GatedHook]:
    async with serving(GatedHook()) as server:
        yield server


@pytest.fixture
async def other(database: AnyStore) -> AsyncIterator[AnyStore]:
    """The same database, opened again: the second worker's own connection, as another process has."""
    store = await open_database(target_of(database))
    yield store
    await store.close()


async def escalated(store: AnyStore, tmp: Path, hook: GatedHook, mentions: int = 1) -> Watchlist:
    wl = watchlist(tmp, targets=(ServiceTarget("webhook", url=hook.url + "/hook"),))
    for mid in await seed(store, "masto", "mastodon", [mastodon_status(n) for n in range(1, mentions + 1)]):
        await actions.act(store, wl, mid, ActionKind.ESCALATE, "alice", {"service": "voirie", "note": "vite"})
    return wl


def worker(store: AnyStore, wl: Watchlist, clock: Clock, renew_every: float, **kw: object) -> DeliveryWorker:
    return DeliveryWorker(store, wl, lease=LEASE, clock=clock, renew_every=renew_every, drain=WAIT, **kw)  # type: ignore[arg-type]


def only_row(store: AnyStore) -> dict[str, object]:
    [row] = stored_rows(store, "outbox")
    return row


async def test_a_send_slower_than_the_lease_keeps_its_claim_and_leaves_once(
    tmp_path: Path, database: AnyStore, other: AnyStore, hook: GatedHook
) -> None:
    wl, clock = await escalated(database, tmp_path, hook), Clock()
    a, b = worker(database, wl, clock, renew_every=0.01), worker(other, wl, clock, renew_every=0.01)
    release = hook.hold(0)
    sending = asyncio.create_task(a.run_once())
    await wait_until(lambda: len(hook.requests) == 1, what="a's request on the wire")
    clock.past_the_lease()  # the send takes longer than the lease: a renews its claim meanwhile
    await wait_until(lambda: int(only_row(database)["claimed_at"]) >= clock.ms, what="a's claim renewed")  # type: ignore[call-overload]
    assert await b.run_once() == 0, "b took over an item a is still sending"
    release.set()
    assert await sending == 1
    assert only_row(database)["state"] == "sent"
    assert len(hook.requests) == 1
    await a.aclose(), await b.aclose()


async def test_a_worker_stalled_past_the_lease_before_sending_sends_nothing(
    tmp_path: Path, database: AnyStore, other: AnyStore, hook: GatedHook
) -> None:
    wl, clock = await escalated(database, tmp_path, hook), Clock()
    parked, resume = asyncio.Event(), asyncio.Event()

    async def stall(_: object) -> None:  # between a's claim and its send, the whole process stops
        parked.set()
        await resume.wait()

    a = worker(database, wl, clock, renew_every=FROZEN, before_send=stall)
    b = worker(other, wl, clock, renew_every=0.01)
    stalled = asyncio.create_task(a.run_once())
    await wait_until(parked.is_set, what="a parked after its claim")
    clock.past_the_lease()
    assert await b.run_once() == 1  # b takes the abandoned claim over and sends
    assert only_row(database)["state"] == "sent"
    resume.set()
    await stalled  # a comes back: the check before its send finds the claim gone
    assert len(hook.requests) == 1
    assert only_row(database)["state"] == "sent"
    await a.aclose(), await b.aclose()


async def test_a_stale_workers_failure_never_undoes_the_claim_that_took_over(
    tmp_path: Path, database: AnyStore, other: AnyStore, hook: GatedHook
) -> None:
    wl, clock = await escalated(database, tmp_path, hook), Clock()
    a_answer, b_answer = hook.hold(0), hook.hold(1)
    hook.unavailable.add(0)  # a's request, once released, is answered 503: a would retry it later
    a, b = worker(database, wl, clock, renew_every=FROZEN), worker(other, wl, clock, renew_every=0.01)
    stalled = asyncio.create_task(a.run_once())
    await wait_until(lambda: len(hook.requests) == 1, what="a's request on the wire")
    clock.past_the_lease()  # a stalls mid-send, renewing nothing: its claim expires
    taking_over = asyncio.create_task(b.run_once())
    await wait_until(lambda: len(hook.requests) == 2, what="b's request on the wire")
    a_answer.set()
    await stalled  # a's "retry later" lands while b's claim is live: refused
    assert only_row(database)["state"] == "sending"
    b_answer.set()
    assert await taking_over == 1
    assert only_row(database)["state"] == "sent"
    clock.past_the_lease()
    assert await a.run_once() == 0 and await b.run_once() == 0, "nothing left to send"
    assert hook.keys() == [hook.keys()[0]] * 2 and len(hook.accepted) == 1  # the same key twice, deduped
    await a.aclose(), await b.aclose()


async def test_a_worker_stopped_mid_send_records_the_send_and_nobody_sends_it_again(
    tmp_path: Path, database: AnyStore, other: AnyStore, hook: GatedHook
) -> None:
    """What the leader loop does when this process loses the delivery lease, or the app quits: cancel."""
    wl, clock = await escalated(database, tmp_path, hook), Clock()
    release = hook.hold(0)
    a, b = worker(database, wl, clock, renew_every=0.01), worker(other, wl, clock, renew_every=0.01)
    running = asyncio.create_task(a.run())
    await wait_until(lambda: len(hook.requests) == 1, what="a's request on the wire")
    running.cancel()
    release.set()  # the answer comes while a is stopping
    with pytest.raises(asyncio.CancelledError):
        await running
    assert only_row(database)["state"] == "sent"
    clock.past_the_lease()
    assert await b.run_once() == 0
    assert len(hook.requests) == 1
    await b.aclose()


async def test_a_stopped_worker_hands_back_at_once_the_items_it_had_not_started(
    tmp_path: Path, database: AnyStore, other: AnyStore, hook: GatedHook
) -> None:
    wl, clock = await escalated(database, tmp_path, hook, mentions=2), Clock()
    release = hook.hold(0)
    a = worker(database, wl, clock, renew_every=0.01, concurrency=1)  # the second item waits for a's one slot
    b = worker(other, wl, clock, renew_every=0.01)
    running = asyncio.create_task(a.run())
    await wait_until(lambda: len(hook.requests) == 1, what="a's first request on the wire")
    running.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await running
    first, second = stored_rows(database, "outbox")
    assert first["state"] == "sent"
    assert (second["state"], second["attempts"]) == ("pending", 0)  # given back uncounted, not left to expire
    assert await b.run_once() == 1  # at once: no lease to wait out
    assert [r["state"] for r in stored_rows(database, "outbox")] == ["sent", "sent"]
    assert sorted(hook.keys()) == sorted(str(r["idem_key"]) for r in stored_rows(database, "outbox"))
    await b.aclose()
