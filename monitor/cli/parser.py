"""The command line's grammar: commands, options, help and examples (shell completion is generated from it)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from monitor import __version__

LOG_LEVELS = ("debug", "info", "warning", "error")
FILE_OPTIONS = ("watchlist", "db", "log")  # completed as file names by `monitor completion`

EPILOG = """\
examples:
  monitor init ~/.config/monitor       write a sample watchlist to edit for your city
  monitor check                        validate the watchlist and the database path
  monitor                              open the duty desk
  monitor collect                      collect and deliver as a service (logs to stderr)
  monitor completion bash > ~/.local/share/bash-completion/completions/monitor

the watchlist is --watchlist, else $MONITOR_WATCHLIST, else the first found of ./watchlist.yaml,
$XDG_CONFIG_HOME/monitor/watchlist.yaml (~/.config), /etc/monitor/watchlist.yaml.
the database is --db, else $MONITOR_DB, else `database:` in the watchlist.

exit codes (every command): 0 ok; 1 a source or a delivery failed; 2 usage or config error;
3 database error (missing, unreadable, unsafe permissions, other schema); 130 interrupted.
"""


def _common(p: argparse.ArgumentParser, top: bool = False) -> None:
    """Options every command takes; a subcommand's copy keeps what was given before the subcommand."""

    def default(value: object) -> object:
        return value if top else argparse.SUPPRESS

    p.add_argument(
        "--watchlist", "-w", default=default(None),
        help="the watchlist file (default: $MONITOR_WATCHLIST, ./watchlist.yaml, ~/.config/monitor/, /etc/monitor/)",
    )  # fmt: skip
    p.add_argument(
        "--db", default=default(None), help="the SQLite file (default: $MONITOR_DB, else `database:` in the watchlist)"
    )
    p.add_argument(
        "--log", default=default(None),
        help="log to this file (default: stderr; the app keeps a rotating log in the state directory)",
    )  # fmt: skip
    p.add_argument(
        "--log-level", choices=LOG_LEVELS, default=default(None),
        help="least level logged (default: warning on stderr, info in a file)",
    )  # fmt: skip


