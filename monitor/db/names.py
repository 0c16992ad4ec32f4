"""The integer ids of the texts the statistics group by (migration 7's `names`), given when a text is written."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from monitor.core.models import TERM_SEP


def primary_term(terms: str) -> str:
    """A stored terms list's primary term: up to the first separator (migrations.PRIMARY_TERM in SQL)."""
    return terms.split(TERM_SEP, 1)[0]


def name_ids(c: sqlite3.Connection, names: Iterable[str]) -> dict[str, int]:
    """Each name's id, adding the new ones (inside the caller's transaction)."""
    wanted = list(dict.fromkeys(names))
    c.executemany("INSERT OR IGNORE INTO names (name) VALUES (?)", [(name,) for name in wanted])
    return {name: int(c.execute("SELECT id FROM names WHERE name = ?", (name,)).fetchone()[0]) for name in wanted}
