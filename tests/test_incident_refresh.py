"""An incident's pane row follows changes made through another connection: the pane's cache of incident rows
is read again when any incident or any report of one changes, whoever changed it."""

from __future__ import annotations

from pathlib import Path

from monitor.core.incidents import IncidentSummary
from monitor.core.models import MatchResult, Mention, Priority, Status
from monitor.db.store import Store
from tests.test_incidents import T0, TREE, put


async def group(store: Store) -> IncidentSummary:
    [found] = [e for e in await store.pane_entries(Status.NEW, 50) if isinstance(e, IncidentSummary)]
    return found


async def test_an_edit_at_ingest_raising_a_reports_priority_refreshes_its_incidents_row(tmp_path: Path) -> None:
    desk = await Store.open(tmp_path / "monitor.db")
    collector = await Store.open(tmp_path / "monitor.db")
    try:
        a, b, _ = await put(collector, TREE)
        incident = await desk.create_incident(a, "alice")
        await desk.link(b, incident, "alice", expect_incident=None)
        before = await group(desk)  # cached by the desk's connection
        assert before.priority is Priority.NORMAL and before.lead.id == a
        edited = Mention("demo", "r1", "mastodon", "citizen1", TREE[1] + " — blessé", T0, lang="fr")
        await collector.ingest("demo", [], None, edits=[(edited, MatchResult(("voirie",), Priority.URGENT))])
        after = await group(desk)
        assert after.priority is Priority.URGENT and after.lead.id == b
    finally:
        await desk.close()
        await collector.close()


async def test_another_operator_unlinking_a_report_not_the_lead_updates_the_count(tmp_path: Path) -> None:
    mine = await Store.open(tmp_path / "monitor.db")
    theirs = await Store.open(tmp_path / "monitor.db")
    try:
        a, b, c = await put(mine, TREE)
        incident = await mine.create_incident(a, "alice")
        for other in (b, c):
            await mine.link(other, incident, "alice", expect_incident=None)
        assert (await group(mine)).reports == 3
        await theirs.unlink(c, "bruno", expect_incident=incident)
        assert (await group(mine)).reports == 2
        await theirs.link(c, incident, "bruno", expect_incident=None)
        assert (await group(mine)).reports == 3
    finally:
        await mine.close()
        await theirs.close()
