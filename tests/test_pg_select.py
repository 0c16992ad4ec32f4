"""Choosing PostgreSQL: one watchlist line (or --db, or MONITOR_DB) names the server; never with a password."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from monitor.core.config import ConfigError
from monitor.core.dburl import describe
from monitor.db.pg.schema import MIGRATIONS
from monitor.networks import load_watchlist
from tests.conftest import ROOT, write_watchlist


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args], capture_output=True, text=True, cwd=ROOT, timeout=300,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def with_database(tmp_path: Path, database: str) -> Path:
    path = write_watchlist(tmp_path)
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace(f"database: {tmp_path / 'monitor.db'}", f"database: {database}"), encoding="utf-8")
    return path


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if needle in line)


def test_a_watchlist_line_names_a_postgresql_database(tmp_path: Path) -> None:
    wl = load_watchlist(with_database(tmp_path, "postgresql://desk@db.example:5433/monitor"))
    assert wl.database_url == "postgresql://desk@db.example:5433/monitor"
    assert load_watchlist(write_watchlist(tmp_path)).database_url is None  # a path stays a SQLite file


@pytest.mark.parametrize(
    "url",
    ["postgresql://desk:hunter2@db.example/monitor", "postgres://db.example/monitor?password=hunter2"],
)
def test_a_password_in_the_watchlist_is_a_located_error_that_does_not_repeat_it(tmp_path: Path, url: str) -> None:
    path = with_database(tmp_path, url)
    with pytest.raises(ConfigError) as caught:
        load_watchlist(path)
    assert caught.value.line == line_of(path, "database:")
    assert "PGPASSWORD" in str(caught.value) and "hunter2" not in str(caught.value)
    done = run("check", "--watchlist", str(path))
    assert done.returncode == 2 and f"{path}:{line_of(path, 'database:')}:" in done.stderr
    assert "hunter2" not in done.stderr + done.stdout and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://desk@db1.example:5432,db2.example:5433/monitor?target_session_attrs=read-write",
        "postgresql:///monitor?host=/run/pg1,/run/pg2&target_session_attrs=primary",
    ],
)
def test_a_primary_and_its_standbys_are_one_url_that_connects_to_the_primary(tmp_path: Path, url: str) -> None:
    assert load_watchlist(with_database(tmp_path, url)).database_url == url
    assert describe(url) in (
        "postgresql://desk@db1.example:5432,db2.example:5433/monitor",
        "postgresql://[/run/pg1,/run/pg2]/monitor",
    )


def test_several_hosts_without_target_session_attrs_is_a_located_error(tmp_path: Path) -> None:
    """libpq would take the first host that answers, a read-only standby maybe: the desk could not write."""
    path = with_database(tmp_path, "postgresql://desk@db1.example,db2.example/monitor")
    with pytest.raises(ConfigError, match="target_session_attrs=read-write") as caught:
        load_watchlist(path)
    assert caught.value.line == line_of(path, "database:")


def test_a_url_without_a_database_name_is_a_located_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="names no database"):
        load_watchlist(with_database(tmp_path, "postgresql://desk@db.example"))


def test_a_password_in_monitor_db_or_db_exits_2_without_repeating_it(tmp_path: Path) -> None:
    watchlist = str(write_watchlist(tmp_path))
    for done in (
        run("check", "--watchlist", watchlist, env={"MONITOR_DB": "postgresql://desk:hunter2@h/monitor"}),
        run("--db", "postgresql://desk:hunter2@h/monitor", "check", "--watchlist", watchlist),
    ):
        assert done.returncode == 2, done.stderr
        assert "PGPASSWORD" in done.stderr and "hunter2" not in done.stderr and "Traceback" not in done.stderr


def test_collect_once_fills_the_postgresql_database_the_watchlist_names(tmp_path: Path, pg_url: str) -> None:
    path = with_database(tmp_path, pg_url)
    first = run("collect", "--once", "--watchlist", str(path))
    assert first.returncode == 0, first.stderr
    with psycopg.connect(pg_url) as conn:
        row = conn.execute("SELECT count(*), count(DISTINCT rev) FROM mentions").fetchone()
    assert row is not None and row[0] >= 300 and row[0] == row[1]
    assert f"demo: ok — {row[0]} new" in first.stdout
    assert not (tmp_path / "monitor.db").exists()  # no SQLite file on the side
    again = run("collect", "--once", "--watchlist", str(path))
    assert again.returncode == 0 and "0 new" in again.stdout
    checked = run("check", "--watchlist", str(path))
    n = len(MIGRATIONS)
    assert checked.returncode == 0 and f"PostgreSQL, reachable, schema {n} of {n}" in checked.stdout, checked.stderr


def test_monitor_db_overrides_the_watchlist_with_a_postgresql_url(tmp_path: Path, pg_url: str) -> None:
    done = run("collect", "--once", "--watchlist", str(write_watchlist(tmp_path)), env={"MONITOR_DB": pg_url})
    assert done.returncode == 0, done.stderr
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) > 0 FROM mentions").fetchone() == (True,)


@pytest.mark.parametrize("how", ["watchlist", "--db", "MONITOR_DB"])
def test_the_desk_starts_and_paints_on_postgresql_however_it_is_named(tmp_path: Path, pg_url: str, how: str) -> None:
    """`monitor run --smoke`, a real process: the desk opens the server's database, migrates it and paints."""
    if how == "watchlist":
        done = run("--smoke", "-w", str(with_database(tmp_path, pg_url)))  # collecting, as an operator would
    elif how == "--db":
        done = run("--db", pg_url, "--smoke", "--no-collect", "-w", str(write_watchlist(tmp_path)))
    else:
        watchlist = str(write_watchlist(tmp_path))
        done = run("--smoke", "--read-only", "-w", watchlist, env={"MONITOR_DB": pg_url})
    assert done.returncode == 0, done.stderr
    assert "painted its first screen" in done.stdout
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT max(version) FROM schema_version").fetchone() == (len(MIGRATIONS),)
    assert not (tmp_path / "monitor.db").exists()  # no SQLite file on the side


