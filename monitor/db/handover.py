"""Shift handover: what happened since an operator last left."""

from __future__ import annotations

import sqlite3

from monitor.db.api import Handover
from monitor.db.mentions import MENTION_COLUMNS, row_to_mention

__all__ = ["Handover", "summary_sync"]


# Actions a later reopen undid did not happen, as far as a handover is concerned.
_DONE = (
    " AND id NOT IN (SELECT json_extract(payload, '$.undid') FROM actions"
    " WHERE kind = 'reopen' AND json_extract(payload, '$.undid') IS NOT NULL)"
)


def summary_sync(c: sqlite3.Connection, since: int, now: int, target_ms: int, limit: int = 20) -> Handover:
    h = Handover(since)
    h.new = c.execute("SELECT count(*) FROM mentions WHERE first_seen_at >= ?", (since,)).fetchone()[0]
    h.still_open = [
        row_to_mention(r)
        for r in c.execute(
            f"SELECT {MENTION_COLUMNS} FROM mentions WHERE first_seen_at >= ? AND status IN ('new', 'escalated')"
            " ORDER BY priority, first_seen_at, id LIMIT ?",
            (since, limit),
        )
    ]
    for kind, n in c.execute(
        "SELECT kind, count(*) FROM actions WHERE at >= ? AND kind IN ('escalate', 'resolve')"
        + _DONE
        + " GROUP BY kind",
        (since,),
    ):
        if kind == "escalate":
            h.escalated = n
        else:
            h.resolved = n
    # A breach: first seen in the period and answered after the target, or still waiting past it.
    h.breaches = [
        row_to_mention(r)
        for r in c.execute(
            f"SELECT {MENTION_COLUMNS} FROM mentions WHERE first_seen_at >= ? AND"
            " coalesce(first_response_at, ?) - first_seen_at > ? ORDER BY first_seen_at, id LIMIT ?",
            (since, now, target_ms, limit),
        )
    ]
    for operator, kind, n in c.execute(
        "SELECT operator, kind, count(*) FROM actions WHERE at >= ?" + _DONE + " GROUP BY operator, kind"
        " ORDER BY operator",
        (since,),
    ):
        h.by_operator.setdefault(operator, {})[kind] = n
    return h
