"""The real app in a pseudo-terminal: keys typed ahead in bursts, and a hang-up under load.

Pilot tests go around the terminal; these drive `python -m monitor` through a pty as SSH does, so the
input parser, the driver threads and the output writer are all on the path.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._pty_app import CTRL_S, CTRL_U, ENTER, PtyApp, collect_once, db_actions, demo_file, wait_until
from tests.conftest import write_watchlist

MENTIONS = 40
WAIT = 120.0  # generous: the suite must pass with both cores busy


@pytest.fixture
def desk(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the shipped watchlist on a demo file of MENTIONS city mentions, collected once into a temp DB."""
    watchlist = write_watchlist(tmp_path, demo_file(tmp_path / "demo.jsonl", MENTIONS))
    db = tmp_path / "monitor.db"
    collect_once(watchlist, db)
    return watchlist, db


@pytest.fixture
def launch(desk: tuple[Path, Path]) -> Iterator[PtyApp]:
    watchlist, db = desk
    app = PtyApp(["-w", str(watchlist), "--db", str(db), "--no-collect", "--dry-run", "--operator", "alice"])
    try:
        wait_until(lambda: f"New {MENTIONS}" in app.text(), WAIT, "the desk shows the New pane")
        yield app
    finally:
        app.kill()


def bursts() -> list[tuple[str, str, str]]:
    """(kind, text, keys): note, reply, escalation note and filter-then-note, six of each, in turn."""
    out = []
    for i in range(6):
        note, reply = (
            f"Note {i}: voirie prévenue, barrières retirées à 14h{i:02d}.",
            f"Merci, c'est transmis (réf {i}).",
        )
        esc, flt = f"Équipe sur place n°{i}, rue d'Alsace", f"filtré {i}: vu sur la rocade"
        out += [
            ("note", note, "n" + note + CTRL_S + "j"),
            ("reply", reply, "r" + reply + CTRL_S),  # done: leaves New, the cursor is on the next one
            ("escalate", esc, "e" + ENTER + esc + ENTER),  # first service, then the note
            ("note", flt, "/" + CTRL_U + "toulouse" + ENTER + "n" + flt + CTRL_S + "j"),
        ]
    return out


def test_bursts_typed_ahead_in_a_terminal_log_every_text_exactly(desk: tuple[Path, Path], launch: PtyApp) -> None:
    _, db = desk
    plan = bursts()
    for _, _, keys in plan:  # one write each, back to back: nothing waits for the screen
        launch.write(keys)
    wait_until(lambda: len(db_actions(db)) >= len(plan), WAIT, f"{len(plan)} actions in the database")
    wait_until(lambda: re.search(r"New \d+/\d+", launch.text()), WAIT, "the tabs count what the filter keeps")
    logged = db_actions(db)
    assert [k for _, k, _ in logged] == [kind for kind, _, _ in plan]
    moved = [m for m, k, _ in logged if k != "note"]
    assert len(set(moved)) == len(moved)  # each reply and escalation on its own mention
    authors = dict(sqlite3.connect(db).execute("SELECT id, author FROM mentions").fetchall())
    for (mention_id, kind, payload), (_, text, _) in zip(logged, plan, strict=True):
        if kind == "note":
            assert payload == {"text": text}
        elif kind == "reply":
            assert payload["text"] == f"{authors[mention_id]} {text}"
        else:
            assert (payload["service"], payload["note"]) == ("voirie", text)
