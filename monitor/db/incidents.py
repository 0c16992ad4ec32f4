"""Incidents in SQL: create, link, unlink, move (each an action in the log), the reads of the desk, and the
one transaction in which an incident's action acts on every report.

A link names the incident the operator saw the mention in (`expect_incident`): if another operator moved it
meanwhile the write is refused with Conflict, inside the same BEGIN IMMEDIATE transaction that would have
written it, so of two operators linking one mention at once exactly one wins.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from monitor.core.incidents import (
    OPEN_INCIDENT_STATUSES,
    Incident,
    IncidentDetail,
    IncidentEvent,
    IncidentStatus,
    IncidentSummary,
    Progress,
    clean_title,
    draft_title,
    incident_reference,
)
from monitor.core.models import OPEN_STATUSES, ActionKind, MentionRow, Priority, Status
from monitor.core.outbox import NewItem
from monitor.core.sanitize import clean
from monitor.core.timeutil import now_ms
from monitor.db.actions import act_sync
from monitor.db.api import Conflict, NotFound, PaneEntry
from monitor.db.mentions import MENTION_COLUMNS, max_rev_sync, mention_sync, pane_sync, row_to_mention
from monitor.db.suggest import rank_sync, refresh_profile_sync

__all__ = [
    "IncidentActs", "IncidentPlan", "ReportAct", "accept_sync", "act_on_incident_sync", "create_for_remote_sync",
    "create_sync", "detail_sync", "incidents_rev_sync", "note_incident_sync",
    "incident_sync", "link_sync", "open_sync", "pane_entries_sync", "rank_sync", "rename_sync", "reports_sync",
    "set_status_sync", "summaries_sync", "unlink_sync",
]  # fmt: skip

INCIDENT_COLUMNS = "id, title, service, reference, status, created_at, updated_at, created_by, rev"
NOTE_MAX = 4000  # an internal note on an incident, in characters
_OPEN = tuple(s.value for s in OPEN_INCIDENT_STATUSES)


def _incident(r: Sequence[Any]) -> Incident:
    return Incident(r[0], r[1], r[2], r[3], IncidentStatus(r[4]), r[5], r[6], r[7], r[8])


def incident_sync(c: sqlite3.Connection, incident_id: int) -> Incident:
    r = c.execute(f"SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = ?", (incident_id,)).fetchone()
    if r is None:
        raise NotFound(f"no incident {incident_id}")
    return _incident(r)


def touch_sync(c: sqlite3.Connection, incident_id: int, now: int | None = None) -> None:
    """A change of the incident or its reports: a new rev (and generation, which the suggestions cache keys on)."""
    c.execute(
        "UPDATE incidents SET rev = (SELECT coalesce(max(rev), 0) + 1 FROM incidents), updated_at = ?,"
        " gen = lower(hex(randomblob(8))) WHERE id = ?",
        (now if now is not None else now_ms(), incident_id),
    )


def incidents_rev_sync(c: sqlite3.Connection) -> int:
    return int(c.execute("SELECT coalesce(max(rev), 0) FROM incidents").fetchone()[0])


def _current(c: sqlite3.Connection, mention_id: int) -> int | None:
    r = c.execute("SELECT incident_id FROM mentions WHERE id = ?", (mention_id,)).fetchone()
    if r is None:
        raise NotFound(f"no mention {mention_id}")
    return None if r[0] is None else int(r[0])


def _expect(c: sqlite3.Connection, mention_id: int, expect: int | None) -> int | None:
    current = _current(c, mention_id)
    if current != expect:
        where = f"incident {current}" if current is not None else "no incident"
        raise Conflict(f"someone else already put it in {where}: nothing done")
    return current


def _set_link(c: sqlite3.Connection, mention_id: int, incident_id: int | None, old: int | None) -> None:
    c.execute(
        "UPDATE mentions SET incident_id = ?, rev = ? WHERE id = ?", (incident_id, max_rev_sync(c) + 1, mention_id)
    )
    for changed in {incident_id, old} - {None}:
        assert changed is not None
        refresh_profile_sync(c, changed)
        touch_sync(c, changed)


def link_sync(
    c: sqlite3.Connection, mention_id: int, incident_id: int, operator: str, expect: int | None, created: bool = False
) -> int:
    old = _expect(c, mention_id, expect)
    if old == incident_id:
        return 0
    target = incident_sync(c, incident_id)
    if not target.open:
        raise Conflict(f"incident {incident_id} is {target.status.value}: it takes no new reports")
    payload: dict[str, object] = {"incident": incident_id, "from": old, "title": target.title}
    if created:
        payload["created"] = True
    action_id = act_sync(c, mention_id, ActionKind.LINK, operator, payload)
    _set_link(c, mention_id, incident_id, old)
    return action_id


def unlink_sync(c: sqlite3.Connection, mention_id: int, operator: str, expect: int) -> int:
    _expect(c, mention_id, expect)
    action_id = act_sync(c, mention_id, ActionKind.UNLINK, operator, {"incident": expect})
    _set_link(c, mention_id, None, expect)
    return action_id


def undo_link_sync(c: sqlite3.Connection, mention_id: int, kind: ActionKind, payload: dict[str, Any]) -> None:
    """Apply the inverse link act_sync logged for `u` (db.actions._inverse): into `incident`, or out."""
    back = payload.get("incident") if kind is ActionKind.LINK else None
    _set_link(c, mention_id, None if back is None else int(back), _current(c, mention_id))


def create_sync(c: sqlite3.Connection, mention_id: int, operator: str, title: str, expect: int | None) -> int:
    _expect(c, mention_id, expect)
    row = mention_sync(c, mention_id)
    now = now_ms()
    cur = c.execute(
        "INSERT INTO incidents (title, status, created_at, created_by, updated_at, rev, gen)"
        " VALUES (?, 'open', ?, ?, ?, (SELECT coalesce(max(rev), 0) + 1 FROM incidents), lower(hex(randomblob(8))))",
        (clean_title(title) or draft_title(row), now, operator, now),
    )
    incident_id = int(cur.lastrowid or 0)
    c.execute("UPDATE incidents SET reference = ? WHERE id = ?", (incident_reference(incident_id), incident_id))
    link_sync(c, mention_id, incident_id, operator, expect, created=True)
    return incident_id


def create_for_remote_sync(c: sqlite3.Connection, source: str, remote_id: str, operator: str, title: str) -> int | None:
    r = c.execute(
        "SELECT id FROM mentions WHERE source = ? AND remote_id = ? AND incident_id IS NULL", (source, remote_id)
    ).fetchone()
    return None if r is None else create_sync(c, int(r[0]), operator, title, None)


def accept_sync(c: sqlite3.Connection, mention_id: int, operator: str) -> int:
    r = c.execute("SELECT incident_id, suggested_incident FROM mentions WHERE id = ?", (mention_id,)).fetchone()
    if r is None:
        raise NotFound(f"no mention {mention_id}")
    if r[0] is not None:
        raise Conflict(f"it is already in incident {r[0]}: nothing done")
    if r[1] is None:
        raise Conflict("it has no suggested incident: nothing done")
    link_sync(c, mention_id, int(r[1]), operator, None)
    return int(r[1])


def rename_sync(c: sqlite3.Connection, incident_id: int, title: str, operator: str, expect_rev: int) -> None:
    current = incident_sync(c, incident_id)
    if current.rev != expect_rev:
        raise Conflict("the incident changed meanwhile: nothing done")
    title = clean_title(title)
    if not title:
        raise ValueError("an incident needs a title")
    if title == current.title:
        return
    c.execute("UPDATE incidents SET title = ? WHERE id = ?", (title, incident_id))
    touch_sync(c, incident_id)
    _log_on_incident(c, incident_id, operator, {"renamed": title, "was": current.title})


def note_incident_sync(c: sqlite3.Connection, incident_id: int, text: str, operator: str) -> int:
    """An internal note on the incident as a whole: in its history, not one report's note."""
    incident_sync(c, incident_id)
    note = clean(text)[:NOTE_MAX]
    if not note:
        raise ValueError("an empty note")
    return _log_on_incident(c, incident_id, operator, {"text": note, "on_incident": True})


