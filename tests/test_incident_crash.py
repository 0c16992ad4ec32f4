"""Kill -9 the deliverer again and again during a 200-reporter broadcast, and count what the servers got.

The harness is the delivery crash test's (tests/test_delivery_crash.py): a child delivery worker, killed
either between a server's answer and its commit (a window kill) or at a seeded random moment, then
restarted. One incident of 200 reports is escalated once (one webhook request) and acknowledged to all
(200 replies): every reporter hears exactly once, the service gets one request, every item ends sent.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
from pathlib import Path

from monitor.core.config import ServiceTarget
from monitor.db.store import Store
from monitor.engine import incidents
from tests.conftest import wait_until
from tests.fakes_delivery import TOKEN, FakeMastodon, Receiver, mastodon_status, outbox_rows, seed, serving, watchlist
from tests.test_delivery_crash import CHILD, LEASE, ROOT, UNTIL_KILLED, kill_lanes

LANES = 5
KILLS_PER_LANE = 10  # 50 kill points in all
REPORTERS = 200


async def broadcast(tmp: Path, masto_url: str, hook_url: str) -> list[int]:
    wl = watchlist(tmp, mastodon_url=masto_url, targets=(ServiceTarget("webhook", url=hook_url),))
    store = await Store.open(tmp / "monitor.db")
    try:
        ids = await seed(store, "masto", "mastodon", [mastodon_status(n, host="127.0.0.1") for n in range(REPORTERS)])
        incident = await store.create_incident(ids[0], "alice", "Nid de poule avenue de Muret")
        for mid in ids[1:]:
            await store.link(mid, incident, "alice", expect_incident=None)
        await incidents.escalate_once(store, wl, incident, "voirie", "alice")
        await incidents.acknowledge_all(store, wl, incident, "alice", "{author} Merci, une équipe arrive. {ref}")
        return ids
    finally:
        await store.close()


async def child(db: Path, script: Path, masto: str, hook: str, pause: str) -> asyncio.subprocess.Process:
    env = {**os.environ, "TEST_MASTODON_TOKEN": TOKEN, "PYTHONPATH": str(ROOT)}
    return await asyncio.create_subprocess_exec(
        sys.executable, str(script), str(db.parent), str(db), masto, hook, str(LEASE), pause, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def round_(tmp: Path, rng: random.Random, kills: int, script: Path) -> tuple[int, int]:
    async with serving(FakeMastodon()) as masto, serving(Receiver()) as hook:
        masto.delay = hook.delay = (0.005, 0.03)
        masto.rng = hook.rng = random.Random(rng.random())
        answered = asyncio.Event()
        masto.on_answer = hook.on_answer = answered.set
        db = tmp / "monitor.db"
        ids = await broadcast(tmp, masto.url, hook.url + "/hook")
        done = in_window = 0
        while True:
            window = done < kills and done % 2 == 0
            answered.clear()
            proc = await child(db, script, masto.url, hook.url + "/hook", UNTIL_KILLED if window else "0.02")
            if done < kills:
                if window:
                    await wait_until(lambda p=proc: answered.is_set() or p.returncode is not None, what="an answer")
                else:
                    try:
                        await asyncio.wait_for(proc.wait(), rng.uniform(0.0, 2.0))
                    except TimeoutError:
                        pass
                if proc.returncode is None:
                    proc.kill()  # SIGKILL: no cleanup, no flush
                    await proc.wait()
                    done += 1
                    in_window += window
                    continue
            _, err = await proc.communicate()
            assert proc.returncode == 0, err.decode()
            break
        assert [r["state"] for r in outbox_rows(db)] == ["sent"] * (REPORTERS + 1)
        assert sorted(len(masto.created_for(str(110_000 + n))) for n in range(REPORTERS)) == [1] * REPORTERS
        assert len(masto.statuses) == REPORTERS  # nobody heard twice
        [body] = hook.accepted.values()  # the service got one request, listing every report
        assert [r["id"] for r in body["reports"]] == ids
        return done, in_window


async def test_sigkill_at_50_points_of_a_200_reporter_broadcast_each_reporter_hears_exactly_once(
    tmp_path: Path,
) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD, encoding="utf-8")
    results = await kill_lanes(
        tmp_path,
        20261130,
        lambda folder, rng, kills: round_(folder, rng, kills, script),
        lanes=LANES,
        kills=KILLS_PER_LANE,
    )
    assert sum(k for k, _ in results) >= LANES * KILLS_PER_LANE
    assert all(w >= 1 for _, w in results)
    print(f"\n{sum(k for k, _ in results)} kills, {sum(w for _, w in results)} in the send window")
