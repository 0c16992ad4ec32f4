"""Many operators on one SQLite file: action commit latency and how soon other desks see it.

Run: python benchmarks/bench_multi.py [--workers 8] [--actions 1000] [--burst 10000]

Targets (issue): 8 processes doing 1,000 actions each while a burst of 10,000 mentions is ingested;
keystroke to commit p99 < 100 ms; a commit in one process shown in another p95 < 1 s.

- Each worker process acts like an operator, one action at a time, through the app's own path
  (`monitor.engine.actions.act` on a `Store`, `expect_status` = the status it saw; a reply goes unchecked, as in
  the app). It reads the head of the New pane, picks a row, acts. Call -> commit is timed with
  `Store.on_commit` (fired on the database thread once the commit is durable). A refused (stale)
  action is a Conflict: counted, not an error.
- The ingest process feeds the burst through `Collector.ingest` (match, then `Store.ingest` with its
  cursor), 200 mentions per poll, as fast as it can.
- The watcher process does what `MainScreen.refresh_panes` does every 0.2 s: `max_rev`, then
  `changes_since`, `counts` and the live claims. Commit -> seen is the time from a worker's commit (wall
  clock, same machine) to the end of the first refresh that returned that mention afterwards.
- Baseline, in the same run: one worker alone (no ingest), with the watcher.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _runs import header, repeat, show  # noqa: E402

from monitor.core.config import Watchlist  # noqa: E402
from monitor.core.models import ActionKind, Batch, Status  # noqa: E402
from monitor.db.engines import open_database  # noqa: E402
from monitor.db.presence import Presence  # noqa: E402
from monitor.db.store import Conflict  # noqa: E402
from monitor.engine.actions import act  # noqa: E402
from monitor.engine.collector import Collector  # noqa: E402
from monitor.networks import SourceContext, load_watchlist  # noqa: E402
from monitor.networks.demo import DemoOptions, DemoSource  # noqa: E402
from monitor.ui.screens.desk_panes import CHANGES_PER_TICK  # noqa: E402
from monitor.ui.screens.main import REFRESH_SECONDS  # noqa: E402
from tests.conftest import write_watchlist  # noqa: E402

PER_POLL = 200
PANE_HEAD = 20  # an operator acts on one of the first rows of the New pane
KINDS = (ActionKind.DISMISS, ActionKind.ESCALATE, ActionKind.NOTE, ActionKind.REPLY)
TEXT = "@citizen Merci pour votre signalement ! Nous l'avons transmis au service concerné."


def demo_source() -> DemoSource:
    return DemoSource("demo", DemoOptions(loop=True), SourceContext())


async def ingest(path: str | Path, watchlist: Watchlist, start: int, n: int) -> tuple[int, float, float, int]:
    """Demo mentions from index `start`, a poll's worth per transaction, until n are stored (some do not
    match a term); returns (stored, t_start, t_end wall clock, next index)."""
    source = demo_source()
    store = await open_database(path)
    collector = Collector(watchlist, store, sources=[source])
    t0, stored, i = time.time(), 0, start
    while stored < n:
        mentions = [m for j in range(i, i + PER_POLL) if (m := source._mention(j)) is not None]
        i += PER_POLL
        stored += await collector.ingest(source, Batch(mentions=mentions, cursor=str(i)))
    t1 = time.time()
    await store.close()
    return stored, t0, t1, i


# -- the processes -------------------------------------------------------------------------------


def run_worker(path: str, wl: str, index: int, actions: int, barrier: Any, out: Any) -> None:
    out.put(("worker", index, asyncio.run(worker(path, load_watchlist(wl), index, actions, barrier))))


async def worker(path: str, watchlist: Watchlist, index: int, actions: int, barrier: Any) -> dict[str, Any]:
    store = await open_database(path)
    stamps: list[tuple[str, float, float]] = []
    store.on_commit = lambda label: stamps.append((label, time.perf_counter(), time.time()))
    rng = random.Random(index)
    operator = f"op{index}"
    done: list[tuple[float, float, int, float]] = []  # (latency s, commit wall, mention id, call wall)
    conflicts = errors = 0
    await asyncio.to_thread(barrier.wait)
    for n in range(actions):
        head = await store.pane(Status.NEW, PANE_HEAD)
        if not head:
            break
        row = rng.choice(head)
        kind = KINDS[n % len(KINDS)]
        payload: dict[str, Any] = {
            ActionKind.DISMISS: {"reason": "off-topic"},
            ActionKind.ESCALATE: {"service": "voirie", "service_name": "Voirie et espace public", "note": ""},
            ActionKind.NOTE: {"text": f"appel {n}"},
            ActionKind.REPLY: {"text": TEXT, "template": "merci"},
        }[kind]
        expect = None if kind is ActionKind.REPLY else row.status  # as MainScreen._act does
        before = len(stamps)
        call_wall, t0 = time.time(), time.perf_counter()
        try:
            await act(store, watchlist, row.id, kind, operator, payload, dry_run=True, expect_status=expect)
        except Conflict:
            conflicts += 1
            continue
        except Exception:
            errors += 1
            continue
        label, t1, wall = next(s for s in stamps[before:] if s[0].startswith("act:"))
        done.append((t1 - t0, wall, row.id, call_wall))
    await store.close()
    return {"done": done, "conflicts": conflicts, "errors": errors}


def run_ingester(path: str, wl: str, start: int, n: int, barrier: Any, out: Any) -> None:
    async def go() -> tuple[int, float, float, int]:
        await asyncio.to_thread(barrier.wait)
        await asyncio.sleep(0.5)  # let the operators get going first: the burst lands on a busy desk
        return await ingest(path, load_watchlist(wl), start, n)

    out.put(("ingest", 0, asyncio.run(go())))


def run_watcher(path: str, barrier: Any, stop: Any, out: Any) -> None:
    out.put(("watcher", 0, asyncio.run(watcher(path, barrier, stop))))


async def watcher(path: str, barrier: Any, stop: Any) -> list[tuple[float, float, list[int]]]:
    """The panes' refresh; each tick that saw changes: (start, end, mention ids). On SQLite the desk's poll on
    its 0.2 s interval; on PostgreSQL a tick as soon as the store's notification wakes it (`wait_change`)."""
    store = await open_database(path)
    presence = Presence(store, "watcher")
    last_rev = await store.max_rev()
    ticks: list[tuple[float, float, list[int]]] = []
    # As the desk: a store that notifies is waited on; SQLite's is polled on the refresh interval.
    wait_change = store.wait_change if store.notifies else None
    await asyncio.to_thread(barrier.wait)
    next_at = time.monotonic()
    while not stop.is_set():
        if wait_change is not None:
            await wait_change(last_rev, 1.0)  # a missed notification only delays: the rev is read again
        next_at += REFRESH_SECONDS
        start = time.time()
        if await store.max_rev() > last_rev:
            changes = await store.changes_since(last_rev, CHANGES_PER_TICK)
            if changes:
                last_rev = changes[-1].rev
                await store.counts()
                await presence.claims()
                ticks.append((start, time.time(), [r.id for r in changes]))
        if wait_change is None:
            # Like set_interval: a tick that overran skips the missed ones rather than piling up.
            while next_at < time.monotonic():
                next_at += REFRESH_SECONDS
            await asyncio.sleep(next_at - time.monotonic())
    await store.close()
    return ticks


