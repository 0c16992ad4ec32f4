"""Mentions in SQL: the row shape, a poll's ingest (with its cursor), and the reads the panes and the detail use."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping

from monitor.core.models import TERM_SEP, MatchResult, Mention, MentionRow, Status
from monitor.db.api import NotFound
from monitor.db.names import name_ids, primary_term
from monitor.db.rows import INSERT_COLUMNS, MENTION_COLUMNS, new_mention_rows, pane_order, row_to_mention

__all__ = ["MENTION_COLUMNS", "row_to_mention"]  # also imported from here


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
    suggested: Mapping[str, tuple[int, float]] | None = None,
) -> int:
    """A poll's mentions (each with its `suggested` incident and score, by remote id), edits, deletes, cursor."""
    rev = max_rev_sync(c)
    inserted = _insert(c, source, matched, rev, seen, suggested or {})
    rev += len(matched)
    for m, result in edits:
        rev += 1
        if result is None:
            c.execute(
                "UPDATE mentions SET text = ?, edited_at = ?, rev = ? WHERE source = ? AND remote_id = ?",
                (m.text, seen, rev, source, m.remote_id),
            )
        else:
            terms = TERM_SEP.join(result.terms)
            term_id = name_ids(c, [primary_term(terms)])[primary_term(terms)]
            c.execute(
                "UPDATE mentions SET text = ?, edited_at = ?, terms = ?, term_id = ?, priority = min(priority, ?),"
                " rev = ? WHERE source = ? AND remote_id = ?",
                (m.text, seen, terms, term_id, int(result.priority), rev, source, m.remote_id),
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


def _insert(
    c: sqlite3.Connection,
    source: str,
    matched: list[tuple[Mention, MatchResult]],
    rev: int,
    seen: int,
    suggested: Mapping[str, tuple[int, float]],
) -> int:
    """New mentions, numbered after `rev`; one already stored (same source and remote id) is left as it is."""
    terms = [TERM_SEP.join(r.terms) for _m, r in matched]
    ids = name_ids(c, [source, *map(primary_term, terms)]) if matched else {}  # the statistics' ids (migration 7)
    # rowcount: the mentions inserted, not the names above nor the triggers' dirty days (migration 8)
    return c.executemany(
        f"INSERT INTO mentions ({INSERT_COLUMNS}, status, source_id, term_id, suggested_incident, suggestion_score)"
        f" VALUES ({', '.join(['?'] * 18)}, 'new', ?, ?, ?, ?) ON CONFLICT (source, remote_id) DO NOTHING",
        [
            (*values, ids[source], ids[primary_term(terms[i])], *suggested.get(values[1], (None, None)))
            for i, values in enumerate(new_mention_rows(source, matched, rev, seen))
        ],  # fmt: skip
    ).rowcount


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
    order, where, key = pane_order(status, after, "?")
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
