"""The PostgreSQL store: `Database` over one async connection, every write one transaction.

`PgStore.write` and `read` run an async function on the connection inside a transaction, one at a time
(the app and the collector each hold one store, as with SQLite). A connection lost is opened again on the
next call (monitor.db.pg.link): a server restart or a failover is an outage to show, not the end of the
process. An operator's write retried after a lost COMMIT is made once (monitor.db.writekey).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import psycopg
from psycopg.types.json import Jsonb

from monitor.core.dburl import describe
from monitor.core.incidents import Incident, IncidentDetail, IncidentStatus, IncidentSummary, Suggestion
from monitor.core.models import ActionKind, ActionRow, MatchResult, Mention, MentionRow, Spend, Status
from monitor.core.timeutil import now_ms
from monitor.db.api import Database, Fence, Handover, MentionDetail, PaneEntry, SourceState
from monitor.db.faults import CommitUnknown, StoreGone, StoreReadOnly, StoreUnreachable
from monitor.db.pg import actions as pg_actions
from monitor.db.pg import incidents as pg_incidents
from monitor.db.pg import mentions as pg_mentions
from monitor.db.pg import spend as pg_spend
from monitor.db.pg import statsdays as pg_statsdays
from monitor.db.pg import views
from monitor.db.pg.connect import classify, connect, migrate
from monitor.db.pg.leases import check_lease
from monitor.db.pg.link import Link
from monitor.db.pg.mentions import Conn, every, one
from monitor.db.writekey import ATTEMPT

if TYPE_CHECKING:
    from monitor.db.incidents import IncidentPlan

T = TypeVar("T")
KEEP_KEYS_MS = 7 * 86_400_000  # an operator's write is retried for minutes at most: a week is plenty


class PgStore:
    """Async access for the app and the collector over PostgreSQL."""

    notifies = True  # of every commit (LISTEN/NOTIFY): a desk waits on wait_change

    def __init__(self, conn: Conn, url: str) -> None:
        self._link = Link(url, conn)
        self.url = url
        self.path = Path(describe(url))  # what messages name; there is no file to watch
        self.on_commit: Callable[[str], None] | None = None
        self.gone: StoreGone | None = None
        self._lock = asyncio.Lock()
        self._listener = Link(url)  # LISTENs for commits (wait_change), opened on first use
        self._uncertain: set[str] = set()  # keys of writes whose COMMIT was lost, until one attempt ends

    @classmethod
    async def open(cls, url: str) -> PgStore:
        """Connect and migrate; any failure is a StoreError, with nothing left open."""
        conn = await connect(url)
        try:
            await migrate(conn, url)
            await conn.execute("DELETE FROM write_keys WHERE at < %s", (now_ms() - KEEP_KEYS_MS,))
        except psycopg.Error as exc:
            await conn.close()
            raise classify(exc, url) from exc
        except BaseException:
            await conn.close()
            raise
        return cls(conn, url)

    async def close(self) -> None:
        await self._listener.close()
        await self._link.close()

    async def wait_change(self, after: int, within: float) -> int:
        """Until a commit anywhere raises the rev past `after`, or `within` seconds; returns the rev now.

        Other operators' commits arrive by notification instead of polling. The rev stays the truth: the
        listener listens before the rev is read, and a missed notification only delays until `within` has passed."""
        try:
            if not self._listener.usable:  # new, or lost with the server: LISTEN again before reading the rev
                listener = await self._listener.get()
                await listener.execute(f"LISTEN {pg_mentions.CHANNEL}")
            listener = await self._listener.get()
            rev = await self.max_rev()
            if rev <= after:
                async for _ in listener.notifies(timeout=within, stop_after=1):
                    pass
        except psycopg.Error as exc:
            await self._listener.drop()
            raise classify(exc, self.url) from exc
        return await self.max_rev()

    async def export_mentions(self, ids: Sequence[int]) -> list[tuple[object, ...]]:
        return await self.read(lambda c: views.export_mentions(c, ids))

    def check_file(self) -> None:
        """Nothing to check: a server has no file that could be replaced under us."""

    async def _run(self, fn: Callable[[Conn], Awaitable[T]], pipelined: bool = False) -> T:
        async with self._lock:
            try:
                return await self._attempt(fn, self._link.usable, pipelined)
            except _Stale:  # the server dropped it since the last call (and is back, maybe): a new one, once
                return await self._attempt(fn, False, pipelined)

    async def _attempt(self, fn: Callable[[Conn], Awaitable[T]], reused: bool, pipelined: bool) -> T:
        conn = await self._link.get()  # after a restart or a failover, a new one
        began = committing = False
        try:
            # Pipelined: what nothing waits for (BEGIN, UPDATEs, the COMMIT) goes out with the next read.
            async with conn.pipeline() if pipelined else nullcontext(), conn.transaction():
                began = True
                result = await fn(conn)
                committing = True  # leaving the block commits
            return result
        except psycopg.Error as exc:
            error = classify(exc, self.url, committing)
            if isinstance(error, StoreUnreachable | StoreReadOnly) or conn.broken:
                await self._link.drop()  # a read-only server may be a demoted primary: ask libpq again
            if reused and not began and isinstance(error, StoreUnreachable):
                raise _Stale from exc  # BEGIN failed: nothing of fn was sent
            raise error from exc

    async def write(self, fn: Callable[[Conn], Awaitable[T]], label: str, pipelined: bool = False) -> T:
        """Run fn in one transaction; psycopg's errors come out as the store's (nothing was written, unless
        the message says the connection dropped during the commit). Under an operator's attempt
        (monitor.db.writekey), a write that already committed returns its first result instead."""
        attempt = ATTEMPT.get()
        result = await (self._run(fn, pipelined) if attempt is None else self._keyed(fn, attempt.next_key(), pipelined))
        if self.on_commit:
            self.on_commit(label)
        return result

    async def _keyed(self, fn: Callable[[Conn], Awaitable[T]], key: str, pipelined: bool = False) -> T:
        """fn made once under `key`; a refusal after an attempt whose COMMIT was lost says it may be saved."""
        try:
            result = await self._run(_once(fn, key), pipelined)
        except CommitUnknown:
            self._uncertain.add(key)
            raise
        except StoreUnreachable as exc:
            if key in self._uncertain:  # the operator is told "not saved" only when that is known
                raise CommitUnknown(f"{exc}; an earlier attempt may have been saved: its commit was lost") from exc
            raise
        self._uncertain.discard(key)
        return result

    async def read(self, fn: Callable[[Conn], Awaitable[T]]) -> T:
        return await self._run(fn)

    # -- ingest ---------------------------------------------------------------------------

    async def ingest(
        self,
        source: str,
        matched: Iterable[tuple[Mention, MatchResult]],
        cursor: str | None,
        edits: Iterable[tuple[Mention, MatchResult | None]] = (),
        deletes: Iterable[str] = (),
        seen_at: int | None = None,
        fence: Fence | None = None,
        spend: Spend | None = None,
    ) -> int:
        rows, changed, gone = list(matched), list(edits), list(deletes)
        seen = seen_at if seen_at is not None else now_ms()

        async def write(c: Conn) -> pg_mentions.Inserted:
            if fence is not None:
                await check_lease(c, fence.lease, fence.holder)
            if spend is not None:
                await pg_spend.add_spend(c, source, spend)
            suggested = await pg_incidents.score_new(c, rows, seen) if rows else {}
            return await pg_mentions.ingest(c, source, rows, cursor, changed, gone, seen, suggested)

        # Pipelined: the INSERT goes out with the COMMIT (the counter's lock is held for that round trip).
        return pg_mentions.inserted(await self.write(write, "ingest", pipelined=True))

    async def spend(self, month: str | None = None) -> list[Spend]:
        return await self.read(lambda c: pg_spend.spend(c, month))

    async def add_spend(self, source: str, spend: Spend) -> None:
        await self.write(lambda c: pg_spend.add_spend(c, source, spend), "spend")

    async def mastodon_uris(self, source: str, local_ids: Iterable[str]) -> list[str]:
        ids = list(local_ids)
        return await self.read(lambda c: pg_mentions.mastodon_uris(c, source, ids)) if ids else []

    async def cursor(self, source: str) -> str | None:
        return await self.read(lambda c: pg_mentions.cursor(c, source))

    async def set_source_state(
        self, source: str, state: str, detail: str = "", until_at: int | None = None, ok: bool = False
    ) -> None:
        async def w(c: Conn) -> None:
            now = now_ms()
            await c.execute(
                "INSERT INTO source_state (source, state, detail, until_at, last_ok_at, updated_at)"
                " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (source) DO UPDATE SET state = excluded.state,"
                " detail = excluded.detail, until_at = excluded.until_at,"
                " last_ok_at = coalesce(excluded.last_ok_at, source_state.last_ok_at),"
                " updated_at = excluded.updated_at",
                (source, state, detail, until_at, now if ok else None, now),
            )

        await self.write(w, "source_state")

    async def source_states(self) -> list[SourceState]:
        async def q(c: Conn) -> list[SourceState]:
            sql = "SELECT source, state, detail, until_at, last_ok_at FROM source_state ORDER BY source"
            return [(str(s), str(state), str(d), until, ok) for s, state, d, until, ok in await every(c, sql)]

        return await self.read(q)

    # -- actions --------------------------------------------------------------------------

    async def act(
        self,
        mention_id: int,
        kind: ActionKind,
        operator: str,
        payload: Mapping[str, object] | None = None,
        *,
        then: pg_actions.Then | None = None,
        expect_status: Status | None = None,
    ) -> int:
        # Pipelined: the rev's reservation (pg_actions.act's last statement) goes out with the COMMIT, so the
        # counter's lock, which every writer waits for, is held for one round trip and never while we are away.
        return await self.write(
            lambda c: pg_actions.act(
                c, mention_id, kind, operator, payload or {}, then=then, expect_status=expect_status
            ),
            f"act:{kind}",
            pipelined=True,
        )

    async def refresh_digests(self) -> int:
        """Rebuild the statistics' dirty per-day digests (monitor.db.pg.statsdays); how many days were dirty."""
        return await self.write(pg_statsdays.refresh, "digests")

    # -- reads ----------------------------------------------------------------------------

    async def max_rev(self) -> int:
        return await self.read(pg_mentions.max_rev)

    async def changes_since(self, rev: int, limit: int = 2000) -> list[MentionRow]:
        return await self.read(lambda c: pg_mentions.changes_since(c, rev, limit))

    async def pane(
        self,
        status: Status,
        limit: int,
        after: MentionRow | None = None,
        keep: Callable[[MentionRow], bool] | None = None,
    ) -> list[MentionRow]:
        return await self.read(lambda c: pg_mentions.pane(c, status, limit, after, keep))

    async def counts(self) -> dict[Status, int]:
        return await self.read(pg_mentions.counts)

    async def mention(self, mention_id: int) -> MentionRow:
        return await self.read(lambda c: pg_mentions.mention(c, mention_id))

    async def actions(self, mention_id: int) -> list[ActionRow]:
        return await self.read(lambda c: pg_actions.actions(c, mention_id))

    async def thread(self, row: MentionRow, limit: int = 20) -> list[MentionRow]:
        return await self.read(lambda c: pg_mentions.thread(c, row, limit))

    # -- the desk's views -----------------------------------------------------------------

    async def detail(self, mention_id: int) -> MentionDetail:
        from monitor.db.pg.outbox import for_mention

        async def q(c: Conn) -> MentionDetail:
            row = await pg_mentions.mention(c, mention_id)
            thread, deliveries = await pg_mentions.thread(c, row), await for_mention(c, mention_id)
            related = await views.related(c, row)
            return MentionDetail(row, await pg_actions.actions(c, mention_id), thread, deliveries, related)

        return await self.read(q)

    async def handover(self, since: int, now: int, target_ms: int, limit: int = 20) -> Handover:
        return await self.read(lambda c: views.handover(c, since, now, target_ms, limit))

    # -- incidents (the SQL is monitor.db.pg.incidents; each write one transaction) ----------------

    async def create_incident(
        self, mention_id: int, operator: str, title: str = "", *, expect_incident: int | None = None
    ) -> int:
        return await self.write(
            lambda c: pg_incidents.create(c, mention_id, operator, title, expect_incident), "incident:create"
        )

    async def create_incident_for(self, source: str, remote_id: str, operator: str, title: str) -> int | None:
        return await self.write(
            lambda c: pg_incidents.create_for_remote(c, source, remote_id, operator, title), "incident:create"
        )

    async def link(self, mention_id: int, incident_id: int, operator: str, *, expect_incident: int | None) -> int:
        return await self.write(
            lambda c: pg_incidents.link(c, mention_id, incident_id, operator, expect_incident), "incident:link"
        )

    async def unlink(self, mention_id: int, operator: str, *, expect_incident: int) -> int:
        return await self.write(
            lambda c: pg_incidents.unlink(c, mention_id, operator, expect_incident), "incident:unlink"
        )

    async def accept_suggestion(self, mention_id: int, operator: str) -> int:
        return await self.write(lambda c: pg_incidents.accept(c, mention_id, operator), "incident:accept")

    async def rank_incidents(self, mention_id: int, limit: int = 20) -> list[Suggestion]:
        return await self.read(lambda c: pg_incidents.rank_incidents(c, mention_id, limit))

    async def incident(self, incident_id: int) -> Incident:
        return await self.read(lambda c: pg_incidents.incident(c, incident_id))

    async def open_incidents(self, limit: int = 500) -> list[IncidentSummary]:
        return await self.read(lambda c: pg_incidents.open_incidents(c, limit))

    async def incident_detail(self, incident_id: int) -> IncidentDetail:
        return await self.read(lambda c: pg_incidents.detail(c, incident_id))

    async def rename_incident(self, incident_id: int, title: str, operator: str, *, expect_rev: int) -> None:
        await self.write(lambda c: pg_incidents.rename(c, incident_id, title, operator, expect_rev), "incident:rename")

    async def incidents_rev(self) -> int:
        return await self.read(pg_incidents.incidents_rev)

    async def note_incident(self, incident_id: int, text: str, operator: str) -> int:
        return await self.write(lambda c: pg_incidents.note_incident(c, incident_id, text, operator), "incident:note")

    async def set_incident_status(
        self, incident_id: int, status: IncidentStatus, operator: str, *, service: str | None = None
    ) -> None:
        await self.write(lambda c: pg_incidents.set_status(c, incident_id, status, service), "incident:status")

    async def pane_entries(self, status: Status, limit: int, after: MentionRow | None = None) -> list[PaneEntry]:
        return await self.read(lambda c: pg_incidents.pane_entries(c, status, limit, after))

    async def incident_reports(self, incident_id: int, status: Status | None = None) -> list[MentionRow]:
        return await self.read(lambda c: pg_incidents.reports(c, incident_id, status))

    async def act_on_incident(
        self, incident_id: int, operator: str, plan: IncidentPlan, label: str, *, expect_rev: int | None = None
    ) -> list[int]:
        return await self.write(
            lambda c: pg_incidents.act_on_incident(c, incident_id, operator, plan, expect_rev), f"incident:{label}"
        )


class _Stale(Exception):
    """A connection found dead at BEGIN: nothing was sent on it, so the call may be made again at once."""


def _once(fn: Callable[[Conn], Awaitable[T]], key: str) -> Callable[[Conn], Awaitable[T]]:
    """fn, unless a transaction with this key committed: then what it returned (JSON: ints, lists, None)."""

    async def run(c: Conn) -> T:
        done = await one(c, "SELECT result FROM write_keys WHERE key = %s", (key,))
        if done is not None:
            return done[0]  # type: ignore[no-any-return]
        result = await fn(c)
        await c.execute("INSERT INTO write_keys (key, result, at) VALUES (%s, %s, %s)", (key, Jsonb(result), now_ms()))
        return result

    return run


if TYPE_CHECKING:  # mypy checks here that the PostgreSQL store implements the whole interface
    _IMPLEMENTS: type[Database] = PgStore
