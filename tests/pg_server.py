"""A real PostgreSQL server for the tests: one cluster per session in a temporary folder, one database per test.

The cluster listens on a Unix socket in its own folder only (no TCP port to collide with). initdb refuses to
run as root, so as root (CI) the cluster belongs to the `postgres` user the Debian package creates.
Where no server binary exists the PostgreSQL tests are skipped, except under CI, where that is a failure.

The failover tests also restart a cluster, kill it, and build a streaming standby of it (pg_basebackup -R)
that they promote. Each cluster's folder names the process that made it (OWNER): a pytest killed with
SIGKILL never stops its cluster, so the next session stops those whose owner is dead.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

_SEARCH = ("/usr/local/bin", *sorted(map(str, Path("/usr/lib/postgresql").glob("*/bin")), reverse=True))
_numbers = itertools.count(1)
OWNER = "owner.pid"  # in a cluster's folder: "pid start-time" of the test process that made it
WAIT_S = 120  # pg_ctl's -t: how long a start, stop or promote may take on two busy cores


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

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def url(self, dbname: str) -> str:
        return f"postgresql://{self.user}@/{dbname}?host={self.socket_dir}"

    def running(self) -> bool:
        """Whether its postmaster runs (a killed one leaves its pid file behind)."""
        try:
            return _alive(int(self.data.joinpath("postmaster.pid").read_text().split()[0]))
        except (OSError, ValueError, IndexError):
            return False

    def pg_ctl(self, *argv: str) -> None:
        _run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "-t", str(WAIT_S), *argv], self.log)

    def start(self) -> None:
        # fsync off: the tests kill clients and servers, never the machine; no TCP listener at all.
        options = f"-k {self.root} -c listen_addresses='' -c fsync=off -c max_connections=200"
        self.pg_ctl("-l", str(self.log), "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        self.pg_ctl("-m", mode, "stop")

    def kill(self) -> None:
        """SIGKILL the postmaster and its processes at once, as a machine that crashed would stop them."""
        pid = int(self.data.joinpath("postmaster.pid").read_text().split()[0])
        children = _children(pid)
        for victim in (pid, *children):
            try:
                os.kill(victim, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + WAIT_S
        while any(_alive(p) for p in (pid, *children)) and time.monotonic() < deadline:
            time.sleep(0.05)

    def promote(self) -> None:
        """The standby becomes a primary: `pg_ctl promote` waits until it accepts writes."""
        self.pg_ctl("promote")

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


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (a postmaster's backends, its WAL sender...)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's: alive
        return True
    return True


def _started(pid: int) -> str:
    """A process's start time (in clock ticks since boot): with its pid, it names one process, even after the
    pid is reused."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def _new_root() -> tuple[Path, str]:
    folder = Path(tempfile.mkdtemp(prefix="pg", dir="/tmp"))  # short: a socket path has ~100 bytes at most
    (folder / OWNER).write_text(f"{os.getpid()} {_started(os.getpid())}\n")
    user = pwd.getpwuid(os.geteuid()).pw_name
    if os.geteuid() == 0:
        user = "postgres"
        pw = pwd.getpwnam("postgres")
        os.chown(folder, pw.pw_uid, pw.pw_gid)
    return folder, user


def _binaries() -> Path:
    folder = server_bin()
    if folder is None:
        if os.environ.get("CI"):
            pytest.fail("CI: no PostgreSQL server binary (initdb, pg_ctl): .ci/run installs postgresql", pytrace=False)
        pytest.skip("no PostgreSQL server binary on this machine (initdb, pg_ctl)")
    return folder


def start_cluster() -> Cluster:
    folder = _binaries()
    root, user = _new_root()
    cluster = Cluster(folder, root, user)
    _run([str(folder / "initdb"), "-D", str(cluster.data), "-U", user, "-A", "trust", "-E", "UTF8",
          "--locale=C", "--no-sync"], cluster.log)  # fmt: skip
    cluster.start()
    return cluster


def start_standby(primary: Cluster) -> Cluster:
    """A streaming standby of `primary`: a base backup with -R (standby.signal and primary_conninfo written)."""
    root, user = _new_root()
    standby = Cluster(primary.bin, root, user)
    tools = (primary.bin / "initdb").resolve().parent  # /usr/local/bin may link only initdb, pg_ctl, postgres
    _run([str(tools / "pg_basebackup"), "-D", str(standby.data), "-R", "-X", "stream", "-c", "fast",
          "-h", str(primary.socket_dir), "-U", primary.user], standby.log)  # fmt: skip
    standby.start()
    return standby


def stop_cluster(cluster: Cluster) -> None:
    try:
        if cluster.running():
            cluster.stop("immediate")
    finally:
        shutil.rmtree(cluster.root, ignore_errors=True)


def stale_clusters(tmp: Path = Path("/tmp")) -> list[Path]:
    """Cluster folders left by a test process that is dead (SIGKILLed pytest): no `finally` ran in it."""
    stale = []
    for owner in tmp.glob(f"pg*/{OWNER}"):
        try:
            pid_text, started = (owner.read_text().split() + [""])[:2]
            pid = int(pid_text)
        except (OSError, ValueError):
            continue
        if not _alive(pid) or (started and _started(pid) and _started(pid) != started):
            stale.append(owner.parent)
    return stale


def remove_stale_clusters(tmp: Path = Path("/tmp")) -> list[Path]:
    """Stop (immediately) and delete the clusters of dead test processes; returns their folders."""
    found = stale_clusters(tmp)
    folder = server_bin()
    for root in found:
        if folder is not None and (cluster := Cluster(folder, root, "")).running():
            cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
    return found


def cluster_fixture() -> Iterator[Cluster]:
    remove_stale_clusters()
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        stop_cluster(cluster)


def own_cluster() -> Iterator[Cluster]:
    """A server of the test's own, which it may stop, restart or kill (never the session's shared one)."""
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        stop_cluster(cluster)
