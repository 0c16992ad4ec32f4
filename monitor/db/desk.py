"""The desk's reads that span several tables: the selected mention's panel, and the shift handover.

Each is one hop to the database thread, so the panel shows one consistent moment.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import cast

from monitor.core.models import ActionRow, MentionRow
from monitor.db.handover import Handover, summary_sync
from monitor.db.outbox import OutboxItem, for_mention_sync
from monitor.db.related import related_sync
from monitor.db.store import Store, actions_sync, mention_sync, thread_sync


@dataclass(frozen=True)
class Detail:
    """What the detail panel shows about one mention."""

    row: MentionRow
    actions: list[ActionRow]
    thread: list[MentionRow]
    deliveries: list[OutboxItem]
    related: list[tuple[float, MentionRow]]


def detail_sync(c: sqlite3.Connection, mention_id: int) -> Detail:
    row = mention_sync(c, mention_id)
    return Detail(
        row=row,
        actions=actions_sync(c, mention_id),
        thread=thread_sync(c, row),
        deliveries=for_mention_sync(c, mention_id),
        related=related_sync(c, row),
    )


async def detail(store: Store, mention_id: int) -> Detail:
    """The mention as it is now, with its actions, thread, deliveries and likely duplicates."""
    return cast(Detail, await store._read(lambda c: detail_sync(c, mention_id)))


async def handover(store: Store, since: int, now: int, target_ms: int) -> Handover:
    """What happened between `since` and `now` (breaches judged against the first-response target)."""
    return cast(Handover, await store._read(lambda c: summary_sync(c, since, now, target_ms)))
