"""The action log in SQL: an action and its status change in one transaction, undo (reopen), and the history."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping

from monitor.core.models import LINK_KINDS, RESPONSE_KINDS, STATUS_AFTER, ActionKind, ActionRow, Status
from monitor.core.timeutil import now_ms
from monitor.db import clocks
from monitor.db.api import Conflict, NotFound
from monitor.db.faults import StoreError
from monitor.db.mentions import max_rev_sync
from monitor.db.rows import ACTION_COLUMNS, UNDOABLE_SQL, inverse_link, last_undoable, row_to_action

# Runs inside the action's transaction, given the new action's id (the outbox writes its items there).
Then = Callable[[sqlite3.Connection, int], object]


def act_sync(
    c: sqlite3.Connection,
    mention_id: int,
    kind: ActionKind,
    operator: str,
    payload: Mapping[str, object],
    at: int | None = None,
    then: Then | None = None,
    expect_status: Status | None = None,
    touch_incident: bool = True,
) -> int:
    row = c.execute(
        "SELECT status, first_response_at, incident_id FROM mentions WHERE id = ?", (mention_id,)
    ).fetchone()
    if row is None:
        raise NotFound(f"no mention {mention_id}")
    status_before, first_response_at, in_incident = Status(row[0]), row[1], row[2]
    if expect_status is not None and status_before is not expect_status:
        # Another operator acted first: the action was meant for what this operator saw.
        raise Conflict(f"someone else already moved it to {status_before.value}: nothing done")
    at = at if at is not None else now_ms()
    relink: tuple[ActionKind, dict[str, object]] | None = None
    if kind is ActionKind.REOPEN:
        undone = _last_undoable(c, mention_id)
        if undone is None:
            raise StoreError("nothing to reopen or undo")
        after = undone[1]
        payload = {**payload, "undid": undone[0], "from": status_before.value}
        since = _entered_at(c, mention_id, after, undone[0])  # the age clock resumes, it does not restart
        if undone[2] is not None:  # a link or unlink is undone by its inverse (not a reopen: no clock moves)
            kind, payload = inverse_link(undone[0], *undone[2])
            relink = (kind, payload)
    else:
        after = STATUS_AFTER[kind] or status_before
        since = at
    incident = payload.get("incident")  # an action on an incident's report is part of its history
    cur = c.execute(
        "INSERT INTO actions (mention_id, kind, operator, at, status_before, status_after, payload, incident_id)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (mention_id, kind.value, operator, at, status_before.value, after.value,
         json.dumps(dict(payload), ensure_ascii=False), incident if isinstance(incident, int) else None),
    )  # fmt: skip
    rev = max_rev_sync(c) + 1
    first = kind in RESPONSE_KINDS and first_response_at is None
    c.execute(
        "UPDATE mentions SET status = ?, status_at = CASE WHEN status != ? THEN ? ELSE status_at END, rev = ?,"
        " first_response_at = CASE WHEN ? THEN ? ELSE first_response_at END,"
        " first_response_by = CASE WHEN ? THEN ? ELSE first_response_by END WHERE id = ?",
        (after.value, after.value, since, rev, first, at, first, operator, mention_id),
    )
    clocks.refresh(c, mention_id)  # the per-mention clocks the statistics read (monitor.db.clocks)
    action_id = int(cur.lastrowid or 0)
    if relink is not None or in_incident is not None:
        from monitor.db.incidents import touch_sync, undo_link_sync  # they log their links through this module

        if relink is not None:
            undo_link_sync(c, mention_id, *relink)
        elif kind not in LINK_KINDS and touch_incident:  # a report changed: its incident's row is read again
            touch_sync(c, in_incident, at)
    if then is not None:
        then(c, action_id)
    return action_id


def _last_undoable(
    c: sqlite3.Connection, mention_id: int
) -> tuple[int, Status, tuple[ActionKind, dict[str, object]] | None] | None:
    return last_undoable(c.execute(UNDOABLE_SQL.format(mark="?"), (mention_id,)))


def _entered_at(c: sqlite3.Connection, mention_id: int, status: Status, before_action: int) -> int:
    """When the mention last entered `status` by an action (not a reopen) before `before_action`."""
    row = c.execute(
        "SELECT max(at) FROM actions WHERE mention_id = ? AND id < ? AND status_after = ?"
        " AND status_before != status_after AND kind != 'reopen'",
        (mention_id, before_action, status.value),
    ).fetchone()
    if row[0] is not None:
        return int(row[0])
    return int(c.execute("SELECT first_seen_at FROM mentions WHERE id = ?", (mention_id,)).fetchone()[0])


def actions_sync(c: sqlite3.Connection, mention_id: int) -> list[ActionRow]:
    sql = f"SELECT {ACTION_COLUMNS} FROM actions WHERE mention_id = ? ORDER BY id"
    return [row_to_action(r) for r in c.execute(sql, (mention_id,))]
