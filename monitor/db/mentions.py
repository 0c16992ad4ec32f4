"""Mentions in SQL: the row shape, a poll's ingest (with its cursor), and the reads the panes and the detail use."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from monitor.core.models import OPEN_STATUSES, TERM_SEP, MatchResult, Mention, MentionRow, Priority, Status
from monitor.core.timeutil import to_ms
from monitor.db.api import NotFound

MENTION_COLUMNS = (
    "id, source, network, remote_id, author, author_name, text, url, lang, thread_id, reply_to, terms,"
    " priority, status, published_at, first_seen_at, status_at, first_response_at, edited_at,"
    " deleted_at, rev, to_us, incident_id, suggested_incident, suggestion_score"
)


def row_to_mention(r: Sequence[Any]) -> MentionRow:
    return MentionRow(
        id=r[0], source=r[1], network=r[2], remote_id=r[3], author=r[4], author_name=r[5], text=r[6],
        url=r[7], lang=r[8], thread_id=r[9], reply_to=r[10],
        terms=tuple(r[11].split(TERM_SEP)) if r[11] else (),
        priority=Priority(r[12]), status=Status(r[13]), published_at=r[14], first_seen_at=r[15],
        status_at=r[16], first_response_at=r[17], edited_at=r[18], deleted_at=r[19], rev=r[20],
        to_us=bool(r[21]), incident_id=r[22], suggested_incident=r[23], suggestion_score=r[24] or 0.0,
    )  # fmt: skip


def max_rev_sync(c: sqlite3.Connection) -> int:
    return int(c.execute("SELECT coalesce(max(rev), 0) FROM mentions").fetchone()[0])


def changes_since_sync(c: sqlite3.Connection, rev: int, limit: int) -> list[MentionRow]:
    sql = f"SELECT {MENTION_COLUMNS} FROM mentions WHERE rev > ? ORDER BY rev LIMIT ?"
    return [row_to_mention(r) for r in c.execute(sql, (rev, limit))]


def counts_sync(c: sqlite3.Connection) -> dict[Status, int]:
    counts = dict.fromkeys(Status, 0)
    counts.update({Status(s): int(n) for s, n in c.execute("SELECT status, count(*) FROM mentions GROUP BY status")})
    return counts


def mastodon_uris_sync(c: sqlite3.Connection, source: str, local_ids: list[str]) -> list[str]:
    """The remote ids (uris) of stored Mastodon statuses known by their server-local ids."""
    found = []
    for local_id in local_ids:
        row = c.execute(
            "SELECT remote_id FROM mentions WHERE source = ? AND network = 'mastodon'"
            " AND coalesce(json_extract(raw, '$.reblog.id'), json_extract(raw, '$.id')) = ?",
            (source, local_id),
        ).fetchone()
        if row is not None:
            found.append(str(row[0]))
    return found


def cursor_sync(c: sqlite3.Connection, source: str) -> str | None:
    row = c.execute("SELECT cursor FROM cursors WHERE source = ?", (source,)).fetchone()
    return str(row[0]) if row and row[0] is not None else None


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
    rev = max_rev_sync(c)
    inserted = _insert(c, source, matched, rev, seen)
    rev += len(matched)
    for m, result in edits:
        rev += 1
        if result is None:
            c.execute(
                "UPDATE mentions SET text = ?, edited_at = ?, rev = ? WHERE source = ? AND remote_id = ?",
                (m.text, seen, rev, source, m.remote_id),
            )
        else:
            c.execute(
                "UPDATE mentions SET text = ?, edited_at = ?, terms = ?, priority = min(priority, ?), rev = ?"
                " WHERE source = ? AND remote_id = ?",
                (m.text, seen, TERM_SEP.join(result.terms), int(result.priority), rev, source, m.remote_id),
            )
    for remote_id in deletes:
        rev += 1
        c.execute(
            "UPDATE mentions SET deleted_at = ?, rev = ? WHERE source = ? AND remote_id = ? AND deleted_at IS NULL",
            (seen, rev, source, remote_id),
        )
    if edits or deletes:
        _touch_incidents(c, source, [m.remote_id for m, _ in edits] + list(deletes), seen)
    if cursor is not None:
        c.execute(
            "INSERT INTO cursors (source, cursor, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT (source) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
            (source, cursor, seen),
        )
    return inserted


def _touch_incidents(c: sqlite3.Connection, source: str, remote_ids: list[str], seen: int) -> None:
    """An edited or deleted report changes its incident's pane row (priority, lead): a new generation."""
    from monitor.db.incidents import touch_sync  # it reads mentions through this module

    marks = ", ".join("?" * len(remote_ids))
    for (incident_id,) in c.execute(
        f"SELECT DISTINCT incident_id FROM mentions WHERE source = ? AND remote_id IN ({marks})"
        " AND incident_id IS NOT NULL",
        (source, *remote_ids),
    ).fetchall():
        touch_sync(c, incident_id, seen)


def _insert(c: sqlite3.Connection, source: str, matched: list[tuple[Mention, MatchResult]], rev: int, seen: int) -> int:
    """New mentions, numbered after `rev`; one already stored (same source and remote id) is left as it is."""
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
    return c.total_changes - before


def pane_sync(
    c: sqlite3.Connection,
    status: Status,
    limit: int,
    after: MentionRow | None = None,
    keep: Callable[[MentionRow], bool] | None = None,
    unlinked: bool = False,
) -> list[MentionRow]:
    """One page of a pane, in the pane's order, starting after `after` (keyset paging).

    Open panes: most urgent first, then the longest waiting. Closed panes: the latest closed first.
    `unlinked`: only mentions in no incident (an incident is one row of its own: db.incidents).
    """
    key: tuple[int, ...]
    if status in OPEN_STATUSES:
        order, cmp = "priority, first_seen_at, id", ">"
        key = (int(after.priority), after.first_seen_at, after.id) if after else ()
        cols = "(priority, first_seen_at, id)"
    else:
        order, cmp = "status_at DESC, id DESC", "<"
        key = (after.status_at, after.id) if after else ()
        cols = "(status_at, id)"
    where = f" AND {cols} {cmp} ({', '.join('?' * len(key))})" if key else ""
    where += " AND incident_id IS NULL" if unlinked else ""
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
