"""Benchmark: `monitor stats` over a year of 1,000,000 mentions and 3,000,000 actions, and the stats
screen's refresh over one day, against a naive SQL window-function baseline measured in the same run.

    python benchmarks/bench_stats.py [--mentions 1000000] [--repeat 3] [--cache DIR]

The database is generated once with raw sqlite3 (executemany, one transaction per 50k rows,
time-ordered ids, indexes built after the load) and cached in a temp dir; delete it to rebuild.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from _runs import as_installed, header, show

from monitor.core.timeutil import to_ms
from monitor.db import clocks
from monitor.db.store import TERM_SEP, open_sync
from monitor.networks import load_watchlist
from monitor.reports import stats

ROOT = Path(__file__).resolve().parent.parent
GENERATOR_VERSION = 3  # bump when the generated data changes: the cache key includes it
YEAR_START = to_ms(datetime(2025, 1, 1, tzinfo=UTC)) - 3_600_000  # Paris midnight
YEAR_END = to_ms(datetime(2026, 1, 1, tzinfo=UTC)) - 3_600_000
NOW = YEAR_END + 3_600_000  # fixed: open ages do not depend on when the benchmark runs
CHUNK = 50_000
SOURCES = ("mastodon", "bluesky", "feed-mairie", "feed-tisseo")
TERMS = ("ville", "transports", "voirie", "propreté", "eau", "vélo", "urgences")
SERVICES = ("voirie", "proprete", "eau", "eclairage", "tisseo", "police", "espaces-verts")
OPERATORS = ("alice", "bruno", "chloe", "david", "emma", "farid", "gael", "hana")
# DST in Paris, 2025: UTC+1 before 30 March 01:00 UTC and after 26 October 01:00 UTC, else UTC+2.
DST_ON = to_ms(datetime(2025, 3, 30, 1, tzinfo=UTC))
DST_OFF = to_ms(datetime(2025, 10, 26, 1, tzinfo=UTC))
MIN = 60_000
HOUR = 3_600_000


def _local_hour(ms: int) -> float:
    offset = 2 if DST_ON <= ms < DST_OFF else 1
    return ((ms / HOUR) + offset) % 24


def _delay(rng: random.Random, at: int) -> int:
    """Quick while the desk is open, next morning otherwise."""
    h = _local_hour(at)
    if 8.5 <= h < 18:
        return int(rng.expovariate(1 / (14 * MIN)))
    wait = ((8.5 - h) % 24) * HOUR
    return int(wait + rng.expovariate(1 / (25 * MIN)))


def _arrivals(rng: random.Random, n_mentions: int) -> list[int]:
    """Diurnal arrivals: more posts by day. Times sorted so ids are time-ordered."""
    span = YEAR_END - YEAR_START
    weights = [1, 1, 1, 1, 1, 2, 4, 7, 9, 10, 10, 10, 10, 10, 9, 9, 9, 9, 8, 7, 6, 4, 3, 2]
    seen_times = []
    for _ in range(n_mentions):
        day = rng.randrange(span // (24 * HOUR))
        hour = rng.choices(range(24), weights)[0]
        t = YEAR_START + day * 24 * HOUR + hour * HOUR - HOUR + rng.randrange(HOUR)
        seen_times.append(min(max(t, YEAR_START), YEAR_END - 1))
    seen_times.sort()
    return seen_times


class _Year:
    """Mentions and their actions, written in chunks of raw executemany."""

    def __init__(self, conn: sqlite3.Connection, rng: random.Random) -> None:
        self.conn, self.rng = conn, rng
        self.mention_rows: list[tuple] = []
        self.action_rows: list[tuple] = []
        self.action_id = self.n_actions = self.rev = 0

    def flush(self, final: bool = False) -> None:
        conn = self.conn
        if len(self.mention_rows) >= CHUNK or final:
            conn.execute("BEGIN")
            conn.executemany(
                "INSERT INTO mentions (id, source, remote_id, network, author, author_name, text, url, terms,"
                " priority, status, published_at, first_seen_at, status_at, first_response_at,"
                " first_response_by, edited_at, deleted_at, rev) VALUES"
                " (?, ?, ?, ?, ?, '', ?, '', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                self.mention_rows,
            )
            conn.execute("COMMIT")
            self.mention_rows = []
        while len(self.action_rows) >= CHUNK or (final and self.action_rows):
            batch, self.action_rows = self.action_rows[:CHUNK], self.action_rows[CHUNK:]
            conn.execute("BEGIN")
            conn.executemany(
                "INSERT INTO actions (id, mention_id, kind, operator, at, status_before, status_after,"
                " payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                batch,
            )
            conn.execute("COMMIT")
            self.n_actions += len(batch)

    def act(self, mid: int, kind: str, op: str, at: int, before: str, after: str, payload: dict) -> int:
        self.action_id += 1
        self.action_rows.append((self.action_id, mid, kind, op, at, before, after, json.dumps(payload)))
        return self.action_id

    def mention(self, mid: int, seen: int) -> None:
        rng = self.rng
        source = rng.choice(SOURCES)
        terms = rng.choice(TERMS)
        if rng.random() < 0.2:
            terms += TERM_SEP + rng.choice(TERMS)
        priority = rng.choices((0, 1, 2, 3), (2, 10, 70, 18))[0]
        t = seen
        for _ in range(rng.choices((0, 1, 2, 3, 4), (10, 30, 30, 20, 10))[0]):  # notes: no clock effect
            t += rng.randrange(1, 20 * MIN)
            self.act(mid, "note", rng.choice(OPERATORS), t, "new", "new", {"text": "vu"})
        status, status_at, fr, fr_by = self.responses(mid, seen)
        deleted = seen + rng.randrange(6 * HOUR) if rng.random() < 0.01 else None
        edited = seen + rng.randrange(HOUR) if rng.random() < 0.02 else None
        self.rev += 1
        self.mention_rows.append((
            mid, source, f"{mid:012d}", source.split("-")[0], f"@user{rng.randrange(50_000)}",
            "Nid de poule rue de Metz", terms, priority, status, seen - rng.randrange(5 * MIN), seen,
            status_at, fr, fr_by, edited, deleted, self.rev,
        ))  # fmt: skip
        self.flush()

    def responses(self, mid: int, seen: int) -> tuple[str, int, int | None, str | None]:
        """The first response, a fix and a reopen: the mention's status, status_at, first response at and by."""
        rng = self.rng
        r = rng.random()
        if (r > 0.985 and seen > YEAR_END - 3 * 24 * HOUR) or r > 0.995:
            return "new", seen, None, None  # still waiting (recent, or forgotten)
        op = rng.choice(OPERATORS)
        fr = seen + _delay(rng, seen)
        kind = rng.choices(("reply", "escalate", "dismiss"), (55, 28, 17))[0]
        after = {"reply": "done", "escalate": "escalated", "dismiss": "dismissed"}[kind]
        payload = {"reply": {"text": "Merci"}, "escalate": {"service": rng.choice(SERVICES), "note": ""},
                   "dismiss": {"reason": "spam"}}[kind]  # fmt: skip
        self.act(mid, kind, op, fr, "new", after, payload)
        status, status_at = after, fr
        if kind == "escalate" and rng.random() < 0.9:
            done = fr + int(rng.expovariate(1 / (30 * HOUR)))
            last = self.act(mid, "resolve", rng.choice(OPERATORS), done, status, "done", {"note": "réparé"})
            status, status_at = "done", done
            if rng.random() < 0.05:  # reopened, then fixed for good
                t = done + rng.randrange(HOUR)
                self.act(mid, "reopen", op, t, "done", "escalated", {"undid": last, "from": "done"})
                t += int(rng.expovariate(1 / (10 * HOUR)))
                self.act(mid, "resolve", op, t, "escalated", "done", {"note": "repris"})
                status_at = t
        return status, status_at, fr, op


