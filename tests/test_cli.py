"""The command line as cron, a service and a supervisor use it."""

from __future__ import annotations

import json
import logging
import socket
import sqlite3
import subprocess
import sys
from logging.handlers import RotatingFileHandler
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


def test_an_export_piped_into_head_ends_quietly(tmp_path: Path) -> None:
    watchlist = write_watchlist(tmp_path)
    assert run("collect", "--once", "--watchlist", str(watchlist)).returncode == 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "--watchlist", str(watchlist), "export", "mentions", "--format", "csv"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline()  # the header, then the reader leaves
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert b"Broken pipe" not in err and b"Traceback" not in err, err


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
    from monitor.core.models import ActionKind
    from monitor.db.store import act_sync, open_sync

    conn = open_sync(db)
    conn.execute("BEGIN IMMEDIATE")
    act_sync(conn, 1, ActionKind.DISMISS, "alice", {"reason": "spam"})
    conn.execute("COMMIT")
    out = run("export", "actions", "--format", "jsonl", "-w", str(watchlist))
    assert out.returncode == 0
    [line] = [a for a in out.stdout.splitlines() if json.loads(a)["operator"] != "demo"]  # the demo's incident
    assert json.loads(line)["operator"] == "alice"
    csv_out = run("export", "mentions", "--format", "csv", "-w", str(watchlist))
    assert csv_out.stdout.count("\n") > 300


def test_world_writable_database_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "open"
    shared.mkdir()
    shared.chmod(0o777)
    watchlist = write_watchlist(tmp_path)
    done = run("collect", "--once", "-w", str(watchlist), "--db", str(shared / "m.db"))
    assert done.returncode == 3  # a database error
    assert "writable by every user" in done.stderr and "Traceback" not in done.stderr


def test_check_online_tries_each_source_and_names_the_failures(tmp_path: Path) -> None:
    done = run("check", "--online", "--watchlist", str(with_dead_feed(tmp_path)))
    assert done.returncode == 1
    assert "demo (demo): ok" in done.stdout
    assert "presse (feed): FAILED" in done.stdout


# Installed like any tool: config lookup, init, read-only reports, database paths, exit codes, logs.


