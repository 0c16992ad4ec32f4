"""Key to screen in a real terminal, idle and during a storm of ~1,000 mentions/s (issue 13).

  python benchmarks/bench_storm.py [--rounds 25] [--seconds 90] [--rate 1000] [--runs 3] [--minutes 3]

The app (`python -m monitor`, 80x24) runs in a pseudo-terminal on a temporary demo watchlist and database;
its output is read continuously into a terminal emulator (pyte). Each round writes one key and polls the
emulated screen every 2 ms until it shows the key's effect:
  j, k     the highlighted row of the pane is another mention      detail  the detail panel names it
  dialog   `d` shows the dismiss dialog; Escape takes it away again (Escape includes the terminal's
           escape-sequence wait, the same in both phases)
The idle phase is the same run's baseline; the storm phase repeats it while another process writes mentions
through the collector path (tests/_storm_proc.py). The app's CPU use (user + system, from /proc) is given
per phase, in % of one core. Target (issue 13): storm p99 < 2x idle p99, and j/k p99 < 100 ms.
With --minutes, the storm holds that long with keys all along, and j/k p50/p99 and the CPU are printed per
30-s segment, then the last segment against the first ("flat latency for 3 minutes").
The mentions stored per second (read from the database) are printed beside the asked rate, overall and per
30-s segment, flagged "BELOW" under KEEP_UP of it: a desk that "holds 1,000/s" must have stored them.
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
from collections.abc import Callable
from pathlib import Path
from typing import TypeAlias

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._runs import header, repeat, show  # noqa: E402
from tests._pty_app import PtyApp, collect_once, demo_file, detail_author, selected, wait_until  # noqa: E402
from tests.conftest import write_watchlist  # noqa: E402

MENTIONS = 400
POLL_S = 0.002
WAIT = 60.0
ESC = "\x1b"
DIALOG = "Dismiss — why?"
METRICS = ("j/k", "detail", "dialog open", "dialog close")
SEGMENT_S = 30.0  # --minutes: latency and CPU per segment of the storm, to show whether they stay flat
KEEP_UP = 0.98  # stored/asked under this is flagged (a 30-s count is exact to one tick of the storm: 50 at 1,000/s)
Sample: TypeAlias = tuple[float, float]


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


def phase(
    app: PtyApp, rounds: int, seconds: float, stored: Callable[[], int] = lambda: 0
) -> tuple[dict[str, list[Sample]], list[Sample], list[Sample]]:
    """`rounds` of j, k, the dismiss dialog (fewer if `seconds` run out). Returns each metric's samples as
    (seconds into the phase, latency), and the app's CPU clock (CPU seconds) and the `stored` count, each as
    (seconds into the phase, value) at each round's start and at the end."""
    out: dict[str, list[Sample]] = {m: [] for m in METRICS}
    t0 = time.perf_counter()
    cpu: list[Sample] = [(0.0, cpu_seconds(app.pid))]
    counts: list[Sample] = [(0.0, stored())]

    def add(metric: str, sent: float) -> None:
        out[metric].append((sent - t0, time.perf_counter() - sent))

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
            add("j/k", sent)
            # The highlighted row read again at each look: a frame caught half drawn can fool one reading.
            while not shows_selected(app, before):
                if time.perf_counter() - sent > WAIT:
                    raise SystemExit(f"the detail did not show the selection within {WAIT:.0f} s:\n{app.text()}")
                time.sleep(POLL_S)
            add("detail", sent)
            time.sleep(0.05)
        for metric, key, shown in (("dialog open", "d", True), ("dialog close", ESC, False)):
            took = timed(app, key, lambda shown=shown: (DIALOG in app.text()) == shown)
            out[metric].append((time.perf_counter() - took - t0, took))
        time.sleep(0.05)
        cpu.append((time.perf_counter() - t0, cpu_seconds(app.pid)))
        counts.append((time.perf_counter() - t0, stored()))
    return out, cpu, counts


def per_second(marks: list[Sample], start: float = 0.0, end: float = float("inf")) -> float:
    """How fast a count grew between two moments of the phase (the marks nearest inside them), per second."""
    inside = [c for c in marks if start <= c[0] <= end]
    if len(inside) < 2:
        return float("nan")
    return (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])


