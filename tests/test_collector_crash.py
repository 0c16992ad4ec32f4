"""Kill the collector with SIGKILL mid-poll and restart it: nothing is lost or duplicated.

A loopback server (a thread) serves three feeds whose entries grow over time, slowly (each body is
trickled out in pieces). `monitor collect` runs as a child process and is killed at moments of three
kinds, each reached by a condition, never by timing: while an answer is being sent (the server holds
the answers half-way until the kill), just after the poll's answers were all sent (while it parses and
commits, after a seeded random pause), and at a seeded random moment after it committed a poll.
At the end a `collect --once` catches up, and every matching entry the server ever served is stored
exactly once.

The invariant is checked on every state the database was ever in, not only where the kills landed:
the gap between two transactions is tens of microseconds, too short for a kill to hit reliably. The test
keeps a read transaction open from before the first write, so SQLite can never copy the WAL back into
the database file; each commit frame in the -wal file is then a snapshot that the test rebuilds (the
database file plus the WAL cut after that frame) and checks: the validator stored for each feed names
a version of it whose entries are all stored, and no entry is stored twice.

On PostgreSQL the same kills run against a server: there is no WAL to rebuild states from, so the invariant
is checked after each kill and at the end.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg
import pytest

from monitor.db.store import open_sync
from tests.conftest import WAIT

ROOT = Path(__file__).resolve().parent.parent
SOURCE = "crash"
FEEDS = 3
GROWTH = (3.0, 2.0, 1.0)  # new entries per second, per feed
INITIAL = (5, 3, 1)
TRICKLE = 6  # a body is sent in this many pieces...
PAUSE = 0.05  # ... with this pause between them
KILLS = ("mid-response",) * 3 + ("after-response",) * 4 + ("random",) * 3
SEED = 20240312
BASE = datetime(2024, 3, 12, 6, 0, tzinfo=UTC)


def entry_id(feed: int, i: int) -> str:
    return f"urn:crash:feed{feed}:{i}"


def matches(i: int) -> bool:
    return i % 5 != 4  # every fifth entry is about a concert: no watch term, filtered out


class GrowingFeeds:
    """Feed k holds entries 0..n-1, n growing with time until frozen. ETag '"k-n"' names the version."""

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.start = time.monotonic()
        self.frozen_at: float | None = None
        self.served = [0] * FEEDS  # the most entries any 200 carried, per feed
        self.in_flight = 0
        self.started = 0  # responses begun (200s and 304s); each is numbered by this count
        self.finished: set[int] = set()  # the numbers of the responses fully sent (or cut)
        self.conditional = 0  # requests that carried If-None-Match
        self.hold = False  # set by the test: answers stop half-way until it is cleared
        self.holding = 0  # answers stopped half-way right now

    def count(self, feed: int) -> int:
        now = self.frozen_at if self.frozen_at is not None else time.monotonic()
        return INITIAL[feed] + int((now - self.start) * GROWTH[feed])

    def freeze(self) -> None:
        with self.lock:
            self.frozen_at = time.monotonic()

    def body(self, feed: int, n: int) -> bytes:
        items = []
        for i in reversed(range(n)):  # newest first, as feeds are
            title = f"Tram T{feed + 1} : perturbation n°{i} à Arènes" if matches(i) else f"Concert n°{i} au Zénith"
            items.append(
                f"<item><title>{title}</title><link>https://example.fr/feed{feed}/{i}</link>"
                f"<description><![CDATA[<p>Message {i} du flux {feed}</p>]]></description>"
                f"<pubDate>{format_datetime(BASE + timedelta(minutes=i))}</pubDate>"
                f'<guid isPermaLink="false">{entry_id(feed, i)}</guid></item>'
            )
        return (
            '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
            f"<title>Flux {feed}</title><link>https://example.fr/feed{feed}</link>"
            f"{''.join(items)}</channel></rss>"
        ).encode()


def make_handler(feeds: GrowingFeeds) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

        def do_GET(self) -> None:  # noqa: N802
            feed = int(self.path.rsplit("/", 1)[-1].split(".")[0])
            with feeds.lock:
                n = feeds.count(feed)
                etag = f'"{feed}-{n}"'
                sent = self.headers.get("If-None-Match")
                feeds.conditional += sent is not None
                modified = sent != etag
                if modified:
                    feeds.served[feed] = max(feeds.served[feed], n)
                feeds.in_flight += 1
                number = feeds.started
                feeds.started += 1
                feeds.lock.notify_all()
            try:
                self.send_response(200 if modified else 304)
                self.send_header("ETag", etag)
                self.send_header("Last-Modified", format_datetime(BASE + timedelta(minutes=n), usegmt=True))
                if not modified:
                    self.end_headers()
                    return
                body = feeds.body(feed, n)
                self.send_header("Content-Type", "application/rss+xml; charset=UTF-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                step = len(body) // TRICKLE + 1
                for piece, offset in enumerate(range(0, len(body), step)):
                    if piece == TRICKLE // 2:
                        self.held_half_way()
                    self.wfile.write(body[offset : offset + step])
                    self.wfile.flush()
                    time.sleep(PAUSE)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the collector was killed while we talked
            finally:
                with feeds.lock:
                    feeds.in_flight -= 1
                    feeds.finished.add(number)
                    feeds.lock.notify_all()

        def held_half_way(self) -> None:
            with feeds.lock:
                if feeds.hold:
                    feeds.holding += 1
                    feeds.lock.notify_all()
                    feeds.lock.wait_for(lambda: not feeds.hold)
                    feeds.holding -= 1

    return Handler


@pytest.fixture
def growing_feeds() -> Iterator[tuple[GrowingFeeds, str]]:
    feeds = GrowingFeeds()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(feeds))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="feed-server", daemon=True)
    thread.start()
    try:
        yield feeds, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def read_state(db: Path | str) -> tuple[dict[str, dict[str, str]], list[str]]:
    """The stored cursor and remote ids (a reader in WAL mode never blocks the writer, nor does one on PostgreSQL)."""
    if isinstance(db, str):
        return _read_pg_state(db)
    if not db.exists():
        return {}, []
    conn = sqlite3.connect(db, isolation_level=None, timeout=WAIT)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "cursors" not in tables:
            return {}, []
        row = conn.execute("SELECT cursor FROM cursors WHERE source = ?", (SOURCE,)).fetchone()
        ids = [r[0] for r in conn.execute("SELECT remote_id FROM mentions WHERE source = ?", (SOURCE,))]
    finally:
        conn.close()
    return (json.loads(row[0]) if row and row[0] else {}), ids


def _read_pg_state(url: str) -> tuple[dict[str, dict[str, str]], list[str]]:
    with psycopg.connect(url) as conn:
        if conn.execute("SELECT to_regclass('cursors') IS NULL").fetchone() == (True,):
            return {}, []
        row = conn.execute("SELECT cursor FROM cursors WHERE source = %s", (SOURCE,)).fetchone()
        ids = [r[0] for r in conn.execute("SELECT remote_id FROM mentions WHERE source = %s", (SOURCE,))]
    return (json.loads(row[0]) if row and row[0] else {}), ids


def check_consistent(db: Path | str, base: str, feeds: GrowingFeeds) -> dict[int, int]:
    """Every stored validator names a version whose matching entries are all stored; no row twice."""
    cursor, ids = read_state(db)
    where = f" (in {db.parent.name if isinstance(db, Path) else 'PostgreSQL'})"
    assert len(ids) == len(set(ids)), "a mention was stored twice" + where
    stored = set(ids)
    expected_all = {entry_id(k, i) for k in range(FEEDS) for i in range(feeds.served[k]) if matches(i)}
    assert stored <= expected_all, f"rows never served, or filtered ones: {stored - expected_all}{where}"
    versions: dict[int, int] = {}
    for url, validators in cursor.items():
        feed = int(url.rsplit("/", 1)[-1].split(".")[0])
        assert url == f"{base}/feed/{feed}.rss"
        k, n = (int(x) for x in validators["etag"].strip('"').split("-"))
        assert k == feed
        missing = {entry_id(feed, i) for i in range(n) if matches(i)} - stored
        assert not missing, f"cursor says feed {feed} version {n} was read, but {sorted(missing)} are not stored{where}"
        versions[feed] = n
    return versions


def collect(watchlist: Path, db: Path | str, log: Path, once: bool = False) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "monitor", "collect", "--watchlist", str(watchlist), "--db", str(db)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this tree's code, whatever is installed
    with log.open("ab") as out:
        return subprocess.Popen(
            args + (["--once"] if once else []), stdout=out, stderr=out, env=env, cwd=watchlist.parent
        )


def wait_for(feeds: GrowingFeeds, predicate, what: str) -> None:  # noqa: ANN001
    """Until `predicate()`: woken by the server thread's notices, and polling (a commit sends none)."""
    deadline = time.monotonic() + WAIT
    with feeds.lock:
        while not feeds.lock.wait_for(predicate, 0.05):
            assert time.monotonic() < deadline, f"not within {WAIT:g} s: {what}"


