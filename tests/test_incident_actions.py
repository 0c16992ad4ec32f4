"""Acting on an incident acts on every report in one transaction: escalate once, acknowledge all, resolve
and send to all, dismiss with one reason. Delivered to loopback servers, read back from the SQLite file."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from monitor.core.config import ServiceTarget, Watchlist
from monitor.core.incidents import IncidentStatus
from monitor.core.models import ActionKind, Status
from monitor.core.pacing import RATE_LIMITS, Pace
from monitor.core.templates import Template
from monitor.core.timeutil import now_ms
from monitor.db.api import Conflict
from monitor.db.store import Store
from monitor.engine import incidents
from monitor.engine.delivery import DeliveryWorker
from tests.fakes_delivery import (
    TOKEN,
    FakeMastodon,
    FakeOpen311,
    Receiver,
    mastodon_status,
    outbox_rows,
    payload_of,
    seed,
    serving,
)
from tests.fakes_delivery import watchlist as make_watchlist

ACK_FR = Template("su", "On sait", "{author} Merci, nous sommes au courant. Réf. {ref}", lang="fr", use="acknowledge")
ACK_EN = Template("know", "We know", "{author} Thanks, we know. Ref. {ref}", lang="en", use="acknowledge")


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_MASTODON_TOKEN", TOKEN)


def with_templates(wl: Watchlist, *more: Template) -> Watchlist:
    return dataclasses.replace(wl, templates=(*wl.templates, *more))


async def an_incident(store: Store, n: int) -> tuple[int, list[int]]:
    ids = await seed(store, "masto", "mastodon", [mastodon_status(i, host="127.0.0.1") for i in range(n)])
    incident = await store.create_incident(ids[0], "alice", "Nid de poule avenue de Muret")
    for mid in ids[1:]:
        await store.link(mid, incident, "alice", expect_incident=None)
    return incident, ids


def actions_of(path: Path) -> list[tuple[int, str, int | None]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT mention_id, kind, incident_id FROM actions WHERE kind NOT IN ('link')").fetchall()
    finally:
        conn.close()


async def test_escalate_once_sends_one_request_listing_every_report_under_one_reference(
    tmp_path: Path, store: Store
) -> None:
    async with serving(Receiver()) as hook:
        wl = make_watchlist(tmp_path, targets=(ServiceTarget("webhook", url=hook.url + "/hook"),))
        incident, ids = await an_incident(store, 5)
        done = await incidents.escalate_once(store, wl, incident, "voirie", "alice", "trou profond")
        assert len(done) == 5
        assert sorted(m for m, k, i in actions_of(store.path) if k == "escalate" and i == incident) == ids
        await DeliveryWorker(store, wl).run_once()
        [(_, _, _, body)] = hook.requests  # one request for five reports
        assert body["reference"] == f"I-{incident:05d}" and [r["id"] for r in body["reports"]] == ids
        assert {(await store.mention(m)).status for m in ids} == {Status.ESCALATED}
        detail = await store.incident_detail(incident)
        assert detail.incident.status is IncidentStatus.ESCALATED and detail.incident.service
        assert (detail.progress.sent, detail.progress.pending) == (1, 0)


async def test_escalating_a_changed_incident_is_refused_whole(tmp_path: Path, store: Store) -> None:
    wl = make_watchlist(tmp_path, targets=(ServiceTarget("webhook", url="http://127.0.0.1:9/hook"),))
    incident, ids = await an_incident(store, 2)
    seen = (await store.incident(incident)).rev
    await store.unlink(ids[1], "bruno", expect_incident=incident)
    with pytest.raises(Conflict):
        await incidents.escalate_once(store, wl, incident, "voirie", "alice", expect_rev=seen)
    assert actions_of(store.path) == [(ids[1], "unlink", incident)] and outbox_rows(store.path) == []


async def test_acknowledge_all_replies_once_to_each_reporter_not_yet_answered_in_their_language(
    tmp_path: Path, store: Store
) -> None:
    async with serving(FakeMastodon()) as masto:
        wl = with_templates(make_watchlist(tmp_path, mastodon_url=masto.url), ACK_EN, ACK_FR)
        incident, ids = await an_incident(store, 4)
        assert len(await incidents.acknowledge_all(store, wl, incident, "alice")) == 4
        assert await incidents.acknowledge_all(store, wl, incident, "alice") == []  # all answered already
        rows = outbox_rows(store.path)
        assert len(rows) == 4 and len({r["idem_key"] for r in rows}) == 4
        texts = sorted(payload_of(r)["text"] for r in rows)
        assert texts[0] == f"@citizen0@127.0.0.1 Merci, nous sommes au courant. Réf. I-{incident:05d}"
        await DeliveryWorker(store, wl).run_once()
        for n in range(4):
            assert len(masto.created_for(str(110_000 + n))) == 1
        for mid in ids:  # answered (a first response), still open
            row = await store.mention(mid)
            assert row.first_response_at is not None and row.status is Status.NEW
        assert (await store.incident_detail(incident)).progress.sent == 4


async def test_resolve_sends_the_reviewed_follow_up_to_every_reporter(tmp_path: Path, store: Store) -> None:
    async with serving(FakeMastodon()) as masto:
        wl = make_watchlist(tmp_path, mastodon_url=masto.url)
        incident, ids = await an_incident(store, 3)
        draft = incidents.draft_resolution(wl, await store.incident_detail(incident))
        assert draft == "{author} C'est réparé, merci !"  # {author} left for each reporter
        assert len(await incidents.resolve(store, wl, incident, "alice", draft)) == 3
        rows = outbox_rows(store.path)
        assert [r["kind"] for r in rows] == ["followup"] * 3
        assert payload_of(rows[1])["text"] == "@citizen1@127.0.0.1 C'est réparé, merci !"
        await DeliveryWorker(store, wl).run_once()
        assert sum(len(masto.created_for(str(110_000 + n))) for n in range(3)) == 3
        assert {(await store.mention(m)).status for m in ids} == {Status.DONE}
        assert (await store.incident(incident)).status is IncidentStatus.RESOLVED
        with pytest.raises(Conflict):
            await incidents.resolve(store, wl, incident, "alice", draft)  # once


async def test_dismiss_closes_every_report_with_one_reason(store: Store) -> None:
    incident, ids = await an_incident(store, 3)
    await store.act(ids[2], ActionKind.REPLY, "alice", {"text": "déjà fait"})
    assert len(await incidents.dismiss(store, incident, "alice", "spam")) == 2  # the closed one is left as is
    assert [(await store.mention(m)).status for m in ids] == [Status.DISMISSED, Status.DISMISSED, Status.DONE]
    history = (await store.incident_detail(incident)).history
    assert [e.payload.get("reason") for e in history if e.kind == "dismiss"] == ["spam", "spam"]


async def test_a_report_deleted_at_its_source_is_resolved_without_a_reply(tmp_path: Path, store: Store) -> None:
    wl: Any = make_watchlist(tmp_path)
    incident, ids = await an_incident(store, 2)
    await store.ingest("masto", [], None, deletes=[mastodon_status(1, host="127.0.0.1")["uri"]])
    await incidents.resolve(store, wl, incident, "alice", "{author} réglé")
    assert [r["mention_id"] for r in outbox_rows(store.path)] == [ids[0]]
    assert (await store.mention(ids[1])).status is Status.DONE


async def test_a_broadcast_is_paced_to_the_networks_rate_limit_and_its_progress_shows_it(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(RATE_LIMITS, "mastodon", (3, 60_000))  # Mastodon's 300 per 5 minutes, scaled down
    async with serving(FakeMastodon()) as masto:
        wl = with_templates(make_watchlist(tmp_path, mastodon_url=masto.url), ACK_FR)
        incident, _ = await an_incident(store, 5)
        await incidents.acknowledge_all(store, wl, incident, "alice")
        before = now_ms()
        assert await DeliveryWorker(store, wl).run_once() == 5
        progress = (await store.incident_detail(incident)).progress
        assert (progress.sent, progress.pending, progress.failed) == (3, 2, 0)
        waiting = [r for r in outbox_rows(store.path) if r["state"] == "pending"]
        assert all(r["attempts"] == 0 and r["next_attempt_at"] >= before + 59_000 for r in waiting)
        assert len(masto.statuses) == 3
        assert await DeliveryWorker(store, wl).run_once() == 0  # a restarted worker: none due before the window


def test_the_window_lets_one_more_call_through_once_the_oldest_leaves_it() -> None:
    pace = Pace(2, 1000, past=[0, 400])
    assert pace.wait(500) == 500 and pace.wait(1000) == 0
    pace.take(1000)
    assert pace.wait(1000) == 400


async def test_the_service_closing_the_request_drafts_the_follow_up_for_all_to_review_once(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_311_KEY", TOKEN)
    async with serving(FakeOpen311()) as city:
        target = ServiceTarget("open311", url=city.url, service_code="pothole", api_key_env="TEST_311_KEY")
        wl = make_watchlist(tmp_path, targets=(target,))
        incident, ids = await an_incident(store, 3)
        await incidents.escalate_once(store, wl, incident, "voirie", "alice")
        worker = DeliveryWorker(store, wl, open311_every=0)
        await worker.run_once()
        [(rid, req)] = city.requests_made.items()
        assert f"I-{incident:05d}" in req["form"]["description"] and "3 reports" in req["form"]["description"]
        city.requests_made[rid].update(status="closed", status_notes="Rebouché")
        assert await worker.check_open311() == 1
        detail = await store.incident_detail(incident)
        assert (
            detail.service_draft == "{author} C'est réparé, merci !"
            and "Rebouché" in detail.history[-1].payload["text"]
        )
        assert (
            detail.incident.status is IncidentStatus.ESCALATED and outbox_rows(store.path)[-1]["kind"] == "escalation"
        )
        assert {(await store.mention(m)).status for m in ids} == {Status.ESCALATED}  # nothing sent before review
        await incidents.resolve(store, wl, incident, "alice", detail.service_draft or "")
        assert [r["kind"] for r in outbox_rows(store.path)][1:] == ["followup"] * 3
