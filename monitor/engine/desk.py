"""What the duty desk reads and writes besides its panes, with no screen in sight.

The desk screen shows these; it does not know how they are gathered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path

from monitor.core.models import SourceState, Status
from monitor.core.timeutil import now_ms
from monitor.db.presence import Presence
from monitor.db.store import Store, open_sync
from monitor.engine.collector import SourceStatus

HANDOVER_DEFAULT_MS = 12 * 3600_000  # a first shift: what happened in the last 12 hours


@dataclass(frozen=True)
class Roster:
    """Who is on duty, who collects (when not this process), and the sources' stored states."""

    on_duty: list[str]
    collector_elsewhere: str | None  # the lease holder; "" = nobody; None = not asked (this process leads)
    sources: list[SourceStatus]


async def roster(store: Store, presence: Presence, leading: bool) -> Roster:
    on_duty = await presence.on_duty()
    elsewhere = None
    if not leading:
        held = await presence.lease_holder()
        elsewhere = held[0] if held else ""
    # Read even when collecting here: a new leader's sources know only their own (maybe no) success.
    sources = [
        SourceStatus(name, SourceState(state), detail, until, last_ok)
        for name, state, detail, until, last_ok in await store.source_states()
    ]
    return Roster(on_duty, elsewhere, sources)


async def handover_since(presence: Presence, now: int) -> int:
    """Since this operator last left, or the last 12 hours on a first shift."""
    return await presence.last_left() or now - HANDOVER_DEFAULT_MS


def export_csv(db_path: Path, zone: tzinfo, status: Status, ids: list[int]) -> tuple[int, Path]:
    """These mentions, in this order, to a new CSV file here (or beside the database if here is not writable).

    Blocking: run it in a thread. Returns how many rows were written and where.
    """
    from monitor.reports import export  # with the statistics' numpy: not imported before the first screen

    stamp = datetime.fromtimestamp(now_ms() / 1000, zone).strftime("%Y%m%d-%H%M%S")
    name = f"monitor-{status.value}-{stamp}.csv"
    conn = open_sync(db_path, readonly=True)
    try:
        for folder in (Path.cwd(), db_path.parent):
            try:
                with open(folder / name, "x", encoding="utf-8", newline="") as out:
                    return export.write(conn, "mentions", "csv", out, ids=ids), folder / name
            except OSError:  # not writable here (the exact name exists: the state dir then)
                continue
        raise PermissionError(f"cannot write {name} here nor in {db_path.parent}")
    finally:
        conn.close()
