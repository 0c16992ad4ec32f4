"""Possibly the same incident: other open mentions that share the term and enough distinctive words.

Many citizens report the same pothole. Grouping is suggested, never automatic: the operator sees the
likely duplicates of the selected mention and decides (dismiss as duplicate, or answer each).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from monitor.core.matching import fold
from monitor.core.models import TERM_SEP, MentionRow
from monitor.db.mentions import MENTION_COLUMNS, row_to_mention

WINDOW_MS = 48 * 3600_000
CANDIDATES = 300
SCANNED = 5_000  # mentions of the window looked at for candidates: what a detail costs, whatever the table holds
THRESHOLD = 0.2
_WORD = re.compile(r"[a-z0-9]{4,}")
_NOISE = re.compile(r"@\S+|https?://\S+|#")  # handles and links say who and where, not what
_STOP = frozenset(
    "avec dans pour plus sont cette mais tout tous elle nous vous leur sans sous alors encore depuis "
    "comme bien fait faire quand merci bonjour toulouse metropole this that with from have there what "
    "about just your they been were will would http https www".split()
)


def words(text: str) -> frozenset[str]:
    return frozenset(w for w in _WORD.findall(_NOISE.sub(" ", fold(text))) if w not in _STOP and not w.isdigit())


def similarity(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


# The candidates' query, with %s for each parameter (SQLite's mark replaces it). They come from the mentions
# seen just before and just after it (two index walks of SCANNED // 2), not from every open mention of the
# window, sorted: in a storm that sorted the whole table for each detail, and the detail's wait grew with
# every arrival (issue 13).
_NEAR = (
    "SELECT id FROM (SELECT id, status, terms FROM mentions WHERE first_seen_at BETWEEN %s AND %s"
    " ORDER BY first_seen_at {} LIMIT %s) AS near WHERE status IN ('new', 'escalated') AND id != %s"
    " AND (terms = %s OR terms LIKE %s ESCAPE '\\')"
)
CANDIDATES_SQL = (
    f"SELECT {MENTION_COLUMNS} FROM mentions WHERE id IN"
    f" ({_NEAR.format('DESC')} UNION ALL {_NEAR.format('ASC')} ORDER BY id DESC LIMIT %s) ORDER BY id DESC"
)


def related_sync(c: sqlite3.Connection, row: MentionRow, limit: int = 3) -> list[tuple[float, MentionRow]]:
    """The open mentions most alike this one (same primary term, seen within two days)."""
    if not row.terms:
        return []
    mine = words(row.text)
    if len(mine) < 2:
        return []
    rows = c.execute(CANDIDATES_SQL.replace("%s", "?"), candidate_params(row))
    return rank(mine, rows, limit)


def candidate_params(row: MentionRow) -> tuple[object, ...]:
    """CANDIDATES_SQL's parameters for `row`: same primary term, open, seen within the window around it."""
    like = _like_prefix(row.term + TERM_SEP)
    before = (row.first_seen_at - WINDOW_MS, row.first_seen_at, SCANNED // 2, row.id, row.term, like)
    after = (row.first_seen_at + 1, row.first_seen_at + WINDOW_MS, SCANNED // 2, row.id, row.term, like)
    return (*before, *after, CANDIDATES)


def rank(mine: frozenset[str], candidates: Iterable[Sequence[Any]], limit: int) -> list[tuple[float, MentionRow]]:
    """The candidates' rows (MENTION_COLUMNS) alike enough to `mine`'s words, most alike first (both engines)."""
    scored = []
    for r in candidates:
        score = similarity(mine, words(r[6]))  # the text: only a likely duplicate is made a MentionRow
        if score >= THRESHOLD:
            scored.append((score, row_to_mention(r)))
    scored.sort(key=lambda pair: -pair[0])
    return scored[:limit]


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
