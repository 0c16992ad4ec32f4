"""Incidents in the store: link, move, unlink and undo, each logged; stale links refused; suggestions at ingest."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor import data as demo_data
from monitor.core.incidents import IncidentStatus, IncidentSummary, likeness, profile
from monitor.core.models import ActionKind, Batch, MatchResult, Mention, Priority, Status
from monitor.db import suggest
from monitor.db.api import Conflict, Database
from monitor.db.engines import open_database
from monitor.db.pg import mentions as pg_mentions
from monitor.db.presence import Presence
from monitor.engine import incidents
from monitor.engine.collector import Collector
from monitor.networks import load_watchlist
from monitor.networks.demo import WARM_START, DemoSource

T0 = datetime(2026, 11, 17, 8, tzinfo=UTC)
TREE = [
    "Un arbre est tombé sur le boulevard Carnot, la chaussée est bloquée",
    "Arbre tombé bd Carnot !! la route est bloquée, attention",
    "Gros platane tombé boulevard Carnot, chaussée bloquée depuis 10 min",
]
OTHER = "La Garonne est magnifique ce soir depuis le pont Saint-Pierre"


async def put(
    store: Database, texts: list[str], start: int = 0, network: str = "mastodon", minutes: int = 5
) -> list[int]:
    """Ingest mentions (one poll), each a few minutes after the previous; returns their ids."""
    rows = [
        (Mention("demo", f"r{start + i}", network, f"citizen{start + i}", t, T0 + timedelta(minutes=minutes * i),
                 lang="fr"), MatchResult(("voirie",), Priority.NORMAL))
        for i, t in enumerate(texts)
    ]  # fmt: skip
    seen = int((T0 + timedelta(minutes=minutes * start)).timestamp() * 1000)
    await store.ingest("demo", rows, None, seen_at=seen)
    ids = {row.remote_id: row.id for row in await store.changes_since(0, 100_000)}
    return [ids[f"r{start + i}"] for i in range(len(texts))]


@pytest.fixture
async def store(database: Database) -> Database:
    """A migrated store on each engine in turn (tests/conftest.py's `database`)."""
    return database


async def kinds(store: Database, mention_id: int) -> list[str]:
    return [str(a.kind) for a in await store.actions(mention_id)]


def test_a_report_of_the_same_fallen_tree_is_alike_and_a_river_view_is_not() -> None:
    tree = profile(TREE[0], ["voirie"], 0)
    score, reasons = likeness(profile(TREE[1], ["voirie"], 600_000), tree)
    assert score >= 0.5 and "place: carnot" in reasons and any(r.startswith("words:") for r in reasons)
    assert likeness(profile(OTHER, ["voirie"], 600_000), tree)[0] < 0.35


async def test_an_incident_from_a_mention_then_link_move_unlink_each_logged(store: Database) -> None:
    a, b, c = await put(store, TREE)
    first = await store.create_incident(a, "alice")
    incident = await store.incident(first)
    assert incident.title == TREE[0][:80] and incident.reference == f"I-{first:05d}"
    assert incident.status is IncidentStatus.OPEN
    await store.link(b, first, "alice", expect_incident=None)
    second = await store.create_incident(c, "bruno", "Platane bd Carnot")
    await store.link(b, second, "bruno", expect_incident=first)  # a move names where it was
    assert (await store.mention(b)).incident_id == second
    await store.unlink(b, "bruno", expect_incident=second)
    assert (await store.mention(b)).incident_id is None
    assert await kinds(store, b) == ["link", "link", "unlink"]
    history = (await store.incident_detail(second)).history
    assert [(e.mention_id, e.kind) for e in history] == [(c, "link"), (b, "link"), (b, "unlink")]


async def test_a_stale_link_is_refused_and_nothing_is_written(store: Database) -> None:
    a, b, _ = await put(store, TREE)
    first = await store.create_incident(a, "alice")
    second = await store.create_incident(b, "bruno")
    with pytest.raises(Conflict):
        await store.link(b, first, "alice", expect_incident=None)  # alice saw it unlinked: bruno won
    with pytest.raises(Conflict):
        await store.unlink(a, "alice", expect_incident=second)
    assert (await store.mention(b)).incident_id == second and await kinds(store, b) == ["link"]


async def test_u_undoes_an_unlink_then_the_link_before_it(store: Database) -> None:
    a, b, _ = await put(store, TREE)
    first = await store.create_incident(a, "alice")
    await store.link(b, first, "alice", expect_incident=None)
    await store.unlink(b, "alice", expect_incident=first)
    await store.act(b, ActionKind.REOPEN, "alice")  # the `u` key's action
    assert (await store.mention(b)).incident_id == first
    await store.act(b, ActionKind.REOPEN, "alice")  # and the link before it
    row = await store.mention(b)
    assert row.incident_id is None and row.status is Status.NEW
    assert await kinds(store, b) == ["link", "unlink", "link", "unlink"]  # each undo logged as its inverse


async def test_undo_of_a_move_puts_it_back_where_it_was(store: Database) -> None:
    a, b, _ = await put(store, TREE)
    first = await store.create_incident(a, "alice")
    second = await store.create_incident(b, "alice", "autre")
    await store.link(a, second, "alice", expect_incident=first)
    await store.act(a, ActionKind.REOPEN, "alice")
    assert (await store.mention(a)).incident_id == first


async def test_a_closed_incident_takes_no_new_report(store: Database) -> None:
    a, b, _ = await put(store, TREE)
    first = await store.create_incident(a, "alice")
    await store.set_incident_status(first, IncidentStatus.RESOLVED, "alice")
    with pytest.raises(Conflict, match="resolved"):
        await store.link(b, first, "alice", expect_incident=None)


async def test_a_new_report_of_an_open_incident_is_suggested_at_ingest_and_accepted(store: Database) -> None:
    (a,) = await put(store, TREE[:1])
    incident = await store.create_incident(a, "alice")
    b, river = await put(store, [TREE[1], OTHER], start=1)
    row = await store.mention(b)
    assert row.suggested_incident == incident and row.suggestion_score >= 0.35 and row.incident_id is None
    assert (await store.mention(river)).suggested_incident is None
    assert await store.accept_suggestion(b, "bruno") == incident
    assert (await store.mention(b)).incident_id == incident
    with pytest.raises(Conflict):
        await store.accept_suggestion(b, "bruno")  # already in it
    with pytest.raises(Conflict):
        await store.accept_suggestion(river, "bruno")  # nothing suggested


async def test_the_picker_ranks_the_alike_incident_first_and_lists_the_others(store: Database) -> None:
    a, river, b = await put(store, [TREE[0], OTHER, TREE[1]])
    tree = await store.create_incident(a, "alice")
    water = await store.create_incident(river, "alice")
    ranked = await store.rank_incidents(b)
    assert [s.incident_id for s in ranked] == [tree, water]
    assert ranked[0].score > ranked[1].score and ranked[0].reasons


async def test_two_operators_linking_one_mention_at_once_one_wins_the_other_is_told(db_target: str | Path) -> None:
    one = await open_database(db_target)
    two = await open_database(db_target)
    try:
        a, b, c = await put(one, TREE)
        first = await one.create_incident(a, "alice")
        second = await two.create_incident(b, "bruno")
        results = await asyncio.gather(
            one.link(c, first, "alice", expect_incident=None),
            two.link(c, second, "bruno", expect_incident=None),
            return_exceptions=True,
        )
        assert sorted(type(r).__name__ for r in results) == ["Conflict", "int"]
        winner = first if isinstance(results[0], int) else second
        assert (await two.mention(c)).incident_id == winner
        assert await kinds(two, c) == ["link"]
    finally:
        await one.close()
        await two.close()


async def test_a_pane_shows_one_row_per_incident_with_its_counts(store: Database) -> None:
    a, b, c = await put(store, TREE)
    await put(store, [OTHER], start=3, network="bluesky")
    incident = await store.create_incident(a, "alice")
    await store.link(c, incident, "alice", expect_incident=None)
    entries = await store.pane_entries(Status.NEW, 50)
    groups = [e for e in entries if isinstance(e, IncidentSummary)]
    assert len(entries) == 3 and len(groups) == 1  # b, the river and the incident (a and c)
    assert groups[0].reports == 2 and groups[0].networks == ("mastodon",) and groups[0].lead.id == a
    assert {e.id for e in entries if not isinstance(e, IncidentSummary)} == {b, 4}
    assert [r.id for r in await store.incident_reports(incident)] == [a, c]
    assert [s.incident.id for s in await store.open_incidents()] == [incident]


async def test_an_action_on_one_report_updates_its_incidents_row_at_the_next_refresh(store: Database) -> None:
    a, b, _ = await put(store, TREE)
    incident = await store.create_incident(a, "alice")
    await store.link(b, incident, "alice", expect_incident=None)
    [group] = [e for e in await store.pane_entries(Status.NEW, 50) if isinstance(e, IncidentSummary)]
    assert group.reports == 2 and group.unanswered == 2
    await store.act(a, ActionKind.REPLY, "alice", {"text": "merci"})  # the pane's incident rows are cached
    [group] = [e for e in await store.pane_entries(Status.NEW, 50) if isinstance(e, IncidentSummary)]
    assert group.reports == 1 and group.lead.id == b
    [done] = [e for e in await store.pane_entries(Status.DONE, 50) if isinstance(e, IncidentSummary)]
    assert done.reports == 1 and done.lead.id == a


async def test_a_report_sharing_no_term_with_any_open_incident_is_not_suggested(store: Database) -> None:
    (a,) = await put(store, TREE[:1])
    await store.create_incident(a, "alice")
    rows = [(Mention("demo", "x", "mastodon", "c", TREE[1], T0), MatchResult(("transports",), Priority.NORMAL))]
    await store.ingest("demo", rows, None)
    assert (await store.mention(a + 1)).suggested_incident is None


async def test_the_open_incidents_are_read_again_only_after_one_changed(
    store: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both engines cache the suggestions' index on the incidents' generation (PostgreSQL read it at every poll)."""
    (a,) = await put(store, TREE[:1])
    first = await store.create_incident(a, "alice")
    loaded: list[str] = []
    real = suggest.profile_load
    monkeypatch.setattr(suggest, "profile_load", lambda text: loaded.append(text) or real(text))
    (b,) = await put(store, TREE[1:2], start=1)
    (c,) = await put(store, TREE[2:3], start=2)
    assert len(loaded) == 1  # one open incident, read for the first poll only
    assert (await store.mention(c)).suggested_incident == first  # the second poll scored on the kept index
    await store.link(b, first, "alice", expect_incident=None)  # the incident changes (its profile too)
    await put(store, [OTHER], start=3)
    assert len(loaded) == 2


async def test_a_poll_scores_its_own_reports_whatever_an_action_commits_meanwhile(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: an operator's commit landing while a poll is stored took its rev range's suggestions."""
    store, other = await open_database(pg_url), await open_database(pg_url)
    try:
        a, river = await put(store, [TREE[0], OTHER])
        incident = await store.create_incident(a, "alice")
        real = pg_mentions.ingest

        async def after_an_action(*args: Any, **kwargs: Any) -> int:
            await other.act(river, ActionKind.NOTE, "bruno", {"text": "appel"})  # a rev committed meanwhile
            return await real(*args, **kwargs)

        monkeypatch.setattr(pg_mentions, "ingest", after_an_action)
        (b,) = await put(store, TREE[1:2], start=2)
        assert (await store.mention(b)).suggested_incident == incident
    finally:
        await store.close()
        await other.close()


async def test_an_incident_is_claimed_whole_and_another_operator_is_told_who_holds_it(db_target: str | Path) -> None:
    one = await open_database(db_target)
    two = await open_database(db_target)
    try:
        a, b, c = await put(one, TREE)
        incident = await one.create_incident(a, "alice")
        await one.link(b, incident, "alice", expect_incident=None)
        alice, bruno = Presence(one, "alice", "host:1"), Presence(two, "bruno", "host:2")
        assert await alice.claim_incident(incident) is None
        held = await bruno.claim_incident(incident)
        assert held is not None and held.operator == "alice"
        other = await bruno.claim(b)  # one of its reports, on its own: the same answer
        assert other is not None and other.operator == "alice"
        assert set(await bruno.claims()) == {a, b}
        await alice.unclaim_incident(incident)
        assert await bruno.claim_incident(incident) is None and c not in await bruno.claims()
    finally:
        await one.close()
        await two.close()


async def test_acting_on_an_incident_that_changed_since_it_was_read_is_refused(store: Database) -> None:
    a, b, _ = await put(store, TREE)
    incident = await store.create_incident(a, "alice")
    seen = (await store.incident(incident)).rev
    await store.link(b, incident, "bruno", expect_incident=None)  # a new report arrived meanwhile
    with pytest.raises(Conflict):
        await incidents.dismiss(store, incident, "alice", "spam", expect_rev=seen)
    assert (await store.mention(a)).status is Status.NEW


async def test_the_demo_opens_an_incident_and_a_report_a_minute_later_is_suggested_to_it(store: Database) -> None:
    wl = load_watchlist(Path(demo_data.__file__).parent / "watchlist.yaml")
    collector = Collector(wl, store)
    source = collector.sources[0]
    assert isinstance(source, DemoSource)
    first_screen = [m for i in range(WARM_START) if (m := source._mention(i))]  # what a first start shows at once
    await collector.ingest(source, Batch(first_screen, cursor=str(WARM_START)))
    [summary] = await store.open_incidents()
    assert summary.incident.title == "Passage piéton bloqué à Compans-Caffarelli"
    assert summary.incident.created_by == "demo" and summary.reports == 1
    later = [m for i in range(WARM_START, WARM_START + 4) if (m := source._mention(i))]  # the next minute
    await collector.ingest(source, Batch(later, cursor=str(WARM_START + 4)))
    suggested = [row for row in await store.pane(Status.NEW, 100) if row.suggested_incident == summary.incident.id]
    assert {row.remote_id for row in suggested} >= {"demo-0014", "demo-0015"}
    assert all(source._at(int(r.remote_id[5:]) - 1) - source._at(WARM_START) < 60 for r in suggested)
