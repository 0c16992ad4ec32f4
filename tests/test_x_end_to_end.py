"""X end to end: a watchlist pointed (`api:`) at a fake X API on 127.0.0.1, `monitor collect --once` run as
the operator runs it, a real SQLite file. Reads page through next_token with includes, partial errors and
x-rate-limit-* headers; a reply the desk queues leaves exactly once; the month's spend adds up across runs."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from monitor.core.models import ActionKind
from monitor.db.store import Store
from monitor.engine import actions
from monitor.networks import load_watchlist
from tests.fakes_x import CITY_ID, LoopbackX, tweet

ROOT = Path(__file__).resolve().parent.parent
ENV = {"TEST_X_BEARER": "bearer", "TEST_X_CK": "ck", "TEST_X_CS": "cs", "TEST_X_AT": "at", "TEST_X_ATS": "ats"}
WATCHLIST = """\
city: Toulouse Métropole
database: monitor.db
terms:
  - name: voirie
    keywords: [nid-de-poule]
sources:
  - name: x
    type: x
    api: {api}
    user_id: "{user_id}"
    bearer_token_env: TEST_X_BEARER
    oauth1:
      consumer_key_env: TEST_X_CK
      consumer_secret_env: TEST_X_CS
      access_token_env: TEST_X_AT
      access_token_secret_env: TEST_X_ATS
    budget:
      monthly: 5
"""


@pytest.fixture
async def x() -> AsyncIterator[LoopbackX]:
    server = LoopbackX()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def collect_once(watchlist: Path) -> str:
    """`monitor collect --once` in a child process; this loop keeps serving the fake meanwhile."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor", "collect", "--once", "--watchlist", str(watchlist),
        cwd=ROOT, env={**os.environ, **ENV}, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()
    return out.decode()


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


async def test_collect_page_through_mark_deleted_reply_once_and_keep_the_budget(x: LoopbackX, tmp_path: Path) -> None:
    path = tmp_path / "watchlist.yaml"
    path.write_text(WATCHLIST.format(api=x.url, user_id=CITY_ID))
    db = tmp_path / "monitor.db"
    x.reads.extra["_page_cap"] = 2  # pages of two: a round of five mentions takes three pages
    first = tweet("Un nid-de-poule rue de Metz")
    x.reads.add(first, tweet("Rien à voir"))
    x.reads.add(tweet("@toulouse lampadaire éteint"), tweet("@toulouse merci !"), mention=True)

    assert "x: ok — 3 new" in await collect_once(path)  # two mentions whatever the terms, one match

    x.reads.add(*(tweet(f"@toulouse signalement n°{n}") for n in range(5)), mention=True)
    x.reads.extra["errors"] = [
        {"value": first["id"], "detail": f"Could not find tweet with referenced_tweets.id: [{first['id']}].",
         "title": "Not Found Error", "resource_type": "tweet", "parameter": "referenced_tweets.id",
         "resource_id": first["id"], "type": "https://api.twitter.com/2/problems/resource-not-found"}
    ]  # fmt: skip
    assert "x: ok — 5 new" in await collect_once(path)
    tokens = [q.get("pagination_token") for _, p, q, _ in x.server.requests if p.endswith("/mentions")]
    assert tokens == [None, None, "2", "4"]  # the first run's page, then a round of three
    assert rows(db, "SELECT count(*), count(deleted_at) FROM mentions") == [(8, 1)]
    assert rows(db, f"SELECT deleted_at IS NOT NULL FROM mentions WHERE remote_id = '{first['id']}'") == [(1,)]

    watchlist = load_watchlist(path)
    store = await Store.open(db)
    try:
        (mid,) = rows(db, "SELECT id FROM mentions WHERE text = '@toulouse lampadaire éteint'")[0]
        await actions.act(store, watchlist, int(mid), ActionKind.REPLY, "alice", {"text": "Merci, une équipe passe."})
    finally:
        await store.close()
    await collect_once(path)
    await collect_once(path)  # nothing left to send: nothing sent again
    parent = rows(db, f"SELECT remote_id FROM mentions WHERE id = {int(mid)}")[0][0]
    assert [p["text"] for p in x.created_for(str(parent))] == ["Merci, une équipe passe."]
    assert rows(db, "SELECT state FROM outbox") == [("sent",)]

    ((reads, writes_usd, writes),) = rows(db, "SELECT reads_usd, writes_usd, writes FROM spend WHERE source = 'x'")
    # 2 + 5 mentions and 2 search posts read, their one author on each of the 5 pages that held posts, and
    # the reply: each of four processes added its part to what the store held (nothing reset, nothing twice)
    assert reads == pytest.approx(9 * 0.005 + 5 * 0.010)
    assert (writes, writes_usd) == (1, pytest.approx(0.015))
