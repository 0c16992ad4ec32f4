"""Each mention's clocks, kept beside it like a helpdesk's ticket metrics: first response (at, by), the
standing escalation (at, to which service), when that escalation was resolved, how often it was reopened.

They are written in the transaction of the action that changes them (store.act_sync calls `refresh`), so
statistics read one indexed table. `differences` recomputes them all from the action log: `monitor check`
and the tests expect it to find none.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from monitor.core.models import RESPONSE_KINDS
from monitor.db.migrations import FILL_CLOCKS, REOPENED, RESOLVED, SERVICE, STANDING

CLOCKS = ("first_response_at", "first_response_by", "escalated_at", "escalated_to", "resolved_at", "reopened")
_KINDS = ", ".join(sorted(f"'{kind.value}'" for kind in RESPONSE_KINDS))  # our own constants, not data
# The first response is the first response action written (act_sync sets it once, in that order).
_FIRST_RESPONSE = f"FROM actions f WHERE f.mention_id = mentions.id AND f.kind IN ({_KINDS}) ORDER BY f.id LIMIT 1"
_REFRESH = (
    f"UPDATE mentions SET (escalated_at, escalated_to) = (SELECT a.at, {SERVICE} {STANDING}), reopened = {REOPENED}"
    " WHERE id = ?",
    f"UPDATE mentions SET resolved_at = {RESOLVED} WHERE id = ?",
)
_EXPECTED = f"""
WITH log AS (
    SELECT id, status, status_at, {", ".join(CLOCKS)},
        (SELECT f.at {_FIRST_RESPONSE}) AS e_fr_at, (SELECT f.operator {_FIRST_RESPONSE}) AS e_fr_by,
        (SELECT a.at {STANDING}) AS e_esc_at, (SELECT {SERVICE} {STANDING}) AS e_esc_to, {REOPENED} AS e_reopened
    FROM mentions
)
SELECT id, {", ".join(CLOCKS)}, e_fr_at, e_fr_by, e_esc_at, e_esc_to, e_resolved, e_reopened FROM (
    SELECT *, {RESOLVED.replace("escalated_at", "e_esc_at")} AS e_resolved FROM log
) WHERE first_response_at IS NOT e_fr_at OR first_response_by IS NOT e_fr_by OR escalated_at IS NOT e_esc_at
    OR escalated_to IS NOT e_esc_to OR resolved_at IS NOT e_resolved OR reopened IS NOT e_reopened
ORDER BY id LIMIT ?
"""


def refresh(c: sqlite3.Connection, mention_id: int) -> None:
    """Bring one mention's escalation clocks up to date with its action log (inside the action's transaction).

    The first response is set by the action itself: it is written once and never recomputed."""
    for sql in _REFRESH:
        c.execute(sql, (mention_id,))


def fill(c: sqlite3.Connection) -> None:
    """Every mention's escalation clocks from the action log, as migration 6 fills them (rows loaded in bulk
    without the action path: benchmarks, imports)."""
    for sql in FILL_CLOCKS.split(";"):
        if sql.strip():
            c.execute(sql)


@dataclass(frozen=True, slots=True)
class Difference:
    mention_id: int
    clock: str
    stored: object
    expected: object

    def __str__(self) -> str:
        return f"mention {self.mention_id}: {self.clock} is {self.stored!r}, the action log says {self.expected!r}"


def differences(c: sqlite3.Connection, limit: int = 20) -> list[Difference]:
    """The stored clocks that differ from the action log (at most `limit` mentions), none when all is well."""
    out: list[Difference] = []
    for row in c.execute(_EXPECTED, (limit,)):
        stored, expected = row[1 : 1 + len(CLOCKS)], row[1 + len(CLOCKS) :]
        out += [Difference(row[0], name, s, e) for name, s, e in zip(CLOCKS, stored, expected, strict=True) if s != e]
    return out
