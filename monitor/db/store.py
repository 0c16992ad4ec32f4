"""The SQLite store: every write is one short transaction, every value a bound parameter."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from monitor.core.models import (
    RESPONSE_KINDS,
    STATUS_AFTER,
    ActionKind,
    ActionRow,
    MatchResult,
    Mention,
    MentionRow,
    Priority,
    Status,
)
from monitor.core.timeutil import now_ms, to_ms
from monitor.db import clocks
from monitor.db.faults import (  # noqa: F401 - the store's errors are imported from here too
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
from monitor.db.migrations import MIGRATIONS

TERM_SEP = "\x1f"
MENTION_COLUMNS = (
    "id, source, network, remote_id, author, author_name, text, url, lang, thread_id, reply_to, terms,"
    " priority, status, published_at, first_seen_at, status_at, first_response_at, edited_at,"
    " deleted_at, rev, to_us"
)
BUSY_TIMEOUT_MS = 10_000


class NotFound(StoreError):
    pass


class Conflict(StoreError):
    """The mention changed under the operator (another operator acted first)."""


def configure(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys=ON")


def migrate(conn: sqlite3.Connection) -> int:
    """Bring a file up to the newest schema, one numbered step per transaction."""
    conn.isolation_level = None
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        raise StoreError(
            f"the database schema is version {version}, newer than this program knows "
            f"({len(MIGRATIONS)}): upgrade monitor"
        )
    for number in range(version + 1, len(MIGRATIONS) + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have migrated while we waited for the lock.
            if conn.execute("PRAGMA user_version").fetchone()[0] >= number:
                conn.execute("COMMIT")
                continue
            for statement in _statements(MIGRATIONS[number - 1]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version={number}")
            conn.execute("COMMIT")
        except BaseException:
            rollback(conn)
            raise
    return len(MIGRATIONS)


def _statements(script: str) -> list[str]:
    out, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out


def open_sync(path: str | Path, readonly: bool = False) -> sqlite3.Connection:
    """A plain sqlite3 connection (CLI reports, benchmarks), configured and migrated.

    Any SQLite failure becomes a classified StoreError naming the file.
    """
    created = not readonly and _prepare(Path(path))
    try:
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise classify(exc, path) from exc
    try:
        configure(conn)
        if not readonly:
            migrate(conn)
    except sqlite3.Error as exc:
        conn.close()
        raise classify(exc, path) from exc
    except BaseException:
        conn.close()
        raise
    if created:
        share_mode(Path(path))
    return conn


def open_readonly(path: str | Path) -> sqlite3.Connection:
    """A connection that cannot write (reports, exports, check): never creates, migrates or alters the file.

    A missing file, or one at another schema version, is refused with the reason.
    """
    uri = Path(path).absolute().as_uri() + "?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise classify(exc, path) from exc
    try:
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.Error as exc:
        conn.close()
        raise classify(exc, path) from exc
    if version != len(MIGRATIONS):
        conn.close()
        if version == 0:
            raise StoreError(f"{path}: not a monitor database (no schema)")
        if version > len(MIGRATIONS):
            raise StoreError(
                f"{path}: the database schema is version {version}, newer than this program knows "
                f"({len(MIGRATIONS)}): upgrade monitor"
            )
        raise StoreError(
            f"{path}: the database schema is version {version}, older than this program's ({len(MIGRATIONS)}); "
            "read-only commands do not upgrade it: run the app or `monitor collect --once` once"
        )
    return conn


def _prepare(path: Path) -> bool:
    """Make the database's folder if needed; True when there is no database there yet (we create it)."""
    if str(path) == ":memory:":
        return False
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreReadOnly(f"{path}: cannot create the database's folder ({exc.strerror})") from exc
    return file_id(path) is None


