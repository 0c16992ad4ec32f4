"""Incidents in PostgreSQL (as monitor.db.incidents): create, link, unlink, move, each an action in the log.

A link locks the mention's row (FOR UPDATE) before it reads which incident the mention is in: of two operators
linking one mention at once, the second waits for the first to commit, then reads its link and is refused
with Conflict, like any stale action. The pure decisions (titles, summaries, the pane's order, suggestions)
are monitor.db.incidents' and monitor.db.suggest's.
"""

from __future__ import annotations

from typing import Any

from monitor.core.incidents import (
    Incident,
    IncidentDetail,
    IncidentEvent,
    IncidentStatus,
    IncidentSummary,
    Progress,
    Suggestion,
    clean_title,
    draft_title,
    incident_reference,
)
from monitor.core.models import OPEN_STATUSES, ActionKind, MatchResult, Mention, MentionRow, Status
from monitor.core.sanitize import clean
from monitor.core.timeutil import now_ms
from monitor.db.api import Conflict, NotFound, PaneEntry
from monitor.db.incidents import (
    _OPEN,
    INCIDENT_COLUMNS,
    NOTE_MAX,
    PANE_ORDER,
    IncidentPlan,
    _incident,
    assemble,
    merge_pane,
    open_list,
)  # fmt: skip
from monitor.db.pg import actions as pg_actions
from monitor.db.pg.mentions import Conn, every, mention, next_rev, one, pane
from monitor.db.rows import MENTION_COLUMNS, OUTBOX_COLUMNS, loads, row_to_mention, row_to_outbox
from monitor.db.suggest import (
    GEN_SQL,
    OPEN_PROFILES_SQL,
    PROFILE_REPORTS,
    PROFILE_SQL,
    build_index,
    cached,
    keep,
    merged_profile,
    rank,
    score_batch,
)  # fmt: skip

_GEN = "md5(random()::text)"  # a new generation token with every change (the suggestions' index keys on it)


async def incident(c: Conn, incident_id: int, lock: bool = False) -> Incident:
    r = await one(
        c, f"SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = %s{' FOR UPDATE' if lock else ''}", (incident_id,)
    )
    if r is None:
        raise NotFound(f"no incident {incident_id}")
    return _incident(r)


async def touch(c: Conn, incident_id: int, now: int | None = None) -> None:
    """A new rev (from the one counter: writers in order, listeners told) and generation."""
    await c.execute(
        f"UPDATE incidents SET rev = %s, updated_at = %s, gen = {_GEN} WHERE id = %s",
        (await next_rev(c), now if now is not None else now_ms(), incident_id),
    )


async def _current(c: Conn, mention_id: int) -> int | None:
    r = await one(c, "SELECT incident_id FROM mentions WHERE id = %s FOR UPDATE", (mention_id,))
    if r is None:
        raise NotFound(f"no mention {mention_id}")
    return None if r[0] is None else int(r[0])


async def _expect(c: Conn, mention_id: int, expect: int | None) -> int | None:
    current = await _current(c, mention_id)
    if current != expect:
        where = f"incident {current}" if current is not None else "no incident"
        raise Conflict(f"someone else already put it in {where}: nothing done")
    return current


async def _set_link(c: Conn, mention_id: int, incident_id: int | None, old: int | None) -> None:
    await c.execute(
        "UPDATE mentions SET incident_id = %s, rev = %s WHERE id = %s", (incident_id, await next_rev(c), mention_id)
    )
    for changed in sorted(i for i in {incident_id, old} if i is not None):
        rows = await every(c, PROFILE_SQL.format(mark="%s"), (changed, PROFILE_REPORTS))
        await c.execute("UPDATE incidents SET profile = %s WHERE id = %s", (merged_profile(rows), changed))
        await touch(c, changed)


async def link(
    c: Conn, mention_id: int, incident_id: int, operator: str, expect: int | None, created: bool = False
) -> int:
    old = await _expect(c, mention_id, expect)
    if old == incident_id:
        return 0
    target = await incident(c, incident_id, lock=True)
    if not target.open:
        raise Conflict(f"incident {incident_id} is {target.status.value}: it takes no new reports")
    payload: dict[str, object] = {"incident": incident_id, "from": old, "title": target.title}
    if created:
        payload["created"] = True
    action_id = await pg_actions.act(c, mention_id, ActionKind.LINK, operator, payload)
    await _set_link(c, mention_id, incident_id, old)
    return action_id


async def unlink(c: Conn, mention_id: int, operator: str, expect: int) -> int:
    await _expect(c, mention_id, expect)
    action_id = await pg_actions.act(c, mention_id, ActionKind.UNLINK, operator, {"incident": expect})
    await _set_link(c, mention_id, None, expect)
    return action_id


async def undo_link(c: Conn, mention_id: int, kind: ActionKind, payload: dict[str, Any]) -> None:
    """Apply the inverse link pg_actions.act logged for `u` (monitor.db.rows.inverse_link)."""
    back = payload.get("incident") if kind is ActionKind.LINK else None
    await _set_link(c, mention_id, None if back is None else int(back), await _current(c, mention_id))


