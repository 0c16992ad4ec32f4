"""The desk's multi-table reads come from the database layer as typed results, in one hop each."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from monitor.core.config import Watchlist
from monitor.core.models import ActionKind, MatchResult, Mention, Priority
from monitor.db import desk
from monitor.db.outbox import act
from monitor.db.store import Store

TEXTS = [
    "Fuite d'eau énorme rue de la République à Saint-Cyprien, la chaussée est inondée",
    "Rue de la République inondée à Saint-Cyprien, grosse fuite d'eau sur la chaussée",
    "La Garonne est magnifique ce soir depuis le pont Saint-Pierre",
]


async def test_the_detail_panel_reads_the_mention_its_actions_deliveries_and_duplicates_at_once(
    store: Store, watchlist: Watchlist
) -> None:
    when = datetime(2026, 11, 17, 8, tzinfo=UTC)
    match = MatchResult(("eau",), Priority.HIGH)
    await store.ingest("demo", [(Mention("demo", f"r{i}", "mastodon", f"@c{i}", t, when), match)
                                for i, t in enumerate(TEXTS)], None, seen_at=1_000_000)  # fmt: skip
    await act(store, watchlist, 1, ActionKind.REPLY, "alice", {"text": "On s'en occupe."}, dry_run=True)

    got = await desk.detail(store, 1)

    assert isinstance(got, desk.Detail)
    assert (got.row.id, got.row.status.value) == (1, "done")  # as it is now, not as the pane last showed it
    assert [(a.kind, a.operator) for a in got.actions] == [(ActionKind.REPLY, "alice")]
    assert [d.mention_id for d in got.deliveries] == [1]
    assert [m.id for _, m in got.related] == [2]
    assert got.thread == []


async def test_the_handover_counts_what_arrived_since_the_operator_left(store: Store, tmp_path: Path) -> None:
    when = datetime(2026, 11, 17, 8, tzinfo=UTC)
    match = MatchResult(("eau",), Priority.HIGH)
    await store.ingest("demo", [(Mention("demo", "r0", "mastodon", "@c", TEXTS[0], when), match)], None, seen_at=5_000)

    assert (await desk.handover(store, since=4_000, now=10_000, target_ms=60_000)).new == 1
    assert (await desk.handover(store, since=6_000, now=10_000, target_ms=60_000)).new == 0