def row_to_mention(r: Sequence[Any]) -> MentionRow:
    return MentionRow(
        id=r[0], source=r[1], network=r[2], remote_id=r[3], author=r[4], author_name=r[5], text=r[6],
        url=r[7], lang=r[8], thread_id=r[9], reply_to=r[10],
        terms=tuple(r[11].split(TERM_SEP)) if r[11] else (),
        priority=Priority(r[12]), status=Status(r[13]), published_at=r[14], first_seen_at=r[15],
        status_at=r[16], first_response_at=r[17], edited_at=r[18], deleted_at=r[19], rev=r[20],
        to_us=bool(r[21]),
    )  # fmt: skip


class Store:
    """Async access for the app and the collector. One connection, serialised by aiosqlite's thread."""

    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        self.on_commit: Callable[[str], None] | None = None  # benchmarks time commits
        # The file this connection opened: a path that now names another file (or none) is not ours.
        self.file_id = file_id(path) if str(path) != ":memory:" else None
        self.gone: StoreGone | None = None

    @classmethod
    async def open(cls, path: str | Path) -> Store:
        """Open (creating if needed) and migrate; any failure is a StoreError, with nothing left running."""
        path = Path(path)
        created = _prepare(path)
        try:
            conn = await aiosqlite.connect(str(path), isolation_level=None)
        except sqlite3.Error as exc:
            raise classify(exc, path) from exc
        try:
            await conn._execute(configure, conn._conn)
            await conn._execute(migrate, conn._conn)
            if created:
                share_mode(path)
            return cls(conn, path)
        except BaseException as exc:
            # aiosqlite's thread is not a daemon: left open, it would keep the process alive after the error.
            await conn.close()
            if isinstance(exc, sqlite3.Error):
                raise classify(exc, path) from exc
            raise

    async def close(self) -> None:
        await self.conn.close()

    def check_file(self) -> None:
        """Raise StoreGone if the path no longer names the file this store opened (deleted or replaced).

        Once gone, always gone: this connection must not write again.
        """
        if self.gone is None and self.file_id is not None:
            now = file_id(self.path)
            if now is None:
                self.gone = StoreGone(f"{self.path} was deleted while open: nothing more is written to it")
            elif now != self.file_id:
                self.gone = StoreGone(f"{self.path} was replaced by another file: nothing more is written to it")
        if self.gone is not None:
            raise self.gone

    async def _write(self, fn: Callable[[sqlite3.Connection], Any], label: str) -> Any:
        """Run fn inside BEGIN IMMEDIATE on the connection's thread: one hop, one transaction.

        SQLite's failures come out classified (StoreLocked, StoreFull, ...): nothing was written.
        """

        def run(conn: sqlite3.Connection) -> Any:
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

        return await self.conn._execute(run, self.conn._conn)

    async def _read(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        def run(conn: sqlite3.Connection) -> Any:
            try:
                return fn(conn)
            except sqlite3.Error as exc:
                raise classify(exc, self.path) from exc

        return await self.conn._execute(run, self.conn._conn)

    # -- ingest ---------------------------------------------------------------------------

    async def ingest(
        self,
        source: str,
        matched: Iterable[tuple[Mention, MatchResult]],
        cursor: str | None,
        edits: Iterable[tuple[Mention, MatchResult | None]] = (),
        deletes: Iterable[str] = (),
        seen_at: int | None = None,
        fence: Callable[[sqlite3.Connection], None] | None = None,
    ) -> int:
        """Store a poll's mentions and advance the source's cursor in the same transaction.

        Returns how many mentions were new. A mention seen again (same source and remote id) is ignored.
        `fence` runs first inside the transaction and may refuse it (a collector that lost its lease).
        """
        matched = list(matched)
        edits = list(edits)
        deletes = list(deletes)
        seen = seen_at if seen_at is not None else now_ms()

        def write(c: sqlite3.Connection) -> int:
            if fence is not None:
                fence(c)
            return ingest_sync(c, source, matched, cursor, edits, deletes, seen)

        return await self._write(write, "ingest")

    async def mastodon_uris(self, source: str, local_ids: Iterable[str]) -> list[str]:
        """The remote ids (uris) of stored Mastodon statuses known by their server-local ids."""
        ids = list(local_ids)

        def q(c: sqlite3.Connection) -> list[str]:
            found = []
            for local_id in ids:
                row = c.execute(
                    "SELECT remote_id FROM mentions WHERE source = ? AND network = 'mastodon'"
                    " AND coalesce(json_extract(raw, '$.reblog.id'), json_extract(raw, '$.id')) = ?",
                    (source, local_id),
                ).fetchone()
                if row is not None:
                    found.append(row[0])
            return found

        return await self._read(q) if ids else []

    async def cursor(self, source: str) -> str | None:
        def q(c: sqlite3.Connection) -> str | None:
            row = c.execute("SELECT cursor FROM cursors WHERE source = ?", (source,)).fetchone()
            return row[0] if row else None

        return await self._read(q)

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

        await self._write(w, "source_state")

    async def source_states(self) -> list[tuple[str, str, str, int | None, int | None]]:
        return await self._read(
            lambda c: c.execute(
                "SELECT source, state, detail, until_at, last_ok_at FROM source_state ORDER BY source"
            ).fetchall()
        )

    # -- actions --------------------------------------------------------------------------

    async def act(
        self,
        mention_id: int,
        kind: ActionKind,
        operator: str,
        payload: dict[str, Any] | None = None,
        then: Callable[[sqlite3.Connection, int], Any] | None = None,
        expect_status: Status | None = None,
    ) -> int:
        """Append an action and apply its status change in one transaction; returns the action id.

        `then(conn, action_id)` runs inside the same transaction (the outbox writes its items there).
        """
        return await self._write(
            lambda c: act_sync(
                c,
                mention_id,
                kind,
                operator,
                payload or {},
                then=then,
                expect_status=expect_status,
            ),
            f"act:{kind}",
        )

    # -- reads ----------------------------------------------------------------------------

    async def max_rev(self) -> int:
        return await self._read(lambda c: c.execute("SELECT coalesce(max(rev), 0) FROM mentions").fetchone()[0])

    async def changes_since(self, rev: int, limit: int = 2000) -> list[MentionRow]:
        return await self._read(
            lambda c: [
                row_to_mention(r)
                for r in c.execute(
                    f"SELECT {MENTION_COLUMNS} FROM mentions WHERE rev > ? ORDER BY rev LIMIT ?", (rev, limit)
                )
            ]
        )

    async def pane(
        self,
        status: Status,
        limit: int,
        after: MentionRow | None = None,
        keep: Callable[[MentionRow], bool] | None = None,
    ) -> list[MentionRow]:
        return await self._read(lambda c: pane_sync(c, status, limit, after, keep))

    async def counts(self) -> dict[Status, int]:
        def q(c: sqlite3.Connection) -> dict[Status, int]:
            rows = c.execute("SELECT status, count(*) FROM mentions GROUP BY status").fetchall()
            counts = dict.fromkeys(Status, 0)
            counts.update({Status(s): n for s, n in rows})
            return counts

        return await self._read(q)

    async def mention(self, mention_id: int) -> MentionRow:
        return await self._read(lambda c: mention_sync(c, mention_id))

    async def actions(self, mention_id: int) -> list[ActionRow]:
        return await self._read(lambda c: actions_sync(c, mention_id))

    async def thread(self, row: MentionRow, limit: int = 20) -> list[MentionRow]:
        return await self._read(lambda c: thread_sync(c, row, limit))


def thread_sync(c: sqlite3.Connection, row: MentionRow, limit: int = 20) -> list[MentionRow]:
    """Other stored mentions of the same conversation (same root), oldest first.

    Two indexed lookups joined by UNION: an OR across the two columns would scan the table.
    """
    root = row.thread_id or row.remote_id
    return [
        row_to_mention(r)
        for r in c.execute(
            f"SELECT {MENTION_COLUMNS} FROM mentions WHERE source = ? AND thread_id = ? AND id != ?"
            f" UNION SELECT {MENTION_COLUMNS} FROM mentions WHERE source = ? AND remote_id = ? AND id != ?"
            " ORDER BY 1 LIMIT ?",
            (row.source, root, row.id, row.source, root, row.id, limit),
        )
    ]


def mention_sync(c: sqlite3.Connection, mention_id: int) -> MentionRow:
    r = c.execute(f"SELECT {MENTION_COLUMNS} FROM mentions WHERE id = ?", (mention_id,)).fetchone()
    if r is None:
        raise NotFound(f"no mention {mention_id}")
    return row_to_mention(r)


def ingest_sync(
    c: sqlite3.Connection,
    source: str,
    matched: list[tuple[Mention, MatchResult]],
    cursor: str | None,
    edits: list[tuple[Mention, MatchResult | None]],
    deletes: list[str],
    seen: int,
) -> int:
    rev = c.execute("SELECT coalesce(max(rev), 0) FROM mentions").fetchone()[0]
    before = c.total_changes
    c.executemany(
        "INSERT INTO mentions (source, remote_id, network, author, author_name, text, url, lang,"
        " thread_id, reply_to, terms, priority, status, published_at, first_seen_at, status_at, rev, raw, to_us)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'new', ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (source, remote_id) DO NOTHING",
        [
            (
                source,
                m.remote_id,
                m.network,
                m.author,
                m.author_name,
                m.text,
                m.url,
                m.lang,
                m.thread_id,
                m.reply_to,
                TERM_SEP.join(r.terms),
                int(r.priority),
                to_ms(m.published_at),
                seen,
                seen,
                rev + i + 1,
                json.dumps(m.raw, ensure_ascii=False) if m.raw is not None else None,
                int(m.to_us),
            )  # fmt: skip
            for i, (m, r) in enumerate(matched)
        ],
    )
    inserted = c.total_changes - before
    rev += len(matched)
    for m, r in edits:
        rev += 1
        if r is None:
            c.execute(
                "UPDATE mentions SET text = ?, edited_at = ?, rev = ? WHERE source = ? AND remote_id = ?",
                (m.text, seen, rev, source, m.remote_id),
            )
        else:
            c.execute(
                "UPDATE mentions SET text = ?, edited_at = ?, terms = ?, priority = min(priority, ?), rev = ?"
                " WHERE source = ? AND remote_id = ?",
                (m.text, seen, TERM_SEP.join(r.terms), int(r.priority), rev, source, m.remote_id),
            )
    for remote_id in deletes:
        rev += 1
        c.execute(
            "UPDATE mentions SET deleted_at = ?, rev = ? WHERE source = ? AND remote_id = ? AND deleted_at IS NULL",
            (seen, rev, source, remote_id),
        )
    if cursor is not None:
        c.execute(
            "INSERT INTO cursors (source, cursor, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT (source) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
            (source, cursor, seen),
        )
    return inserted


def act_sync(
    c: sqlite3.Connection,
    mention_id: int,
    kind: ActionKind,
    operator: str,
    payload: dict[str, Any],
    at: int | None = None,
    then: Callable[[sqlite3.Connection, int], Any] | None = None,
    expect_status: Status | None = None,
) -> int:
    row = c.execute("SELECT status, first_response_at FROM mentions WHERE id = ?", (mention_id,)).fetchone()
    if row is None:
        raise NotFound(f"no mention {mention_id}")
    status_before, first_response_at = Status(row[0]), row[1]
    if expect_status is not None and status_before is not expect_status:
        # Another operator acted first: the action was meant for what this operator saw.
        raise Conflict(f"someone else already moved it to {status_before.value}: nothing done")
    at = at if at is not None else now_ms()
    if kind is ActionKind.REOPEN:
        undone = _last_undoable(c, mention_id)
        if undone is None:
            raise StoreError("nothing to reopen or undo")
        after = undone[1]
        payload = {**payload, "undid": undone[0], "from": status_before.value}
        since = _entered_at(c, mention_id, after, undone[0])  # the age clock resumes, it does not restart
    else:
        after = STATUS_AFTER[kind] or status_before
        since = at
    cur = c.execute(
        "INSERT INTO actions (mention_id, kind, operator, at, status_before, status_after, payload)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (mention_id, kind.value, operator, at, status_before.value, after.value,
         json.dumps(payload, ensure_ascii=False)),
    )  # fmt: skip
    rev = c.execute("SELECT coalesce(max(rev), 0) + 1 FROM mentions").fetchone()[0]
    first = kind in RESPONSE_KINDS and first_response_at is None
    c.execute(
        "UPDATE mentions SET status = ?, status_at = CASE WHEN status != ? THEN ? ELSE status_at END, rev = ?,"
        " first_response_at = CASE WHEN ? THEN ? ELSE first_response_at END,"
        " first_response_by = CASE WHEN ? THEN ? ELSE first_response_by END WHERE id = ?",
        (after.value, after.value, since, rev, first, at, first, operator, mention_id),
    )
    clocks.refresh(c, mention_id)  # the per-mention clocks the statistics read (monitor.db.clocks)
    action_id = int(cur.lastrowid or 0)
    if then is not None:
        then(c, action_id)
    return action_id


