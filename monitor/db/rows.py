"""What both engines share: stored rows into the core's dataclasses, and the pure-Python decisions on them.

SQLite hands JSON columns back as text, PostgreSQL (jsonb) as Python values: `loads` takes either. The SQL
itself stays with each engine (monitor.db for SQLite, monitor.db.pg for PostgreSQL).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from monitor.core.models import (
    LINK_KINDS,
    OPEN_STATUSES,
    TERM_SEP,
    ActionKind,
    ActionRow,
    MatchResult,
    Mention,
    MentionRow,
    Priority,
    Status,
)  # fmt: skip
from monitor.core.outbox import ItemKind, OutboxItem, OutboxState
from monitor.core.timeutil import to_ms

MENTION_COLUMNS = (
    "id, source, network, remote_id, author, author_name, text, url, lang, thread_id, reply_to, terms,"
    " priority, status, published_at, first_seen_at, status_at, first_response_at, edited_at,"
    " deleted_at, rev, to_us, incident_id, suggested_incident, suggestion_score"
)
ACTION_COLUMNS = "id, mention_id, kind, operator, at, payload"
OUTBOX_COLUMNS = (
    "id, action_id, mention_id, kind, target, idem_key, payload, state, attempts, next_attempt_at,"
    " claimed_at, last_error, remote_id, remote_url, remote_status, checked_at, created_at, updated_at"
)


# A new mention's columns, in the order `new_mention_rows` gives their values (status is 'new').
INSERT_COLUMNS = (
    "source, remote_id, network, author, author_name, text, url, lang, thread_id, reply_to, terms, priority,"
    " published_at, first_seen_at, status_at, rev, raw, to_us"
)


def new_mention_rows(
    source: str, matched: Sequence[tuple[Mention, MatchResult]], rev: int, seen: int
) -> list[tuple[Any, ...]]:
    """A poll's new mentions as INSERT_COLUMNS values, numbered after `rev` (the raw payload as JSON text)."""
    return [
        (
            source,
            m.remote_id,
            m.network,
            m.author,
            m.author_name,
            m.text,
            m.url,
            m.lang,
            m.thread_id,
            m.reply_to,
            TERM_SEP.join(r.terms),
            int(r.priority),
            to_ms(m.published_at),
            seen,
            seen,
            rev + i + 1,
            json.dumps(m.raw, ensure_ascii=False) if m.raw is not None else None,
            int(m.to_us),
        )  # fmt: skip
        for i, (m, r) in enumerate(matched)
    ]


def loads(value: Any) -> Any:
    """A JSON column's value: parsed from SQLite's text, as is from PostgreSQL's jsonb."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def row_to_mention(r: Sequence[Any]) -> MentionRow:
    return MentionRow(
        id=r[0], source=r[1], network=r[2], remote_id=r[3], author=r[4], author_name=r[5], text=r[6],
        url=r[7], lang=r[8], thread_id=r[9], reply_to=r[10],
        terms=tuple(r[11].split(TERM_SEP)) if r[11] else (),
        priority=Priority(r[12]), status=Status(r[13]), published_at=r[14], first_seen_at=r[15],
        status_at=r[16], first_response_at=r[17], edited_at=r[18], deleted_at=r[19], rev=r[20],
        to_us=bool(r[21]), incident_id=r[22], suggested_incident=r[23], suggestion_score=r[24] or 0.0,
    )  # fmt: skip


def row_to_action(r: Sequence[Any]) -> ActionRow:
    return ActionRow(r[0], r[1], ActionKind(r[2]), r[3], r[4], loads(r[5]))


def row_to_outbox(r: Sequence[Any]) -> OutboxItem:
    return OutboxItem(
        r[0], r[1], r[2], ItemKind(r[3]), r[4], r[5], loads(r[6]), OutboxState(r[7]),
        r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15], r[16], r[17],
    )  # fmt: skip


# The actions `u` may undo, newest first: (id, kind, status_before, payload) for either engine's placeholder.
UNDOABLE_SQL = (
    "SELECT id, kind, status_before, payload FROM actions WHERE mention_id = {mark}"
    " AND (status_before != status_after OR kind IN ('reopen', 'link', 'unlink')) ORDER BY id DESC"
)


def last_undoable(
    changes: Iterable[Sequence[Any]],
) -> tuple[int, Status, tuple[ActionKind, dict[str, object]] | None] | None:
    """The latest status change or incident link not yet undone, and the status it came from (with the
    link's kind and payload when it was a link or unlink).

    `changes`: a mention's rows from UNDOABLE_SQL, newest first.
    """
    undone: set[int | None] = set()
    for action_id, kind, before, payload in changes:
        undid = loads(payload).get("undid") if kind in ("reopen", "link", "unlink") else None
        if kind == ActionKind.REOPEN or undid is not None:  # an undo is not itself undone by `u`
            undone.add(undid)
        elif action_id not in undone:
            link = (ActionKind(kind), loads(payload)) if kind in LINK_KINDS else None
            return int(action_id), Status(before), link
    return None


def inverse_link(action_id: int, kind: ActionKind, payload: dict[str, object]) -> tuple[ActionKind, dict[str, object]]:
    """The link that undoes a link or unlink: back to the incident it came from, or out again."""
    if kind is ActionKind.UNLINK:
        return ActionKind.LINK, {"incident": payload.get("incident"), "from": None, "undid": action_id}
    if payload.get("from") is None:
        return ActionKind.UNLINK, {"incident": payload.get("incident"), "undid": action_id}
    return ActionKind.LINK, {"incident": payload.get("from"), "from": payload.get("incident"), "undid": action_id}


def pane_order(status: Status, after: MentionRow | None, mark: str) -> tuple[str, str, tuple[int, ...]]:
    """A pane's ORDER BY, the keyset condition after `after` (with `mark` as the engine's placeholder) and its
    parameters. Open panes: most urgent first, then the longest waiting. Closed panes: the latest closed first."""
    key: tuple[int, ...]
    if status in OPEN_STATUSES:
        order, cmp, cols = "priority, first_seen_at, id", ">", "(priority, first_seen_at, id)"
        key = (int(after.priority), after.first_seen_at, after.id) if after else ()
    else:
        order, cmp, cols = "status_at DESC, id DESC", "<", "(status_at, id)"
        key = (after.status_at, after.id) if after else ()
    where = f" AND {cols} {cmp} ({', '.join([mark] * len(key))})" if key else ""
    return order, where, key
