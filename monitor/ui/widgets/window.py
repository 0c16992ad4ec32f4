"""A pane's bounded window on its sorted query: which rows it holds, and what it must ask SQLite for.

Pure bookkeeping, no Textual: the pane widget draws it, the desk reads pages for it. The window holds at most
`size` rows of the query `status = X ORDER BY sort_key`; more urgent arrivals enter it and push the least
urgent out. Rows past the window stay in SQLite until the operator pages to them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from monitor.core.models import OPEN_STATUSES, MentionRow, Status

WINDOW = 200  # rows a pane holds: a few screens at 80x24, and all the refresh work a tick can cost


def sort_key(row: MentionRow) -> tuple[Any, ...]:
    """The pane's order, as SQLite's (store.pane_sync): open panes most urgent and longest waiting first,
    closed panes the latest closed first."""
    if row.status in OPEN_STATUSES:
        return (int(row.priority), row.first_seen_at, row.id)
    return (-row.status_at, -row.id)


class Window:
    def __init__(self, status: Status, size: int = WINDOW) -> None:
        self.status = status
        self.size = size
        self.rows: list[MentionRow] = []  # in the pane's order
        self.by_id: dict[int, MentionRow] = {}
        self.complete = True  # nothing in the query sorts after the last row
        self.anchors: list[MentionRow] = []  # one per page turned: the row the next page starts after
        self.above = 0  # rows of the query before this page (an estimate once rows move above it)

    def _sort(self) -> list[MentionRow]:
        """Order the held rows and drop the least urgent past `size`; returns what was dropped."""
        ordered = sorted(self.by_id.values(), key=sort_key)
        dropped = ordered[self.size :]
        for row in dropped:
            del self.by_id[row.id]
        if dropped:
            self.complete = False
        self.rows = ordered[: self.size]
        return dropped

    def replace(self, rows: Iterable[MentionRow], asked: int) -> None:
        """A page read from SQLite (`asked` rows were asked for): it becomes the window."""
        self.by_id = {r.id: r for r in rows}
        self.complete = len(self.by_id) < asked
        self._sort()

    def reset(self, rows: list[MentionRow]) -> None:
        """The first page again (first load, filter change)."""
        self.anchors, self.above = [], 0
        self.replace(rows, self.size)

    def _after_anchor(self, key: tuple[Any, ...]) -> bool:
        return not self.anchors or key > sort_key(self.anchors[-1])

    def merge(self, upserts: Iterable[MentionRow], removals: Iterable[int]) -> bool:
        """One batch of changes; True if the window's rows changed. Work is bounded by the window:
        an arrival that sorts past a full window costs one comparison."""
        last = sort_key(self.rows[-1]) if self.rows else None
        full = len(self.rows) >= self.size
        changed = False
        for i in removals:
            if self.by_id.pop(i, None) is not None:
                changed = True
        for row in upserts:
            key = sort_key(row)
            held = row.id in self.by_id
            if not self._after_anchor(key):  # it sorts onto an earlier page
                self.above += 1
                changed = self.by_id.pop(row.id, None) is not None or changed
            elif last is not None and key > last and (full or not self.complete):
                # Past the window: it waits in SQLite (a fill or a page brings it, in order).
                self.complete = False
                changed = self.by_id.pop(row.id, None) is not None or changed
            else:
                changed = changed or not held or self.by_id[row.id] != row
                self.by_id[row.id] = row
        if changed:
            self._sort()
        return changed

    def wants_fill(self) -> bool:
        """Rows left and SQLite holds more after the last one: top the window up."""
        return len(self.rows) < self.size and not self.complete

    def fill(self, rows: list[MentionRow], asked: int) -> bool:
        """Rows read after the last one; True if any entered."""
        before = len(self.by_id)
        for row in rows:
            if row.id not in self.by_id and self._after_anchor(sort_key(row)):
                self.by_id[row.id] = row
        self.complete = len(rows) < asked
        self._sort()
        return len(self.by_id) != before

    def turn_forward(self, rows: list[MentionRow], after: MentionRow) -> bool:
        """The page after this one, read after `after` (its last row when asked). False: nothing there."""
        if not rows:
            self.complete = True
            return False
        self.anchors.append(after)
        self.above += len(self.rows)
        self.replace(rows, self.size)
        return True

    def turn_back(self, rows: list[MentionRow]) -> None:
        """The page before this one, read after the anchor before it."""
        self.anchors.pop()
        self.above = max(0, self.above - self.size) if self.anchors else 0
        self.replace(rows, self.size)
        self.complete = False  # the page just left is after it

    def beyond(self, total: int) -> int:
        """Rows of the query after this window, from the status's count (which lags by up to a second)."""
        if self.complete:
            return 0
        return max(0, total - self.above - len(self.rows))