def _stat(path: Path) -> tuple[int, int]:
    st = os.stat(path)  # a stat, not an open: see pin_wal
    return st.st_size, st.st_mtime_ns


class WalSnapshots:
    """Every committed state of a database in WAL mode whose WAL is never checkpointed (see module doc)."""

    def __init__(self, db: Path, workdir: Path) -> None:
        self.db, self.wal, self.workdir = db, db.with_name(db.name + "-wal"), workdir
        self.checked = 0  # commit frames already checked
        self.pin: sqlite3.Connection | None = None
        self.base = b""
        self.base_stat: tuple[int, int] = (0, 0)

    def pin_wal(self) -> None:
        """A reader on the bare database file (read lock 0) stops every checkpoint from backfilling.

        From here on this process must not open the database file other than through SQLite: closing
        any descriptor of it drops the process's POSIX locks, and with them the pin.
        """
        self.base = self.db.read_bytes()
        self.base_stat = _stat(self.db)
        self.pin = sqlite3.connect(self.db, isolation_level=None)
        self.pin.execute("BEGIN")
        self.pin.execute("SELECT count(*) FROM mentions").fetchone()

    def close(self) -> None:
        if self.pin is not None:
            self.pin.execute("ROLLBACK")
            self.pin.close()

    def commit_ends(self, wal: bytes) -> list[int]:
        """Byte offsets just after each commit frame (a frame header's 'database size' is non-zero)."""
        if len(wal) < 32:
            return []
        page_size, salt = int.from_bytes(wal[8:12], "big"), wal[16:24]
        ends, offset = [], 32
        while offset + 24 + page_size <= len(wal):
            header = wal[offset : offset + 24]
            if header[8:16] != salt:  # never happens while pinned: the WAL is not restarted
                break
            offset += 24 + page_size
            if int.from_bytes(header[4:8], "big"):
                ends.append(offset)
        return ends

    def new_states(self) -> list[Path]:
        """Rebuilt copies of the database at each commit not checked yet, oldest first."""
        assert self.wal.exists(), "the WAL was checkpointed and deleted: the states cannot be rebuilt"
        wal = self.wal.read_bytes()
        assert _stat(self.db) == self.base_stat, "the WAL was checkpointed: the states cannot be rebuilt"
        ends = self.commit_ends(wal)
        out = []
        for n, end in enumerate(ends[self.checked :], self.checked):
            folder = self.workdir / f"state-{n:04d}"
            folder.mkdir()
            (folder / "monitor.db").write_bytes(self.base)  # the file is not written to while pinned
            (folder / "monitor.db-wal").write_bytes(wal[:end])
            out.append(folder / "monitor.db")
        self.checked = len(ends)
        return out


