"""Each mention's clocks, kept beside it like a helpdesk's ticket metrics: first response (at, by), the
standing escalation (at, to which service), when that escalation was resolved, how often it was reopened;
and the integer ids of the texts the statistics group by (source, primary term, responder, service).

They are written in the transaction of the action that changes them (store.act_sync calls `refresh`), so
statistics read one indexed table. `differences` recomputes them all from the action log: `monitor check`
and the tests expect it to find none.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from monitor.core.models import RESPONSE_KINDS
from monitor.db.migrations import (
    FILL_CLOCKS,
    FILL_NAMES,
    NAME_IDS,
    NAMES_OF,
    PRIMARY_TERM,
    REOPENED,
    RESOLVED,
    SERVICE,
    STANDING,
)

CLOCKS = ("first_response_at", "first_response_by", "escalated_at", "escalated_to", "resolved_at", "reopened")
# The integer ids of the texts the statistics group by (migration 7), checked like the clocks.
IDS = ("source_id", "term_id", "responder_id", "service_id")
_KINDS = ", ".join(sorted(f"'{kind.value}'" for kind in RESPONSE_KINDS))  # our own constants, not data
# The first response is the first response action written (act_sync sets it once, in that order).
_FIRST_RESPONSE = f"FROM actions f WHERE f.mention_id = mentions.id AND f.kind IN ({_KINDS}) ORDER BY f.id LIMIT 1"
_REFRESH = (
    f"UPDATE mentions SET (escalated_at, escalated_to) = (SELECT a.at, {SERVICE} {STANDING}), reopened = {REOPENED}"
    " WHERE id = ?",
    NAMES_OF.format(where="WHERE id = ?"),
    f"UPDATE mentions SET resolved_at = {RESOLVED}, {NAME_IDS} WHERE id = ?",
)
_REFRESH_PARAMS = (1, 4, 1)  # how many times each statement names the mention
_ID_OF = "(SELECT n.id FROM names n WHERE n.name = {})"
_EXPECTED = f"""
WITH log AS (
    SELECT id, status, status_at, {", ".join(CLOCKS)}, {", ".join(IDS)},
        (SELECT f.at {_FIRST_RESPONSE}) AS e_fr_at, (SELECT f.operator {_FIRST_RESPONSE}) AS e_fr_by,
        (SELECT a.at {STANDING}) AS e_esc_at, (SELECT {SERVICE} {STANDING}) AS e_esc_to, {REOPENED} AS e_reopened,
        {_ID_OF.format("source")} AS e_source_id, {_ID_OF.format(PRIMARY_TERM)} AS e_term_id
    FROM mentions
)
SELECT id, {", ".join(CLOCKS)}, {", ".join(IDS)}, e_fr_at, e_fr_by, e_esc_at, e_esc_to, e_resolved, e_reopened,
    e_source_id, e_term_id, {_ID_OF.format("e_fr_by")}, {_ID_OF.format("e_esc_to")} FROM (
    SELECT *, {RESOLVED.replace("escalated_at", "e_esc_at")} AS e_resolved FROM log
) WHERE first_response_at IS NOT e_fr_at OR first_response_by IS NOT e_fr_by OR escalated_at IS NOT e_esc_at
    OR escalated_to IS NOT e_esc_to OR resolved_at IS NOT e_resolved OR reopened IS NOT e_reopened
    OR source_id IS NOT e_source_id OR term_id IS NOT e_term_id
    OR responder_id IS NOT {_ID_OF.format("e_fr_by")} OR service_id IS NOT {_ID_OF.format("e_esc_to")}
ORDER BY id LIMIT ?
"""


def refresh(c: sqlite3.Connection, mention_id: int) -> None:
    """Bring one mention's escalation clocks up to date with its action log (inside the action's transaction).

    The first response is set by the action itself: it is written once and never recomputed; its
    responder's id is set here with the other ids."""
    for sql, times in zip(_REFRESH, _REFRESH_PARAMS, strict=True):
        c.execute(sql, (mention_id,) * times)


def fill(c: sqlite3.Connection) -> None:
    """Every mention's escalation clocks from the action log and the ids of its texts, as migrations 6 and 7
    fill them (rows loaded in bulk without the action path: benchmarks, imports)."""
    for sql in (FILL_CLOCKS + FILL_NAMES).split(";"):
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
    """The stored clocks and ids that differ from the action log (at most `limit` mentions), none when all is
    well. An id differs when it is not the id `names` gives the text the action log (or the row) says."""
    out: list[Difference] = []
    checked = CLOCKS + IDS
    for row in c.execute(_EXPECTED, (limit,)):
        stored, expected = row[1 : 1 + len(checked)], row[1 + len(checked) :]
        out += [Difference(row[0], name, s, e) for name, s, e in zip(checked, stored, expected, strict=True) if s != e]
    return out