# -- a run ---------------------------------------------------------------------------------------


def run(path: str | Path, wl: Path, workers: int, actions: int, burst: int, burst_start: int) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    parties = workers + 1 + (1 if burst else 0)
    barrier, stop, out = ctx.Barrier(parties), ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=run_worker, args=(str(path), str(wl), i, actions, barrier, out)) for i in range(workers)
    ]
    if burst:
        procs.append(ctx.Process(target=run_ingester, args=(str(path), str(wl), burst_start, burst, barrier, out)))
    watch = ctx.Process(target=run_watcher, args=(str(path), barrier, stop, out))
    for p in [*procs, watch]:
        p.start()
    t0 = time.perf_counter()
    results: dict[str, Any] = {"workers": []}
    for _ in procs:
        role, _i, value = out.get()
        if role == "worker":
            results["workers"].append(value)
        else:
            results["ingest"] = value
    elapsed = time.perf_counter() - t0
    time.sleep(2 * REFRESH_SECONDS + 0.5)  # the watcher's last ticks
    stop.set()
    role, _i, results["ticks"] = out.get()
    for p in [*procs, watch]:
        p.join()
    results["elapsed"] = elapsed
    return results


def seen_latencies(results: dict[str, Any]) -> tuple[list[float], int]:
    """Commit -> end of the first refresh that returned the mention after the commit."""
    ticks = results["ticks"]
    out, missed = [], 0
    for w in results["workers"]:
        for _lat, wall, mention_id, _call in w["done"]:
            # A commit that lands during a tick's reads may or may not be in it: the tick must end after it.
            hit = next((end for _start, end, ids in ticks if end >= wall and mention_id in ids), None)
            if hit is None:
                missed += 1
            else:
                out.append(hit - wall)
    return out, missed


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))] if xs else float("nan")


