"""SQLite and PostgreSQL side by side, in the same runs: issue 16's table (all but `monitor stats`).

Run: python benchmarks/bench_engines.py [--workers 8] [--actions 1000] [--burst 10000] [--ingest 10000]

PostgreSQL is a throwaway cluster in a temporary folder, started as the tests start theirs (tests/pg_server.py:
a Unix socket, fsync off, as SQLite's WAL with synchronous=NORMAL does not sync at commit either) and removed
at the end. In each run, each engine gets a fresh desk (a SQLite file; an empty database), then:
- ingest: `--ingest` demo mentions stored into the empty desk through the collector's path
  (`Collector.ingest` -> the store's `ingest`, 200 a poll; bench_multi.ingest): mentions/s.
- quiet: one operator process acting, another process watching (bench_multi.run): commit -> seen. The watcher
  does what the desk does on that engine: SQLite, the panes' 0.2 s poll of the rev; PostgreSQL, the store's
  `wait_change` (LISTEN/NOTIFY), then the same reads.
- contended: `--workers` processes x `--actions` actions while `--burst` mentions are ingested: call -> commit.
Every figure is min / median / max of 3 runs, beside SQLite's of the same run, with the ratio PostgreSQL / SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _runs import as_installed, header, repeat, show  # noqa: E402
from bench_multi import ingest, pct, report, run, seen_latencies  # noqa: E402

from monitor.networks import load_watchlist  # noqa: E402
from tests.conftest import write_watchlist  # noqa: E402
from tests.pg_server import Cluster, start_cluster, stop_cluster  # noqa: E402

ENGINES = ("sqlite", "postgresql")


def measure(target: str, wl: Path, args: argparse.Namespace, title: str) -> dict[str, Any]:
    """One engine's figures, on a fresh desk at `target`."""
    watchlist = load_watchlist(wl)
    stored, t0, t1, end = asyncio.run(ingest(target, watchlist, 0, args.ingest))
    print(f"\n{title}: ingest {stored} mentions into an empty desk in {t1 - t0:.2f} s ({stored / (t1 - t0):,.0f}/s)")
    quiet = run(target, wl, 1, args.quiet_actions, 0, end)
    report(f"{title}, quiet (1 worker, no burst)", quiet)
    contended = run(target, wl, args.workers, args.actions, args.burst, end)
    busy = report(f"{title}, contended ({args.workers} workers x {args.actions}, burst {args.burst})", contended)
    stored_b, b0, b1, _ = contended["ingest"]
    commits = [lat for w in contended["workers"] for lat, *_ in w["done"]]
    quiet_seen, _ = seen_latencies(quiet)
    return {
        "ingest": stored / (t1 - t0),
        "burst": stored_b / (b1 - b0),
        "commit_p99": pct(commits, 99) * 1000,
        "commit_p99_burst": busy.get("commit_during_burst", (0, 0, float("nan")))[2] * 1000,
        "seen_p95_quiet": pct(quiet_seen, 95) * 1000,
        "seen_p95_busy": busy["seen"][1] * 1000,
    }


def one_run(args: argparse.Namespace, cluster: Cluster, number: int) -> dict[str, dict[str, Any]]:
    out = {}
    with tempfile.TemporaryDirectory(prefix="bench-engines-") as d:
        for engine in ENGINES:
            folder = Path(d) / engine
            folder.mkdir()
            wl = write_watchlist(folder)
            if engine == "sqlite":
                out[engine] = measure(str(load_watchlist(wl).database), wl, args, f"run {number + 1}, SQLite")
                continue
            name = cluster.new_database()
            try:
                out[engine] = measure(cluster.url(name), wl, args, f"run {number + 1}, PostgreSQL")
            finally:
                cluster.drop_database(name)
    return out


ROWS: list[tuple[str, str, str, str, Callable[[float, float], bool]]] = [
    # key, label, unit, target, holds(sqlite median, postgresql median)
    ("ingest", "ingest into an empty desk, mentions/s", "/s", "PostgreSQL >= 50% of SQLite", lambda s, p: p >= s / 2),
    ("burst", "the burst's ingest, under the workers, mentions/s", "/s", "", lambda s, p: True),
    ("commit_p99", "contended: call -> commit p99", "ms", "< 100 ms on both", lambda s, p: s < 100 and p < 100),
    ("commit_p99_burst", "contended, during the burst: commit p99", "ms", "< 100 ms on both",
     lambda s, p: s < 100 and p < 100),
    ("seen_p95_quiet", "quiet: commit -> seen in another process p95", "ms", "< 100 ms on PostgreSQL",
     lambda s, p: p < 100),
    ("seen_p95_busy", "contended: commit -> seen p95", "ms", "", lambda s, p: True),
]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--actions", type=int, default=1000)
    ap.add_argument("--burst", type=int, default=10_000)
    ap.add_argument("--ingest", type=int, default=10_000, help="mentions stored into the empty desk")
    ap.add_argument("--quiet-actions", type=int, default=300, help="the quiet run's actions")
    args = ap.parse_args()
    as_installed()
    cluster = start_cluster()
    try:
        runs = repeat(lambda number: one_run(args, cluster, number))
    finally:
        stop_cluster(cluster)

    print("\nPostgreSQL beside SQLite (the baseline), ratio PostgreSQL / SQLite; the machine may be busy:")
    header()
    table = []
    for key, label, unit, target, holds in ROWS:
        sqlite, pg = [r["sqlite"][key] for r in runs], [r["postgresql"][key] for r in runs]
        fmt = ",.0f" if unit == "/s" else ".1f"
        show(f"{label}, PostgreSQL", pg, sqlite, unit=unit, fmt=fmt, baseline_label="SQLite", target=target)
        s, p = statistics.median(sqlite), statistics.median(pg)
        if target:
            table.append(f"| {label} | {s:{fmt}} {unit} | {p:{fmt}} {unit} | {target} | "
                         f"{'ok' if holds(s, p) else 'MISSED'} |")  # fmt: skip
    print("\n| measure (median run) | SQLite | PostgreSQL | target | |\n|---|---|---|---|---|")
    print("\n".join(table))


if __name__ == "__main__":
    main()