def one_line_error(done: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert done.returncode == code, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    for word in words:
        assert word in done.stderr, done.stderr


def test_version_is_the_installed_package_version() -> None:
    from importlib.metadata import version

    import monitor

    done = run("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"monitor {version('monitor')}" == f"monitor {monitor.__version__}"


def test_no_watchlist_names_every_place_looked_and_suggests_init(tmp_path: Path, private_user_dirs: Path) -> None:
    done = run("check", cwd=tmp_path)
    one_line_error(
        done, 2, "--watchlist", "$MONITOR_WATCHLIST", "./watchlist.yaml",
        str(private_user_dirs / "config" / "monitor" / "watchlist.yaml"), "/etc/monitor/watchlist.yaml",
        "monitor init",
    )  # fmt: skip


def test_a_missing_watchlist_given_by_flag_or_environment_is_named(tmp_path: Path, monkeypatch) -> None:
    one_line_error(run("check", "-w", str(tmp_path / "typo.yaml")), 2, "typo.yaml", "--watchlist")
    monkeypatch.setenv("MONITOR_WATCHLIST", str(tmp_path / "gone.yaml"))
    one_line_error(run("check", cwd=tmp_path), 2, "gone.yaml", "$MONITOR_WATCHLIST")


def test_watchlist_lookup_order(tmp_path: Path, private_user_dirs: Path, monkeypatch) -> None:
    from monitor.core.paths import find_watchlist

    here, user, env = tmp_path / "here", private_user_dirs / "config" / "monitor", tmp_path / "env.yaml"
    for folder in (here, user):
        folder.mkdir(parents=True)
        (folder / "watchlist.yaml").write_text("city: x\n", encoding="utf-8")
    env.write_text("city: x\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert find_watchlist(None) == user / "watchlist.yaml"  # not in ./: the user's config folder
    monkeypatch.chdir(here)
    assert find_watchlist(None) == Path("watchlist.yaml")  # ./ before the user's config folder
    monkeypatch.setenv("MONITOR_WATCHLIST", str(env))
    assert find_watchlist(None) == env  # the environment before ./
    assert find_watchlist(str(user / "watchlist.yaml")) == user / "watchlist.yaml"  # --watchlist first


def test_the_user_config_watchlist_is_found_from_any_folder(tmp_path: Path, private_user_dirs: Path) -> None:
    done = run("init", str(private_user_dirs / "config" / "monitor"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    checked = run("check", cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert str(private_user_dirs / "config" / "monitor" / "watchlist.yaml") in checked.stdout


def test_init_writes_the_sample_says_what_to_edit_and_never_overwrites(tmp_path: Path) -> None:
    done = run("init", "desk", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    written = tmp_path / "desk" / "watchlist.yaml"
    assert written.read_text(encoding="utf-8") == (ROOT / "watchlist.yaml").read_text(encoding="utf-8")
    for word in ("city", "terms", "sources", "monitor check"):
        assert word in done.stdout
    checked = run("check", cwd=tmp_path / "desk")
    assert checked.returncode == 0 and "will be created" in checked.stdout, checked.stderr
    written.write_text("# mine\n", encoding="utf-8")
    one_line_error(run("init", "desk", cwd=tmp_path), 2, "already exists", "--force")
    assert written.read_text(encoding="utf-8") == "# mine\n"


def test_read_only_commands_never_create_a_database(tmp_path: Path) -> None:
    watchlist = write_watchlist(tmp_path)
    typo = tmp_path / "typo.db"
    for args in (("stats",), ("export", "mentions"), ("report", "--html", str(tmp_path / "r.html"))):
        one_line_error(run(*args, "-w", str(watchlist), "--db", str(typo)), 3, "typo.db", "no such database")
        assert not typo.exists()


def test_a_database_folder_that_does_not_exist_is_one_line_from_every_command(tmp_path: Path) -> None:
    watchlist = write_watchlist(tmp_path)
    db = str(tmp_path / "nowhere" / "m.db")
    for args in (
        ("run",), ("collect", "--once"), ("stats",), ("export", "actions"), ("report", "--html", "r.html"), ("check",)
    ):  # fmt: skip
        one_line_error(run(*args, "-w", str(watchlist), "--db", db), 3, "does not exist")
    assert not (tmp_path / "nowhere").exists()


def test_reports_refuse_an_older_schema_and_leave_the_file_alone(tmp_path: Path) -> None:
    from monitor.db.migrations import MIGRATIONS
    from monitor.db.store import _statements

    watchlist = write_watchlist(tmp_path)
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    for statement in _statements(MIGRATIONS[0]):
        conn.execute(statement)
    conn.execute("PRAGMA user_version=1")
    conn.commit()
    conn.close()
    before = db.read_bytes()
    one_line_error(run("stats", "-w", str(watchlist), "--db", str(db)), 3, "version 1", "older")
    assert db.read_bytes() == before


def test_reports_do_not_write_to_the_database(tmp_path: Path) -> None:
    watchlist = write_watchlist(tmp_path)
    assert run("collect", "--once", "-w", str(watchlist)).returncode == 0
    db = tmp_path / "monitor.db"
    before = db.read_bytes()
    assert run("stats", "-w", str(watchlist)).returncode == 0
    assert run("export", "mentions", "-w", str(watchlist)).returncode == 0
    assert db.read_bytes() == before
    from monitor.db.store import open_readonly

    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        open_readonly(db).execute("CREATE TABLE scribble (x)")


def test_monitor_db_sits_beside_monitor_watchlist(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MONITOR_WATCHLIST", str(write_watchlist(tmp_path)))
    monkeypatch.setenv("MONITOR_DB", str(tmp_path / "from-env.db"))
    done = run("collect", "--once", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "from-env.db").exists() and not (tmp_path / "monitor.db").exists()


def test_exit_codes_are_one_mapping_for_every_command() -> None:
    from monitor.cli import UsageError, exit_code
    from monitor.core.config import ConfigError
    from monitor.core.paths import DatabaseUnavailable, WatchlistNotFound
    from monitor.db.permissions import UnsafePermissions
    from monitor.db.store import StoreError

    assert exit_code(ConfigError("w.yaml", 3, "bad")) == 2
    assert exit_code(WatchlistNotFound("x")) == exit_code(UsageError("x")) == 2
    for database in (StoreError("x"), DatabaseUnavailable("x"), sqlite3.OperationalError("x"), UnsafePermissions()):
        assert exit_code(database) == 3
    assert exit_code(KeyboardInterrupt()) == 130
    assert exit_code(RuntimeError("a bug")) is None  # not classified: it raises, with its traceback


def test_every_command_has_an_example_in_its_help() -> None:
    from monitor.cli import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert set(commands) >= {"run", "collect", "stats", "report", "export", "check", "init", "completion"}
    for name, parser in commands.items():
        assert parser.epilog and f"monitor {name}" in parser.epilog, name
    done = run("--help")
    assert "exit codes" in done.stdout and "3 database error" in done.stdout


def test_completion_scripts_for_bash_zsh_and_fish() -> None:
    for shell in ("bash", "zsh", "fish"):
        done = run("completion", shell)
        assert done.returncode == 0, done.stderr
        assert "collect" in done.stdout and "--watchlist" in done.stdout
    assert run("completion", "tcsh").returncode == 2


def test_completion_completes_file_names_yet_the_cli_starts_without_shtab() -> None:
    # shtab is imported by `monitor completion` only (15 ms at every start otherwise), and still completes
    # each file option with file names, in every command.
    bash = run("completion", "bash").stdout
    for option in ("watchlist", "db", "log"):
        assert f"_shtab_monitor_run___{option}_COMPGEN=_shtab_compgen_files" in bash
        assert f"_shtab_monitor_stats___{option}_COMPGEN=_shtab_compgen_files" in bash
    zsh = run("completion", "zsh").stdout
    assert ":db:_files" in zsh and ":watchlist:_files" in zsh
    code = "import sys\nfrom monitor.cli import build_parser\nbuild_parser().parse_args([])\n"
    code += "print('shtab' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


@pytest.fixture
def root_logging():
    """Restore the root logger after a test configures it as the CLI does."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield root
    for handler in root.handlers[len(handlers) :]:
        handler.close()
    root.handlers[:], root.level = handlers, level


def test_commands_log_to_stderr_at_the_level_asked(tmp_path: Path, root_logging: logging.Logger) -> None:
    from monitor.cli import _setup_logging, build_parser
    from monitor.networks import load_watchlist

    args = build_parser().parse_args(["collect", "--log-level", "info"])
    assert _setup_logging(args, "collect", load_watchlist(write_watchlist(tmp_path))) is None
    handler = root_logging.handlers[-1]
    assert isinstance(handler, logging.StreamHandler) and handler.stream is sys.stderr
    assert root_logging.level == logging.INFO


def test_the_app_keeps_a_small_rotating_log_in_the_state_directory(
    tmp_path: Path, private_user_dirs: Path, root_logging: logging.Logger
) -> None:
    from monitor.cli import _setup_logging, build_parser
    from monitor.networks import load_watchlist

    watchlist = load_watchlist(write_watchlist(tmp_path))
    log_file = _setup_logging(build_parser().parse_args([]), "run", watchlist)
    assert log_file == private_user_dirs / "state" / "monitor" / "monitor.log"
    handler = root_logging.handlers[-1]
    assert isinstance(handler, RotatingFileHandler)
    assert (handler.maxBytes, handler.backupCount) == (1_000_000, 3)
    logging.getLogger("monitor.test").info("hello")
    handler.flush()
    assert "hello" in log_file.read_text(encoding="utf-8")


def test_state_dir_in_the_watchlist_overrides_the_xdg_state_directory(tmp_path: Path) -> None:
    from monitor.core.paths import state_dir
    from monitor.networks import load_watchlist

    assert load_watchlist(write_watchlist(tmp_path)).state_dir is None
    watchlist = load_watchlist(write_watchlist(tmp_path, extra="state_dir: state\n"))
    assert state_dir(watchlist.state_dir) == tmp_path / "state" and (tmp_path / "state").is_dir()


def test_smoke_starts_the_app_headless_and_paints_the_first_screen(tmp_path: Path) -> None:
    watchlist = write_watchlist(tmp_path)
    done = run("--smoke", "--no-collect", "-w", str(watchlist))
    assert done.returncode == 0, done.stderr
    assert "painted its first screen" in done.stdout


def test_the_systemd_unit_logs_to_journald_with_options_the_cli_accepts() -> None:
    import shlex

    from monitor.cli import build_parser

    unit = (ROOT / "deploy" / "monitor-collect.service").read_text(encoding="utf-8")
    [exec_start] = [line.split("=", 1)[1] for line in unit.splitlines() if line.startswith("ExecStart=")]
    args = build_parser().parse_args(shlex.split(exec_start)[1:])
    assert args.command == "collect" and args.log is None  # stderr, so journald: no file to rotate
    assert "StandardError=journal" in unit and "StateDirectory=monitor" in unit


def test_check_fails_on_an_install_without_its_stylesheet(tmp_path: Path, monkeypatch, capsys) -> None:
    from monitor import cli
    from monitor.core import paths

    monkeypatch.setattr(paths, "stylesheet", lambda: tmp_path / "site-packages" / "monitor" / "styles" / "app.tcss")
    assert cli.main(["check", "-w", str(write_watchlist(tmp_path))]) == 2
    err = capsys.readouterr().err
    assert "stylesheet is missing" in err and "reinstall" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("option", ["--since", "--until"])
@pytest.mark.parametrize("value", ["99999999999999999d", "0002-01-01", "9999-12-31", "1999-06-01", "yesterday"])
@pytest.mark.parametrize("command", [["stats"], ["export", "mentions"], ["report", "--html", "r.html"]])
def test_a_date_or_age_out_of_range_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str], option: str, value: str
) -> None:
    from monitor.cli import main
    from monitor.db.store import open_sync

    watchlist = write_watchlist(tmp_path)
    open_sync(tmp_path / "monitor.db").close()
    assert main([*command, "-w", str(watchlist), option, value]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{value!r}" in err and "2000 to 2099" in err


def test_the_first_and_last_days_of_the_range_are_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from monitor.cli import main
    from monitor.db.store import open_sync

    watchlist = write_watchlist(tmp_path)
    open_sync(tmp_path / "monitor.db").close()
    assert main(["export", "mentions", "-w", str(watchlist), "--since", "2000-01-01", "--until", "2099-12-31"]) == 0