def generate(path: Path, n_mentions: int, seed: int = 7) -> tuple[int, int]:
    rng = random.Random(seed)
    conn = open_sync(path)  # schema and migrations as the app makes them
    indexes = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL").fetchall()
    for name, _sql in indexes:
        conn.execute(f'DROP INDEX "{name}"')  # bulk load first, sort each index once after
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA foreign_keys=OFF")  # actions of a chunk may precede their mentions on disk
    year = _Year(conn, rng)
    for mid, seen in enumerate(_arrivals(rng, n_mentions), start=1):
        year.mention(mid, seen)
    year.flush(final=True)
    # The collector keeps a cursor per source: the statistics take their first guess of names from it.
    conn.executemany(
        "INSERT INTO cursors (source, cursor, updated_at) VALUES (?, NULL, ?)",
        [(source, YEAR_END) for source in SOURCES],
    )
    for _name, sql in indexes:
        conn.execute(sql)
    clocks.fill(conn)  # the per-mention clocks, as the action path would have written them
    conn.execute("ANALYZE")
    conn.close()
    return n_mentions, year.n_actions


def naive_median(conn: sqlite3.Connection, since: int, until: int) -> float:
    """The baseline: first response recomputed from the action log, median by window functions."""
    return conn.execute(
        """
        WITH fr AS (
            SELECT m.id, min(a.at) - m.first_seen_at AS d
            FROM mentions m JOIN actions a ON a.mention_id = m.id
            WHERE a.kind IN ('reply', 'escalate', 'dismiss') AND m.first_seen_at >= ? AND m.first_seen_at < ?
            GROUP BY m.id
        ),
        ranked AS (SELECT d, row_number() OVER (ORDER BY d) AS rn, count(*) OVER () AS n FROM fr)
        SELECT avg(d) FROM ranked WHERE rn IN ((n + 1) / 2, (n + 2) / 2)
        """,
        (since, until),
    ).fetchone()[0]