def line(name: str, xs: list[float]) -> tuple[float, float, float]:
    p50, p95, p99 = pct(xs, 50), pct(xs, 95), pct(xs, 99)
    print(f"  {name:<40} n={len(xs):<6} p50 {p50 * 1000:8.1f} ms  p95 {p95 * 1000:8.1f} ms  p99 {p99 * 1000:8.1f} ms")
    return p50, p95, p99


def report(title: str, results: dict[str, Any]) -> dict[str, tuple[float, float, float]]:
    commits = [lat for w in results["workers"] for lat, *_ in w["done"]]
    seen, missed = seen_latencies(results)
    conflicts = sum(w["conflicts"] for w in results["workers"])
    errors = sum(w["errors"] for w in results["workers"])
    print(f"{title}: {len(commits)} committed, {conflicts} refused as stale, {errors} errors, "
          f"{results['elapsed']:.1f} s")  # fmt: skip
    out = {"commit": line("call -> commit", commits), "seen": line("commit -> seen by another process", seen)}
    if missed:
        print(f"  ({missed} commits never matched to a refresh)")
    if "ingest" in results:
        stored, b0, b1, _ = results["ingest"]
        print(f"  burst: {stored} mentions stored in {b1 - b0:.2f} s ({stored / (b1 - b0):,.0f}/s)")
        during = [lat for w in results["workers"] for lat, wall, _m, call in w["done"] if b0 <= call <= b1]
        if during:
            out["commit_during_burst"] = line("call -> commit, during the burst", during)
        seen_during, _ = seen_latencies(
            {**results, "workers": [{"done": [d for d in w["done"] if b0 <= d[3] <= b1]} for w in results["workers"]]}
        )
        if seen_during:
            out["seen_during_burst"] = line("commit -> seen, during the burst", seen_during)
    return out


async def seed(path: Path, watchlist: Watchlist, n: int) -> tuple[int, int]:
    stored, _, _, end = await ingest(path, watchlist, 0, n)
    return stored, end


def one_run(args: argparse.Namespace, number: int) -> dict[str, dict[str, tuple[float, float, float]]]:
    """The baseline then the contended case, in a folder removed afterwards (each run writes ~23 MB)."""
    runs = {}
    with tempfile.TemporaryDirectory(prefix="bench-multi-") as d:
        for name, workers, burst in (("baseline", 1, 0), ("contended", args.workers, args.burst)):
            folder = Path(d) / name
            folder.mkdir()
            wl = write_watchlist(folder)
            db = load_watchlist(wl).database
            seeded, end = asyncio.run(seed(db, load_watchlist(wl), args.seed_mentions))
            print(f"\nrun {number + 1}, {name}: {workers} worker(s) x {args.actions} actions, burst {burst},"
                  f" {seeded} mentions seeded")  # fmt: skip
            runs[name] = report(name, run(db, wl, workers, args.actions, burst, end))
    return runs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--actions", type=int, default=1000)
    ap.add_argument("--burst", type=int, default=10_000)
    ap.add_argument("--seed-mentions", type=int, default=12_000, help="New mentions present before the run")
    args = ap.parse_args()
    runs = repeat(lambda number: one_run(args, number))

    print()
    header()
    for key, label in (("commit", "call -> commit"), ("seen", "commit -> seen by another process")):
        for i, p in enumerate((50, 95, 99)):
            show(
                f"{label}, p{p}, contended",
                [r["contended"][key][i] * 1000 for r in runs],
                [r["baseline"][key][i] * 1000 for r in runs],
                unit="ms",
                fmt=".1f",
                baseline_label="baseline (one worker, no burst)",
            )
    p99_commit = statistics.median(r["contended"]["commit"][2] for r in runs)
    p95_seen = statistics.median(r["contended"]["seen"][1] for r in runs)
    print(f"\ntargets (median run): commit p99 {p99_commit * 1000:.1f} ms"
          f" (< 100 ms: {'ok' if p99_commit < 0.1 else 'MISSED'}),"
          f" seen p95 {p95_seen * 1000:.0f} ms (< 1 s: {'ok' if p95_seen < 1 else 'MISSED'})")  # fmt: skip


if __name__ == "__main__":
    main()
