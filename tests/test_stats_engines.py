"""The same statistics on both engines: random desks written through each engine's own write path (SQLite's
act_sync and ingest_sync, PostgreSQL's store and its act), with the day digests rebuilt halfway (so some days
read from a digest, some dirty, some partial), then `stats.compute` read back from each."""

from __future__ import annotations

import asyncio
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.core.models import ActionKind, MatchResult, Mention, Priority
from monitor.core.timeutil import from_ms
from monitor.db.pg import actions as pg_actions
from monitor.db.pg.store import PgStore
from monitor.db.reading import open_reader
from monitor.db.statsdays import refresh
from monitor.db.store import StoreError
from monitor.reports.stats import compute, render
from tests.fakes_stats import DESK_HOURS, MIN, Desk, write_watchlist
from tests.pg_server import Cluster
from tests.test_stats_properties import BASE, PAYLOADS, mention

DAY_MS = 86_400_000
SPAN = {"since": BASE, "until": BASE + 7 * DAY_MS, "now": BASE + 30 * DAY_MS}


def _steps(m: dict[str, Any]) -> tuple[Mention, MatchResult, int, list[tuple[str, int, str, dict[str, Any]]]]:
    """One generated mention as the desk writes it: the post, its match, when seen, then its actions."""
    seen = BASE + m["seen"]
    post = Mention(
        source=m["source"], remote_id=f"post-{m['seen']}-{id(m)}", network=m["source"], author="@citoyen",
        text="Un trou dans le trottoir", published_at=from_ms(seen - 5 * MIN),
    )  # fmt: skip
    t, acts = seen, []
    for kind, delay, operator, service in m["actions"]:
        t += delay
        payload = dict(PAYLOADS[kind], service=service) if kind == "escalate" else PAYLOADS[kind]
        acts.append((kind, t, operator, payload))
    return post, MatchResult(m["terms"], Priority(m["priority"])), seen, acts


def write_sqlite(desk: Desk, log: list[dict[str, Any]]) -> None:
    from monitor.db.store import act_sync, ingest_sync

    for i, m in enumerate(log):
        if i == len(log) // 2:
            refresh(desk.conn)
        post, match, seen, acts = _steps(m)
        desk._tx(partial(ingest_sync, desk.conn, post.source, [(post, match)], None, [], [], seen))
        (mid,) = desk.conn.execute("SELECT id FROM mentions WHERE remote_id = ?", (post.remote_id,)).fetchone()
        for kind, at, operator, payload in acts:
            try:
                desk._tx(partial(act_sync, desk.conn, mid, ActionKind(kind), operator, payload, at=at))
            except StoreError:
                continue  # a reopen with nothing to undo
        if m["deleted_after"] is not None:
            at = seen + m["deleted_after"] * MIN
            desk._tx(partial(ingest_sync, desk.conn, post.source, [], None, [], [post.remote_id], at))


async def write_postgresql(url: str, log: list[dict[str, Any]]) -> None:
    store = await PgStore.open(url)
    try:
        for i, m in enumerate(log):
            if i == len(log) // 2:  # the days written so far read from their digests, later writes dirty some
                await store.refresh_digests()
            post, match, seen, acts = _steps(m)
            await store.ingest(post.source, [(post, match)], None, seen_at=seen)
            mid = (await store.changes_since(await store.max_rev() - 1))[0].id
            for kind, at, operator, payload in acts:
                try:
                    await store.write(partial(pg_actions.act, mention_id=mid, kind=ActionKind(kind),
                                              operator=operator, payload=payload, at=at), "act")  # fmt: skip
                except StoreError:
                    continue
            if m["deleted_after"] is not None:
                at = seen + m["deleted_after"] * MIN
                await store.ingest(post.source, [], None, deletes=[post.remote_id], seen_at=at)
    finally:
        await store.close()


@pytest.fixture(scope="module")
def cluster(pg_cluster: Cluster) -> Cluster:
    return pg_cluster


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mention, min_size=1, max_size=8))
def test_random_writes_give_the_same_statistics_on_both_engines(cluster, log):
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        watchlist = write_watchlist(directory, hours=DESK_HOURS, first_response="1h", resolution="8h")
        desk = Desk(directory / "monitor.db")
        name = cluster.new_database()
        try:
            write_sqlite(desk, log)
            asyncio.run(write_postgresql(cluster.url(name), log))
            pg = open_reader(cluster.url(name))
            try:
                on_pg = compute(pg, watchlist, **SPAN)
            finally:
                pg.close()
            on_sqlite = compute(desk.conn, watchlist, **SPAN)
        finally:
            desk.close()
            cluster.drop_database(name)
    assert render(on_pg, "json") == render(on_sqlite, "json")
    assert render(on_pg, "table") == render(on_sqlite, "table")
