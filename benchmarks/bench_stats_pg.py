"""Benchmark: `monitor stats` over a year of 1,000,000 mentions and 3,170,000 actions on PostgreSQL, beside the
same command on the same desk in SQLite in the same run (issue 16: PostgreSQL <= 1.5x SQLite).

    python benchmarks/bench_stats_pg.py [--mentions 1000000] [--repeat 3] [--cache DIR]

The SQLite year is bench_stats.py's (generated once, cached in DIR). The PostgreSQL copy is made once by
`monitor migrate`'s copy into a throwaway cluster whose data folder is cached in DIR as well; each run starts
that cluster on a Unix socket (as tests/pg_server.py does) and stops it at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _runs import as_installed, header, show
from bench_stats import GENERATOR_VERSION, NOW, ROOT, YEAR_END, YEAR_START, generate, timed

sys.path.insert(0, str(ROOT))  # tests.pg_server: the tests' throwaway cluster

from monitor.db.connect import open_sync  # noqa: E402
from monitor.db.pg.copy import move  # noqa: E402
from monitor.db.reading import open_reader  # noqa: E402
from monitor.networks import load_watchlist  # noqa: E402
from monitor.reports import stats  # noqa: E402
from tests.pg_server import Cluster, _as_server_user, server_bin  # noqa: E402


def start(data: Path) -> Cluster:
    """The cached cluster in `data` (created empty if missing), on a socket in a fresh short folder."""
    from tests.pg_server import start_cluster

    if not (data / "data" / "PG_VERSION").exists():
        cluster = start_cluster()  # initdb in a temp folder, as the tests do; moved into the cache once loaded
        cluster.admin('CREATE DATABASE "year"')
        return cluster
    folder = server_bin()
    assert folder is not None, "no PostgreSQL server binary (initdb, pg_ctl)"
    user = "postgres" if os.geteuid() == 0 else os.environ.get("USER", "postgres")
    options = f"-k {data} -c listen_addresses='' -c fsync=off"
    subprocess.run(_as_server_user([str(folder / "pg_ctl"), "-D", str(data / "data"), "-l", str(data / "server.log"),
                                    "-w", "-t", "120", "-o", options, "start"]), check=True)  # fmt: skip
    return Cluster(folder, data, user)


def stop(cluster: Cluster) -> None:
    subprocess.run(_as_server_user([str(cluster.bin / "pg_ctl"), "-D", str(cluster.root / "data"), "-m", "fast",
                                    "-w", "stop"]), check=True, capture_output=True)  # fmt: skip


def pg_year(cache: Path, sqlite_path: Path) -> Cluster:
    """The cluster holding the year; loaded (and cached) on the first run."""
    data = cache / f"pg-v{GENERATOR_VERSION}-{sqlite_path.stem}"
    cluster = start(data)
    if cluster.root != data:
        t0 = time.perf_counter()
        moved = asyncio.run(move(sqlite_path, cluster.url("year")))
        with __import__("psycopg").connect(cluster.url("year"), autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
        print(f"copied {moved.counts['mentions']:,} mentions to PostgreSQL in {time.perf_counter() - t0:.0f} s")
        stop(cluster)
        subprocess.run(["mv", str(cluster.root), str(data)], check=True)
        cluster = start(data)
    from monitor.db.pg.store import PgStore

    async def migrate() -> None:  # a cached cluster from an older schema: the collector would migrate it
        await (await PgStore.open(cluster.url("year"))).close()

    asyncio.run(migrate())
    return cluster


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mentions", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "monitor-bench-stats")
    args = parser.parse_args()
    as_installed()
    args.cache.mkdir(parents=True, exist_ok=True)
    path = args.cache / f"stats-v{GENERATOR_VERSION}-{args.mentions}.db"
    if not path.exists():
        generate(path, args.mentions)
    open_sync(path).close()  # any newer migration, as the collector would apply it
    cluster = pg_year(args.cache, path)
    try:
        url = cluster.url("year")
        watchlist = load_watchlist(ROOT / "watchlist.yaml")
        reports = []
        for target in (path, url):  # the same figures from both engines, to the last digit
            conn = open_reader(target)
            try:
                reports.append(stats.compute(conn, watchlist, since=YEAR_START, until=YEAR_END, now=NOW).as_dict())
            finally:
                conn.close()
        print(f"year: {reports[0]['counts']['mentions']:,} mentions; both engines' figures identical: "
              f"{json.dumps(reports[0], sort_keys=True) == json.dumps(reports[1], sort_keys=True)}")  # fmt: skip
        base = [sys.executable, "-m", "monitor", "--watchlist", str(ROOT / "watchlist.yaml"), "stats",
                "--since", "2025-01-01", "--until", "2026-01-01", "--db"]  # fmt: skip
        lite, pg = [], []
        for _ in range(args.repeat):  # alternating: each ratio compares the same moment's machine
            lite += timed(lambda: subprocess.run([*base, str(path)], check=True, capture_output=True), 1)[0]
            pg += timed(lambda: subprocess.run([*base, url], check=True, capture_output=True), 1)[0]
        header(args.repeat)
        show("`monitor stats` CLI, whole year, PostgreSQL, process start to end, ms", pg, lite, fmt=".0f",
             baseline_label="the same on SQLite", target="target: ratio <= 1.5x")  # fmt: skip
        print(f"(load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores)")
    finally:
        stop(cluster)
    return 0


if __name__ == "__main__":
    sys.exit(main())
