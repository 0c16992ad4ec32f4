"""One outbox item's claim, held by the delivery worker from the claim to the item's last write.

The claim is a lease on the row (`claimed_at`, which is also its token). While this worker waits for a
sending slot, sends, and records, the claim is renewed in the background, so a slow send never outlives it
and no other worker takes the item over meanwhile. Only a whole process stalled past the lease loses it;
then the renewal before the send says so and nothing is sent, and every write about the item is refused
under the stale token: the worker that took it over decides.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType

from monitor.db.faults import StoreError
from monitor.db.outbox import Outbox

log = logging.getLogger(__name__)


class HeldClaim:
    """`async with` it to keep the claim renewed; `write` runs a settling write under the current token."""

    def __init__(self, outbox: Outbox, item_id: int, token: int, renew_every: float, clock: Callable[[], int]) -> None:
        self.outbox, self.item_id, self.token = outbox, item_id, token
        self.renew_every, self.clock = renew_every, clock
        self.lost = False  # another worker holds the item now: we neither send nor record
        self.settled = False  # its outcome is written: nothing left to hold
        self._lock = asyncio.Lock()  # a renewal changes the token: never at once with a write that names it
        self._stop = asyncio.Event()
        self._keeper: asyncio.Task[None] | None = None

    async def renew(self) -> bool:
        """Extend the claim now; False once it is lost (a store fault is not a loss: the next renewal retries)."""
        async with self._lock:
            if self.lost or self.settled:
                return False
            token = await self.outbox.renew(self.item_id, self.token, self.clock())
            if token is None:
                self.lost = True
                log.warning("outbox item %d: its claim was taken over by another worker", self.item_id)
                return False
            self.token = token
            return True

    async def write(self, settle: Callable[[int], Awaitable[bool]]) -> bool:
        """Run `settle(token)` (an Outbox call given the token); whether it applied. Ends the renewals."""
        self._stop.set()
        async with self._lock:
            if self.lost:
                return False
            done = await settle(self.token)
            self.settled = True
            if not done:
                self.lost = True
                log.warning("outbox item %d: not recorded, another worker holds it now", self.item_id)
            return done

    async def _keep(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._stop.wait(), self.renew_every)
                return
            except TimeoutError:
                pass
            try:
                if not await self.renew():
                    return
            except StoreError as exc:  # the database is busy: the claim has a lease's time left to retry in
                log.warning("outbox item %d: claim renewal failed: %s", self.item_id, exc)
            except Exception:  # a bug here must not pass silently; the pre-send check and the marks still fence
                log.exception("outbox item %d: claim renewal crashed", self.item_id)
                return

    async def __aenter__(self) -> HeldClaim:
        self._keeper = asyncio.create_task(self._keep(), name=f"claim:{self.item_id}")
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._keeper is not None:
            if kind is not None:  # leaving on an error or a cancel: do not wait for a renewal in flight
                self._keeper.cancel()
            await asyncio.wait([self._keeper])  # never raises the keeper's end (it logs its own faults)
