"""Exactly one process collects and delivers: whoever holds the lease. Others wait to take over."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from monitor.db.faults import StoreUnreachable
from monitor.db.presence import LEASE_RENEW_S, Presence
from monitor.db.store import StoreGone, StoreUnavailable

log = logging.getLogger(__name__)

Job = Callable[[], Coroutine[Any, Any, None]]  # a coroutine, since each job runs as its own task


async def run_as_leader(
    presence: Presence,
    jobs: list[Job],
    on_change: Callable[[bool], None] | None = None,
    renew_every: float = LEASE_RENEW_S,
    name: str = "collector",
) -> None:
    """Hold the lease `name` while running `jobs`; stop them the moment it is lost.

    Runs until cancelled. A process that is not the leader polls the lease and takes over when the
    holder stops renewing (it died, or hung): within the lease TTL plus one renew period.
    """
    leading = False
    tasks: list[asyncio.Task[None]] = []
    try:
        while True:
            try:
                held = await presence.acquire(name)
            except StoreGone:
                raise  # the database file was deleted or replaced: no lease to hold in it any more
            except StoreUnreachable as exc:  # a server restarting or failing over: the duties go on and show
                # the outage; had another process taken the lease meanwhile, its fence refuses our writes and
                # the next renewal that reaches the server stops them.
                log.warning("lease renewal failed: %s", exc)
                held = leading
            except StoreUnavailable as exc:  # locked, full: a missed renewal, said in one line
                log.warning("lease renewal failed: %s", exc)
                held = False
            except Exception:  # anything else is a missed renewal too (logged in full), never a crash
                log.exception("lease renewal failed")
                held = False
            if held and not leading:
                leading = True
                log.info("%s now collects and delivers", presence.holder)
                tasks = [asyncio.create_task(job(), name=f"leader:{i}") for i, job in enumerate(jobs)]
                if on_change:
                    on_change(True)
            elif not held and leading:
                leading = False
                log.warning("%s lost the lease; stopping", presence.holder)
                await _cancel(tasks)
                if on_change:
                    on_change(False)
            for i, task in enumerate(tasks):
                if task.done() and not task.cancelled() and (error := task.exception()) is not None:
                    if isinstance(error, StoreGone) or (
                        isinstance(error, ExceptionGroup) and error.subgroup(StoreGone) is not None
                    ):
                        raise error  # the file is gone: no restart writes into it again
                    # A crashed duty is restarted (the next renewal paces it), never left dead while we lead.
                    log.error("%s: duty crashed (%r); restarting", name, error, exc_info=error)
                    tasks[i] = asyncio.create_task(jobs[i](), name=f"leader:{i}")
            await asyncio.sleep(renew_every)
    finally:
        await _cancel(tasks)
        # Even when not leading: a cancel that lands while an acquire is in flight may leave the lease
        # taken by it. Releasing deletes only a lease held by this process.
        try:
            await presence.release(name)
        except StoreGone:
            pass
        except Exception:
            log.exception("lease release failed")


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        try:
            await task
        except (asyncio.CancelledError, Exception):
            pass
    tasks.clear()
