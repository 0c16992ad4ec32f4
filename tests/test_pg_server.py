"""The tests' PostgreSQL server: it starts, gives each test its own empty database, and is never skipped in CI."""

from __future__ import annotations

import psycopg
import pytest

from tests import pg_server


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