async def create(c: Conn, mention_id: int, operator: str, title: str, expect: int | None) -> int:
    await _expect(c, mention_id, expect)
    row = await mention(c, mention_id)
    now = now_ms()
    r = await one(
        c,
        "INSERT INTO incidents (title, status, created_at, created_by, updated_at, rev, gen)"
        f" VALUES (%s, 'open', %s, %s, %s, %s, {_GEN}) RETURNING id",
        (clean_title(title) or draft_title(row), now, operator, now, await next_rev(c)),
    )
    assert r is not None
    incident_id = int(r[0])
    await c.execute("UPDATE incidents SET reference = %s WHERE id = %s", (incident_reference(incident_id), incident_id))
    await link(c, mention_id, incident_id, operator, expect, created=True)
    return incident_id


async def create_for_remote(c: Conn, source: str, remote_id: str, operator: str, title: str) -> int | None:
    r = await one(
        c, "SELECT id FROM mentions WHERE source = %s AND remote_id = %s AND incident_id IS NULL", (source, remote_id)
    )
    return None if r is None else await create(c, int(r[0]), operator, title, None)


async def accept(c: Conn, mention_id: int, operator: str) -> int:
    r = await one(c, "SELECT incident_id, suggested_incident FROM mentions WHERE id = %s FOR UPDATE", (mention_id,))
    if r is None:
        raise NotFound(f"no mention {mention_id}")
    if r[0] is not None:
        raise Conflict(f"it is already in incident {r[0]}: nothing done")
    if r[1] is None:
        raise Conflict("it has no suggested incident: nothing done")
    await link(c, mention_id, int(r[1]), operator, None)
    return int(r[1])


async def rename(c: Conn, incident_id: int, title: str, operator: str, expect_rev: int) -> None:
    current = await incident(c, incident_id, lock=True)
    if current.rev != expect_rev:
        raise Conflict("the incident changed meanwhile: nothing done")
    title = clean_title(title)
    if not title:
        raise ValueError("an incident needs a title")
    if title == current.title:
        return
    await c.execute("UPDATE incidents SET title = %s WHERE id = %s", (title, incident_id))
    await touch(c, incident_id)
    await _log_on_incident(c, incident_id, operator, {"renamed": title, "was": current.title})


async def note_incident(c: Conn, incident_id: int, text: str, operator: str) -> int:
    """An internal note on the incident as a whole: in its history, not one report's note."""
    await incident(c, incident_id, lock=True)
    note = clean(text)[:NOTE_MAX]
    if not note:
        raise ValueError("an empty note")
    return await _log_on_incident(c, incident_id, operator, {"text": note, "on_incident": True})


async def _log_on_incident(c: Conn, incident_id: int, operator: str, payload: dict[str, object]) -> int:
    """As monitor.db.incidents: logged on the first report (0 and nothing logged when none is left)."""
    r = await one(
        c, "SELECT id FROM mentions WHERE incident_id = %s ORDER BY first_seen_at, id LIMIT 1", (incident_id,)
    )
    if r is None:
        return 0
    return await pg_actions.act(c, int(r[0]), ActionKind.NOTE, operator, {"incident": incident_id, **payload})


async def incidents_rev(c: Conn) -> int:
    r = await one(c, "SELECT coalesce(max(rev), 0) FROM incidents")
    return 0 if r is None else int(r[0])


async def set_status(c: Conn, incident_id: int, status: IncidentStatus, service: str | None) -> None:
    await incident(c, incident_id, lock=True)
    now = now_ms()
    closed = status in (IncidentStatus.RESOLVED, IncidentStatus.DISMISSED)
    await c.execute(
        "UPDATE incidents SET status = %s, service = coalesce(%s, service),"
        " closed_at = CASE WHEN %s THEN coalesce(closed_at, %s) ELSE NULL END WHERE id = %s",
        (status.value, service, closed, now, incident_id),
    )
    await touch(c, incident_id, now)


async def act_on_incident(
    c: Conn, incident_id: int, operator: str, plan: IncidentPlan, expect_rev: int | None = None
) -> list[int]:
    """As monitor.db.incidents.act_on_incident_sync. The incident's row is locked first: a second operator's
    action on it waits, then reads the rev the first left and is refused (expect_rev) or sees it closed."""
    from monitor.db.pg.outbox import enqueue, mention_raw  # the outbox imports the store, which imports this

    found = await incident(c, incident_id, lock=True)
    if expect_rev is not None and found.rev != expect_rev:
        raise Conflict("the incident changed meanwhile: nothing done")
    if not found.open:
        raise Conflict(f"incident {incident_id} is already {found.status.value}: nothing done")
    answered = frozenset(
        int(r[0])
        for r in await every(
            c,
            "SELECT DISTINCT o.mention_id FROM outbox o JOIN mentions m ON m.id = o.mention_id WHERE"
            " m.incident_id = %s AND o.kind IN ('reply', 'followup') AND o.state != 'cancelled'",
            (incident_id,),
        )
    )
    rows = await reports(c, incident_id)
    raws = {row.id: await mention_raw(c, row.id) for row in rows}  # the plan reads them synchronously
    acts = plan(found, rows, lambda mid: raws.get(mid), answered)
    now, ids, queued = now_ms(), [], []
    for n, act in enumerate(acts.acts):
        payload = {**act.payload, "incident": incident_id, "reference": found.reference}
        action_id = await pg_actions.act(c, act.mention_id, act.kind, operator, payload, at=now, touch_incident=False)
        queued += await enqueue(c, action_id, act.mention_id, [*act.items, *(acts.shared if n == 0 else ())])
        ids.append(action_id)
    await c.execute("UPDATE outbox SET incident_id = %s WHERE id = ANY(%s)", (incident_id, queued))
    if acts.status is not None:
        await set_status(c, incident_id, acts.status, acts.service)
    else:
        await touch(c, incident_id, now)
    return ids


