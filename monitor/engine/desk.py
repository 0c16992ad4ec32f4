"""What the duty desk reads and writes besides its panes, with no screen in sight.

The desk screen shows these; it does not know how they are gathered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path

from monitor.core.models import SourceState, Status
from monitor.core.paths import state_dir
from monitor.core.timeutil import now_ms
from monitor.db.api import Database
from monitor.db.presence import Presence
from monitor.engine.collector import SourceStatus

HANDOVER_DEFAULT_MS = 12 * 3600_000  # a first shift: what happened in the last 12 hours


@dataclass(frozen=True)
class Roster:
    """Who is on duty, who collects (when not this process), and the sources' stored states."""

    on_duty: list[str]
    collector_elsewhere: str | None  # the lease holder; "" = nobody; None = not asked (this process leads)
    sources: list[SourceStatus]


async def roster(store: Database, presence: Presence, leading: bool) -> Roster:
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


def export_csv(stored: list[tuple[object, ...]], zone: tzinfo, status: Status, beside: Path) -> tuple[int, Path]:
    """These mentions (Database.export_mentions), to a new CSV file here, or in `beside` if here is not
    writable (export_folder). Blocking: run it in a thread. Returns how many rows were written and where."""
    from monitor.reports import export  # with the statistics' numpy: not imported before the first screen

    stamp = datetime.fromtimestamp(now_ms() / 1000, zone).strftime("%Y%m%d-%H%M%S")
    name = f"monitor-{status.value}-{stamp}.csv"
    for folder in (Path.cwd(), beside):
        try:
            with open(folder / name, "x", encoding="utf-8", newline="") as out:
                return export.write_rows(stored, "mentions", "csv", out), folder / name
        except OSError:  # not writable here (the exact name exists: the state dir then)
            continue
    raise PermissionError(f"cannot write {name} here nor in {beside}")


def export_folder(target: str | Path, configured_state: Path | None) -> Path:
    """Where an export goes when the working folder is not writable: beside a SQLite file; for a server's
    database, the state folder."""
    return target.parent if isinstance(target, Path) else state_dir(configured_state)
