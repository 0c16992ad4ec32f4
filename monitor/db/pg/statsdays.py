"""PostgreSQL's per-day digests of the statistics' rows (migration 13), as SQLite keeps its own (migrations 8
and 11, monitor.db.statsdays): a year reads ~365 rows, not a million.

A digest is one UTC day's mentions (by first seen) as fixed-width rows of seven big-endian int8 (ROW_FIELDS,
in id order), one bytea, beside the day's sorted names the codes in the last field point into. SQL builds it
(int8send), so the same statement gives a stored digest, a rebuilt one, and a dirty day or a partial one
read live. A trigger marks a day dirty in the transaction of any write that changes one of its mentions'
figures; a dirty day's digest is never read until `refresh` rebuilds it under the rev counter's lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import AsyncConnection

DAY_MS = 86_400_000
PRIMARY_TERM = "split_part(terms, chr(31), 1)"  # migrations.PRIMARY_TERM: the text before the first separator
# Status codes (flags' bits 5-7).
_STATUS = "CASE status WHEN 'new' THEN 0 WHEN 'escalated' THEN 1 WHEN 'done' THEN 2 WHEN 'dismissed' THEN 3 ELSE 4 END"
# The seven fields of a row; -1 where absent. PostgreSQL gives & | << one precedence: every term in parentheses.
ROW_FIELDS = (
    "first_seen_at",
    "coalesce(first_response_at, -1)",
    "CASE WHEN status IN ('done', 'dismissed') THEN status_at ELSE -1 END",  # closed at
    "coalesce(deleted_at, -1)",
    "coalesce(escalated_at, -1)",
    # priority (bits 0-3), to us (4), status (5-7), edited (8)
    f"((priority & 15) | ((to_us <> 0)::int << 4) | (({_STATUS}) << 5) | ((edited_at IS NOT NULL)::int << 8))::int8",
    # codes into the day's names: source, primary term, responder, service, 16 bits each
    "(array_position(n.s, m.s) - 1)::int8 | ((array_position(n.t, m.t) - 1)::int8 << 16)"
    " | ((array_position(n.o, m.o) - 1)::int8 << 32) | ((array_position(n.v, m.v) - 1)::int8 << 48)",
)
# A responder or service never set reads as '' (as SQLite's id 0 does).
_TEXTS = f"source AS s, {PRIMARY_TERM} AS t, coalesce(first_response_by, '') AS o, coalesce(escalated_to, '') AS v"
_FIGURES = (
    "first_seen_at, first_response_at, first_response_by, status, status_at, priority, deleted_at, edited_at,"
    " to_us, escalated_at, escalated_to, source, terms"
)


def digests_sql(mentions: str = "mentions") -> str:
    """day, n, the four sorted name lists, and the rows, for each day with `mentions` (the table, or a join
    that selects some)."""
    row = " || ".join(f"int8send({field})" for field in ROW_FIELDS)
    return f"""
    WITH m AS MATERIALIZED (
        SELECT id, first_seen_at / {DAY_MS} AS day, first_seen_at, first_response_at, status, status_at, priority,
            to_us, deleted_at, edited_at, escalated_at, {_TEXTS} FROM {mentions}
    ), n AS (
        SELECT day, array_agg(DISTINCT s) AS s, array_agg(DISTINCT t) AS t, array_agg(DISTINCT o) AS o,
            array_agg(DISTINCT v) AS v FROM m GROUP BY day
    )
    SELECT m.day, count(*)::int, n.s, n.t, n.o, n.v, string_agg({row}, ''::bytea ORDER BY m.id)
    FROM m JOIN n ON n.day = m.day GROUP BY m.day, n.s, n.t, n.o, n.v ORDER BY m.day
    """


# The mentions first seen in ranges [lo, hi) that do not overlap, given as two arrays: an index scan each.
IN_RANGES = (
    "unnest(%(lo)s::bigint[], %(hi)s::bigint[]) r(lo, hi)"
    " JOIN mentions ON mentions.first_seen_at >= r.lo AND mentions.first_seen_at < r.hi"
)

# Migration 13: the digests, the dirty days and their trigger, every day built once.
MIGRATION = f"""
    CREATE TABLE stats_days (
        day BIGINT PRIMARY KEY,             -- first_seen_at / 86400000 (UTC days)
        n INTEGER NOT NULL,
        s TEXT[] NOT NULL, t TEXT[] NOT NULL, o TEXT[] NOT NULL, v TEXT[] NOT NULL,
        rows BYTEA NOT NULL
    );
    ALTER TABLE stats_days ALTER COLUMN rows SET STORAGE EXTERNAL;  -- integers compress poorly: read as stored
    CREATE TABLE stats_dirty (day BIGINT PRIMARY KEY);
    CREATE FUNCTION stats_dirty_mark() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
        IF TG_OP <> 'INSERT' THEN
            INSERT INTO stats_dirty VALUES (OLD.first_seen_at / {DAY_MS}) ON CONFLICT DO NOTHING;
        END IF;
        IF TG_OP <> 'DELETE' THEN
            INSERT INTO stats_dirty VALUES (NEW.first_seen_at / {DAY_MS}) ON CONFLICT DO NOTHING;
        END IF;
        RETURN NULL;
    END $$;
    CREATE TRIGGER stats_dirty_change AFTER INSERT OR DELETE OR UPDATE OF {_FIGURES} ON mentions
        FOR EACH ROW EXECUTE FUNCTION stats_dirty_mark();
    INSERT INTO stats_days {digests_sql()};
