"""The incident picker typed ahead in a real terminal: the keys after `m` land in the picker, not the pane."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests._pty_app import ENTER, PtyApp, db_actions, wait_until
from tests.test_terminal import WAIT, desk, launch

__all__ = ["desk", "launch"]  # the desk's fixtures, shared with the other terminal tests


def links(db: Path) -> dict[int, int]:
    with sqlite3.connect(db, timeout=30) as conn:
        return dict(conn.execute("SELECT id, incident_id FROM mentions WHERE incident_id IS NOT NULL"))


def test_keys_typed_after_m_pick_in_the_picker(desk: tuple[Path, Path], launch: PtyApp) -> None:
    _, db = desk
    # One write: m opens the picker (only "New incident" in it), j there moves nothing, Enter picks it and
    # Enter accepts the drafted title: incident 1 from mention 1; j moves the pane to mention 2, m and Enter
    # link it to incident 1 (ranked first). A j that reached the pane instead would move it one row further:
    # the second link would be mention 3's.
    launch.write("m" + "j" + ENTER + ENTER + "j" + "m" + ENTER)
    try:
        wait_until(lambda: len(links(db)) >= 2, WAIT, "two mentions linked")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{db_actions(db)}\n{launch.text()}") from None
    assert links(db) == {1: 1, 2: 1}
    assert [(m, k, p["incident"]) for m, k, p in db_actions(db)] == [(1, "link", 1), (2, "link", 1)]
    wait_until(lambda: "2 reports" in launch.text(), WAIT, "the incident's row counts both reports")