def cpu_percent(cpu: list[Sample], start: float = 0.0, end: float = float("inf")) -> float:
    """The app's CPU use between two moments of the phase, in % of a core."""
    return per_second(cpu, start, end) * 100


def keeps_up(stored: float, rate: int) -> str:
    """The stored rate beside the asked one, flagged when the storm fell behind."""
    flag = "" if stored >= KEEP_UP * rate else f" BELOW (< {KEEP_UP:.0%} of asked)"
    return f"{stored:,.0f}/s stored of {rate:,}/s asked{flag}"


def latencies(samples: list[Sample], start: float = 0.0, end: float = float("inf")) -> list[float]:
    return [lat for t, lat in samples if start <= t < end]


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(p * (len(s) - 1)))]


def one_run(rounds: int, seconds: float, rate: int, minutes: float = 0) -> dict[str, float]:
    """One app, idle phase then storm phase; p50/p99 (ms) per metric and phase, CPU %, storm rate.
    With `minutes`, the storm phase holds that long, and its figures are given per SEGMENT_S as well."""
    with tempfile.TemporaryDirectory(prefix="bench-storm-") as tmp_dir:
        tmp = Path(tmp_dir)
        watchlist = write_watchlist(tmp, demo_file(tmp / "demo.jsonl", MENTIONS))
        db = tmp / "monitor.db"
        collect_once(watchlist, db)
        app = PtyApp(["-w", str(watchlist), "--db", str(db), "--no-collect", "--dry-run", "--operator", "bench"])
        storm: subprocess.Popen[str] | None = None
        try:
            wait_until(lambda: f"New {MENTIONS}" in app.text(), 120, "the desk shows the New pane")
            # and its first row highlighted and in the detail: on a loaded machine, keys sent before then aborted
            # runs with "the detail did not show the selection" (3 of 4 runs; none of the 11 runs since)
            wait_until(lambda: shows_selected(app, None), 120, "the desk's first row highlighted, in the detail")
            idle, idle_cpu, _ = phase(app, rounds, seconds)
            storm = subprocess.Popen([sys.executable, str(ROOT / "tests" / "_storm_proc.py"), str(db), str(watchlist),
                                      "--rate", str(rate)], stdout=subprocess.PIPE, text=True)  # fmt: skip
            assert storm.stdout is not None and storm.stdout.readline().strip() == "storming"
            conn = sqlite3.connect(db, timeout=30)
            n0, t0 = conn.execute("SELECT count(*) FROM mentions").fetchone()[0], time.perf_counter()
            storm_cpu0 = cpu_seconds(storm.pid)  # the writer's own CPU: how far the collector is from its ceiling

            def last_id() -> int:  # ids are given in order and the storm deletes none: one indexed lookup
                return int(conn.execute("SELECT coalesce(max(id), 0) FROM mentions").fetchone()[0])

            busy, busy_cpu, counts = phase(app, 10**9 if minutes else rounds, minutes * 60 or seconds, last_id)
            storm_line = app.text().splitlines()[0].strip()  # the header: the calm storm line, if shown
            n, elapsed = conn.execute("SELECT count(*) FROM mentions").fetchone()[0] - n0, time.perf_counter() - t0
            stored, collector_cpu = n / elapsed, cpu_seconds(storm.pid) - storm_cpu0
            conn.close()
        finally:
            if storm is not None:
                storm.kill()
                storm.wait()
            app.kill()
    out = {"idle cpu": cpu_percent(idle_cpu), "storm cpu": cpu_percent(busy_cpu), "stored/s": stored,
           "collector cpu": collector_cpu / elapsed * 100, "collector us": collector_cpu / max(n, 1) * 1e6}  # fmt: skip
    for name, samples in (("idle", idle), ("storm", busy)):
        for metric, xs in samples.items():
            out[f"{name} {metric} p50"] = statistics.median(latencies(xs)) * 1000
            out[f"{name} {metric} p99"] = pct(latencies(xs), 0.99) * 1000
    print(f"  run: idle CPU {out['idle cpu']:.0f}%, storm CPU {out['storm cpu']:.0f}%, {keeps_up(stored, rate)}; "
          + ", ".join(f"{m} p99 {out[f'idle {m} p99']:.0f}/{out[f'storm {m} p99']:.0f} ms" for m in METRICS),
          flush=True)  # fmt: skip
    print(f"  header at the storm's end: {storm_line}", flush=True)
    print(f"  the storm process (demo posts made, then the collector path): CPU {out['collector cpu']:.0f}% of a core,"
          f" {out['collector us']:.0f} us CPU per stored mention", flush=True)  # fmt: skip
    if minutes:
        out |= segments(busy, busy_cpu, counts, minutes * 60, rate)
    return out