def _log_on_incident(c: sqlite3.Connection, incident_id: int, operator: str, payload: dict[str, object]) -> int:
    """A note in the incident's history (the actions log holds a mention: its first report's, or none
    when every report was unlinked, then 0 and nothing logged)."""
    r = c.execute(
        "SELECT id FROM mentions WHERE incident_id = ? ORDER BY first_seen_at, id LIMIT 1", (incident_id,)
    ).fetchone()
    if r is None:
        return 0
    return act_sync(c, int(r[0]), ActionKind.NOTE, operator, {"incident": incident_id, **payload})


def set_status_sync(c: sqlite3.Connection, incident_id: int, status: IncidentStatus, service: str | None) -> None:
    incident_sync(c, incident_id)
    now = now_ms()
    closed = status in (IncidentStatus.RESOLVED, IncidentStatus.DISMISSED)
    c.execute(
        "UPDATE incidents SET status = ?, service = coalesce(?, service),"
        " closed_at = CASE WHEN ? THEN coalesce(closed_at, ?) ELSE NULL END WHERE id = ?",
        (status.value, service, closed, now, incident_id),
    )
    touch_sync(c, incident_id, now)


# -- reads ---------------------------------------------------------------------------------------


def reports_sync(c: sqlite3.Connection, incident_id: int, status: Status | None = None) -> list[MentionRow]:
    where, params = ("AND status = ?", (incident_id, status.value)) if status else ("", (incident_id,))
    sql = f"SELECT {MENTION_COLUMNS} FROM mentions WHERE incident_id = ? {where} ORDER BY first_seen_at, id"
    return [row_to_mention(r) for r in c.execute(sql, params)]