def _last_undoable(c: sqlite3.Connection, mention_id: int) -> tuple[int, Status] | None:
    """The latest status change not yet undone, and the status it came from."""
    undone: set[int] = set()
    for action_id, kind, before, payload in c.execute(
        "SELECT id, kind, status_before, payload FROM actions WHERE mention_id = ?"
        " AND status_before != status_after ORDER BY id DESC",
        (mention_id,),
    ):
        if kind == ActionKind.REOPEN:
            undone.add(json.loads(payload).get("undid"))
        elif action_id not in undone:
            return action_id, Status(before)
    return None


def _entered_at(c: sqlite3.Connection, mention_id: int, status: Status, before_action: int) -> int:
    """When the mention last entered `status` by an action (not a reopen) before `before_action`."""
    row = c.execute(
        "SELECT max(at) FROM actions WHERE mention_id = ? AND id < ? AND status_after = ?"
        " AND status_before != status_after AND kind != 'reopen'",
        (mention_id, before_action, status.value),
    ).fetchone()
    if row[0] is not None:
        return int(row[0])
    return int(c.execute("SELECT first_seen_at FROM mentions WHERE id = ?", (mention_id,)).fetchone()[0])


def actions_sync(c: sqlite3.Connection, mention_id: int) -> list[ActionRow]:
    return [
        ActionRow(r[0], r[1], ActionKind(r[2]), r[3], r[4], json.loads(r[5]))
        for r in c.execute(
            "SELECT id, mention_id, kind, operator, at, payload FROM actions WHERE mention_id = ? ORDER BY id",
            (mention_id,),
        )
    ]


