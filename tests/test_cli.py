"""The command line as cron, a service and a supervisor use it."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, write_watchlist


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def with_dead_feed(tmp_path: Path) -> Path:
    """The shipped watchlist plus a feed on a loopback port where nothing listens (connection refused)."""
    extra = f"  - name: presse\n    type: feed\n    urls: ['http://127.0.0.1:{free_port()}/rss']\n"
    text = (ROOT / "watchlist.yaml").read_text(encoding="utf-8").replace("database: monitor.db", "database: m.db")
    text = text.replace("    loop: true ", "    loop: true\n" + extra + "  #", 1)
    (tmp_path / "w.yaml").write_text(text, encoding="utf-8")
    return tmp_path / "w.yaml"


def test_collect_once_replays_the_whole_demo_then_is_idempotent(tmp_path: Path) -> None:
    watchlist = write_watchlist(tmp_path)
    first = run("collect", "--once", "--watchlist", str(watchlist))
    assert first.returncode == 0, first.stderr
    db = tmp_path / "monitor.db"
    stored = sqlite3.connect(db).execute("SELECT count(*) FROM mentions").fetchone()[0]
    assert stored >= 300
    assert f"demo: ok — {stored} new" in first.stdout
    again = run("collect", "--once", "--watchlist", str(watchlist))
    assert again.returncode == 0 and "0 new" in again.stdout
    assert sqlite3.connect(db).execute("SELECT count(*) FROM mentions").fetchone()[0] == stored


def test_collect_once_exits_1_and_names_the_failed_source(tmp_path: Path) -> None:
    done = run("collect", "--once", "--watchlist", str(with_dead_feed(tmp_path)))
    assert done.returncode == 1
    assert "presse: FAILED" in done.stderr and "network error" in done.stderr
    assert "demo: ok" in done.stdout  # the others still ran


def test_global_options_before_the_subcommand_are_kept(tmp_path: Path) -> None:
    watchlist = write_watchlist(tmp_path)
    db = tmp_path / "other.db"
    done = run("--watchlist", str(watchlist), "--db", str(db), "collect", "--once")
    assert done.returncode == 0, done.stderr
    assert db.exists()


def test_export_actions_and_mentions(tmp_path: Path) -> None:
    watchlist = write_watchlist(tmp_path)
    assert run("collect", "--once", "-w", str(watchlist)).returncode == 0
    db = tmp_path / "monitor.db"
    from monitor.models import ActionKind
    from monitor.store import act_sync, open_sync

    conn = open_sync(db)
    conn.execute("BEGIN IMMEDIATE")
    act_sync(conn, 1, ActionKind.DISMISS, "alice", {"reason": "spam"})
    conn.execute("COMMIT")
    out = run("export", "actions", "--format", "jsonl", "-w", str(watchlist))
    assert out.returncode == 0
    [line] = out.stdout.splitlines()
    assert json.loads(line)["operator"] == "alice"
    csv_out = run("export", "mentions", "--format", "csv", "-w", str(watchlist))
    assert csv_out.stdout.count("\n") > 300


def test_world_writable_database_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "open"
    shared.mkdir()
    shared.chmod(0o777)
    watchlist = write_watchlist(tmp_path)
    done = run("collect", "--once", "-w", str(watchlist), "--db", str(shared / "m.db"))
    assert done.returncode == 2
    assert "writable by every user" in done.stderr and "Traceback" not in done.stderr


def test_check_online_tries_each_source_and_names_the_failures(tmp_path: Path) -> None:
    done = run("check", "--online", "--watchlist", str(with_dead_feed(tmp_path)))
    assert done.returncode == 1
    assert "demo (demo): ok" in done.stdout
    assert "presse (feed): FAILED" in done.stdout


@pytest.mark.parametrize("option", ["--since", "--until"])
@pytest.mark.parametrize("value", ["99999999999999999d", "0002-01-01", "9999-12-31", "1999-06-01", "yesterday"])
@pytest.mark.parametrize("command", [["stats"], ["export", "mentions"], ["report", "--html", "r.html"]])
def test_a_date_or_age_out_of_range_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str], option: str, value: str
) -> None:
    from monitor.cli import main
    from monitor.store import open_sync

    watchlist = write_watchlist(tmp_path)
    open_sync(tmp_path / "monitor.db").close()
    assert main([*command, "-w", str(watchlist), option, value]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{value!r}" in err and "2000 to 2099" in err


def test_the_first_and_last_days_of_the_range_are_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from monitor.cli import main
    from monitor.store import open_sync

    watchlist = write_watchlist(tmp_path)
    open_sync(tmp_path / "monitor.db").close()
    assert main(["export", "mentions", "-w", str(watchlist), "--since", "2000-01-01", "--until", "2099-12-31"]) == 0
