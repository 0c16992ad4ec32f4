"""An incident's title is the operator's: drafted from its first report, renamed, each rename in its history."""

from __future__ import annotations

import pytest

from monitor.core.incidents import TITLE_MAX
from monitor.core.models import ActionKind
from monitor.db.api import Conflict, Database
from tests.test_incidents import TREE, put
from tests.test_incidents import store as store  # each test on both engines


async def test_a_rename_is_logged_in_the_incidents_history_with_the_title_it_replaced(store: Database) -> None:
    a, b, _ = await put(store, TREE)
    incident = await store.create_incident(a, "alice", "  Arbre  tombé\nbd Carnot ")
    await store.link(b, incident, "alice", expect_incident=None)
    before = await store.incident(incident)
    assert before.title == "Arbre tombé bd Carnot"  # one line, as typed
    await store.rename_incident(incident, "Platane tombé, bd Carnot", "bruno", expect_rev=before.rev)
    detail = await store.incident_detail(incident)
    assert detail.incident.title == "Platane tombé, bd Carnot"
    [renamed] = [e for e in detail.history if e.kind == ActionKind.NOTE]
    assert renamed.operator == "bruno" and renamed.mention_id == a  # logged on its first report
    assert renamed.payload["renamed"] == "Platane tombé, bd Carnot"
    assert renamed.payload["was"] == "Arbre tombé bd Carnot"
    with pytest.raises(Conflict):  # read before the rename: another operator renamed it first
        await store.rename_incident(incident, "autre", "carla", expect_rev=before.rev)


async def test_a_typed_title_is_one_safe_bounded_line(store: Database) -> None:
    [a] = await put(store, TREE[:1])
    incident = await store.create_incident(a, "alice")
    current = await store.incident(incident)
    await store.rename_incident(incident, "\x1b[31mrouge\x1b[0m [b]x[/b] " + "z" * 300, "alice", expect_rev=current.rev)
    title = (await store.incident(incident)).title
    assert "\x1b" not in title and title.startswith("rouge [b]x[/b] z")  # markup stays text, shown as such
    assert len(title) == TITLE_MAX and title.endswith("…")
    with pytest.raises(ValueError):
        await store.rename_incident(incident, " \n ", "alice", expect_rev=(await store.incident(incident)).rev)


async def test_a_note_on_an_incident_goes_into_its_history_not_one_reports(store: Database) -> None:
    a, b, _ = await put(store, TREE)
    incident = await store.create_incident(a, "alice")
    await store.link(b, incident, "alice", expect_incident=None)
    await store.note_incident(incident, "équipe sur place à 10h", "alice")
    [note] = [e for e in (await store.incident_detail(incident)).history if e.kind == ActionKind.NOTE]
    assert note.payload == {"incident": incident, "text": "équipe sur place à 10h", "on_incident": True}
