"""Duty-desk benchmark (issues 2 and 13). Prints each figure next to a baseline measured in the same run.

  python benchmarks/bench_desk.py [--mentions 100000 1000000] [--only ingest|first-paint|keys]

1. ingest of 10,000 demo mentions (match + store, one transaction per poll) vs raw sqlite3 executemany
2. start to the first screen showing the open pane's rows, with N mentions in the database, vs a trivial Textual
   app: headless, and `python -m monitor` in a real 80x24 pseudo-terminal read through pyte
3. keystroke (Enter in the dismiss dialog) to committed action vs a direct Store.act
4. memory (RSS) with N mentions in the database vs a trivial Textual app
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _runs import RUNS, as_installed, header, repeat, show  # noqa: E402

from monitor.core.matching import Matcher  # noqa: E402
from monitor.core.models import ActionKind, Status  # noqa: E402
from monitor.core.timeutil import now_ms, to_ms  # noqa: E402
from monitor.db.store import TERM_SEP, Store, configure, migrate, open_sync  # noqa: E402
from monitor.engine.collector import Collector  # noqa: E402
from monitor.networks import SourceContext, load_watchlist  # noqa: E402
from monitor.networks.demo import DemoOptions, DemoSource  # noqa: E402
from tests._pty_app import PtyApp, wait_until  # noqa: E402

WATCHLIST = ROOT / "watchlist.yaml"
CTRL_Q = "\x11"  # quits a plain Textual app


def demo_batches(n: int, per_poll: int) -> tuple[DemoSource, list[Any]]:
    source = DemoSource("demo", DemoOptions(loop=True), SourceContext())
    mentions = [source._mention(i) for i in range(n)]
    return source, [mentions[i : i + per_poll] for i in range(0, n, per_poll)]


async def bench_ingest(tmp: Path, n: int = 10_000, per_poll: int = 200) -> dict[str, float]:
    watchlist = load_watchlist(WATCHLIST)
    source, batches = demo_batches(n, per_poll)
    from monitor.core.models import Batch

    store = await Store.open(tmp / "ingest.db")  # Store.open creates the folder
    collector = Collector(watchlist, store, sources=[source])
    t = time.perf_counter()
    stored = 0
    for i, chunk in enumerate(batches):
        stored += await collector.ingest(source, Batch(mentions=[m for m in chunk if m], cursor=str(i)))
    ours = time.perf_counter() - t
    await store.close()

    # Baseline: the same rows, already matched, in one raw executemany into the same schema.
    matcher = Matcher(watchlist)
    rows = []
    for chunk in batches:
        for m in chunk:
            if m and (r := matcher.match(m)):
                rows.append((m.source, m.remote_id, m.network, m.author, m.author_name, m.text, m.url, m.lang,
                             m.thread_id, m.reply_to, TERM_SEP.join(r.terms), int(r.priority),
                             to_ms(m.published_at), 1, 1, len(rows) + 1, json.dumps(m.raw)))  # fmt: skip
    conn = sqlite3.connect(tmp / "raw.db", isolation_level=None)
    configure(conn)
    migrate(conn)
    t = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT OR IGNORE INTO mentions (source, remote_id, network, author, author_name, text, url, lang,"
        " thread_id, reply_to, terms, priority, published_at, first_seen_at, status_at, rev, raw)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    conn.execute("COMMIT")
    raw = time.perf_counter() - t
    conn.close()
    return {"stored": stored, "ours_per_s": stored / ours, "raw_per_s": len(rows) / raw}


def build_big_db(path: Path, n: int) -> None:
    """A desk of N mentions, written straight into the schema: one executemany in one transaction.

    The rows are the demo's mentions (matched as the collector would), repeated under fresh remote ids, oldest
    first, with most of them closed as a real desk would have them. 1M rows in tens of seconds, not minutes.
    """
    watchlist = load_watchlist(WATCHLIST)
    matcher = Matcher(watchlist)
    source = DemoSource("demo", DemoOptions(loop=True), SourceContext())
    templates = []
    for i in range(500):
        m = source._mention(i)
        if m and (r := matcher.match(m)):
            templates.append((m.network, m.author, m.author_name, m.text, m.url, m.lang,
                              TERM_SEP.join(r.terms), int(r.priority), json.dumps(m.raw)))  # fmt: skip
    statuses = ("new", "escalated", "dismissed", "done", "done", "done", "done", "done", "done", "done")
    base = now_ms() - n * 1000

    def rows() -> Iterator[tuple[Any, ...]]:
        for i in range(n):
            network, author, name, text, url, lang, terms, priority, raw = templates[i % len(templates)]
            at = base + i * 1000
            yield ("demo", f"bench-{i}", network, author, name, text, url, lang, terms, priority,
                   statuses[i % 10], at, at, at, i + 1, raw)  # fmt: skip

    conn = open_sync(path)  # the schema, migrated
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(
        "INSERT INTO mentions (source, remote_id, network, author, author_name, text, url, lang, terms, priority,"
        " status, published_at, first_seen_at, status_at, rev, raw) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
        " ?, ?)",
        rows(),
    )
    conn.execute("COMMIT")
    conn.close()


def desk_file(tmp: Path, n: int) -> Path:
    """The desk of N mentions for this run, built once and reused by every run (removed with `tmp`)."""
    path = tmp / f"desk-{n}.db"
    if not path.exists():
        t = time.perf_counter()
        build_big_db(path, n)
        print(f"(built a desk of {n:,} mentions in {time.perf_counter() - t:.1f}s)", flush=True)
    return path


def probe(args: list[str]) -> dict[str, Any]:
    t0 = time.time()
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "_probe.py"), args[0], repr(t0), *args[1:]],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(lines[-1])


async def bench_keystroke(tmp: Path, actions: int = 100) -> dict[str, float]:
    from textual import events

    from monitor.ui.app import MonitorApp
    from monitor.ui.screens.main import MainScreen

    db = tmp / "keys.db"
    build_big_db(db, 2000)
    watchlist = load_watchlist(WATCHLIST)
    pressed: list[float] = []
    committed: list[float] = []

    def hook(message: Any) -> None:
        if isinstance(message, events.Key) and message.key == "enter":
            pressed.append(time.perf_counter())

    app = MonitorApp(watchlist, db, "bench", collect=False)
    async with app.run_test(size=(120, 40), message_hook=hook) as pilot:
        while not isinstance(app.screen, MainScreen):
            await pilot.pause(0.05)
        app.store.on_commit = lambda label: committed.append(time.perf_counter()) if label.startswith("act") else None
        for _ in range(actions):
            before = len(committed)
            pressed.clear()
            await pilot.press("d")
            await pilot.pause()
            await pilot.press("enter")
            while len(committed) == before:
                await pilot.pause(0.01)
            committed[-1:] = [committed[-1] - pressed[0]]
        latencies = committed[-actions:]

        # Baseline: the same action through Store.act directly, no UI.
        direct = []
        ids = [r.id for r in await app.store.pane(Status.NEW, actions)]
        for mention_id in ids:
            t = time.perf_counter()
            await app.store.act(mention_id, ActionKind.DISMISS, "bench", {"reason": "spam"})
            direct.append(time.perf_counter() - t)
    return {"ui_p50_ms": 1000 * statistics.median(latencies),
            "ui_p99_ms": 1000 * sorted(latencies)[int(0.99 * (len(latencies) - 1))],
            "direct_p50_ms": 1000 * statistics.median(direct)}  # fmt: skip


def pane_has_rows(screen: str) -> bool:
    """The pane's first row is drawn: the line under its column headers is not blank."""
    lines = screen.splitlines()
    for i, line in enumerate(lines[:-1]):
        if "Source" in line and "Author" in line:
            return bool(lines[i + 1].strip())
    return False


