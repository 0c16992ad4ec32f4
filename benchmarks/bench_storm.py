"""Key to screen in a real terminal, idle and during a storm of ~1,000 mentions/s (issue 13).

  python benchmarks/bench_storm.py [--rounds 25] [--seconds 90] [--rate 1000] [--runs 3]

The app (`python -m monitor`, 80x24) runs in a pseudo-terminal on a temporary demo watchlist and database;
its output is read continuously into a terminal emulator (pyte). Each round writes one key and polls the
emulated screen every 2 ms until it shows the key's effect:
  j, k     the highlighted row of the pane is another mention      detail  the detail panel names it
  dialog   `d` shows the dismiss dialog; Escape takes it away again (Escape includes the terminal's
           escape-sequence wait, the same in both phases)
The idle phase is the same run's baseline; the storm phase repeats it while another process writes mentions
through the collector path (tests/_storm_proc.py). The app's CPU use (user + system, from /proc) is given
per phase, in % of one core. Target (issue 13): storm p99 < 2x idle p99, and j/k p99 < 100 ms.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._runs import header, repeat, show  # noqa: E402
from tests._pty_app import PtyApp, collect_once, demo_file, wait_until  # noqa: E402
from tests.conftest import write_watchlist  # noqa: E402

MENTIONS = 400
POLL_S = 0.002
WAIT = 60.0
ESC = "\x1b"
DIALOG = "Dismiss — why?"
METRICS = ("j/k", "detail", "dialog open", "dialog close")


def pane_lines(app: PtyApp) -> tuple[list[int], int | None]:
    """The pane's row lines on screen, and the highlighted one (its background differs from the others)."""
    lines = app.screen.display
    head = next((y for y, s in enumerate(lines) if " Source " in s and " Author " in s), None)
    if head is None:
        return [], None
    rule = next((y for y in range(head + 1, len(lines)) if lines[y].startswith("──")), len(lines))
    ys = list(range(head + 1, rule))
    bgs = {y: app.screen.buffer[y][20].bg for y in ys}
    common = Counter(bgs.values()).most_common(1)
    cursor = [y for y in ys if common and bgs[y] != common[0][0]]
    return ys, cursor[0] if len(cursor) == 1 else None


def selected(app: PtyApp) -> tuple[int, str, str] | None:
    """The highlighted row as seen: its line, author and text (the age column ticks, so it is left out);
    None when it is off screen. A storm repeats its demo posts: the line tells two of them apart."""
    with app._lock:
        _, y = pane_lines(app)
        return (y, app.screen.display[y][14:30].strip(), app.screen.display[y][48:]) if y is not None else None


def detail_author(app: PtyApp) -> str:
    with app._lock:
        lines = app.screen.display
        rule = next((y for y, s in enumerate(lines) if y > 4 and s.startswith("──")), None)
        return lines[rule + 1].strip() if rule is not None and rule + 1 < len(lines) else ""


def shows_selected(app: PtyApp, before: tuple[int, str, str] | None) -> bool:
    """The detail names the highlighted mention's author, and that is not the row highlighted before the key."""
    now = selected(app)
    return bool(now and now != before and detail_author(app).startswith(now[1].rstrip("…")))


def timed(app: PtyApp, keys: str, done: Callable[[], bool]) -> float:
    """Seconds from writing `keys` until `done()` holds on the emulated screen."""
    sent = app.write(keys)
    while not done():
        if time.perf_counter() - sent > WAIT:
            raise SystemExit(f"{keys!r}: no effect on screen within {WAIT:.0f} s")
        time.sleep(POLL_S)
    return time.perf_counter() - sent


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def phase(app: PtyApp, rounds: int, seconds: float) -> tuple[dict[str, list[float]], float]:
    """`rounds` of j, k, the dismiss dialog (fewer if `seconds` run out); returns the samples and the app's
    CPU use (% of a core)."""
    out: dict[str, list[float]] = {m: [] for m in METRICS}
    cpu0, t0 = cpu_seconds(app.pid), time.perf_counter()
    for _ in range(rounds):
        if time.perf_counter() - t0 > seconds:
            break
        for key in ("j", "k"):
            before = selected(app)  # None: off screen (the key brings it back into view)
            sent = app.write(key)
            while selected(app) in (None, before):
                if time.perf_counter() - sent > WAIT:
                    raise SystemExit(f"{key!r}: the highlight did not move within {WAIT:.0f} s")
                time.sleep(POLL_S)
            out["j/k"].append(time.perf_counter() - sent)
            # The highlighted row read again at each look: a frame caught half drawn can fool one reading.
            while not shows_selected(app, before):
                if time.perf_counter() - sent > WAIT:
                    raise SystemExit(f"the detail did not show the selection within {WAIT:.0f} s:\n{app.text()}")
                time.sleep(POLL_S)
            out["detail"].append(time.perf_counter() - sent)
            time.sleep(0.05)
        out["dialog open"].append(timed(app, "d", lambda: DIALOG in app.text()))
        out["dialog close"].append(timed(app, ESC, lambda: DIALOG not in app.text()))
        time.sleep(0.05)
    cpu = (cpu_seconds(app.pid) - cpu0) / (time.perf_counter() - t0) * 100
    return out, cpu


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(p * (len(s) - 1)))]


