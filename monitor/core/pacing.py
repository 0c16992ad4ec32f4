"""Networks' rate limits on what we post: a large broadcast is paced per account, never cut short.

Mastodon allows 300 calls per 5 minutes per account (its default for most endpoints); Bluesky 5,000
points per hour with a created record costing 3. A sliding window per account counts every attempt.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

# network -> (calls, per milliseconds)
RATE_LIMITS: dict[str, tuple[int, int]] = {"mastodon": (300, 5 * 60_000), "bluesky": (1_600, 3_600_000)}


class Pace:
    """A sliding window of the last `limit` calls' times (epoch ms)."""

    def __init__(self, limit: int, per_ms: int, past: Iterable[int] = ()) -> None:
        self.limit, self.per_ms = limit, per_ms
        self.times: deque[int] = deque(sorted(past)[-limit:], maxlen=limit)

    def wait(self, now: int) -> int:
        """Milliseconds until one more call is allowed (0: now)."""
        while self.times and self.times[0] <= now - self.per_ms:
            self.times.popleft()
        return 0 if len(self.times) < self.limit else self.times[0] + self.per_ms - now

    def take(self, now: int) -> None:
        self.times.append(now)