def crash_watchlist(tmp_path: Path, base: str) -> Path:
    urls = "".join(f"      - {base}/feed/{k}.rss\n" for k in range(FEEDS))
    watchlist = tmp_path / "watchlist.yaml"
    watchlist.write_text(
        "city: Toulouse\nterms:\n  - name: transports\n    keywords: [tram]\n"
        f"sources:\n  - name: {SOURCE}\n    type: feed\n    poll_interval: 1s\n    urls:\n{urls}",
        encoding="utf-8",
    )
    return watchlist


def kill_again_and_again(
    feeds: GrowingFeeds, base: str, watchlist: Path, db: Path | str, log: Path, each_kill: Callable[[], None]
) -> Counter[str]:
    """Start the collector and SIGKILL it at each of KILLS's points, in a seeded order; after each kill the
    stored state must be consistent, and `each_kill` checks what else it can (the committed states between)."""
    rng = random.Random(SEED)
    kinds = list(KILLS)
    rng.shuffle(kinds)
    landed: Counter[str] = Counter()
    for kind in kinds:
        with feeds.lock:
            started = feeds.started
            feeds.hold = kind == "mid-response"
        cursor = read_state(db)[0]
        proc = collect(watchlist, db, log)
        try:
            if kind == "mid-response":  # while one of the slow answers is being sent
                wait_for(feeds, lambda: feeds.holding > 0, "an answer held half-way")
            elif kind == "after-response":  # while it parses the answers and commits
                poll = range(started, started + FEEDS)
                wait_for(feeds, lambda p=poll: feeds.finished.issuperset(p), "a poll's answers all sent")
                time.sleep(rng.uniform(0.0, 0.03))
            else:  # anywhere, once it has committed a poll (so the next run starts from validators)
                wait_for(feeds, lambda c=cursor: read_state(db)[0] != c, "a poll committed")
                time.sleep(rng.uniform(0.0, 1.0))
            landed[kind] += 1
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=WAIT)
            with feeds.lock:
                feeds.hold = False
                feeds.lock.notify_all()
        assert proc.returncode == -signal.SIGKILL, "the collector exited by itself: see collector.log"
        check_consistent(db, base, feeds)
        each_kill()
    assert landed == Counter(KILLS), landed
    return landed


