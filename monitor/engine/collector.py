"""Runs the sources: poll (or stream) -> match -> store, with backoff and a visible state per source."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from monitor.core.config import SourceSpec, Watchlist
from monitor.core.matching import Matcher
from monitor.core.models import Batch, SourceState
from monitor.core.retry import POLL_CAP, ErrorKind, backoff
from monitor.core.sanitize import clean_line
from monitor.core.timeutil import now_ms
from monitor.db.api import Database, Fence, LeaseLost
from monitor.db.store import StoreGone, StoreUnavailable
from monitor.networks import BudgetedSource, Source, SourceContext, SourceError, StreamingSource, build_source

log = logging.getLogger(__name__)

# A stream up this long has recovered. Before that, a drop counts as another failure in a row, even
# after its catch-up batch: a server that accepts and closes at once is backed off like any failure.
STREAM_STABLE = 60.0
DIGESTS_EVERY_S = 600.0  # how often the statistics' dirty days are rebuilt (monitor.db.statsdays)


@dataclass(frozen=True)
class SourceStatus:
    name: str
    state: SourceState = SourceState.IDLE
    detail: str = ""
    until_ms: int | None = None
    last_ok_ms: int | None = None
    stored: int = 0
    filtered: int = 0
    skipped: int = 0
    failures: int = 0


class Collector:
    def __init__(
        self,
        watchlist: Watchlist,
        store: Database,
        context: SourceContext | None = None,
        on_status: Callable[[SourceStatus], None] | None = None,
        sources: list[Source] | None = None,
    ) -> None:
        self.watchlist = watchlist
        self.store = store
        self.matcher = Matcher(watchlist)
        self.context = replace(context or SourceContext(), terms=watchlist.terms)  # X searches by them
        self.on_status = on_status
        specs = {s.name: s for s in watchlist.sources}
        self.sources = sources if sources is not None else [build_source(s, self.context) for s in specs.values()]
        self.specs: dict[str, SourceSpec] = specs
        self.status = {s.name: SourceStatus(s.name) for s in self.sources}
        # Set by whoever runs this collector under a lease: refuses writes once the lease is lost.
        self.fence: Fence | None = None
        self.stream_stable = STREAM_STABLE
        self._sleep = asyncio.sleep  # tests record the backoff instead of waiting
        self.digests_every = DIGESTS_EVERY_S

    async def ingest(self, source: Source, batch: Batch) -> int:
        """Match a batch and store it with its cursor in one transaction; returns how many were new."""
        matched = [(m, r) for m in batch.mentions if (r := self.matcher.match(m)) is not None]
        edits = [(m, self.matcher.match(m)) for m in batch.edits]
        deletes = batch.deletes
        if batch.local_deletes:  # posts seen before a restart: the source no longer knows their uri
            deletes = deletes + await self.store.mastodon_uris(source.name, batch.local_deletes)
        new = await self.store.ingest(
            source.name, matched, batch.cursor, edits, deletes, fence=self.fence, spend=batch.spend
        )
        spec = self.specs.get(source.name)
        if new and spec is not None and spec.type == "demo":  # the demo opens its incidents, to show suggestions
            for m, _ in matched:
                if m.raw and m.raw.get("demo_incident"):
                    await self.store.create_incident_for(source.name, m.remote_id, "demo", str(m.raw["demo_incident"]))
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
        await self._restore_spend(source)
        batch = await source.poll(cursor)
        return await self.ingest(source, batch)

    async def _restore_spend(self, source: Source) -> None:
        if isinstance(source, BudgetedSource):  # paid per call: it paces itself on the month's spend so far
            month = source.billing_month()
            source.restore_spend(month, sum(s.total for s in await self.store.spend(month) if s.source == source.name))

    async def run_once(self) -> dict[str, str | None]:
        """Poll every source one time. Returns each source's error message, or None on success."""
        results: dict[str, str | None] = {}
        for source in self.sources:
            try:
                await self.poll_once(source)
                await self._ok(source.name, SourceState.POLLING)
                results[source.name] = None
            except SourceError as exc:
                results[source.name] = str(exc)
                await self._failed(source.name, exc, 1)
            except StoreGone:
                raise  # nothing more is written to a file that is no longer there
            except Exception as exc:  # a bug in one source must not stop the others
                log.exception("source %s failed", source.name)
                results[source.name] = problem = f"{type(exc).__name__}: {exc}"
                await self._failed(source.name, SourceError(problem), 1)
        return results

    async def run(self) -> None:
        """Run every source until cancelled, each in its own task; closes the sources when cancelled."""
        try:
            async with asyncio.TaskGroup() as group:
                for source in self.sources:
                    group.create_task(self._run_source(source), name=f"source:{source.name}")
                group.create_task(self._refresh_digests(), name="digests")
        except Exception as exc:  # the bar must not keep saying "ok" while nothing collects
            cause = exc.exceptions[0] if isinstance(exc, ExceptionGroup) else exc
            if not isinstance(cause, StoreGone):  # a gone file takes no state: the app or service says so
                detail = f"collector crashed ({type(cause).__name__}); restarting"
                for name, st in self.status.items():
                    self._set(replace(st, state=SourceState.FAILING, detail=detail))
                    await self._persist(name)
            raise  # the leader restarts us: the sources' clients stay open for that
        except BaseException:
            await self.aclose()
            raise

    async def _refresh_digests(self) -> None:
        """Rebuild the statistics' dirty days now and then: `monitor stats` reads the file read-only, and a
        dirty day is computed from its mentions instead (right, only slower), so someone who writes must."""
        while True:
            await asyncio.sleep(self.digests_every)
            try:
                await self.store.refresh_digests()
            except StoreGone:
                raise
            except Exception:  # derived data: the next round tries again; collecting goes on
                log.exception("rebuilding the statistics' digests failed")

    async def aclose(self) -> None:
        for source in self.sources:
            try:
                await source.aclose()
            except Exception:  # closing is best effort
                log.exception("closing %s", source.name)

    async def _run_source(self, source: Source) -> None:
        """Never returns but by cancellation: whatever one source does, the others keep collecting."""
        while True:
            try:
                await self._source_loop(source)
            except (asyncio.CancelledError, StoreGone):
                raise
            except Exception:  # a failure while handling a failure: keep the source alive, slowly
                log.exception("source %s: collection loop failed; restarting", source.name)
                self._set(
                    replace(self.status[source.name], state=SourceState.FAILING, detail="internal error; restarting")
                )
                await asyncio.sleep(POLL_CAP)

    async def _source_loop(self, source: Source) -> None:
        spec = self.specs.get(source.name)
        interval = spec.poll_interval.total_seconds() if spec else 60.0
        failures = 0
        while True:
            try:
                # `streams` False: the source found it may not stream (X's plan) and polls instead.
                streams = isinstance(source, StreamingSource) and getattr(source, "streams", True)
                if streams and hasattr(source, "stream"):
                    cursor = await self.store.cursor(source.name)
                    await self._restore_spend(source)
                    await self._ok(source.name, SourceState.LIVE, failures)
                    connected = asyncio.get_running_loop().time()
                    async for batch in source.stream(cursor):
                        await self.ingest(source, batch)
                        if asyncio.get_running_loop().time() - connected >= self.stream_stable:
                            failures = 0
                        await self._ok(source.name, SourceState.LIVE, failures)
                    continue
                await self.poll_once(source)
                failures = 0
                await self._ok(source.name, SourceState.POLLING)
                await self._sleep(interval)
            except asyncio.CancelledError:
                raise
            except SourceError as exc:
                failures += 1
                await self._sleep(await self._failed(source.name, exc, failures, looping=hasattr(source, "stream")))
            except StoreGone:
                raise  # the file was deleted or replaced: stop writing (the app or service says so)
            except StoreUnavailable as exc:  # locked, read-only, full: a state of the source, retried
                failures += 1
                await self._sleep(await self._failed(source.name, SourceError(str(exc)), failures))
            except LeaseLost as exc:  # fenced: another process collects now; the leader loop stops this one
                log.warning("source %s: %s", source.name, exc)
                await self._sleep(interval)
            except Exception as exc:
                log.exception("source %s crashed; retrying", source.name)
                failures += 1
                await self._sleep(await self._failed(source.name, SourceError(repr(exc)), failures))

    async def _ok(self, name: str, state: SourceState, failures: int = 0) -> None:
        st = self.status[name]
        now = now_ms()
        detail = self._partial(name)
        if failures:  # live again, but not yet for long: the bar must not look healthy
            detail = f"reconnected after {failures} drop{'s' if failures > 1 else ''} in a row"
        changed = st.state != state or st.detail != detail
        self._set(replace(st, state=state, detail=detail, until_ms=None, last_ok_ms=now, failures=failures))
        # Persist for other processes, but not on every poll of a quiet, healthy source.
        if changed or st.last_ok_ms is None or now - st.last_ok_ms > 30_000:
            await self._persist(name, ok=True)

    def _partial(self, name: str) -> str:
        """A source that succeeded only in part (some of a feed source's URLs failing) says so."""
        source = next((s for s in self.sources if s.name == name), None)
        problems: dict[str, str] = getattr(source, "problems", None) or {}
        if not problems:
            return str(getattr(source, "note", ""))  # e.g. an X source's spend this month
        first = next(iter(problems.values()))
        return f"{len(problems)} failing: {first}"

    async def _failed(self, name: str, error: SourceError, failures: int, looping: bool = False) -> float:
        delay = backoff(failures, error.kind, error.retry_after, cap=POLL_CAP)  # the "until" the bar shows
        st = self.status[name]
        label = "credentials rejected" if error.kind is ErrorKind.AUTH else clean_line(str(error))[:300]
        if looping and failures > 1 and not error.kind.needs_fixing:
            label = f"stream reconnecting in a loop ({failures} drops in a row): {label}"
        state = SourceState.FAILING if error.kind.needs_fixing else SourceState.BACKOFF
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
