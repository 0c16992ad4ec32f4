"""Mentions in PostgreSQL: a poll's ingest with its cursor, the change sequence, and the reads of the panes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from psycopg import AsyncConnection, AsyncCursor

from monitor.core.models import TERM_SEP, MatchResult, Mention, MentionRow, Status
from monitor.db.api import NotFound
from monitor.db.pg.schema import MASTODON_LOCAL_ID
from monitor.db.rows import INSERT_COLUMNS, MENTION_COLUMNS, new_mention_rows, pane_order, row_to_mention

Conn = AsyncConnection[tuple[Any, ...]]
Inserted = AsyncCursor[tuple[Any, ...]] | None  # ingest's INSERT, None when a poll brought no new mention
CHANNEL = "monitor_rev"  # every commit that raises the rev notifies it (delivered when the transaction commits)


async def one(c: Conn, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> tuple[Any, ...] | None:
    cur = await c.execute(sql, params)
    return await cur.fetchone()


async def every(c: Conn, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> list[tuple[Any, ...]]:
    cur = await c.execute(sql, params)
    return await cur.fetchall()


async def next_rev(c: Conn, n: int = 1) -> int:
    """Reserve `n` revs, returning the last. The counter's row stays locked until this transaction ends, so
    writers commit in rev order: a reader that saw rev r has seen every rev below it. Listeners hear of it
    when the transaction commits (PostgreSQL holds a notification until then, and drops it on a rollback)."""
    row = await one(
        c,
        "WITH r AS (UPDATE rev_counter SET rev = rev + %s RETURNING rev)"
        f" SELECT rev, pg_notify('{CHANNEL}', rev::text) FROM r",
        (n,),
    )
    assert row is not None, "migration 1 writes the counter's row"
    return int(row[0])


async def touch(c: Conn, mention_id: int) -> None:
    """Bump a mention's rev so that every open screen redraws it: the rev reserved (next_rev) and stored in one
    statement, so that a write that touches last holds the counter's lock for this statement and its commit only."""
    await c.execute(
        "WITH r AS (UPDATE rev_counter SET rev = rev + 1 RETURNING rev)"
        f" UPDATE mentions SET rev = r.rev FROM r WHERE id = %s RETURNING pg_notify('{CHANNEL}', r.rev::text)",
        (mention_id,),
    )


async def max_rev(c: Conn) -> int:
    row = await one(c, "SELECT rev FROM rev_counter")
    return int(row[0]) if row else 0


async def changes_since(c: Conn, rev: int, limit: int) -> list[MentionRow]:
    sql = f"SELECT {MENTION_COLUMNS} FROM mentions WHERE rev > %s ORDER BY rev LIMIT %s"
    return [row_to_mention(r) for r in await every(c, sql, (rev, limit))]


async def counts(c: Conn) -> dict[Status, int]:
    out = dict.fromkeys(Status, 0)
    out.update({Status(s): int(n) for s, n in await every(c, "SELECT status, count(*) FROM mentions GROUP BY status")})
    return out


async def mastodon_uris(c: Conn, source: str, local_ids: list[str]) -> list[str]:
    found = []
    for local_id in local_ids:
        row = await one(
            c,
            f"SELECT remote_id FROM mentions WHERE source = %s AND network = 'mastodon' AND {MASTODON_LOCAL_ID} = %s",
            (source, local_id),
        )
        if row is not None:
            found.append(str(row[0]))
    return found


async def cursor(c: Conn, source: str) -> str | None:
    row = await one(c, "SELECT cursor FROM cursors WHERE source = %s", (source,))
    return str(row[0]) if row and row[0] is not None else None


async def thread(c: Conn, row: MentionRow, limit: int = 20) -> list[MentionRow]:
    root = row.thread_id or row.remote_id
    sql = (
        f"SELECT {MENTION_COLUMNS} FROM mentions WHERE source = %s AND thread_id = %s AND id != %s"
        f" UNION SELECT {MENTION_COLUMNS} FROM mentions WHERE source = %s AND remote_id = %s AND id != %s"
        " ORDER BY 1 LIMIT %s"
    )
    return [row_to_mention(r) for r in await every(c, sql, (row.source, root, row.id, row.source, root, row.id, limit))]


async def mention(c: Conn, mention_id: int) -> MentionRow:
    r = await one(c, f"SELECT {MENTION_COLUMNS} FROM mentions WHERE id = %s", (mention_id,))
    if r is None:
        raise NotFound(f"no mention {mention_id}")
    return row_to_mention(r)


