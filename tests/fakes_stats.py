"""Helpers for the statistics tests: a real SQLite file filled through the store's own write path
(ingest_sync, act_sync with explicit times), and a watchlist written as YAML and loaded for real."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from monitor.core.config import Watchlist
from monitor.core.models import ActionKind, MatchResult, Mention, Priority
from monitor.core.timeutil import from_ms, to_ms
from monitor.db.reading import ReadConnection, open_reader
from monitor.db.store import act_sync, ingest_sync, open_sync
from monitor.networks import load_watchlist
from tests.pg_server import Cluster

# A test marked so runs on both engines (its `desk` fixture passes the engine to open_desk).
BOTH_ENGINES = pytest.mark.parametrize("desk", ["sqlite", "postgresql"], indirect=True)


def open_desk(request: pytest.FixtureRequest, path: Path) -> Desk:
    """A desk on the engine the test asks for (SQLite unless it is marked BOTH_ENGINES)."""
    if getattr(request, "param", "sqlite") == "sqlite":
        return Desk(path)
    return Desk(path, request.getfixturevalue("pg_cluster"))


PARIS = ZoneInfo("Europe/Paris")
MIN = 60_000
HOUR = 3_600_000

# The desk in watchlist.yaml (Toulouse): Saturday mornings, closed on Sunday.
DESK_HOURS = {
    "monday": "08:30-18:00",
    "tuesday": "08:30-18:00",
    "wednesday": "08:30-18:00",
    "thursday": "08:30-18:00",
    "friday": "08:30-17:00",
    "saturday": "09:00-12:00",
    "sunday": "closed",
}
# Hootsuite's example desk: weekdays nine to five.
NINE_TO_FIVE = {d: "09:00-17:00" for d in ("monday", "tuesday", "wednesday", "thursday", "friday")} | {
    "saturday": "closed",
    "sunday": "closed",
}


def paris(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    """Epoch ms of a Paris wall-clock time (zoneinfo picks the offset of that date)."""
    return to_ms(datetime(year, month, day, hour, minute, second, tzinfo=PARIS))


def write_watchlist(
    directory: Path,
    *,
    hours: dict[str, str] | None = None,
    first_response: str = "1h",
    resolution: str | None = None,
    holidays: str | None = "FR",
    subdivision: str | None = None,
    extra_holidays: tuple[str, ...] = (),
    timezone: str = "Europe/Paris",
) -> Watchlist:
    lines = [
        "city: Testville",
        f"timezone: {timezone}",
        "database: monitor.db",
        "targets:",
        f"  first_response: {first_response}",
        f"  warning: {first_response}",
    ]
    if resolution:
        lines.append(f"  resolution: {resolution}")
    if hours is not None:
        lines.append("business_hours:")
        lines += [f'  {day}: "{span}"' for day, span in hours.items()]
        if holidays:
            lines.append(f"  holidays: {holidays}")
        if subdivision:
            lines.append(f'  subdivision: "{subdivision}"')
        lines.append(f"  extra_holidays: [{', '.join(repr(d) for d in extra_holidays)}]")
    lines += [
        "sources:",
        "  - name: demo",
        "    type: demo",
        "terms:",
        "  - name: voirie",
        "    keywords: [trottoir]",
        "  - name: eau",
        "    keywords: [fuite]",
        "services:",
        "  - id: voirie",
        "    name: Voirie",
        "  - id: eau",
        "    name: Eau",
    ]
    path = directory / "watchlist.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return load_watchlist(path)


class Desk:
    """A monitor database that tests fill the way the desk does, with explicit times.

    With a PostgreSQL cluster, `read()` and `target()` give the desk as it is now, copied into a new
    PostgreSQL database by `monitor migrate`'s copy: the same rows, read by the other engine."""

    def __init__(self, path: Path, cluster: Cluster | None = None) -> None:
        self.path = path
        self.conn: sqlite3.Connection = open_sync(path)
        self._serial = 0
        self.cluster = cluster
        self._copies: list[str] = []
        self._readers: list[ReadConnection] = []

    def close(self) -> None:
        self.conn.close()
        for reader in self._readers:
            reader.close()
        if self.cluster is not None:
            for name in self._copies:
                self.cluster.drop_database(name)

    def target(self) -> str | Path:
        """Where the desk is read from: its file, or a fresh PostgreSQL copy of it."""
        if self.cluster is None:
            return self.path
        from monitor.db.pg.copy import move

        self._copies.append(name := self.cluster.new_database())
        url = self.cluster.url(name)
        asyncio.run(move(self.path, url))
        return url

    def read(self) -> ReadConnection:
        """A read connection on the desk as it is now, on the desk's engine."""
        if self.cluster is None:
            return self.conn
        self._readers.append(reader := open_reader(self.target()))
        return reader

    def _tx(self, fn: Any) -> Any:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn()
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        return result

    def mention(
        self,
        seen: int,
        *,
        source: str = "mastodon",
        terms: tuple[str, ...] = ("voirie",),
        priority: Priority = Priority.NORMAL,
        text: str = "Un trou dans le trottoir rue de Metz",
        remote_id: str | None = None,
    ) -> int:
        self._serial += 1
        remote_id = remote_id or f"post-{self._serial}"
        mention = Mention(
            source=source, remote_id=remote_id, network=source, author="@citoyen", text=text,
            published_at=from_ms(seen - 5 * MIN),
        )  # fmt: skip
        matched = [(mention, MatchResult(terms, priority))]
        self._tx(lambda: ingest_sync(self.conn, source, matched, None, [], [], seen))
        row = self.conn.execute(
            "SELECT id FROM mentions WHERE source = ? AND remote_id = ?", (source, remote_id)
        ).fetchone()
        return int(row[0])

    def act(self, mention_id: int, kind: str, at: int, operator: str = "alice", **payload: Any) -> int:
        return self._tx(lambda: act_sync(self.conn, mention_id, ActionKind(kind), operator, payload, at=at))

    def edit(self, mention_id: int, at: int, text: str) -> None:
        source, remote_id = self.conn.execute(
            "SELECT source, remote_id FROM mentions WHERE id = ?", (mention_id,)
        ).fetchone()
        mention = Mention(
            source=source, remote_id=remote_id, network=source, author="@citoyen", text=text,
            published_at=from_ms(at),
        )  # fmt: skip
        self._tx(lambda: ingest_sync(self.conn, source, [], None, [(mention, None)], [], at))

    def delete(self, mention_id: int, at: int) -> None:
        source, remote_id = self.conn.execute(
            "SELECT source, remote_id FROM mentions WHERE id = ?", (mention_id,)
        ).fetchone()
        self._tx(lambda: ingest_sync(self.conn, source, [], None, [], [remote_id], at))
