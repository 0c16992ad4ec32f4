"""The SQLite store: every write is one short transaction, every value a bound parameter.

`Store` implements `monitor.db.api.Database`. Its `read` and `write` run a function on the connection's
thread, in one hop (a write in one BEGIN IMMEDIATE transaction): the modules of `monitor.db` run their SQL
through them, and nothing outside `monitor.db` does.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, cast

import aiosqlite

from monitor.core.incidents import Incident, IncidentDetail, IncidentStatus, IncidentSummary, Suggestion
from monitor.core.models import (
    OPEN_STATUSES,
    TERM_SEP,
    ActionKind,
    ActionRow,
    MatchResult,
    Mention,
    MentionRow,
    Spend,
    Status,
)
from monitor.core.timeutil import now_ms
from monitor.db import incidents as inc
from monitor.db.actions import Then, act_sync, actions_sync
from monitor.db.api import Conflict, Database, Fence, Handover, MentionDetail, NotFound, PaneEntry, SourceState
from monitor.db.connect import BUSY_TIMEOUT_MS, _statements, configure, migrate, open_readonly, open_sync, prepare
from monitor.db.export import rows as export_rows
from monitor.db.faults import (
    StoreBroken,
    StoreError,
    StoreFull,
    StoreGone,
    StoreLocked,
    StoreReadOnly,
    StoreUnavailable,
    classify,
    file_id,
    first_cause,
    rollback,
    share_mode,
)
from monitor.db.handover import summary_sync
from monitor.db.leases import check_lease_sync
from monitor.db.mentions import (
    MENTION_COLUMNS,
    changes_since_sync,
    counts_sync,
    cursor_sync,
    ingest_sync,
    mastodon_uris_sync,
    max_rev_sync,
    mention_sync,
    pane_sync,
    row_to_mention,
    thread_sync,
)
from monitor.db.related import related_sync
from monitor.db.spend import add_spend_sync, spend_sync
from monitor.db.statsdays import refresh_sync
from monitor.db.suggest import score_new_sync

# Names the rest of the program imports from here (the store's errors, the SQL helpers of monitor.db).
__all__ = [
    "BUSY_TIMEOUT_MS", "MENTION_COLUMNS", "OPEN_STATUSES", "TERM_SEP", "Conflict", "NotFound", "Store",
    "StoreBroken", "StoreError", "StoreFull", "StoreGone", "StoreLocked", "StoreReadOnly", "StoreUnavailable",
    "_statements", "act_sync", "actions_sync", "classify", "configure", "first_cause", "ingest_sync", "migrate",
    "mention_sync", "open_readonly", "open_sync", "row_to_mention", "thread_sync",
]  # fmt: skip

T = TypeVar("T")


async def _on_thread(db: aiosqlite.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    """Run fn with the connection on aiosqlite's thread, in one hop.

    aiosqlite's public API is one hop per statement; only its private `_execute` runs a function there,
    so this is the one place that uses it.
    """
    execute = cast(Callable[[Callable[[sqlite3.Connection], T], sqlite3.Connection], Awaitable[T]], db._execute)
    return await execute(fn, db._conn)


class Store:
    """Async access for the app and the collector. One connection, serialised by aiosqlite's thread."""

    notifies = False  # another process's commit is found by polling the rev

    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        self._db = db
        self.path = path
        self.on_commit: Callable[[str], None] | None = None  # benchmarks time commits
        # The file this connection opened: a path that now names another file (or none) is not ours.
        self._file_id = file_id(path) if str(path) != ":memory:" else None
        self.gone: StoreGone | None = None

    @classmethod
    async def open(cls, path: str | Path) -> Store:
        """Open (creating if needed) and migrate; any failure is a StoreError, with nothing left running."""
        path = Path(path)
        created = prepare(path)
        try:
            db = await aiosqlite.connect(str(path), isolation_level=None)
        except sqlite3.Error as exc:
            raise classify(exc, path) from exc
        try:
            await _on_thread(db, configure)
            await _on_thread(db, migrate)
            if created:
                share_mode(path)
            return cls(db, path)
        except BaseException as exc:
            # aiosqlite's thread is not a daemon: left open, it would keep the process alive after the error.
            await db.close()
            if isinstance(exc, sqlite3.Error):
                raise classify(exc, path) from exc
            raise

    async def close(self) -> None:
        await self._db.close()

    def check_file(self) -> None:
        """Raise StoreGone if the path no longer names the file this store opened (deleted or replaced).

        Once gone, always gone: this connection must not write again.
        """
        if self.gone is None and self._file_id is not None:
            now = file_id(self.path)
            if now is None:
                self.gone = StoreGone(f"{self.path} was deleted while open: nothing more is written to it")
            elif now != self._file_id:
                self.gone = StoreGone(f"{self.path} was replaced by another file: nothing more is written to it")
        if self.gone is not None:
            raise self.gone

    async def write(self, fn: Callable[[sqlite3.Connection], T], label: str) -> T:
        """Run fn inside BEGIN IMMEDIATE on the connection's thread: one hop, one transaction.

        For the modules of monitor.db only. SQLite's failures come out classified (StoreLocked,
        StoreFull, ...): nothing was written. `label` names the write for `on_commit`.
        """

        def run(conn: sqlite3.Connection) -> T:
            self.check_file()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = fn(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    rollback(conn)
                    raise
            except sqlite3.Error as exc:
                raise classify(exc, self.path) from exc
            if self.on_commit:  # called on the database thread, at the moment the commit is durable
                self.on_commit(label)
            return result

        return await _on_thread(self._db, run)

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run fn on the connection's thread, outside any transaction. For the modules of monitor.db only."""

        def run(conn: sqlite3.Connection) -> T:
            try:
                return fn(conn)
            except sqlite3.Error as exc:
                raise classify(exc, self.path) from exc

        return await _on_thread(self._db, run)

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
        """Store a poll's mentions and advance the source's cursor (and add what the poll cost) in the same transaction.

        Returns how many mentions were new. A mention seen again (same source and remote id) is ignored.
        A `fence` refuses the write with LeaseLost unless its holder still holds its lease.
        """
        rows, changed, gone = list(matched), list(edits), list(deletes)
        seen = seen_at if seen_at is not None else now_ms()
        # Scored before the write: no other writer waits for the file's lock while a poll is scored.
        suggested = await self.read(lambda c: score_new_sync(c, rows, seen)) if rows else {}

        def write(c: sqlite3.Connection) -> int:
            if fence is not None:
                check_lease_sync(c, fence.lease, fence.holder, now_ms())
            if spend is not None:
                add_spend_sync(c, source, spend)
            return ingest_sync(c, source, rows, cursor, changed, gone, seen, suggested)

        return await self.write(write, "ingest")

    async def spend(self, month: str | None = None) -> list[Spend]:
        """What each paid source cost in `month` ('YYYY-MM', UTC), or in every month."""
        return await self.read(lambda c: spend_sync(c, month))

    async def add_spend(self, source: str, spend: Spend) -> None:
        """A cost paid outside a poll (a reply posted)."""
        await self.write(lambda c: add_spend_sync(c, source, spend), "spend")

    async def mastodon_uris(self, source: str, local_ids: Iterable[str]) -> list[str]:
        """The remote ids (uris) of stored Mastodon statuses known by their server-local ids."""
        ids = list(local_ids)
        return await self.read(lambda c: mastodon_uris_sync(c, source, ids)) if ids else []

    async def cursor(self, source: str) -> str | None:
        return await self.read(lambda c: cursor_sync(c, source))

    async def set_source_state(
        self, source: str, state: str, detail: str = "", until_at: int | None = None, ok: bool = False
    ) -> None:
        def w(c: sqlite3.Connection) -> None:
            now = now_ms()
            c.execute(
                "INSERT INTO source_state (source, state, detail, until_at, last_ok_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (source) DO UPDATE SET state = excluded.state,"
                " detail = excluded.detail, until_at = excluded.until_at,"
                " last_ok_at = coalesce(excluded.last_ok_at, source_state.last_ok_at),"
                " updated_at = excluded.updated_at",
                (source, state, detail, until_at, now if ok else None, now),
            )

        await self.write(w, "source_state")

    async def source_states(self) -> list[SourceState]:
        def q(c: sqlite3.Connection) -> list[SourceState]:
            sql = "SELECT source, state, detail, until_at, last_ok_at FROM source_state ORDER BY source"
            return [(str(s), str(state), str(d), until, ok) for s, state, d, until, ok in c.execute(sql)]

        return await self.read(q)

    # -- actions --------------------------------------------------------------------------

    async def act(
        self,
        mention_id: int,
        kind: ActionKind,
        operator: str,
        payload: Mapping[str, object] | None = None,
        *,
        then: Then | None = None,
        expect_status: Status | None = None,
    ) -> int:
        """Append an action and apply its status change in one transaction; returns the action id.

        `then(conn, action_id)` runs inside the same transaction (the outbox writes its items there).
        """
        return await self.write(
            lambda c: act_sync(c, mention_id, kind, operator, payload or {}, then=then, expect_status=expect_status),
            f"act:{kind}",
        )

    async def refresh_digests(self) -> int:
        """Rebuild the statistics' per-day digests that writes made dirty; how many days were."""
        return await self.write(refresh_sync, "digests")

    # -- reads ----------------------------------------------------------------------------

    async def max_rev(self) -> int:
        return await self.read(max_rev_sync)

    async def wait_change(self, after: int, within: float) -> int:
        """SQLite cannot notify another process of a commit: past `after` already, or after `within`."""
        rev = await self.max_rev()
        if rev > after:
            return rev
        await asyncio.sleep(within)
        return await self.max_rev()

    async def export_mentions(self, ids: Sequence[int]) -> list[tuple[object, ...]]:
        return await self.read(lambda c: list(export_rows(c, "mentions", ids=ids)))

    async def changes_since(self, rev: int, limit: int = 2000) -> list[MentionRow]:
        return await self.read(lambda c: changes_since_sync(c, rev, limit))

    async def pane(
        self,
        status: Status,
        limit: int,
        after: MentionRow | None = None,
        keep: Callable[[MentionRow], bool] | None = None,
    ) -> list[MentionRow]:
        return await self.read(lambda c: pane_sync(c, status, limit, after, keep))

    async def counts(self) -> dict[Status, int]:
        return await self.read(counts_sync)

    async def mention(self, mention_id: int) -> MentionRow:
        return await self.read(lambda c: mention_sync(c, mention_id))

    async def actions(self, mention_id: int) -> list[ActionRow]:
        return await self.read(lambda c: actions_sync(c, mention_id))

    async def thread(self, row: MentionRow, limit: int = 20) -> list[MentionRow]:
        return await self.read(lambda c: thread_sync(c, row, limit))

    # -- the desk's views (one hop each) --------------------------------------------------

    async def detail(self, mention_id: int) -> MentionDetail:
        from monitor.db.outbox import for_mention_sync  # not at the top: the outbox imports this module

        def q(c: sqlite3.Connection) -> MentionDetail:
            row = mention_sync(c, mention_id)
            thread, deliveries, related = thread_sync(c, row), for_mention_sync(c, mention_id), related_sync(c, row)
            return MentionDetail(row, actions_sync(c, mention_id), thread, deliveries, related)

        return await self.read(q)

    async def handover(self, since: int, now: int, target_ms: int, limit: int = 20) -> Handover:
        return await self.read(lambda c: summary_sync(c, since, now, target_ms, limit))

    # -- incidents (the SQL is monitor.db.incidents; each call one hop, each write one transaction) ----

    async def create_incident(
        self, mention_id: int, operator: str, title: str = "", *, expect_incident: int | None = None
    ) -> int:
        return await self.write(
            lambda c: inc.create_sync(c, mention_id, operator, title, expect_incident), "incident:create"
        )

    async def create_incident_for(self, source: str, remote_id: str, operator: str, title: str) -> int | None:
        return await self.write(
            lambda c: inc.create_for_remote_sync(c, source, remote_id, operator, title), "incident:create"
        )

    async def link(self, mention_id: int, incident_id: int, operator: str, *, expect_incident: int | None) -> int:
        return await self.write(
            lambda c: inc.link_sync(c, mention_id, incident_id, operator, expect_incident), "incident:link"
        )

    async def unlink(self, mention_id: int, operator: str, *, expect_incident: int) -> int:
        return await self.write(lambda c: inc.unlink_sync(c, mention_id, operator, expect_incident), "incident:unlink")

    async def accept_suggestion(self, mention_id: int, operator: str) -> int:
        return await self.write(lambda c: inc.accept_sync(c, mention_id, operator), "incident:accept")

    async def rank_incidents(self, mention_id: int, limit: int = 20) -> list[Suggestion]:
        return await self.read(lambda c: inc.rank_sync(c, mention_id, limit))

    async def incident(self, incident_id: int) -> Incident:
        return await self.read(lambda c: inc.incident_sync(c, incident_id))

    async def open_incidents(self, limit: int = 500) -> list[IncidentSummary]:
        return await self.read(lambda c: inc.open_sync(c, limit))

    async def incident_detail(self, incident_id: int) -> IncidentDetail:
        return await self.read(lambda c: inc.detail_sync(c, incident_id))

    async def rename_incident(self, incident_id: int, title: str, operator: str, *, expect_rev: int) -> None:
        await self.write(lambda c: inc.rename_sync(c, incident_id, title, operator, expect_rev), "incident:rename")

    async def incidents_rev(self) -> int:
        return await self.read(inc.incidents_rev_sync)

    async def note_incident(self, incident_id: int, text: str, operator: str) -> int:
        return await self.write(lambda c: inc.note_incident_sync(c, incident_id, text, operator), "incident:note")

    async def set_incident_status(
        self, incident_id: int, status: IncidentStatus, operator: str, *, service: str | None = None
    ) -> None:
        await self.write(lambda c: inc.set_status_sync(c, incident_id, status, service), "incident:status")

    async def pane_entries(self, status: Status, limit: int, after: MentionRow | None = None) -> list[PaneEntry]:
        return await self.read(lambda c: inc.pane_entries_sync(c, status, limit, after))

    async def incident_reports(self, incident_id: int, status: Status | None = None) -> list[MentionRow]:
        return await self.read(lambda c: inc.reports_sync(c, incident_id, status))

    async def act_on_incident(
        self, incident_id: int, operator: str, plan: inc.IncidentPlan, label: str, *, expect_rev: int | None = None
    ) -> list[int]:
        """Every report's action and the outbox items `plan` says, in one transaction (engine.incidents)."""
        return await self.write(
            lambda c: inc.act_on_incident_sync(c, incident_id, operator, plan, expect_rev), f"incident:{label}"
        )


if TYPE_CHECKING:  # mypy checks here that the SQLite store implements the whole interface
    _IMPLEMENTS: type[Database] = Store
