"""Reply latency: from Ctrl+S in the compose dialog to the loopback Mastodon accepting the status.

Run: python benchmarks/bench_reply_latency.py [--replies 100]

1. Baseline: a direct httpx POST /api/v1/statuses to the same loopback server (same payload shape).
2. Through the app: press r, type, Ctrl+S, and time until the server has created the status
   (outbox commit, worker wake-up, claim, HTTP, mark sent).
3. Responsiveness: enqueue N replies at once (the server answers each in 20 ms), then while the queue
   drains, dismiss mentions with keys (d, Enter) and time key-press to the action's commit.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _runs import header, repeat, show  # noqa: E402
from textual import events

from monitor.core.models import ActionKind, Status  # noqa: E402
from monitor.db.store import Store  # noqa: E402
from monitor.engine import actions  # noqa: E402
from monitor.networks import SourceContext  # noqa: E402
from monitor.ui.app import MonitorApp  # noqa: E402
from monitor.ui.screens.main import MainScreen  # noqa: E402
from tests.fakes_delivery import TOKEN, FakeMastodon, mastodon_status, seed, serving, watchlist  # noqa: E402


def summary(xs: list[float]) -> tuple[float, float]:
    """Median and p99, in ms."""
    xs = sorted(xs)
    return 1000 * statistics.median(xs), 1000 * xs[min(len(xs) - 1, int(round(0.99 * (len(xs) - 1))))]


async def wait(pilot: Any, cond: Any, within: float = 10.0) -> None:
    end = time.perf_counter() + within
    while not cond():
        if time.perf_counter() > end:
            raise TimeoutError("condition not met")
        await pilot.pause(0.001)


async def one_run(n: int, tmp: Path) -> dict[str, float]:
    os.environ["TEST_MASTODON_TOKEN"] = TOKEN
    async with serving(FakeMastodon()) as masto:
        accepted: list[float] = []
        masto.on_accept = lambda: accepted.append(time.perf_counter())

        # 1. baseline
        base: list[float] = []
        async with httpx.AsyncClient(base_url=masto.url) as client:
            for i in range(n):
                t0 = time.perf_counter()
                r = await client.post(
                    "/api/v1/statuses",
                    data={"status": "@citizen ok", "in_reply_to_id": str(i), "visibility": "public"},
                    headers={"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": f"base-{i}"},
                )
                r.raise_for_status()
                base.append(time.perf_counter() - t0)

        # 2. through the app, key by key
        wl = watchlist(tmp, mastodon_url=masto.url)
        store = await Store.open(wl.database)
        await seed(store, "masto", "mastodon", [mastodon_status(i, host="127.0.0.1") for i in range(2 * n + 40)])
        await store.close()
        app = MonitorApp(wl, db_path=wl.database, operator="bench", collect=False, context=SourceContext())
        through: list[float] = []
        commits: dict[str, float] = {}
        enter_at: list[float] = []
        send_at: list[float] = []

        def hook(message: Any) -> None:
            # The keystroke's own time, as the app receives it (Pilot's press adds its own ~60 ms).
            if isinstance(message, events.Key) and message.key in ("enter", "ctrl+s"):
                (enter_at if message.key == "enter" else send_at).append(time.perf_counter())

        async with app.run_test(size=(80, 24), message_hook=hook) as pilot:
            await wait(pilot, lambda: isinstance(app.screen, MainScreen))
            screen = app.screen
            assert isinstance(screen, MainScreen)
            await wait(pilot, lambda: screen.pane(Status.NEW).row_count > 0)
            app.store.on_commit = lambda label: commits.__setitem__(label, time.perf_counter())
            for _ in range(n):
                before = len(accepted)
                await pilot.press("r")
                await wait(pilot, lambda: not isinstance(app.screen, MainScreen))
                await pilot.press("o", "k")
                await pilot.press("ctrl+s")
                await wait(pilot, lambda: len(accepted) > before)  # noqa: B023
                through.append(accepted[before] - send_at[-1])
                await wait(pilot, lambda: isinstance(app.screen, MainScreen))

            # 3. a burst of n replies queued at once, and the operator keeps working meanwhile
            masto.delay = (0.2, 0.2)
            rows = await app.store.pane(Status.NEW, n + 30)
            left = screen.pane(Status.NEW).row_count - n
            burst_start = time.perf_counter()
            before = len(accepted)
            for row in rows[:n]:
                await actions.act(app.store, wl, row.id, ActionKind.REPLY, "bench", {"text": "ok"})
            assert app.delivery is not None
            app.delivery.wake()
            await wait(pilot, lambda: screen.pane(Status.NEW).row_count <= left, within=30)
            key_to_commit: list[float] = []
            during = 0
            for _ in range(20):
                commits.pop("act:dismiss", None)
                await pilot.press("d")
                await wait(pilot, lambda: not isinstance(app.screen, MainScreen))
                await pilot.press("enter")
                await wait(pilot, lambda: "act:dismiss" in commits)
                key_to_commit.append(commits["act:dismiss"] - enter_at[-1])
                if len(accepted) - before < n:
                    during += 1
            await wait(pilot, lambda: len(accepted) - before >= n, within=60)
            # When the server accepted the last of them (not when the dismiss loop above ended).
            drained = max(accepted[before:]) - burst_start

    figures = dict(zip(("base_med", "base_p99"), summary(base), strict=True))
    figures.update(zip(("app_med", "app_p99"), summary(through), strict=True))
    figures.update(zip(("key_med", "key_p99"), summary(key_to_commit), strict=True))
    return {**figures, "drained": drained, "during": during, "keys": len(key_to_commit)}


def main(n: int) -> None:
    def measure(_: int) -> dict[str, float]:
        with tempfile.TemporaryDirectory(prefix="bench-reply-") as d:
            return asyncio.run(one_run(n, Path(d)))

    runs = repeat(measure)
    print(f"\nreply latency, {n} replies, loopback Mastodon (Python {sys.version.split()[0]})")
    header()
    for key, name in (("med", "median"), ("p99", "p99")):
        show(f"app: Ctrl+S -> server accepted, {name}, ms", [r[f"app_{key}"] for r in runs],
             [r[f"base_{key}"] for r in runs], baseline_label="direct httpx POST")  # fmt: skip
    for key, name in (("med", "median"), ("p99", "p99")):
        show(f"while draining: key (d, Enter) -> commit, {name}, ms", [r[f"key_{key}"] for r in runs])
    show(f"burst of {n} queued replies drained (server answers each in 200 ms), s", [r["drained"] for r in runs])
    show(f"dismisses (of {runs[0]['keys']:.0f}) committed while replies were still queued", [r["during"] for r in runs],
         fmt=".0f")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--replies", type=int, default=100)
    main(parser.parse_args().replies)
