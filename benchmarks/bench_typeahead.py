"""Key to commit, typed ahead in a real terminal: idle, then while ~1,000 mentions/s stream in (issue 17).

  python benchmarks/bench_typeahead.py [--rounds 30] [--rate 1000] [--runs 3]

The app (`python -m monitor`, 80x24) runs in a pseudo-terminal on a temporary copy of the demo watchlist
and database. Each round writes one burst to the pty (the key that opens the dialog, the text, the
confirming key) and times from that write to the action's row in SQLite, polled every 2 ms:
  note:    n + a sentence + ctrl+s, then j          dismiss: d + Enter (the first reason)
The idle phase is the baseline of the same run; the storm phase repeats it while another process writes
mentions through the collector path (tests/_storm_proc.py). Each run starts a fresh app and database; the
summary gives each figure as min / median / max of the runs, next to the same runs' idle baseline.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._runs import header, repeat, show  # noqa: E402
from tests._pty_app import CTRL_S, ENTER, PtyApp, collect_once, demo_file, wait_until  # noqa: E402
from tests.conftest import write_watchlist  # noqa: E402

MENTIONS = 400
POLL_S = 0.002
WAIT = 300.0


def last_action(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT coalesce(max(id), 0) FROM actions").fetchone()[0])


def committed_after(conn: sqlite3.Connection, before: int, sent: float) -> float:
    """Seconds from `sent` until an action newer than `before` is in the database."""
    while last_action(conn) <= before:
        if time.perf_counter() - sent > WAIT:
            raise SystemExit("no commit within a minute: the desk is stuck")
        time.sleep(POLL_S)
    return time.perf_counter() - sent


def phase(app: PtyApp, conn: sqlite3.Connection, rounds: int, tag: str) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"note": [], "dismiss": []}
    for i in range(rounds):
        text = f"{tag} {i}: voirie prévenue, barrières retirées."
        before = last_action(conn)
        out["note"].append(committed_after(conn, before, app.write("n" + text + CTRL_S + "j")))
        before = last_action(conn)
        out["dismiss"].append(committed_after(conn, before, app.write("d" + ENTER)))
    return out


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(p * (len(s) - 1)))]


def report(name: str, runs: dict[str, list[float]]) -> None:
    for kind, xs in runs.items():
        print(f"  {name:<6} {kind:<8} n={len(xs):<4} p50 {statistics.median(xs) * 1000:7.1f} ms"
              f"   p99 {pct(xs, 0.99) * 1000:7.1f} ms   max {max(xs) * 1000:7.1f} ms")  # fmt: skip


def mentions(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM mentions").fetchone()[0])


def one_run(rounds: int, rate: int) -> dict[str, float]:
    """One app: the idle phase, then the storm phase; p50/p99 in ms per burst kind and phase."""
    with tempfile.TemporaryDirectory(prefix="bench-typeahead-") as tmp_dir:
        tmp = Path(tmp_dir)
        watchlist = write_watchlist(tmp, demo_file(tmp / "demo.jsonl", MENTIONS))
        db = tmp / "monitor.db"
        collect_once(watchlist, db)
        conn = sqlite3.connect(db, timeout=30)
        app = PtyApp(["-w", str(watchlist), "--db", str(db), "--no-collect", "--dry-run", "--operator", "bench"])
        storm: subprocess.Popen[str] | None = None
        try:
            wait_until(lambda: f"New {MENTIONS}" in app.text(), WAIT, "the desk shows the New pane")
            app.rendering = False  # from here on nothing waits on the screen: only the database is read
            idle = phase(app, conn, rounds, "idle")
            storm = subprocess.Popen([sys.executable, str(ROOT / "tests" / "_storm_proc.py"), str(db), str(watchlist),
                                      "--rate", str(rate)], stdout=subprocess.PIPE, text=True)  # fmt: skip
            assert storm.stdout is not None and storm.stdout.readline().strip() == "storming"
            n0, t0 = mentions(conn), time.perf_counter()
            busy = phase(app, conn, rounds, "storm")
            stored = (mentions(conn) - n0) / (time.perf_counter() - t0)
        finally:
            if storm is not None:
                storm.kill()
                storm.wait()
            app.kill()
            conn.close()
    report("idle", idle)
    report("storm", busy)
    print(f"  storm: {stored:,.0f} mentions/s stored during the storm phase (generated at {rate}/s)", flush=True)
    out = {"stored/s": stored}
    for name, samples in (("idle", idle), ("storm", busy)):
        for kind, xs in samples.items():
            out[f"{name} {kind} p50"] = statistics.median(xs) * 1000
            out[f"{name} {kind} p99"] = pct(xs, 0.99) * 1000
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--rate", type=int, default=1000, help="mentions generated per second in the storm")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    print(f"key to commit through a pty at 80x24, {args.rounds} rounds per phase (burst written at once)")
    runs = repeat(lambda _: one_run(args.rounds, args.rate), args.runs)
    header(args.runs)
    for kind in ("note", "dismiss"):
        for p in ("p50", "p99"):
            show(f"{kind} {p}, storm", [r[f"storm {kind} {p}"] for r in runs], [r[f"idle {kind} {p}"] for r in runs],
                 unit="ms", fmt=".0f", baseline_label="idle")  # fmt: skip
    show("mentions stored per second during the storm", [r["stored/s"] for r in runs], fmt=",.0f")


if __name__ == "__main__":
    main()