def one_run(rounds: int, seconds: float, rate: int) -> dict[str, float]:
    """One app, idle phase then storm phase; p50/p99 (ms) per metric and phase, CPU %, storm rate."""
    with tempfile.TemporaryDirectory(prefix="bench-storm-") as tmp_dir:
        tmp = Path(tmp_dir)
        watchlist = write_watchlist(tmp, demo_file(tmp / "demo.jsonl", MENTIONS))
        db = tmp / "monitor.db"
        collect_once(watchlist, db)
        app = PtyApp(["-w", str(watchlist), "--db", str(db), "--no-collect", "--dry-run", "--operator", "bench"])
        storm: subprocess.Popen[str] | None = None
        try:
            wait_until(lambda: f"New {MENTIONS}" in app.text(), 120, "the desk shows the New pane")
            idle, idle_cpu = phase(app, rounds, seconds)
            storm = subprocess.Popen([sys.executable, str(ROOT / "tests" / "_storm_proc.py"), str(db), str(watchlist),
                                      "--rate", str(rate)], stdout=subprocess.PIPE, text=True)  # fmt: skip
            assert storm.stdout is not None and storm.stdout.readline().strip() == "storming"
            conn = sqlite3.connect(db, timeout=30)
            n0, t0 = conn.execute("SELECT count(*) FROM mentions").fetchone()[0], time.perf_counter()
            busy, busy_cpu = phase(app, rounds, seconds)
            stored = (conn.execute("SELECT count(*) FROM mentions").fetchone()[0] - n0) / (time.perf_counter() - t0)
            conn.close()
        finally:
            if storm is not None:
                storm.kill()
                storm.wait()
            app.kill()
    out = {"idle cpu": idle_cpu, "storm cpu": busy_cpu, "stored/s": stored}
    for name, samples in (("idle", idle), ("storm", busy)):
        for metric, xs in samples.items():
            out[f"{name} {metric} p50"] = statistics.median(xs) * 1000
            out[f"{name} {metric} p99"] = pct(xs, 0.99) * 1000
    print(f"  run: idle CPU {idle_cpu:.0f}%, storm CPU {busy_cpu:.0f}%, {stored:,.0f} mentions/s stored; "
          + ", ".join(f"{m} p99 {out[f'idle {m} p99']:.0f}/{out[f'storm {m} p99']:.0f} ms" for m in METRICS),
          flush=True)  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=25, help="rounds of j, k and the dialog per phase")
    ap.add_argument("--seconds", type=float, default=90, help="a phase ends after this many seconds")
    ap.add_argument("--rate", type=int, default=1000, help="mentions generated per second in the storm")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    print(
        f"key to screen through a pty at 80x24 (pyte), {args.rounds} rounds per phase (at most {args.seconds:.0f} s),"
        f" storm at {args.rate}/s"
    )
    runs = repeat(lambda _: one_run(args.rounds, args.seconds, args.rate), args.runs)
    header(args.runs)

    def col(key: str) -> list[float]:
        return [r[key] for r in runs]

    for metric in METRICS:
        for p in ("p50", "p99"):
            target = "target < 2x" if p == "p99" else ""
            if metric == "j/k" and p == "p99":
                target += "; storm p99 < 100 ms"
            show(f"{metric} {p}, storm", col(f"storm {metric} {p}"), col(f"idle {metric} {p}"), unit="ms",
                 fmt=".0f", baseline_label="idle", target=target)  # fmt: skip
    show("app CPU, storm (% of one core)", col("storm cpu"), col("idle cpu"), fmt=".0f", baseline_label="idle")
    show("mentions stored per second during the storm phase", col("stored/s"), fmt=",.0f")


if __name__ == "__main__":
    main()