# -- suggestions ------------------------------------------------------------------------------------


async def _index(c: Conn) -> Any:
    """As monitor.db.suggest's: the open incidents' profiles, read again only when an incident changed since."""
    r = await one(c, GEN_SQL)
    if r is None:
        return None
    return cached(c, r[0]) or keep(c, build_index(r[0], await every(c, OPEN_PROFILES_SQL)))


async def score_new(c: Conn, matched: list[tuple[Mention, MatchResult]], seen: int) -> dict[str, tuple[int, float]]:
    """As monitor.db.suggest.suggest_new_sync, in the ingest's transaction but before it reserves its revs:
    the ingest stores each new mention with its suggestion, and no other writer waits while it scores."""
    return score_batch(await _index(c), matched, seen)


async def rank_incidents(c: Conn, mention_id: int, limit: int) -> list[Suggestion]:
    return rank(await _index(c), await mention(c, mention_id), limit)


# -- reads ---------------------------------------------------------------------------------------


async def reports(c: Conn, incident_id: int, status: Status | None = None) -> list[MentionRow]:
    where, params = ("AND status = %s", (incident_id, status.value)) if status else ("", (incident_id,))
    sql = f"SELECT {MENTION_COLUMNS} FROM mentions WHERE incident_id = %s {where} ORDER BY first_seen_at, id"
    return [row_to_mention(r) for r in await every(c, sql, params)]


async def detail(c: Conn, incident_id: int) -> IncidentDetail:
    found = await incident(c, incident_id)
    sql = f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE incident_id = %s ORDER BY id"
    items = [row_to_outbox(r) for r in await every(c, sql, (incident_id,))]
    answered = frozenset(i.mention_id for i in items if i.kind in ("reply", "followup") and i.state != "cancelled")
    history = [
        IncidentEvent(r[0], r[1], r[2], r[3], r[4], loads(r[5]))
        for r in await every(
            c,
            "SELECT id, mention_id, kind, operator, at, payload FROM actions WHERE incident_id = %s ORDER BY id",
            (incident_id,),
        )
    ]
    return IncidentDetail(found, await reports(c, incident_id), history, items, Progress.of(items), answered)


async def summaries(c: Conn, status: Status | None) -> list[IncidentSummary]:
    """As monitor.db.incidents.summaries_sync (of the open incidents when `status` is None)."""
    order = "status_at DESC, id DESC" if status is not None and status not in OPEN_STATUSES else PANE_ORDER
    conds, params = ["incident_id IS NOT NULL"], []
    if status is not None:
        conds.append("status = %s")
        params.append(status.value)
    else:
        conds.append("incident_id IN (SELECT id FROM incidents WHERE status IN (%s, %s))")
        params += _OPEN
    where = " AND ".join(conds)
    counts = {
        r[0]: r[1:]
        for r in await every(
            c,
            "SELECT incident_id, count(*), string_agg(DISTINCT network, ','), min(first_seen_at),"
            f" count(*) FILTER (WHERE first_response_at IS NULL) FROM mentions WHERE {where} GROUP BY incident_id",
            params,
        )
    }
    leads = {
        row.incident_id: row
        for row in map(
            row_to_mention,
            await every(
                c,
                f"SELECT {MENTION_COLUMNS} FROM (SELECT *, row_number() OVER (PARTITION BY incident_id"
                f" ORDER BY {order}) AS rn FROM mentions WHERE {where}) AS ranked WHERE rn = 1",
                params,
            ),
        )
    }
    rows = await every(c, f"SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = ANY(%s)", (list(counts),))
    return assemble(rows, counts, leads)


async def open_incidents(c: Conn, limit: int) -> list[IncidentSummary]:
    empty = await every(c, f"SELECT {INCIDENT_COLUMNS} FROM incidents WHERE status IN (%s, %s) ORDER BY id", _OPEN)
    return open_list(await summaries(c, None), empty, limit)


async def pane_entries(c: Conn, status: Status, limit: int, after: MentionRow | None) -> list[PaneEntry]:
    singles = await pane(c, status, limit, after, None, unlinked=True)
    return merge_pane(singles, await summaries(c, status), status, limit, after)