def history_sync(c: sqlite3.Connection, incident_id: int) -> list[IncidentEvent]:
    return [
        IncidentEvent(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]))
        for r in c.execute(
            "SELECT id, mention_id, kind, operator, at, payload FROM actions WHERE incident_id = ? ORDER BY id",
            (incident_id,),
        )
    ]


def detail_sync(c: sqlite3.Connection, incident_id: int) -> IncidentDetail:
    from monitor.db.outbox import COLUMNS, _row  # the outbox imports the store, which imports this module

    incident = incident_sync(c, incident_id)
    items = [_row(r) for r in c.execute(f"SELECT {COLUMNS} FROM outbox WHERE incident_id = ? ORDER BY id",
                                        (incident_id,))]  # fmt: skip
    answered = frozenset(i.mention_id for i in items if i.kind in ("reply", "followup") and i.state != "cancelled")
    return IncidentDetail(
        incident, reports_sync(c, incident_id), history_sync(c, incident_id), items, Progress.of(items), answered
    )


# -- acting on every report, in one transaction --------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReportAct:
    """One report's action, and what it sends (its own outbox items)."""

    mention_id: int
    kind: ActionKind
    payload: dict[str, Any]
    items: Sequence[NewItem] = ()


@dataclass(frozen=True, slots=True)
class IncidentActs:
    """What an incident action does: each report's action, items shared by all (queued with the first
    report's action: an escalation listing every report), and the incident's new status."""

    acts: list[ReportAct]
    shared: list[NewItem] = field(default_factory=list)
    status: IncidentStatus | None = None
    service: str | None = None


# Given the incident, its reports (as stored, inside the transaction), their raw payloads and which
# reporters were already answered, what to do. Runs inside the transaction: a stale list is impossible.
IncidentPlan = Callable[[Incident, list[MentionRow], Callable[[int], dict[str, Any] | None], frozenset[int]],
                        IncidentActs]  # fmt: skip


