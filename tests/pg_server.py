"""A real PostgreSQL server for the tests: one cluster per session in a temporary folder, one database per test.

The cluster listens on a Unix socket in its own folder only (no TCP port to collide with). initdb refuses to
run as root, so as root (CI) the cluster belongs to the `postgres` user the Debian package creates.
Where no server binary exists the PostgreSQL tests are skipped, except under CI, where that is a failure.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

_SEARCH = ("/usr/local/bin", *sorted(map(str, Path("/usr/lib/postgresql").glob("*/bin")), reverse=True))
_numbers = itertools.count(1)


def server_bin() -> Path | None:
    """The folder holding initdb and pg_ctl, or None when this machine has no PostgreSQL server."""
    found = shutil.which("initdb")
    candidates = [str(Path(found).parent)] if found else []
    for folder in [*candidates, *_SEARCH]:
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    return None


@dataclass
class Cluster:
    bin: Path
    root: Path  # data/, the socket, the server's log
    user: str  # the server's superuser (trust authentication on the socket)

    @property
    def socket_dir(self) -> Path:
        return self.root

    def url(self, dbname: str) -> str:
        return f"postgresql://{self.user}@/{dbname}?host={self.socket_dir}"

    def admin(self, sql: str) -> None:
        """One statement outside a transaction (CREATE/DROP DATABASE), on the maintenance database."""
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(sql)

    def new_database(self) -> str:
        name = f"t{os.getpid()}_{next(_numbers)}"
        self.admin(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _as_server_user(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def _run(argv: list[str], log: Path) -> None:
    done = subprocess.run(_as_server_user(argv), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}\n{tail}")


def start_cluster() -> Cluster:
    folder = server_bin()
    if folder is None:
        if os.environ.get("CI"):
            pytest.fail("CI: no PostgreSQL server binary (initdb, pg_ctl): .ci/run installs postgresql", pytrace=False)
        pytest.skip("no PostgreSQL server binary on this machine (initdb, pg_ctl)")
    root = Path(tempfile.mkdtemp(prefix="pg", dir="/tmp"))  # short: a socket path has ~100 bytes at most
    user = pwd.getpwuid(os.geteuid()).pw_name
    if os.geteuid() == 0:
        user = "postgres"
        pw = pwd.getpwnam("postgres")
        os.chown(root, pw.pw_uid, pw.pw_gid)
    log = root / "server.log"
    _run([str(folder / "initdb"), "-D", str(root / "data"), "-U", user, "-A", "trust", "-E", "UTF8",
          "--locale=C", "--no-sync"], log)  # fmt: skip
    # fsync off: the tests kill clients, never the machine; no TCP listener at all.
    options = f"-k {root} -c listen_addresses='' -c fsync=off -c max_connections=200"
    _run([str(folder / "pg_ctl"), "-D", str(root / "data"), "-l", str(log), "-w", "-t", "120", "-o", options,
          "start"], log)  # fmt: skip
    return Cluster(folder, root, user)


def stop_cluster(cluster: Cluster) -> None:
    try:
        _run([str(cluster.bin / "pg_ctl"), "-D", str(cluster.root / "data"), "-m", "immediate", "-w", "stop"],
             cluster.root / "server.log")  # fmt: skip
    finally:
        shutil.rmtree(cluster.root, ignore_errors=True)


def cluster_fixture() -> Iterator[Cluster]:
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        stop_cluster(cluster)