def segments(
    busy: dict[str, list[Sample]], cpu: list[Sample], counts: list[Sample], seconds: float, rate: int
) -> dict[str, float]:
    """The storm cut into SEGMENT_S pieces: j/k p50/p99, CPU and the stored rate in each (printed); the first
    and last segments' figures kept, and the slowest segment's stored rate."""
    out: dict[str, float] = {"slowest stored/s": float("inf")}
    starts = [i * SEGMENT_S for i in range(max(1, int(seconds // SEGMENT_S)))]
    for i, start in enumerate(starts):
        end = start + SEGMENT_S
        jk = latencies(busy["j/k"], start, end)
        if not jk:
            continue
        p50, p99, load = statistics.median(jk) * 1000, pct(jk, 0.99) * 1000, cpu_percent(cpu, start, end)
        others = ", ".join(
            f"{m} p99 {pct(xs, 0.99) * 1000:.0f}" for m in METRICS[1:] if (xs := latencies(busy[m], start, end))
        )
        now = per_second(counts, start, end)
        out["slowest stored/s"] = min(out["slowest stored/s"], now)
        print(f"    {start:4.0f}-{end:4.0f} s: j/k p50 {p50:4.0f} p99 {p99:4.0f} ms ({len(jk)} keys); {others} ms;"
              f" CPU {load:.0f}%; {keeps_up(now, rate)}", flush=True)  # fmt: skip
        key = "first" if i == 0 else "last"
        out[f"{key} j/k p50"], out[f"{key} j/k p99"], out[f"{key} cpu"] = p50, p99, load
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=25, help="rounds of j, k and the dialog per phase")
    ap.add_argument("--seconds", type=float, default=90, help="a phase ends after this many seconds")
    ap.add_argument("--rate", type=int, default=1000, help="mentions generated per second in the storm")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--minutes", type=float, default=0,
                    help="hold the storm this long, keys all along; figures per 30-s segment too")  # fmt: skip
    args = ap.parse_args()
    storm = f"{args.minutes:g} min" if args.minutes else f"{args.rounds} rounds (at most {args.seconds:.0f} s)"
    print(
        f"key to screen through a pty at 80x24 (pyte); idle: {args.rounds} rounds (at most {args.seconds:.0f} s);"
        f" storm at {args.rate}/s: {storm}"
    )
    runs = repeat(lambda _: one_run(args.rounds, args.seconds, args.rate, args.minutes), args.runs)
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
    asked = [float(args.rate)] * args.runs
    keep_up = f"target >= {KEEP_UP:.2f}x: the desk holds the asked rate"
    show("mentions stored per second during the storm phase", col("stored/s"), asked, fmt=",.0f",
         baseline_label="asked", target=keep_up)  # fmt: skip
    show("CPU of the storm process (generator + collector) per stored mention", col("collector us"), unit="us",
         fmt=".0f")  # fmt: skip
    if args.minutes and all("last j/k p99" in r for r in runs):
        flat = f"flat: last {SEGMENT_S:.0f} s against the first"
        for figure in ("j/k p50", "j/k p99"):
            show(f"{figure}, last {SEGMENT_S:.0f} s of the storm", col(f"last {figure}"), col(f"first {figure}"),
                 unit="ms", fmt=".0f", baseline_label=f"first {SEGMENT_S:.0f} s", target=flat)  # fmt: skip
        show(f"app CPU, last {SEGMENT_S:.0f} s", col("last cpu"), col("first cpu"), fmt=".0f",
             baseline_label=f"first {SEGMENT_S:.0f} s", target=flat)  # fmt: skip
        show(f"mentions stored per second, slowest {SEGMENT_S:.0f} s", col("slowest stored/s"), asked, fmt=",.0f",
             baseline_label="asked", target=keep_up)  # fmt: skip


if __name__ == "__main__":
    main()