"""

_CLEAN = (
    "SELECT day, n, s, t, o, v, rows FROM stats_days WHERE day >= %(first)s AND day < %(last)s"
    " AND day NOT IN (SELECT day FROM stats_dirty) ORDER BY day"
)
_DIRTY = "SELECT day FROM stats_dirty WHERE day >= %(first)s AND day < %(last)s ORDER BY day"


def ranges(bounds: Sequence[tuple[int, int]]) -> dict[str, list[int]]:
    return {"lo": [lo for lo, _ in bounds], "hi": [hi for _, hi in bounds]}


def clean_and_dirty(conn: Any, first: int, last: int) -> tuple[list[tuple[Any, ...]], list[int]]:
    """The clean digests of days [first, last), and the dirty days there (read live instead): the caller's
    snapshot makes both one view."""
    days = {"first": first, "last": last}
    clean = conn.execute(_CLEAN, days, binary=True).fetchall()  # bytea as is, not in hex
    return clean, [int(d) for (d,) in conn.execute(_DIRTY, days).fetchall()]


async def refresh(c: AsyncConnection[tuple[Any, ...]]) -> int:
    """Rebuild the dirty days' digests, inside the caller's transaction; how many days were dirty. The rev
    counter's lock first: every writer takes it before it marks a day, so none marks one meanwhile."""
    await c.execute("SELECT rev FROM rev_counter FOR UPDATE")
    days = [int(d) for (d,) in await (await c.execute("SELECT day FROM stats_dirty")).fetchall()]
    if days:
        await c.execute("DELETE FROM stats_days WHERE day = ANY(%s)", (days,))
        bounds = ranges([(d * DAY_MS, (d + 1) * DAY_MS) for d in days])
        await c.execute("INSERT INTO stats_days " + digests_sql(IN_RANGES), bounds)
        await c.execute("DELETE FROM stats_dirty WHERE day = ANY(%s)", (days,))
    return len(days)


_ALL = "SELECT day, n, s, t, o, v, rows FROM stats_days WHERE day NOT IN (SELECT day FROM stats_dirty)"


def stale_days(conn: Any, limit: int = 20) -> list[int]:
    """The clean days whose digest is not what their mentions give now (at most `limit`), none when all is
    well: a day with mentions has a digest or is dirty."""
    stored = {row[0]: row[1:] for row in conn.execute(_ALL).fetchall()}
    dirty = {int(d) for (d,) in conn.execute("SELECT day FROM stats_dirty").fetchall()}
    fresh = {row[0]: row[1:] for row in conn.execute(digests_sql()).fetchall() if row[0] not in dirty}
    return sorted(day for day in stored.keys() | fresh.keys() if stored.get(day) != fresh.get(day))[:limit]