def act_on_incident_sync(
    c: sqlite3.Connection, incident_id: int, operator: str, plan: IncidentPlan, expect_rev: int | None = None
) -> list[int]:
    from monitor.db.outbox import enqueue_sync, mention_raw_sync

    incident = incident_sync(c, incident_id)
    if expect_rev is not None and incident.rev != expect_rev:
        raise Conflict("the incident changed meanwhile: nothing done")
    if not incident.open:
        raise Conflict(f"incident {incident_id} is already {incident.status.value}: nothing done")
    answered = frozenset(
        int(r[0])
        for r in c.execute(
            "SELECT DISTINCT o.mention_id FROM outbox o JOIN mentions m ON m.id = o.mention_id WHERE"
            " m.incident_id = ? AND o.kind IN ('reply', 'followup') AND o.state != 'cancelled'",
            (incident_id,),
        )
    )
    acts = plan(incident, reports_sync(c, incident_id), lambda mid: mention_raw_sync(c, mid), answered)
    now, ids, queued = now_ms(), [], []
    for n, act in enumerate(acts.acts):
        payload = {**act.payload, "incident": incident_id, "reference": incident.reference}
        action_id = act_sync(c, act.mention_id, act.kind, operator, payload, at=now, touch_incident=False)
        queued += enqueue_sync(c, action_id, act.mention_id, [*act.items, *(acts.shared if n == 0 else ())])
        ids.append(action_id)
    for chunk in range(0, len(queued), 500):  # which incident they were for: its broadcast's progress
        part = queued[chunk : chunk + 500]
        c.execute(f"UPDATE outbox SET incident_id = ? WHERE id IN ({', '.join('?' * len(part))})", (incident_id, *part))
    if acts.status is not None:
        set_status_sync(c, incident_id, acts.status, acts.service)
    else:
        touch_sync(c, incident_id, now)
    return ids


# A pane's incident rows by (connection, status), with the generation they were read at: every change of an
# incident or of one of its reports' status writes a new generation (touch_sync), so a refresh with none
# costs one indexed lookup, like a pane without incidents.
_SUMMARIES: dict[tuple[int, Status], tuple[str, list[IncidentSummary]]] = {}


def pane_summaries_sync(c: sqlite3.Connection, status: Status) -> list[IncidentSummary]:
    r = c.execute("SELECT gen FROM incidents ORDER BY rev DESC LIMIT 1").fetchone()
    if r is None:
        return []
    key = (id(c), status)
    cached = _SUMMARIES.get(key)
    if cached is not None and cached[0] == r[0]:
        return cached[1]
    found = summaries_sync(c, status)
    if len(_SUMMARIES) >= 64:  # connections come and go: keep it bounded
        _SUMMARIES.clear()
    _SUMMARIES[key] = (r[0], found)
    return found


def summaries_sync(
    c: sqlite3.Connection, status: Status | None, incident_ids: Sequence[int] | None = None
) -> list[IncidentSummary]:
    """One summary per incident with reports (in `status` only, if given; of `incident_ids`, if given; else of
    the open incidents), counting those reports, its lead the first in that pane's order."""
    order = "status_at DESC, id DESC" if status is not None and status not in OPEN_STATUSES else PANE_ORDER
    conds: list[str] = ["incident_id IS NOT NULL"]
    params: list[object] = []
    if status is not None:
        conds.append("status = ?")
        params.append(status.value)
    if incident_ids is not None:
        conds.append(f"incident_id IN ({', '.join('?' * len(incident_ids))})")
        params += incident_ids
    elif status is None:
        conds.append("incident_id IN (SELECT id FROM incidents WHERE status IN (?, ?))")
        params += _OPEN
    where = " AND ".join(conds)
    counts = {
        r[0]: r[1:]
        for r in c.execute(
            "SELECT incident_id, count(*), group_concat(DISTINCT network), min(first_seen_at),"
            f" sum(first_response_at IS NULL) FROM mentions WHERE {where} GROUP BY incident_id",
            params,
        )
    }
    leads = {
        row.incident_id: row
        for row in (
            row_to_mention(r)
            for r in c.execute(
                f"SELECT {MENTION_COLUMNS} FROM (SELECT *, row_number() OVER (PARTITION BY incident_id"
                f" ORDER BY {order}) AS rn FROM mentions WHERE {where}) WHERE rn = 1",
                params,
            )
        )
    }
    marks = ", ".join("?" * len(counts))
    incidents = c.execute(f"SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id IN ({marks})", list(counts))
    return assemble(incidents, counts, leads)