def in_terminal(args: list[str], program: tuple[str, ...], shown: Callable[[str], bool], quit_key: str) -> float:
    """Seconds from spawning `program` in an 80x24 pty until the terminal shows what `shown` looks for."""
    t = time.perf_counter()
    app = PtyApp(args, program=program)
    try:
        wait_until(lambda: shown(app.text()), 120, "the first screen in the terminal")
        painted = time.perf_counter() - t
        app.write(quit_key)
        wait_until(lambda: not app.alive(), 30, "the app gone after its quit key")
    finally:
        app.kill()
        app.hang_up()
    return painted


def bench_first_paint(tmp: Path, n: int) -> None:
    """Start to first screen with the open pane's rows, vs a trivial Textual app in the same run: headless
    (the app in-process, `_probe.py`) and in a real pseudo-terminal (`python -m monitor` at 80x24, read by pyte)."""
    db = desk_file(tmp, n)
    wl = tmp / "watchlist.yaml"
    wl.write_text(WATCHLIST.read_text(encoding="utf-8") + f"\nstate_dir: {tmp / 'state'}\n", encoding="utf-8")
    pairs = repeat(lambda _: (probe(["trivial"]), probe(["app", str(wl), str(db)])))  # each run with its baseline
    show(f"headless: start to first screen with rows, {n:,} mentions, s", [a["first_paint_s"] for _, a in pairs],
         [t["first_paint_s"] for t, _ in pairs], baseline_label="trivial Textual app",
         target="target: ratio <= 2.5")  # fmt: skip
    show(f"memory with {n:,} mentions, MB RSS", [a["rss_mb"] for _, a in pairs], [t["rss_mb"] for t, _ in pairs],
         fmt=".0f", baseline_label="trivial Textual app", target="target < 200 MB")  # fmt: skip
    trivial = (str(ROOT / "benchmarks" / "_probe.py"), "trivial-tty", "0")
    desk = ["-w", str(wl), "--db", str(db), "--no-collect", "--operator", "bench"]
    runs = repeat(lambda _: (in_terminal([], trivial, lambda s: "hello" in s, CTRL_Q),
                             in_terminal(desk, ("-m", "monitor"), pane_has_rows, "q")))  # fmt: skip
    show(f"pty 80x24: `python -m monitor` to first screen with rows, {n:,} mentions, s", [a for _, a in runs],
         [t for t, _ in runs], baseline_label="trivial Textual app in the same terminal",
         target="target: ratio <= 2.5")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mentions", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--only", choices=("ingest", "first-paint", "keys"), help="one part of the benchmark")
    args = parser.parse_args()
    header()
    as_installed()  # the trivial app's Textual is compiled in site-packages: monitor is too, as pip would
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if args.only in (None, "ingest"):
            bench_ingest_runs(tmp)
        if args.only in (None, "first-paint"):
            for n in args.mentions:
                bench_first_paint(tmp, n)
        if args.only in (None, "keys"):
            bench_keys_runs(tmp)


def bench_ingest_runs(tmp: Path) -> None:
    for per_poll, label in ((10_000, "one poll, as collect --once"), (200, "200 per poll")):
        runs = [asyncio.run(bench_ingest(tmp / f"{per_poll}-{i}", per_poll=per_poll)) for i in range(RUNS)]
        show(f"ingest 10,000 demo mentions ({label}, match + store), mentions/s", [r["ours_per_s"] for r in runs],
             [r["raw_per_s"] for r in runs], fmt=",.0f", baseline_label="raw executemany of the same rows",
             target="target: ratio >= 0.30")  # fmt: skip


def bench_keys_runs(tmp: Path) -> None:
    keys = []
    for i in range(RUNS):
        (tmp / f"keys-{i}").mkdir()
        keys.append(asyncio.run(bench_keystroke(tmp / f"keys-{i}")))
    direct = [k["direct_p50_ms"] for k in keys]
    for name in ("p50", "p99"):
        show(f"keystroke to committed action, {name}, ms", [k[f"ui_{name}_ms"] for k in keys], direct,
             baseline_label="direct Store.act p50", target="target < 50 ms")  # fmt: skip


if __name__ == "__main__":
    main()
