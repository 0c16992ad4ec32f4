"""Shared fixtures: real watchlist files, a real SQLite file, a small demo stream with hostile text."""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from monitor.core.config import Watchlist
from monitor.db.engines import open_database
from monitor.db.pg.store import PgStore
from monitor.db.store import Store
from monitor.networks import load_watchlist
from tests.pg_server import Cluster, cluster_fixture

ROOT = Path(__file__).resolve().parent.parent

HOSTILE_TEXTS = [
    "[bold]Tisséo[/bold] en panne [@click=app.quit]clique ici[/]",
    "Stray close [/] at Toulouse",
    "Toulouse \x1b]52;c;ZWNobyBoYWNrZWQ=\x07 clipboard \x1b[2J clear \x1b]0;pwned\x07 title",
    "\u202eTisséo\u202c retard \u009b31m C1 \x85 next \x00 nul \x07 bell \u200b zero-width",
    "Toulouse '); DROP TABLE mentions;-- [link=https://evil.example]x[/link] $variable",
]


@pytest.fixture(autouse=True)
def private_user_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Tests (and the commands they start) never touch the real user's config or state directories."""
    home = tmp_path_factory.mktemp("user")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / "state"))
    monkeypatch.delenv("MONITOR_WATCHLIST", raising=False)
    monkeypatch.delenv("MONITOR_DB", raising=False)
    return home


# How long a test waits for something before it fails. Generous on purpose: the suite must pass on two
# busy cores, and a wait ends as soon as its condition holds, so a long deadline costs nothing when green.
WAIT = 60.0


async def wait_until(
    condition: Callable[[], Any],
    within: float = WAIT,
    what: str | None = None,
    pause: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> float:
    """Until `condition()` is truthy (an awaitable result is awaited); returns the seconds it took.

    The only way tests wait: never a fixed sleep, never a tight bound. `pause` lets a Textual test
    yield through its pilot so that the app keeps processing messages meanwhile.
    """
    start = time.monotonic()
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return time.monotonic() - start
        if time.monotonic() - start > within:
            raise AssertionError(f"not within {within:g} s: {what or _source(condition)}")
        await pause(0.05)


async def wait_for(pilot: Pilot[Any], condition: Callable[[], Any], within: float = WAIT) -> None:
    """`wait_until` for a Textual app under test: waits through the pilot."""
    await wait_until(condition, within, pause=pilot.pause)


def record_notices(app: Any) -> list[str]:
    """Every notice the app shows from now on, kept (Textual's own list forgets them after a timeout)."""
    seen: list[str] = []
    show = app.notify

    def notify(message: Any, *args: Any, **kwargs: Any) -> None:
        seen.append(str(message))
        show(message, *args, **kwargs)

    app.notify = notify
    return seen


def _source(condition: Callable[[], Any]) -> str:
    try:
        return inspect.getsource(condition).strip()
    except (OSError, TypeError):
        return repr(condition)


def write_demo(path: Path, texts: list[str], network: str = "mastodon") -> Path:
    lines = []
    for i, text in enumerate(texts, 1):
        lines.append(json.dumps({
            "id": f"t-{i:04d}", "at": float(i), "network": network, "author": f"@citizen{i}@piaille.fr",
            "author_name": f"Citizen {i}", "text": text, "url": f"https://piaille.fr/@citizen{i}/{i}",
            "lang": "fr", "reply_to": "t-0001" if i == 3 else None, "published_ago": 30, "tags": [],
        }))  # fmt: skip
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_watchlist(tmp: Path, demo_file: Path | None = None, extra: str = "") -> Path:
    """The shipped watchlist, pointed at a test database (and demo file)."""
    text = (ROOT / "watchlist.yaml").read_text(encoding="utf-8")
    text = text.replace("database: monitor.db", f"database: {tmp / 'monitor.db'}")
    if demo_file is not None:
        text = text.replace("    type: demo\n", f"    type: demo\n    file: {demo_file}\n")
        text = text.replace("    loop: true ", "    loop: false")
    path = tmp / "watchlist.yaml"
    path.write_text(text + extra, encoding="utf-8")
    return path


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """A real SQLite file, migrated, closed after the test."""
    s = await Store.open(tmp_path / "monitor.db")
    yield s
    await s.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_target(request: pytest.FixtureRequest, tmp_path: Path) -> str | Path:
    """Where a store lives, on each engine in turn: a SQLite file, or an empty PostgreSQL database."""
    if request.param == "sqlite":
        return tmp_path / "monitor.db"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
async def database(db_target: str | Path) -> AsyncIterator[Store | PgStore]:
    """A migrated store on each engine in turn (the same test runs on both), closed after the test."""
    s = await open_database(db_target)
    yield s
    await s.close()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """A PostgreSQL server for the whole session (skipped where none exists, never under CI)."""
    yield from cluster_fixture()


@pytest.fixture
def pg_url(pg_cluster: Cluster) -> Iterator[str]:
    """A fresh, empty database on that server, dropped after the test."""
    name = pg_cluster.new_database()
    yield pg_cluster.url(name)
    pg_cluster.drop_database(name)


@pytest.fixture
def demo_texts() -> list[str]:
    return [
        "Passage piéton bloqué par un chantier rue de Metz à Toulouse 🚧",
        "Le métro ligne A est arrêté à Jean-Jaurès, Tisséo ?",
        "Accident au carrefour, Toulouse, attention danger",
        "Merci Toulouse Métropole pour la réactivité !",
        "Toulouse FC a gagné ce soir",  # excluded: not the city
        "Nid de poule énorme avenue de Muret à Toulouse",
    ]


@pytest.fixture
def watchlist(tmp_path: Path, demo_texts: list[str]) -> Watchlist:
    demo = write_demo(tmp_path / "demo.jsonl", demo_texts)
    return load_watchlist(write_watchlist(tmp_path, demo))


@pytest.fixture
def hostile_watchlist(tmp_path: Path) -> Watchlist:
    demo = write_demo(tmp_path / "demo.jsonl", HOSTILE_TEXTS)
    return load_watchlist(write_watchlist(tmp_path, demo))
