"""Kill -9 the delivery worker again and again, restart it, and count what the servers got.

Two kinds of kill alternate. A window kill lands, by construction, between a server's answer and the
child's commit: that child pauses "forever" there (the worker's after_send hook) and is killed once a
server has answered it, so the server holds an item that the database does not record as sent. A timed
kill lands at a seeded random moment, wherever that is; nothing is asserted about where it landed.
Every reply and every escalation must arrive exactly once, and the database must end with every item sent.
It runs on both engines: a SQLite file, and a PostgreSQL database (its outbox claimed with SKIP LOCKED).
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import textwrap
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from monitor.core.config import ServiceTarget
from monitor.core.models import ActionKind
from monitor.db.engines import open_database
from monitor.engine import actions
from tests.conftest import wait_until
from tests.engines import AnyStore, stored_rows
from tests.fakes_delivery import TOKEN, FakeMastodon, Receiver, mastodon_status, seed, serving, watchlist
from tests.pg_server import Cluster

ROOT = Path(__file__).resolve().parent.parent
LANES = 5
KILLS_PER_LANE = 10  # 50 kill points in all
MENTIONS = 4  # each gets a reply (Mastodon) and an escalation (webhook): 8 items per round
LEASE = 0.4
UNTIL_KILLED = "3600"  # the child's pause after an answer in a window kill: it never records that item

CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from monitor.core.config import ServiceTarget
    from monitor.engine.delivery import DeliveryWorker
    from monitor.db.engines import open_database
    from tests.engines import stored_rows
    from tests.fakes_delivery import watchlist

    async def main(folder, db, masto, hook, lease, pause):
        wl = watchlist(Path(folder), mastodon_url=masto, targets=(ServiceTarget("webhook", url=hook),))
        store = await open_database(db if db.startswith("postgresql://") else Path(db))

        async def after_send(item):  # the remote has it, we have not recorded it
            await asyncio.sleep(float(pause))

        worker = DeliveryWorker(store, wl, lease=float(lease), idle=0.05, after_send=after_send)
        while True:
            handled = await worker.run_once()
            left = [r for r in stored_rows(store, "outbox") if r["state"] in ("pending", "sending")]
            if not left:
                break
            if not handled:
                await asyncio.sleep(0.05)
        await worker.aclose()
        await store.close()

    asyncio.run(main(*sys.argv[1:7]))
    """
)


def states(store: AnyStore) -> list[tuple[str, str]]:
    return [(r["idem_key"], r["state"]) for r in stored_rows(store, "outbox")]


async def round_(
    tmp: Path, rng: random.Random, kills: int, script: Path, db: str | Path
) -> tuple[int, int]:  # returns (kills done, kills that landed between a server's answer and the commit)
    async with serving(FakeMastodon()) as masto, serving(Receiver()) as hook:
        masto.delay = hook.delay = (0.01, 0.08)
        masto.rng = hook.rng = random.Random(rng.random())
        answered = asyncio.Event()
        masto.on_answer = hook.on_answer = answered.set
        wl = watchlist(tmp, mastodon_url=masto.url, targets=(ServiceTarget("webhook", url=hook.url + "/hook"),))
        store = await open_database(db)
        ids = await seed(store, "masto", "mastodon", [mastodon_status(n, host="127.0.0.1") for n in range(MENTIONS)])
        for mid in ids:
            await actions.act(store, wl, mid, ActionKind.ESCALATE, "alice", {"service": "voirie", "note": "vite"})
            await actions.act(store, wl, mid, ActionKind.REPLY, "alice", {"text": f"Merci {mid}"})
        await store.close()  # closed: stored_rows below reads through a connection of its own

        env = {**os.environ, "TEST_MASTODON_TOKEN": TOKEN, "PYTHONPATH": str(ROOT)}
        done = in_window = 0
        while True:
            window = done < kills and done % 2 == 0  # a round's first kill is always a window kill
            answered.clear()
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                str(script),
                str(tmp),
                str(db),
                masto.url,
                hook.url + "/hook",
                str(LEASE),
                UNTIL_KILLED if window else "0.15",  # the pause after a server's answer
                cwd=ROOT,
                env=env,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            if done < kills:
                if window:  # once a server answered, this child holds that item unrecorded until killed
                    await wait_until(lambda p=proc: answered.is_set() or p.returncode is not None, what="an answer")
                else:
                    try:
                        await asyncio.wait_for(proc.wait(), rng.uniform(0.0, 1.5))
                    except TimeoutError:
                        pass
                if proc.returncode is None:
                    proc.kill()  # SIGKILL: no cleanup, no flush
                    await proc.wait()
                    done += 1
                    if window:
                        got = set(masto.by_key) | set(hook.accepted)
                        assert any(k in got and s != "sent" for k, s in states(store)), "the server has it, we not"
                        in_window += 1
                    continue
            _, err = await proc.communicate()
            assert proc.returncode == 0, err.decode()
            break

        final = states(store)
        assert [s for _, s in final] == ["sent"] * (2 * MENTIONS)
        for n in range(MENTIONS):
            assert len(masto.created_for(str(110_000 + n))) == 1  # each reply created exactly once
        assert len(hook.accepted) == MENTIONS  # each escalation accepted exactly once
        assert sorted(b["mention"]["id"] for b in hook.accepted.values()) == sorted(ids)
        return done, in_window


Round = Callable[[Path, random.Random, int], Awaitable[tuple[int, int]]]


async def kill_lanes(
    tmp_path: Path, seed: int, round_: Round, batch: int | None = None, lanes: int = LANES, kills: int = KILLS_PER_LANE
) -> list[tuple[int, int]]:
    """Kill rounds in `lanes` parallel lanes, each in its own folder, until each lane made `kills` kills (at most
    `batch` a round); each lane's (kills, kills between the server's answer and the commit)."""
    rng = random.Random(seed)

    async def lane(n: int) -> tuple[int, int]:
        lane_rng = random.Random(rng.random())
        total = window = rounds = 0
        while total < kills:
            rounds += 1
            folder = tmp_path / f"lane{n}-{rounds}"
            folder.mkdir()
            left = kills - total
            done, hits = await round_(folder, lane_rng, left if batch is None else min(batch, left))
            total, window = total + done, window + hits
        return total, window

    return list(await asyncio.gather(*(lane(n) for n in range(lanes))))


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
async def test_sigkill_at_50_points_half_in_the_send_window_delivers_each_reply_exactly_once(
    tmp_path: Path, engine: str, request: pytest.FixtureRequest
) -> None:
    cluster: Cluster | None = request.getfixturevalue("pg_cluster") if engine == "postgresql" else None
    script = tmp_path / "child.py"
    script.write_text(CHILD, encoding="utf-8")
    results = await kill_lanes(
        tmp_path,
        20260302,
        lambda folder, rng, kills: round_(
            folder, rng, kills, script, cluster.url(cluster.new_database()) if cluster else folder / "monitor.db"
        ),
        batch=4,
    )
    assert sum(k for k, _ in results) >= LANES * KILLS_PER_LANE
    assert all(w >= 1 for _, w in results)  # every lane killed a child between the server's yes and its commit
    kills, window = sum(k for k, _ in results), sum(w for _, w in results)
    print(f"\n{kills} kills, {window} of them between a server's answer and the commit")
