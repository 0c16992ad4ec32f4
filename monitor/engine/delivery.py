"""The delivery worker: claims due outbox items, sends them, records what happened.

Each item is claimed (`sending`, with a lease) in its own BEGIN IMMEDIATE transaction before the
network call, and marked `sent` in another right after. A crash between the two leaves it `sending`;
once the lease runs out any worker takes it again, and the retry carries the same idempotency key
(Mastodon, webhooks) or record key (Bluesky, checked with getRecord first), so it is not posted twice.

A live worker never loses an item to another: its claim is renewed while it waits and sends
(engine.delivery_claim), checked again right before the send, and every record of the outcome names
the claim. Stopped (its lease went to another process, or the app quits), it lets the sends on the wire
land and be recorded, and gives back the claims of items it has not started.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from monitor.core import templates as tpl
from monitor.core.config import Watchlist
from monitor.core.models import ActionKind, Status
from monitor.core.outbox import DRY_RUN_URL, OutboxItem
from monitor.core.pacing import RATE_LIMITS, Pace
from monitor.core.retry import DELIVERY_CAP, ErrorKind, backoff
from monitor.core.sanitize import clean, clean_line, safe_url
from monitor.core.timeutil import now_ms
from monitor.db.api import Database
from monitor.db.faults import StoreError, StoreLocked, StoreUnreachable
from monitor.db.outbox import Outbox
from monitor.engine.delivery_claim import HeldClaim
from monitor.networks import services
from monitor.networks.base import NetworkError, SourceContext
from monitor.networks.replies import REPLY_NETWORKS
from monitor.networks.sending import FollowsRequests, Sender, Sent

log = logging.getLogger(__name__)

LEASE_SECONDS = 120.0  # twice a whole send's bound (networks.http.TOTAL_SECONDS); a dead worker's item is retaken
RENEWALS_PER_LEASE = 3  # a claim in use is renewed this often per lease: two renewals may fail and it still holds
DRAIN_SECONDS = 10.0  # stopped, a send already on the wire gets this long to land and be recorded
MAX_ATTEMPTS = 12  # transient failures before the item is failed for the operator to look at
OPEN311_EVERY = 300.0
CONCURRENCY = 8
RECORD_RETRY_S = 0.1  # the first pause before recording a sent item again, doubled up to 2 s
MAX_TEXT = 500  # an id, a status or a reason from a server: more is noise (or an attack)


def answered(sent: Sent) -> Sent:
    """What a server answered, made safe to store and show: clean text, an http(s) link or none."""

    def text(value: str | None) -> str | None:
        return clean_line(value)[:MAX_TEXT] or None

    url = sent.remote_url if sent.remote_url == DRY_RUN_URL else safe_url(sent.remote_url)[:2000]
    return Sent(text(sent.remote_id), url or None, text(sent.remote_status), sent.cost)


class DryRunSender:
    async def send(self, item: OutboxItem) -> Sent:
        return Sent(DRY_RUN_URL, DRY_RUN_URL)

    async def aclose(self) -> None:
        return None


class DeliveryWorker:
    def __init__(
        self,
        store: Database,
        watchlist: Watchlist,
        context: SourceContext | None = None,
        *,
        dry_run: bool = False,
        lease: float = LEASE_SECONDS,
        idle: float = 5.0,
        open311_every: float = OPEN311_EVERY,
        on_change: Callable[[OutboxItem], None] | None = None,
        after_send: Callable[[OutboxItem], Awaitable[None]] | None = None,
        before_send: Callable[[OutboxItem], Awaitable[None]] | None = None,
        clock: Callable[[], int] = now_ms,
        renew_every: float | None = None,
        drain: float = DRAIN_SECONDS,
        concurrency: int = CONCURRENCY,
    ) -> None:
        self.store = store
        self.outbox = Outbox(store)
        self.watchlist = watchlist
        self.context = context or SourceContext()
        self.dry_run = dry_run
        self.lease_ms = int(lease * 1000)
        self.idle = idle
        self.open311_every_ms = int(open311_every * 1000)
        self.on_change = on_change
        # Awaited between the remote accepting an item and our commit (the crash test parks a worker there),
        # and between the claim and the send (the lease tests stall a worker there).
        self.after_send, self.before_send = after_send, before_send
        self.clock = clock  # the claims' time (ms): the lease tests move it instead of waiting
        self.renew_every = lease / RENEWALS_PER_LEASE if renew_every is None else renew_every
        self.drain = drain
        self._stopping = False
        self.senders: dict[str, Sender] = {}
        self._wake = asyncio.Event()
        self._limit = asyncio.Semaphore(concurrency)
        self._busy: set[int] = set()
        self.paces: dict[str, Pace] = {}  # per replying account (target): its network's rate limit

    def wake(self) -> None:
        """Something was enqueued: look now rather than at the next idle tick."""
        self._wake.set()

    async def aclose(self) -> None:
        for sender in self.senders.values():
            await sender.aclose()
        self.senders.clear()

    # -- senders --------------------------------------------------------------------------

    def sender(self, item: OutboxItem) -> Sender:
        if self.dry_run:
            return DryRunSender()
        if item.target not in self.senders:
            self.senders[item.target] = self._build(item)
        return self.senders[item.target]

    def _build(self, item: OutboxItem) -> Sender:
        if (name := item.source) is not None:
            spec = self.watchlist.source(name)
            if spec is None:
                raise NetworkError(f"the source {name!r} is no longer in the watchlist", ErrorKind.CONFIG)
            if spec.type not in REPLY_NETWORKS:
                raise NetworkError(f"the source {name!r} ({spec.type}) has no reply API", ErrorKind.CONFIG)
            return REPLY_NETWORKS[spec.type].sender(spec, self.context)
        sid, index = item.service or ("", -1)
        service = self.watchlist.service(sid)
        if service is None or not 0 <= index < len(service.targets):
            raise NetworkError(f"the service target {item.target!r} is no longer in the watchlist", ErrorKind.CONFIG)
        return services.sender_for(service, service.targets[index], self.context)

    # -- the loop -------------------------------------------------------------------------

    async def run(self) -> None:
        """Deliver until cancelled; a failure of one pass is logged and the next pass comes."""
        last_check = 0
        self._stopping = False  # the leader loop runs this again when it leads again
        try:
            while True:
                try:
                    while await self.run_once():
                        pass
                    if not self.dry_run and now_ms() - last_check >= self.open311_every_ms:
                        last_check = now_ms()
                        await self.check_open311()
                except StoreError as exc:
                    log.warning("delivery pass failed: %s", exc)
                except Exception:  # a bug in one pass must not end delivery: the next pass comes
                    log.exception("delivery pass crashed")
                await self._sleep()
        finally:
            await self.aclose()

    async def _sleep(self) -> None:
        try:
            due = await self.outbox.next_due()
        except StoreError:  # the database is away (a server restarting): the next pass says so, and tries again
            due = None
        wait = self.idle if due is None else max(0.0, min(self.idle, (due - now_ms()) / 1000))
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), wait)
        except TimeoutError:
            pass

    async def run_once(self) -> int:
        """Claim and send what is due, and wait for it; returns how many items were handled."""
        items = await self.outbox.claim(self.lease_ms, busy=self._busy, now=self.clock())
        if items:
            self._busy.update(i.id for i in items)
            tasks = [asyncio.create_task(self._deliver(item), name=f"deliver:{item.id}") for item in items]
            try:
                await asyncio.wait(tasks)
            except asyncio.CancelledError:
                await self._drain(tasks)
                raise
            errors = [error for task in tasks if (error := task.exception()) is not None]
            if errors:
                raise errors[0]
        return len(items)

    async def _drain(self, tasks: list[asyncio.Task[None]]) -> None:
        """Cancelled: a send on the wire may land and be recorded (cut off, its outcome would be unknown and
        the item sent again after the lease); an item not started gives its claim back, due at once."""
        self._stopping = True
        _, pending = await asyncio.wait(tasks, timeout=self.drain)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
        for task in tasks:
            if not task.cancelled() and (error := task.exception()) is not None:
                log.warning("delivery while stopping: %r", error)

    async def _deliver(self, item: OutboxItem) -> None:
        claim = HeldClaim(self.outbox, item.id, item.claimed_at or 0, self.renew_every, self.clock)
        try:
            async with claim:
                await self._deliver_one(item, claim)
        finally:
            self._busy.discard(item.id)
        if self.on_change:
            self.on_change(item)

    async def _paced(self, item: OutboxItem, claim: HeldClaim) -> bool:
        """Whether the item's account may call its network now; if not, it waits its turn (not a failure)."""
        spec = self.watchlist.source(item.source) if item.source is not None and not self.dry_run else None
        if spec is None or spec.type not in RATE_LIMITS:
            return True
        pace = self.paces.get(item.target)
        if pace is None:  # after a restart the window holds what the last run sent
            limit, per_ms = RATE_LIMITS[spec.type]
            past = await self.outbox.sent_since(item.target, now_ms() - per_ms)
            pace = self.paces.setdefault(item.target, Pace(limit, per_ms, past))  # one per account, if concurrent
        now = now_ms()
        wait = pace.wait(now)
        if wait:
            await claim.write(lambda token: self.outbox.defer(item.id, now + wait, token))
            return False
        pace.take(now)
        return True

    async def _deliver_one(self, item: OutboxItem, claim: HeldClaim) -> None:
        async with self._limit:
            if self._stopping:  # stopped before its turn: the next holder sends it now, not after the lease
                await claim.write(lambda token: self.outbox.defer(item.id, self.clock(), token))
                return
            if not await self._paced(item, claim):
                return
            if self.before_send is not None:
                await self.before_send(item)
            if not await claim.renew():  # stalled past the lease, and another worker took it: not ours to send
                return
            try:
                sent = await self.sender(item).send(item)
            except NetworkError as exc:
                await self._failed(item, claim, exc)
            except Exception as exc:  # a bug in a sender must not leave the item stuck in `sending`
                log.exception("delivery of outbox item %d crashed", item.id)
                await self._failed(item, claim, NetworkError(f"internal error: {type(exc).__name__}"))
            else:
                if self.after_send is not None:
                    await self.after_send(item)
                await self._record_sent(item, claim, answered(sent))

    async def _record_sent(self, item: OutboxItem, claim: HeldClaim, sent: Sent) -> None:
        """The remote has it: record that, waiting out a database outage (a server restarting, failing over)
        for as long as the claim lasts, rather than leave it to be sent again once the claim runs out."""
        spend = (item.source, sent.cost) if item.source and sent.cost else None
        give_up = time.monotonic() + self.lease_ms / 1000
        delay = RECORD_RETRY_S
        while True:
            try:
                # Made once even if a lost COMMIT had made it: only an item still `sending` under our claim is marked.
                await claim.write(
                    lambda token: self.outbox.mark_sent(
                        item.id, sent.remote_id, sent.remote_url, sent.remote_status, spend, token=token
                    )
                )
                return
            except (StoreLocked, StoreUnreachable) as exc:
                if time.monotonic() + delay >= give_up:
                    raise
                log.warning("outbox item %d sent, not yet recorded: %s", item.id, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _failed(self, item: OutboxItem, claim: HeldClaim, exc: NetworkError) -> None:
        reason = clean_line(str(exc))[:MAX_TEXT]  # it may quote the server: stored and shown
        if not exc.kind.worth_repeating or item.attempts >= MAX_ATTEMPTS:
            log.warning("outbox item %d failed: %s", item.id, reason)
            await claim.write(lambda token: self.outbox.mark_failed(item.id, reason, token))
            return
        delay = backoff(item.attempts, exc.kind, exc.retry_after, cap=DELIVERY_CAP)
        why = f"{reason} — retrying (attempt {item.attempts})"
        await claim.write(lambda token: self.outbox.retry_later(item.id, why, int(delay * 1000), token))

    # -- Open311: follow escalated requests until the service closes them ------------------

    async def check_open311(self) -> int:
        """Poll open Open311 requests; `closed` resolves the mention and drafts the follow-up."""
        closed = 0
        for item in await self.outbox.to_check("service:", now_ms() - self.open311_every_ms):
            try:
                sender = self.sender(item)
                if not isinstance(sender, FollowsRequests) or not item.remote_id:
                    continue
                status, notes, _ = await sender.status(item.remote_id)
            except NetworkError as exc:
                log.info("open311 status of item %d: %s", item.id, exc)
                continue
            if status is None:
                continue
            status, notes = clean_line(status)[:MAX_TEXT], clean(notes)[:2000]
            await self.outbox.set_remote_status(item.id, status, notes)
            if status == "closed":
                closed += await self._resolve_closed(item, notes)
        return closed

    async def _resolve_closed(self, item: OutboxItem, notes: str) -> int:
        incident = item.payload.get("incident")
        if isinstance(incident, dict) and isinstance(incident.get("id"), int):  # escalated once for many reports
            from monitor.engine.incidents import service_closed

            return await service_closed(self.store, self.watchlist, incident["id"], str(item.remote_id), notes)
        mention = await self.store.mention(item.mention_id)
        if mention.status is not Status.ESCALATED:
            return 0
        service = str(item.payload.get("service", {}).get("name", ""))
        draft = tpl.draft_followup(self.watchlist.templates, mention, self.watchlist.city, service)
        payload = {
            "note": f"Open311 request {item.remote_id} closed" + (f": {notes}" if notes else ""),
            "draft": draft,
            "outbox_item": item.id,
        }
        await self.store.act(item.mention_id, ActionKind.RESOLVE, "open311", payload)
        return 1


__all__ = ["DeliveryWorker"]