def completing(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The parser with file-name completion on its file options, for shtab: imported by `monitor completion`
    only, not at every start (15 ms before the desk's first screen)."""
    import shtab

    parsers = [parser]
    for p in parsers:
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                parsers.extend(action.choices.values())
            elif action.dest in FILE_OPTIONS:
                action.complete = shtab.FILE  # type: ignore[attr-defined]
    return parser


def _examples(*lines: str) -> str:
    return "example:\n" + "\n".join(f"  {line}" for line in lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="monitor", description="A terminal console for a city's duty desk.", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--version", action="version", version=f"monitor {__version__}")
    _common(parser, top=True)
    _app_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, summary: str, *examples: str) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name, help=summary, description=summary[0].upper() + summary[1:] + ".", epilog=_examples(*examples),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )  # fmt: skip
        _common(p)
        return p

    run = command("run", "open the duty desk (the default)", "monitor run --operator alice --read-only")
    _app_options(run)

    _collect_command(command)
    _report_commands(command)
    _setup_commands(command)
    return parser


Command = Callable[..., argparse.ArgumentParser]  # (name, summary, *examples) -> the command's parser


def _collect_command(command: Command) -> None:
    collect = command(
        "collect", "run the sources headless into the database",
        "monitor collect --once -w /etc/monitor/watchlist.yaml   # cron: poll each source once",
    )  # fmt: skip
    collect.add_argument("--once", action="store_true", help="poll each source once, then exit (1 if any failed)")
    collect.add_argument("--speed", type=float, default=argparse.SUPPRESS, help="demo replay speed")
    collect.add_argument(
        "--dry-run", action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
        help="deliver nothing (marked sent); --no-dry-run sends even for an all-demo watchlist",
    )  # fmt: skip
    collect.add_argument("--no-deliver", action="store_true", help="do not send replies and escalations here")


def _report_commands(command: Command) -> None:
    stats = command("stats", "response-time statistics from the action log", "monitor stats --since 7d --by source")
    stats.add_argument("--since", help="ISO date/time (local) or an age like 7d, 12h")
    stats.add_argument("--until", help="ISO date/time (local) or an age like 1d")
    stats.add_argument("--format", choices=("table", "csv", "json"), default="table")
    stats.add_argument(
        "--by", action="append", default=None, type=_breakdowns, metavar="DIM[,DIM]",
        help="breakdowns: source, term, service, operator, priority, hour, weekday (repeatable; default all)",
    )  # fmt: skip
    stats.add_argument("--explain", action="store_true", help="also print how each figure is defined")

    report = command(
        "report", "a self-contained HTML report (tables and charts)", "monitor report --since 30d --html month.html"
    )
    report.add_argument("--html", required=True, metavar="FILE", help="write the page to this file")
    report.add_argument("--since", help="ISO date/time (local) or an age like 7d, 12h")
    report.add_argument("--until", help="ISO date/time (local) or an age like 1d")

    export = command(
        "export",
        "dump mentions, actions or incidents for other tools",
        "monitor export actions --format csv -o actions.csv",
    )
    export.add_argument("what", choices=("mentions", "actions", "incidents"))
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    export.add_argument("--since", help="ISO date/time (local) or an age like 7d")
    export.add_argument("--until", help="ISO date/time (local) or an age like 1d")
    export.add_argument("--output", "-o", help="write to this file (default: stdout)")
    export.add_argument(
        "--raw-csv", action="store_true",
        help="write CSV cells as stored; by default a cell starting with = + - @ gets a leading ' (no live formulas)",
    )  # fmt: skip


def _setup_commands(command: Command) -> None:
    auth = command("auth", "log the city's account in to a network that needs a browser (X, OAuth 2.0)",
                   "monitor auth x --source x-toulouse")  # fmt: skip
    auth.add_argument("network", choices=("x",))
    auth.add_argument("--source", help="the source to log in (default: the only x source with oauth2:)")
    check = command("check", "validate the watchlist and the database path", "monitor check --online")
    check.add_argument("--online", action="store_true", help="also try each configured source once")
    check.add_argument(
        "--clocks", action="store_true",
        help="also recompute each mention's clocks from the action log (seconds per million mentions)",
    )  # fmt: skip

    init = command(
        "init", "write the commented sample watchlist, to edit for your city",
        "monitor init ~/.config/monitor   # then: monitor check",
    )  # fmt: skip
    init.add_argument("dir", nargs="?", default=".", help="the folder to write watchlist.yaml in (default: here)")
    init.add_argument("--force", action="store_true", help="replace an existing watchlist.yaml")

    migrate = command(
        "migrate", "copy a desk's whole history from its SQLite file into an empty PostgreSQL database",
        "monitor migrate --from monitor.db --to postgresql://desk@db.example/monitor",
    )  # fmt: skip
    migrate.add_argument("--from", dest="source", required=True, metavar="FILE", help="the desk's SQLite file")
    migrate.add_argument("--to", required=True, metavar="URL", help="postgresql://user@host/database (no password)")

    completion = command("completion", "print a shell completion script", "monitor completion zsh > ~/.zfunc/_monitor")
    completion.add_argument("shell", choices=("bash", "zsh", "fish"))


def _app_options(p: argparse.ArgumentParser, top: bool = False) -> None:
    def default(value: object) -> object:
        return value if top else argparse.SUPPRESS

    p.add_argument("--operator", default=default(None), help="who acts (default: the login user)")
    p.add_argument("--speed", type=float, default=default(1.0), help="demo replay speed (2 = twice as fast)")
    p.add_argument("--no-collect", action="store_true", default=default(False), help="do not run the sources here")
    p.add_argument(
        "--dry-run", action="store_true", default=default(None),
        help="send nothing: replies and escalations are marked sent as 'dry-run' (the demo's default)",
    )  # fmt: skip
    p.add_argument("--read-only", action="store_true", default=default(False), help="see everything, act on nothing")
    p.add_argument(
        "--smoke", action="store_true", default=default(False),
        help="start without a terminal, wait for the first painted screen, exit (0: it starts; for install checks)",
    )  # fmt: skip


def _breakdowns(text: str) -> list[str]:
    from monitor.reports.stats import DIMENSIONS

    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in DIMENSIONS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"{text!r}: choose from {', '.join(DIMENSIONS)}")
    return names
