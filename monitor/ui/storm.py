"""The calm storm line: under a burst the desk says how many mentions arrived in the last minute, in one line
of the header, instead of making the operator watch the pane churn (issue 13).

Pure bookkeeping, no Textual: the desk feeds it each refresh's changes and reads `line()` once a second.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from monitor.core.models import MentionRow

SPAN_MS = 60_000
STORM_PER_MINUTE = 600  # ten a second for a minute: more than a desk reads one by one
CALM_PER_MINUTE = STORM_PER_MINUTE // 2  # the line stays until the rate has clearly fallen, not at each dip


class StormMeter:
    def __init__(self, storm: int = STORM_PER_MINUTE, calm: int = CALM_PER_MINUTE, span_ms: int = SPAN_MS) -> None:
        self.storm, self.calm, self.span_ms = storm, calm, span_ms
        self._arrivals: deque[tuple[int, int]] = deque()  # (when counted, how many), oldest first
        self.last_minute = 0
        self.on = False
        # Ids grow with arrivals: a higher one is new, a lower one an update. The first batch (what changed
        # in the tick since the panes were read) counts whole: nearly all of it is arrivals.
        self._newest_id = 0

    def count(self, changes: Iterable[MentionRow], now: int) -> None:
        """One refresh's changed rows: those with an id never seen before are arrivals."""
        newest = top = self._newest_id
        n = 0
        for row in changes:
            if row.id > newest:
                n += 1
                top = max(top, row.id)
        self._newest_id = top
        if n:
            self._arrivals.append((now, n))
            self.last_minute += n
        self.expire(now)

    def expire(self, now: int) -> None:
        """Forget arrivals older than the span; the line comes on at `storm` a minute, off below `calm`."""
        while self._arrivals and self._arrivals[0][0] <= now - self.span_ms:
            self.last_minute -= self._arrivals.popleft()[1]
        if self.last_minute >= self.storm:
            self.on = True
        elif self.last_minute < self.calm:
            self.on = False

    def line(self) -> str:
        """'storm: 4,210 new in the last minute' during a storm, else ''."""
        return f"storm: {self.last_minute:,} new in the last minute" if self.on else ""
