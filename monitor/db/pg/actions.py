"""The action log in PostgreSQL: an action and its status change in one transaction, under the mention's row lock."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from psycopg.types.json import Jsonb

from monitor.core.models import LINK_KINDS, RESPONSE_KINDS, STATUS_AFTER, ActionKind, ActionRow, Status
from monitor.core.timeutil import now_ms
from monitor.db.api import Conflict, NotFound
from monitor.db.faults import StoreError
from monitor.db.migrations import REOPENED, RESOLVED
from monitor.db.pg.mentions import Conn, every, one, touch
from monitor.db.pg.schema import SERVICE, STANDING
from monitor.db.rows import ACTION_COLUMNS, UNDOABLE_SQL, inverse_link, last_undoable, row_to_action

# Runs inside the action's transaction, given the new action's id (the outbox writes its items there).
Then = Callable[[Conn, int], Awaitable[object]]

_REFRESH = (
    f"UPDATE mentions SET (escalated_at, escalated_to) = (SELECT a.at, {SERVICE} {STANDING}), reopened = {REOPENED}"
    " WHERE id = %s",
    f"UPDATE mentions SET resolved_at = {RESOLVED} WHERE id = %s",
)


async def act(
    c: Conn,
    mention_id: int,
    kind: ActionKind,
    operator: str,
    payload: Mapping[str, object],
    at: int | None = None,
    then: Then | None = None,
    expect_status: Status | None = None,
    touch_incident: bool = True,
) -> int:
    """As monitor.db.actions.act_sync. The row lock (FOR UPDATE) makes a second operator's action on the same
    mention wait for the first to commit, then read the status it left: a stale action is refused."""
    row = await one(
        c, "SELECT status, first_response_at, incident_id FROM mentions WHERE id = %s FOR UPDATE", (mention_id,)
    )
    if row is None:
        raise NotFound(f"no mention {mention_id}")
    status_before, first_response_at, in_incident = Status(row[0]), row[1], row[2]
    if expect_status is not None and status_before is not expect_status:
        raise Conflict(f"someone else already moved it to {status_before.value}: nothing done")
    at = at if at is not None else now_ms()
    relink: tuple[ActionKind, dict[str, object]] | None = None
    if kind is ActionKind.REOPEN:
        undone = last_undoable(await every(c, UNDOABLE_SQL.format(mark="%s"), (mention_id,)))
        if undone is None:
            raise StoreError("nothing to reopen or undo")
        after = undone[1]
        payload = {**payload, "undid": undone[0], "from": status_before.value}
        since = await _entered_at(c, mention_id, after, undone[0])
        if undone[2] is not None:  # a link or unlink is undone by its inverse (not a reopen: no clock moves)
            kind, payload = inverse_link(undone[0], *undone[2])
            relink = (kind, payload)
    else:
        after = STATUS_AFTER[kind] or status_before
        since = at
    incident = payload.get("incident")  # an action on an incident's report is part of its history
    # Its id is read after the statements below are sent: in a pipeline (PgStore.act), one round trip for all.
    logged = await c.execute(
        "INSERT INTO actions (mention_id, kind, operator, at, status_before, status_after, payload, incident_id)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (mention_id, kind.value, operator, at, status_before.value, after.value, Jsonb(dict(payload)),
         incident if isinstance(incident, int) else None),
    )  # fmt: skip
    first = kind in RESPONSE_KINDS and first_response_at is None
    await c.execute(
        "UPDATE mentions SET status = %s, status_at = CASE WHEN status != %s THEN %s ELSE status_at END,"
        " first_response_at = CASE WHEN %s THEN %s ELSE first_response_at END,"
        " first_response_by = CASE WHEN %s THEN %s::text ELSE first_response_by END WHERE id = %s",
        (after.value, after.value, since, first, at, first, operator, mention_id),
    )
    for sql in _REFRESH:  # the per-mention clocks the statistics read
        await c.execute(sql, (mention_id,))
    inserted = await logged.fetchone()
    assert inserted is not None
    action_id = int(inserted[0])
    if relink is not None or in_incident is not None:
        from monitor.db.pg import incidents as pg_incidents  # they log their links through this module

        if relink is not None:
            await pg_incidents.undo_link(c, mention_id, *relink)
        elif kind not in LINK_KINDS and touch_incident:  # a report changed: its incident's row is read again
            await pg_incidents.touch(c, in_incident, at)
    if then is not None:
        await then(c, action_id)
    # Its new rev last: every other writer waits for the counter's lock from here to the commit only.
    await touch(c, mention_id)
    return action_id


async def _entered_at(c: Conn, mention_id: int, status: Status, before_action: int) -> int:
    row = await one(
        c,
        "SELECT max(at) FROM actions WHERE mention_id = %s AND id < %s AND status_after = %s"
        " AND status_before != status_after AND kind != 'reopen'",
        (mention_id, before_action, status.value),
    )
    if row is not None and row[0] is not None:
        return int(row[0])
    seen = await one(c, "SELECT first_seen_at FROM mentions WHERE id = %s", (mention_id,))
    assert seen is not None
    return int(seen[0])


async def actions(c: Conn, mention_id: int) -> list[ActionRow]:
    sql = f"SELECT {ACTION_COLUMNS} FROM actions WHERE mention_id = %s ORDER BY id"
    return [row_to_action(r) for r in await every(c, sql, (mention_id,))]
