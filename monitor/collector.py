"""Runs the sources: poll (or stream) -> match -> store, with backoff and a visible state per source."""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, replace

from monitor.config import SourceSpec, Watchlist
from monitor.matching import Matcher
from monitor.models import Batch
from monitor.presence import LeaseLost
from monitor.sources import Source, SourceContext, SourceError, StreamingSource, build_source
from monitor.store import Store
from monitor.timeutil import now_ms

log = logging.getLogger(__name__)

BACKOFF_BASE = 2.0
BACKOFF_CAP = 300.0
AUTH_BACKOFF = 900.0


@dataclass(frozen=True)
class SourceStatus:
    name: str
    state: str = "idle"  # live | polling | backoff | failing | idle
    detail: str = ""
    until_ms: int | None = None
    last_ok_ms: int | None = None
    stored: int = 0
    filtered: int = 0
    skipped: int = 0
    failures: int = 0


def backoff_delay(failures: int, error: SourceError | None = None, rng: random.Random | None = None) -> float:
    """Seconds to wait after the n-th consecutive failure: exponential with jitter, capped."""
    rng = rng or random
    if error is not None and error.retry_after is not None:
        return max(0.0, error.retry_after)
    if error is not None and error.kind == "auth":
        return AUTH_BACKOFF
    delay = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(0, failures - 1))
    return delay * rng.uniform(0.5, 1.0)


class Collector:
    def __init__(
        self,
        watchlist: Watchlist,
        store: Store,
        context: SourceContext | None = None,
        on_status: Callable[[SourceStatus], None] | None = None,
        sources: list[Source] | None = None,
    ) -> None:
        self.watchlist = watchlist
        self.store = store
        self.matcher = Matcher(watchlist)
        self.context = context or SourceContext()
        self.on_status = on_status
        specs = {s.name: s for s in watchlist.sources}
        self.sources = sources if sources is not None else [build_source(s, self.context) for s in specs.values()]
        self.specs: dict[str, SourceSpec] = specs
        self.status = {s.name: SourceStatus(s.name) for s in self.sources}
        # Set by whoever runs this collector under a lease: refuses writes once the lease is lost.
        self.fence: Callable[[sqlite3.Connection], None] | None = None

    async def ingest(self, source: Source, batch: Batch) -> int:
        """Match a batch and store it with its cursor in one transaction; returns how many were new."""
        matched = [(m, r) for m in batch.mentions if (r := self.matcher.match(m)) is not None]
        edits = [(m, self.matcher.match(m)) for m in batch.edits]
        new = await self.store.ingest(source.name, matched, batch.cursor, edits, batch.deletes, fence=self.fence)
        st = self.status[source.name]
        self._set(
            replace(
                st,
                stored=st.stored + new,
                filtered=st.filtered + len(batch.mentions) - len(matched),
                skipped=st.skipped + batch.skipped,
            )
        )
        return new

    async def poll_once(self, source: Source) -> int:
        cursor = await self.store.cursor(source.name)
        batch = await source.poll(cursor)
        return await self.ingest(source, batch)

    async def run_once(self) -> dict[str, str | None]:
        """Poll every source one time. Returns each source's error message, or None on success."""
        results: dict[str, str | None] = {}
        for source in self.sources:
            try:
                await self.poll_once(source)
                await self._ok(source.name, "polling")
                results[source.name] = None
            except SourceError as exc:
                results[source.name] = str(exc)
                await self._failed(source.name, exc, 1)
            except Exception as exc:  # a bug in one source must not stop the others
                log.exception("source %s failed", source.name)
                results[source.name] = f"{type(exc).__name__}: {exc}"
        return results

    async def run(self) -> None:
        """Run every source until cancelled, each in its own task."""
        try:
            async with asyncio.TaskGroup() as group:
                for source in self.sources:
                    group.create_task(self._run_source(source), name=f"source:{source.name}")
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        for source in self.sources:
            try:
                await source.aclose()
            except Exception:  # closing is best effort
                log.exception("closing %s", source.name)

    async def _run_source(self, source: Source) -> None:
        spec = self.specs.get(source.name)
        interval = spec.poll_interval.total_seconds() if spec else 60.0
        failures = 0
        while True:
            try:
                if isinstance(source, StreamingSource) and hasattr(source, "stream"):
                    cursor = await self.store.cursor(source.name)
                    await self._ok(source.name, "live")
                    async for batch in source.stream(cursor):
                        await self.ingest(source, batch)
                        failures = 0
                        await self._ok(source.name, "live")
                    continue
                await self.poll_once(source)
                failures = 0
                await self._ok(source.name, "polling")
                await asyncio.sleep(interval)
            except asyncio.CancelledError:
                raise
            except SourceError as exc:
                failures += 1
                await asyncio.sleep(await self._failed(source.name, exc, failures))
            except LeaseLost as exc:  # fenced: another process collects now; the leader loop stops this one
                log.warning("source %s: %s", source.name, exc)
                await asyncio.sleep(interval)
            except Exception as exc:
                log.exception("source %s crashed; retrying", source.name)
                failures += 1
                await asyncio.sleep(await self._failed(source.name, SourceError(repr(exc)), failures))

    async def _ok(self, name: str, state: str) -> None:
        st = self.status[name]
        now = now_ms()
        detail = self._partial(name)
        changed = st.state != state or st.detail != detail
        self._set(replace(st, state=state, detail=detail, until_ms=None, last_ok_ms=now, failures=0))
        # Persist for other processes, but not on every poll of a quiet, healthy source.
        if changed or st.last_ok_ms is None or now - st.last_ok_ms > 30_000:
            await self._persist(name, ok=True)

    def _partial(self, name: str) -> str:
        """A source that succeeded only in part (some of a feed source's URLs failing) says so."""
        source = next((s for s in self.sources if s.name == name), None)
        problems: dict[str, str] = getattr(source, "problems", None) or {}
        if not problems:
            return ""
        first = next(iter(problems.values()))
        return f"{len(problems)} failing: {first}"

    async def _failed(self, name: str, error: SourceError, failures: int) -> float:
        delay = backoff_delay(failures, error)
        st = self.status[name]
        label = "credentials rejected" if error.kind == "auth" else str(error)
        state = "failing" if error.kind in ("auth", "config") else "backoff"
        self._set(replace(st, state=state, detail=label, until_ms=now_ms() + int(delay * 1000), failures=failures))
        log.warning("source %s: %s (retry in %.0fs)", name, label, delay)
        await self._persist(name)
        return delay

    async def _persist(self, name: str, ok: bool = False) -> None:
        st = self.status[name]
        try:
            await self.store.set_source_state(name, st.state, st.detail, st.until_ms, ok=ok)
        except Exception:  # the state row is informative; never let it stop collection
            log.exception("could not record state of %s", name)

    def _set(self, status: SourceStatus) -> None:
        self.status[status.name] = status
        if self.on_status:
            self.on_status(status)
