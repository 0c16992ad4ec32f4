"""Kill -9 the delivery worker at 50 points while it replies on X, and count what the server got.

As tests/test_delivery_crash.py does for Mastodon, Bluesky and webhooks: half the kills land between X's
answer and the child's commit (the worker's after_send hook parks it there), the others at a seeded random
moment. X has no idempotency key: the sender must find its earlier reply among the desk's own posts.
"""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import sys
import textwrap
from pathlib import Path

from monitor.core.models import ActionKind, MatchResult, Mention, Priority
from monitor.core.timeutil import utcnow
from monitor.db.store import Store
from monitor.engine import actions
from tests.conftest import wait_until
from tests.fakes_delivery import serving
from tests.fakes_x import CITY_ID, LoopbackX, tweet
from tests.test_delivery_crash import kill_lanes

ROOT = Path(__file__).resolve().parent.parent
LANES = 5
KILLS_PER_LANE = 10  # 50 kill points in all
MENTIONS = 4
LEASE = 0.4
UNTIL_KILLED = "3600"
KEYS = {"TEST_X_CK": "ck", "TEST_X_CS": "cs", "TEST_X_AT": "at", "TEST_X_ATS": "ats"}

CHILD = textwrap.dedent(
    """
    import asyncio, sqlite3, sys
    from pathlib import Path
    from monitor.engine.delivery import DeliveryWorker
    from monitor.db.store import Store
    from tests.test_delivery_crash_x import x_watchlist

    async def main(db, api, lease, pause):
        store = await Store.open(db)

        async def after_send(item):  # X has it, we have not recorded it
            await asyncio.sleep(float(pause))

        worker = DeliveryWorker(store, x_watchlist(Path(db).parent, api), lease=float(lease), idle=0.05,
                                after_send=after_send)
        while True:
            handled = await worker.run_once()
            left = sqlite3.connect(db).execute(
                "SELECT count(*) FROM outbox WHERE state IN ('pending', 'sending')").fetchone()[0]
            if not left:
                break
            if not handled:
                await asyncio.sleep(0.05)
        await worker.aclose()
        await store.close()

    asyncio.run(main(*sys.argv[1:5]))
    """
)


def x_watchlist(tmp: Path, api: str):  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from monitor.core.config import SourceSpec, Targets, Watchlist
    from monitor.networks.x.options import Budget, XOptions

    options = XOptions(user_id=CITY_ID, bearer_token_env="TEST_X_BEARER", api=api, budget=Budget(10.0),
                       oauth1_env=tuple(KEYS))  # type: ignore[arg-type]  # fmt: skip
    return Watchlist(
        path=tmp / "watchlist.yaml", city="Toulouse Métropole", timezone="Europe/Paris", database=tmp / "monitor.db",
        targets=Targets(), terms=(), ignore=(), priority_rules=(),
        sources=(SourceSpec("x", "x", timedelta(seconds=60), options),), services=(), templates=(),
    )  # fmt: skip


async def seed(store: Store) -> list[tuple[int, str]]:
    posts = [tweet(f"@toulouse nid-de-poule n°{n}") for n in range(MENTIONS)]
    mentions = [
        Mention(source="x", remote_id=p["id"], network="x", author="citizen", text=p["text"], published_at=utcnow(),
                url=f"https://x.com/citizen/status/{p['id']}", raw={k: v for k, v in p.items() if k[0] != "_"})
        for p in posts
    ]  # fmt: skip
    await store.ingest("x", [(m, MatchResult(("voirie",), Priority.NORMAL)) for m in mentions], None)
    conn = sqlite3.connect(store.path)
    try:
        return [
            (conn.execute("SELECT id FROM mentions WHERE remote_id = ?", (p["id"],)).fetchone()[0], p["id"])
            for p in posts
        ]
    finally:
        conn.close()


def unsent_parents(db: Path) -> set[str]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT payload ->> '$.in_reply_to_tweet_id' FROM outbox WHERE state != 'sent'")
        return {r[0] for r in rows}
    finally:
        conn.close()


async def round_(tmp: Path, rng: random.Random, kills: int, script: Path) -> tuple[int, int]:
    async with serving(LoopbackX()) as x:  # type: ignore[arg-type]
        x.refuse_duplicates = False  # only the look among the desk's own posts stands between a retry and a double
        x.server.delay = (0.01, 0.08)
        x.server.rng = random.Random(rng.random())
        answered = asyncio.Event()
        x.server.on_answer = answered.set
        db = tmp / "monitor.db"
        wl = x_watchlist(tmp, x.url)
        store = await Store.open(db)
        seeded = await seed(store)
        for mid, _ in seeded:
            await actions.act(store, wl, mid, ActionKind.REPLY, "alice", {"text": f"Merci, c'est noté ({mid})"})
        await store.close()

        env = {**os.environ, **KEYS, "PYTHONPATH": str(ROOT)}
        done = in_window = 0
        while True:
            window = done < kills and done % 2 == 0
            answered.clear()
            proc = await asyncio.create_subprocess_exec(
                sys.executable, str(script), str(db), x.url, str(LEASE), UNTIL_KILLED if window else "0.15",
                cwd=ROOT, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            if done < kills:
                if window:
                    await wait_until(lambda p=proc: answered.is_set() or p.returncode is not None, what="an answer")
                else:
                    try:
                        await asyncio.wait_for(proc.wait(), rng.uniform(0.0, 1.5))
                    except TimeoutError:
                        pass
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
                    done += 1
                    # A round's first kill always lands there (its child's first call is a post); a later one
                    # may follow a look that found nothing of the item in hand.
                    if window and {p["referenced_tweets"][0]["id"] for p in x.posts} & unsent_parents(db):
                        in_window += 1
                    continue
            _, err = await proc.communicate()
            assert proc.returncode == 0, err.decode()
            break

        conn = sqlite3.connect(db)
        states = [r[0] for r in conn.execute("SELECT state FROM outbox")]
        writes = conn.execute("SELECT sum(writes) FROM spend WHERE source = 'x'").fetchone()[0]
        conn.close()
        assert states == ["sent"] * MENTIONS
        for _, parent in seeded:
            assert len(x.created_for(parent)) == 1  # each reply created exactly once
        assert writes == MENTIONS  # and paid for once, whoever recorded it
        return done, in_window


async def test_sigkill_at_50_points_delivers_each_x_reply_exactly_once(tmp_path: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD, encoding="utf-8")
    results = await kill_lanes(
        tmp_path,
        20261130,
        lambda folder, rng, kills: round_(folder, rng, kills, script),
        lanes=LANES,
        kills=KILLS_PER_LANE,
        batch=4,
    )
    assert sum(k for k, _ in results) >= LANES * KILLS_PER_LANE
    assert all(w >= 1 for _, w in results)  # every lane killed a child between X's yes and its commit