def test_the_desk_on_an_unreachable_server_exits_before_the_screen_in_one_line(tmp_path: Path) -> None:
    url = f"postgresql://nobody@/monitor?host={tmp_path}"  # no server listens in this folder
    done = run("--smoke", "-w", str(with_database(tmp_path, url)))
    assert done.returncode == 3 and "cannot be reached" in done.stderr and "painted" not in done.stdout
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_reports_on_an_empty_postgresql_database_say_so_in_one_line(tmp_path: Path, pg_url: str) -> None:
    # Reports never create or migrate (as on SQLite): an empty database is refused with why, exit 3.
    for command in (["stats"], ["export", "mentions"], ["report", "--html", str(tmp_path / "r.html")]):
        done = run(*command, "--watchlist", str(with_database(tmp_path, pg_url)))
        assert done.returncode == 3 and "empty: the app or `monitor collect` creates the tables" in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    with psycopg.connect(pg_url, autocommit=True) as conn:  # as an older program left it: one step behind
        conn.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at BIGINT)")
        conn.execute("INSERT INTO schema_version SELECT n, 0 FROM generate_series(1, %s) n", (len(MIGRATIONS) - 1,))
    done = run("stats", "--watchlist", str(with_database(tmp_path, pg_url)))
    assert done.returncode == 3 and "read-only commands do not upgrade it" in done.stderr


def test_an_unreachable_server_is_one_line_and_exit_3(tmp_path: Path) -> None:
    url = f"postgresql://nobody@/monitor?host={tmp_path}"  # no server listens in this folder
    done = run("collect", "--once", "--watchlist", str(with_database(tmp_path, url)))
    assert done.returncode == 3 and "cannot be reached" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