def assemble(
    incidents: Iterable[Sequence[Any]], counts: Mapping[Any, Sequence[Any]], leads: Mapping[int | None, MentionRow]
) -> list[IncidentSummary]:
    """Summaries from incident rows, their (count, networks, oldest, unanswered) and their leads (either engine's)."""
    out = []
    for incident in map(_incident, incidents):
        n, networks, oldest, unanswered = counts[incident.id]
        lead = leads[incident.id]
        out.append(IncidentSummary(incident, n, tuple(sorted(set(networks.split(",")))), oldest, lead.priority,
                                   lead, int(unanswered)))  # fmt: skip
    return out


PANE_ORDER = "priority, first_seen_at, id"


def open_sync(c: sqlite3.Connection, limit: int = 500) -> list[IncidentSummary]:
    """Open and escalated incidents (those with no report left too), the most urgent first."""
    empty = c.execute(f"SELECT {INCIDENT_COLUMNS} FROM incidents WHERE status IN (?, ?) ORDER BY id", _OPEN)
    return open_list(summaries_sync(c, None), empty, limit)


def open_list(found: list[IncidentSummary], open_rows: Iterable[Sequence[Any]], limit: int) -> list[IncidentSummary]:
    """The most urgent first, then the open incidents with no report left (either engine's rows)."""
    seen = {s.incident.id for s in found}
    found.sort(key=lambda s: (int(s.priority), s.oldest_seen_at, s.incident.id))
    empty = [_empty_summary(i) for i in map(_incident, open_rows) if i.id not in seen]
    return found[:limit] + empty[: max(0, limit - len(found))]


def _empty_summary(incident: Incident) -> IncidentSummary:
    """An incident whose reports were all unlinked: still open, listed last, with no lead of its own."""
    lead = MentionRow(0, "", "", "", "", "", incident.title, "", None, None, None, (), Priority.NORMAL,
                      Status.NEW, incident.created_at, incident.created_at, incident.created_at, None, None, None,
                      incident.rev, incident_id=incident.id)  # fmt: skip
    return IncidentSummary(incident, 0, (), incident.created_at, Priority.NORMAL, lead, 0)


def _pane_key(row: MentionRow, status: Status) -> tuple[int, ...]:
    if status in OPEN_STATUSES:
        return (int(row.priority), row.first_seen_at, row.id)
    return (-row.status_at, -row.id)


def pane_entries_sync(
    c: sqlite3.Connection, status: Status, limit: int, after: MentionRow | None = None
) -> list[PaneEntry]:
    """A page of a pane with one row per incident, in the pane's order (an incident where its lead sorts)."""
    return merge_pane(pane_sync(c, status, limit, after, unlinked=True), pane_summaries_sync(c, status), status,
                      limit, after)  # fmt: skip


def merge_pane(
    singles: Sequence[MentionRow], summaries: Sequence[IncidentSummary], status: Status, limit: int,
    after: MentionRow | None,
) -> list[PaneEntry]:  # fmt: skip
    """A pane's page from its unlinked mentions and its incidents' rows (either engine's), in the pane's order."""
    floor = _pane_key(after, status) if after is not None else None
    groups: list[PaneEntry] = [s for s in summaries if floor is None or _pane_key(s.lead, status) > floor]
    merged = sorted(
        [*singles, *groups], key=lambda e: _pane_key(e.lead if isinstance(e, IncidentSummary) else e, status)
    )
    return merged[:limit]
