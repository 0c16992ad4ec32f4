"""The real app in a pseudo-terminal: keys typed ahead in bursts, and a hang-up under load.

Pilot tests go around the terminal; these drive `python -m monitor` through a pty as SSH does, so the
input parser, the driver threads and the output writer are all on the path.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._pty_app import (
    CTRL_S,
    CTRL_U,
    ENTER,
    ROOT,
    PtyApp,
    collect_once,
    db_actions,
    demo_file,
    detail_author,
    selected,
    wait_until,
)
from tests.conftest import write_watchlist

MENTIONS = 40
WAIT = 120.0  # generous: the suite must pass with both cores busy
# The app's own hard deadline is a few seconds (monitor.engine.hangup.GRACE_S); the bug left it running for minutes.
# Only that must be told apart, so the shared generous wait, not a tight bound: busy cores only slow the exit.
HANG_UP_EXIT = 60.0


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
    try:
        wait_until(lambda: len(db_actions(db)) >= len(plan), 2 * WAIT, f"{len(plan)} actions in the database")
    except AssertionError as exc:  # say what was logged and what is on screen
        raise AssertionError(f"{exc}\n{db_actions(db)}\n{launch.text()}") from None
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


def test_keys_typed_before_the_first_paint_move_the_highlight_and_the_detail_as_if_typed_slowly(
    desk: tuple[Path, Path],
) -> None:
    """j j j then j k, written as the desk starts: before its first screen, while the counts, the other open
    pane, presence and the deliverer start after it. The highlight ends on the 4th row and the detail names it."""
    watchlist, db = desk
    app = PtyApp(["-w", str(watchlist), "--db", str(db), "--no-collect", "--dry-run", "--operator", "alice"])
    try:
        app.write("jjj")
        app.write("jk")
        early = "New" not in app.text()  # Python has not even imported Textual yet: nothing is drawn

        def settled() -> bool:
            now = selected(app)  # the 4th row: the pane lists the demo's mentions oldest first
            shown = bool(now) and now[1].startswith("@citizen4@") and detail_author(app).startswith("@citizen4@")
            return shown and f"New {MENTIONS}" in app.text() and "Escalated 0" in app.text()

        try:  # the counts and the Escalated pane come after the first screen: once they show, start-up is over
            wait_until(settled, WAIT, "the 4th row highlighted and in the detail, once the desk has started")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nhighlighted: {selected(app)}\n{app.text()}") from None
        assert early, "the keys went out after the first screen: this test no longer tests start-up"
        rows = [line for line in app.text().splitlines() if "@citizen" in line[:40]]
        assert rows[3] == app.screen.display[selected(app)[0]]  # type: ignore[index]
    finally:
        app.kill()


@pytest.fixture
def storm(desk: tuple[Path, Path]) -> Iterator[subprocess.Popen[str]]:
    """Another process writing ~1,000 mentions a second into the database through the collector path."""
    watchlist, db = desk
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "_storm_proc.py"), str(db), str(watchlist)],
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "storming"
        yield proc
    finally:
        proc.kill()
        proc.wait()


def test_a_hang_up_during_a_storm_with_a_reply_open_ends_the_app(
    desk: tuple[Path, Path], launch: PtyApp, storm: subprocess.Popen[str]
) -> None:
    _, db = desk
    launch.write("r" + "Bonjour, nous regardons")  # a claim is taken, the dialog is open with a draft
    wait_until(lambda: claims(db), WAIT, "the reply's claim in the database")
    wait_until(lambda: mentions(db) > MENTIONS + 5000, WAIT, "the storm well under way")
    launch.hang_up()
    wait_until(lambda: not launch.alive(), HANG_UP_EXIT, "the app gone after the hang-up")
    assert launch.session_processes() == []  # nothing it started is left behind
    assert claims(db) == []  # released on the way out: nobody waits 3 minutes for it to expire
    ended = sqlite3.connect(db).execute("SELECT count(*) FROM sessions WHERE ended_at IS NULL").fetchone()[0]
    assert ended == 0  # off duty at once


def claims(db: Path) -> list[tuple[int, str]]:
    with sqlite3.connect(db, timeout=30) as conn:
        return conn.execute("SELECT mention_id, operator FROM claims").fetchall()


def mentions(db: Path) -> int:
    with sqlite3.connect(db, timeout=30) as conn:
        return int(conn.execute("SELECT count(*) FROM mentions").fetchone()[0])