OPEN_STATUSES = (Status.NEW, Status.ESCALATED)


def pane_sync(
    c: sqlite3.Connection,
    status: Status,
    limit: int,
    after: MentionRow | None = None,
    keep: Callable[[MentionRow], bool] | None = None,
) -> list[MentionRow]:
    """One page of a pane, in the pane's order, starting after `after` (keyset paging).

    Open panes: most urgent first, then the longest waiting. Closed panes: the latest closed first.
    """
    if status in OPEN_STATUSES:
        order, cmp = "priority, first_seen_at, id", ">"
        key: tuple[Any, ...] = (int(after.priority), after.first_seen_at, after.id) if after else ()
        cols = "(priority, first_seen_at, id)"
    else:
        order, cmp = "status_at DESC, id DESC", "<"
        key = (after.status_at, after.id) if after else ()
        cols = "(status_at, id)"
    where = f" AND {cols} {cmp} ({', '.join('?' * len(key))})" if key else ""
    if keep is None:
        sql = f"SELECT {MENTION_COLUMNS} FROM mentions WHERE status = ?{where} ORDER BY {order} LIMIT ?"
        return [row_to_mention(r) for r in c.execute(sql, (status.value, *key, limit))]
    # A filter folds accents in Python, so scan in pane order and stop once the page is full.
    sql = f"SELECT {MENTION_COLUMNS} FROM mentions WHERE status = ?{where} ORDER BY {order}"
    out: list[MentionRow] = []
    for r in c.execute(sql, (status.value, *key)):
        row = row_to_mention(r)
        if keep(row):
            out.append(row)
            if len(out) >= limit:
                break
    return out
