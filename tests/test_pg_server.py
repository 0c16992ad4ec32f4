"""The tests' PostgreSQL server: it starts, gives each test its own empty database, and is never skipped in CI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests import pg_server

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("turn", ["first", "second"])  # the second sees nothing of the first's table
def test_each_test_gets_its_own_empty_database(pg_url: str, turn: str) -> None:
    with psycopg.connect(pg_url) as conn:
        version = conn.execute("SHOW server_version_num").fetchone()
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
        conn.execute("CREATE TABLE left_behind (x int)")
        conn.commit()
    assert version is not None and int(version[0]) >= 150000
    assert tables == (0,)


def test_no_server_skips_outside_ci_and_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pg_server, "server_bin", lambda: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        pg_server.start_cluster()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI: no PostgreSQL server"):
        pg_server.start_cluster()


CHILD = """
import sys
from tests import pg_server
cluster = pg_server.start_cluster()
print(cluster.root, flush=True)
sys.stdin.read()  # until killed: a pytest that gets SIGKILL runs no `finally`
"""


def test_a_cluster_left_by_a_killed_test_process_is_stopped_and_removed_by_the_next_session(tmp_path) -> None:  # type: ignore[no-untyped-def]
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    root = Path(child.stdout.readline().strip())
    left = pg_server.Cluster(pg_server.server_bin() or Path("/"), root, "")
    try:
        assert left.running()
        mine = pg_server.start_cluster()  # a live owner: never touched
        try:
            assert root not in pg_server.stale_clusters()  # its owner still runs
            child.kill()  # SIGKILL
            child.wait()
            assert root in pg_server.stale_clusters()
            removed = pg_server.remove_stale_clusters()
            assert root in removed and mine.root not in removed
            assert not root.exists() and not left.running()
            assert mine.running()
        finally:
            pg_server.stop_cluster(mine)
    finally:
        child.kill()
        child.wait()
        if root.exists():
            pg_server.stop_cluster(left)
