"""The desk's composite reads in PostgreSQL: a shift's handover, a mention's likely duplicates, a pane's export."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from monitor.core.models import MentionRow
from monitor.db.api import Handover
from monitor.db.export import MENTION_COLUMNS as EXPORT_COLUMNS
from monitor.db.pg.mentions import Conn, every, one
from monitor.db.related import CANDIDATES_SQL, candidate_params, rank, words
from monitor.db.rows import MENTION_COLUMNS, row_to_mention

# Actions a later reopen undid did not happen, as far as a handover is concerned.
_DONE = (
    " AND id NOT IN (SELECT (payload ->> 'undid')::bigint FROM actions"
    " WHERE kind = 'reopen' AND payload ->> 'undid' IS NOT NULL)"
)


async def handover(c: Conn, since: int, now: int, target_ms: int, limit: int = 20) -> Handover:
    """As monitor.db.handover.summary_sync."""
    h = Handover(since)
    row = await one(c, "SELECT count(*) FROM mentions WHERE first_seen_at >= %s", (since,))
    h.new = int(row[0]) if row else 0
    h.still_open = [
        row_to_mention(r)
        for r in await every(
            c,
            f"SELECT {MENTION_COLUMNS} FROM mentions WHERE first_seen_at >= %s AND status IN ('new', 'escalated')"
            " ORDER BY priority, first_seen_at, id LIMIT %s",
            (since, limit),
        )
    ]
    sql = "SELECT kind, count(*) FROM actions WHERE at >= %s AND kind IN ('escalate', 'resolve')" + _DONE
    for kind, n in await every(c, sql + " GROUP BY kind", (since,)):
        if kind == "escalate":
            h.escalated = int(n)
        else:
            h.resolved = int(n)
    h.breaches = [
        row_to_mention(r)
        for r in await every(
            c,
            f"SELECT {MENTION_COLUMNS} FROM mentions WHERE first_seen_at >= %s AND"
            " coalesce(first_response_at, %s) - first_seen_at > %s ORDER BY first_seen_at, id LIMIT %s",
            (since, now, target_ms, limit),
        )
    ]
    sql = "SELECT operator, kind, count(*) FROM actions WHERE at >= %s" + _DONE
    for operator, kind, n in await every(c, sql + " GROUP BY operator, kind ORDER BY operator", (since,)):
        h.by_operator.setdefault(operator, {})[kind] = int(n)
    return h


async def related(c: Conn, row: MentionRow, limit: int = 3) -> list[tuple[float, MentionRow]]:
    """As monitor.db.related.related_sync: the same words and score, PostgreSQL's SQL for the candidates."""
    if not row.terms:
        return []
    mine = words(row.text)
    if len(mine) < 2:
        return []
    rows = await every(c, CANDIDATES_SQL, candidate_params(row))
    return rank(mine, rows, limit)


async def export_mentions(c: Conn, ids: Sequence[int]) -> list[tuple[Any, ...]]:
    """As monitor.db.export.rows for a pane's mentions: the same columns, in id order."""
    sql = f"SELECT {', '.join(EXPORT_COLUMNS)} FROM mentions WHERE id = ANY(%s) ORDER BY id"
    return await every(c, sql, (list(ids),))