async def ingest(
    c: Conn,
    source: str,
    matched: list[tuple[Mention, MatchResult]],
    cursor: str | None,
    edits: list[tuple[Mention, MatchResult | None]],
    deletes: list[str],
    seen: int,
    suggested: Mapping[str, tuple[int, float]] | None = None,
) -> Inserted:
    """The SQLite ingest's twin (monitor.db.mentions.ingest_sync): mentions (each with its `suggested`
    incident and score, by remote id), edits, deletes and the cursor.

    The revs are reserved last but one: the counter's lock, which every other writer waits for, is held
    for one INSERT of the whole poll (and its edits) and the commit, not while the poll is prepared."""
    if cursor is not None:  # only this source's collector writes its row: no one waits behind it
        await c.execute(
            "INSERT INTO cursors (source, cursor, updated_at) VALUES (%s, %s, %s)"
            " ON CONFLICT (source) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
            (source, cursor, seen),
        )
    changes = len(matched) + len(edits) + len(deletes)
    rev = await next_rev(c, changes) - changes if changes else 0
    inserted = await _insert(c, source, matched, rev, seen, suggested or {}) if matched else None
    rev += len(matched)
    for m, result in edits:
        rev += 1
        if result is None:
            await c.execute(
                "UPDATE mentions SET text = %s, edited_at = %s, rev = %s WHERE source = %s AND remote_id = %s",
                (m.text, seen, rev, source, m.remote_id),
            )
        else:
            await c.execute(
                "UPDATE mentions SET text = %s, edited_at = %s, terms = %s, priority = least(priority, %s), rev = %s"
                " WHERE source = %s AND remote_id = %s",
                (m.text, seen, TERM_SEP.join(result.terms), int(result.priority), rev, source, m.remote_id),
            )
    for remote_id in deletes:
        rev += 1
        await c.execute(
            "UPDATE mentions SET deleted_at = %s, rev = %s WHERE source = %s AND remote_id = %s AND deleted_at IS NULL",
            (seen, rev, source, remote_id),
        )
    if edits or deletes:
        await _touch_incidents(c, source, [m.remote_id for m, _ in edits] + list(deletes), seen)
    return inserted


async def _touch_incidents(c: Conn, source: str, remote_ids: list[str], seen: int) -> None:
    """As SQLite's: an edited or deleted report changes its incident's pane row (priority, lead)."""
    from monitor.db.pg.incidents import touch  # it reads mentions through this module

    for (incident_id,) in await every(
        c,
        "SELECT DISTINCT incident_id FROM mentions WHERE source = %s AND remote_id = ANY(%s)"
        " AND incident_id IS NOT NULL ORDER BY 1",
        (source, remote_ids),
    ):
        await touch(c, incident_id, seen)


# INSERT_COLUMNS' types, then the suggestion's: a poll goes in as one array per column, in one statement.
_TYPES = ("text",) * 11 + ("integer", "bigint", "bigint", "bigint", "bigint", "text", "integer", "bigint", "float8")
_NAMES = ", ".join(f"c{i}" for i in range(len(_TYPES)))
_INSERT = (
    f"INSERT INTO mentions ({INSERT_COLUMNS}, suggested_incident, suggestion_score, status)"
    f" SELECT {_NAMES}, 'new' FROM unnest({', '.join(f'%s::{t}[]' for t in _TYPES)})"
    f" WITH ORDINALITY AS v({_NAMES}, n) ORDER BY n"  # in rev order: ids rise with revs, as SQLite's do
    " ON CONFLICT (source, remote_id) DO NOTHING"
)


async def _insert(
    c: Conn,
    source: str,
    matched: list[tuple[Mention, MatchResult]],
    rev: int,
    seen: int,
    suggested: Mapping[str, tuple[int, float]],
) -> Inserted:
    rows = [
        (*values, *suggested.get(values[1], (None, None))) for values in new_mention_rows(source, matched, rev, seen)
    ]
    return await c.execute(_INSERT, [list(column) for column in zip(*rows, strict=True)])


def inserted(done: Inserted) -> int:
    """How many new mentions `ingest` stored: read once its transaction has committed (in a pipeline, the
    INSERT's count arrives with the COMMIT's answer)."""
    return max(done.rowcount, 0) if done is not None else 0


async def pane(
    c: Conn,
    status: Status,
    limit: int,
    after: MentionRow | None,
    keep: Callable[[MentionRow], bool] | None,
    unlinked: bool = False,
) -> list[MentionRow]:
    """One page of a pane after `after` (keyset paging), in the order monitor.db.rows.pane_order gives
    (`unlinked`: only mentions in no incident)."""
    order, where, key = pane_order(status, after, "%s")
    where += " AND incident_id IS NULL" if unlinked else ""
    sql = f"SELECT {MENTION_COLUMNS} FROM mentions WHERE status = %s{where} ORDER BY {order}"
    if keep is None:
        return [row_to_mention(r) for r in await every(c, sql + " LIMIT %s", (status.value, *key, limit))]
    out: list[MentionRow] = []
    # A filter folds accents in Python: a server-side cursor reads in pane order until the page is full.
    async with c.cursor(name="pane") as cur:
        await cur.execute(sql, (status.value, *key))
        async for r in cur:
            row = row_to_mention(r)
            if keep(row):
                out.append(row)
                if len(out) >= limit:
                    break
    return out