def catch_up(
    feeds: GrowingFeeds, base: str, watchlist: Path, db: Path | str, log: Path, then: Callable[[], None]
) -> list[str]:
    """The feeds stop growing; one last run stores everything, each entry once, up to the last version."""
    feeds.freeze()
    final = collect(watchlist, db, log, once=True)
    assert final.wait(timeout=WAIT) == 0, log.read_text(errors="replace")
    then()
    versions = check_consistent(db, base, feeds)
    _, ids = read_state(db)
    everything = {entry_id(k, i) for k in range(FEEDS) for i in range(feeds.count(k)) if matches(i)}
    assert set(ids) == everything and len(ids) == len(everything)
    assert versions == {k: feeds.count(k) for k in range(FEEDS)}  # caught up: the last version is stored
    assert feeds.conditional > 0  # restarts resumed from the stored validators
    return ids


def test_sigkill_mid_poll_loses_and_duplicates_nothing(growing_feeds: tuple[GrowingFeeds, str], tmp_path: Path) -> None:
    feeds, base = growing_feeds
    watchlist = crash_watchlist(tmp_path, base)
    db = tmp_path / "monitor.db"
    log = tmp_path / "collector.log"
    open_sync(db).close()  # the schema, so that the WAL can be pinned before the first write
    states = WalSnapshots(db, tmp_path)
    states.pin_wal()
    checked = 0
    began = time.monotonic()

    def every_committed_state() -> None:
        nonlocal checked
        for state in states.new_states():
            check_consistent(state, base, feeds)
            checked += 1

    try:
        landed = kill_again_and_again(feeds, base, watchlist, db, log, every_committed_state)
        crash_phase, crash_states = time.monotonic() - began, checked
        ids = catch_up(feeds, base, watchlist, db, log, every_committed_state)
    finally:
        states.close()
    assert crash_states >= 2 and checked > crash_states  # killed runs committed, and so did the last
    print(
        f"crash phase {crash_phase:.1f}s, kills {dict(landed)}, {checked} committed states checked, "
        f"{len(ids)} mentions stored"
    )


def test_sigkill_mid_poll_loses_and_duplicates_nothing_on_postgresql(
    growing_feeds: tuple[GrowingFeeds, str], tmp_path: Path, pg_url: str
) -> None:
    """The same kills with the mentions and their cursor in PostgreSQL: after each, and at the end, nothing is
    missing behind the stored cursor and nothing is stored twice."""
    feeds, base = growing_feeds
    watchlist = crash_watchlist(tmp_path, base)
    landed = kill_again_and_again(feeds, base, watchlist, pg_url, tmp_path / "collector.log", lambda: None)
    ids = catch_up(feeds, base, watchlist, pg_url, tmp_path / "collector.log", lambda: None)
    print(f"kills {dict(landed)}, {len(ids)} mentions stored in PostgreSQL")