def timed(fn, repeat: int) -> tuple[list[float], object]:
    """Each run's time in ms, and the last run's result."""
    runs, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        runs.append((time.perf_counter() - t0) * 1000)
    return runs, result


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mentions", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "monitor-bench-stats")
    args = parser.parse_args()
    as_installed()  # the CLI runs measured here start as an installed `monitor` would
    args.cache.mkdir(parents=True, exist_ok=True)
    path = args.cache / f"stats-v{GENERATOR_VERSION}-{args.mentions}.db"
    if not path.exists():
        t0 = time.perf_counter()
        tmp = path.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        n_m, n_a = generate(tmp, args.mentions)
        tmp.rename(path)
        print(f"generated {n_m:,} mentions, {n_a:,} actions in {time.perf_counter() - t0:.1f} s -> {path}")
    watchlist = load_watchlist(ROOT / "watchlist.yaml")
    t0 = time.perf_counter()
    conn = open_sync(path)  # also applies any newer migration to a cached file
    if time.perf_counter() - t0 > 1:
        print(f"opened and migrated the cached file in {time.perf_counter() - t0:.1f} s")
    n_m, n_a = (conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("mentions", "actions"))
    print(f"database: {n_m:,} mentions, {n_a:,} actions, {path.stat().st_size / 2**20:.0f} MiB")

    # Ours and the naive baseline alternate run by run, so each ratio compares the same moment's machine.
    year, bare, base_year, day, base_day, cli_time, cli_cpu, base_cpu = [], [], [], [], [], [], [], []
    day_start = YEAR_END - 24 * HOUR * 30  # a weekday at the end of November
    cli = [sys.executable, "-m", "monitor", "--watchlist", str(ROOT / "watchlist.yaml"), "stats",
           "--db", str(path), "--since", "2025-01-01", "--until", "2026-01-01"]  # fmt: skip
    for _ in range(args.repeat):
        t, report = timed(lambda: stats.compute(conn, watchlist, since=YEAR_START, until=YEAR_END, now=NOW), 1)
        year += t
        bare += timed(lambda: stats.compute(conn, watchlist, since=YEAR_START, until=YEAR_END, now=NOW, by=[]), 1)[0]
        cpu0 = time.process_time()
        t, naive_year = timed(lambda: naive_median(conn, YEAR_START, YEAR_END), 1)
        base_cpu.append((time.process_time() - cpu0) * 1000)
        base_year += t
        t, day_report = timed(
            lambda: stats.compute(conn, watchlist, since=day_start, until=day_start + 24 * HOUR, now=NOW), 1
        )
        day += t
        base_day += timed(lambda: naive_median(conn, day_start, day_start + 24 * HOUR), 1)[0]
        cpu0 = _children_cpu()
        cli_time += timed(lambda: subprocess.run(cli, check=True, capture_output=True), 1)[0]
        cli_cpu.append((_children_cpu() - cpu0) * 1000)
    render, _ = timed(lambda: stats.render(report, "table"), args.repeat)  # type: ignore[arg-type]
    conn.close()

    ours_median = report.first_response.calendar.median  # type: ignore[attr-defined]
    print(f"year: {report.counts['mentions']:,} mentions, median first response {ours_median:.0f} s "  # type: ignore[attr-defined]
          f"(naive SQL: {naive_year / 1000:.1f} s, same definition in ms)")  # fmt: skip
    header(args.repeat)
    naive = "naive SQL window functions, whole year"
    show("stats.compute, whole year (all breakdowns), ms", year, base_year, fmt=".0f", baseline_label=naive)
    show("stats.compute, whole year, no breakdowns, ms", bare, base_year, fmt=".0f", baseline_label=naive)
    show("render table, ms", render, fmt=".0f")
    show("`monitor stats` CLI, whole year, process end to end, ms", cli_time, base_year, fmt=".0f",
         baseline_label=naive, target="target: ratio <= 0.4x")  # fmt: skip
    # CPU time is steadier than wall time on a shared machine (but the wall time counts both reader threads).
    show("`monitor stats` CLI, whole year, CPU time (user + sys, all threads), ms", cli_cpu, base_cpu, fmt=".0f",
         baseline_label="naive SQL, CPU time")  # fmt: skip
    day_mentions = day_report.counts["mentions"]  # type: ignore[attr-defined]
    show(f"stats screen refresh (compute), one day ({day_mentions} mentions), ms", day, base_day, fmt=".1f",
         baseline_label="naive SQL window functions, same day", target="target: ratio <= 0.3x")  # fmt: skip
    print(f"(load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
