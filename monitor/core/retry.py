"""What went wrong with a call to a network, and how long to wait before the next try.

One taxonomy and one backoff for collection (a source's next poll) and delivery (an outbox item's
next attempt): the wait a source's state shows ("backing off until …") and the time an item is due
again both come from `backoff`.
"""

from __future__ import annotations

import random
from enum import StrEnum

from monitor.core.timeutil import bound_delay

BACKOFF_BASE = 2.0  # the first wait, before jitter
POLL_CAP = 300.0  # a source is polled again within 5 minutes, so a recovered server is seen soon
DELIVERY_CAP = 900.0  # an item waits at most 15 minutes between attempts
AUTH_WAIT = 900.0  # rejected credentials are fixed by a person: retrying sooner only adds noise


class ErrorKind(StrEnum):
    """Why a call failed, as the one HTTP status classifier (networks.http.check) or a client says."""

    TRANSIENT = "transient"  # network faults, timeouts, 5xx, a malformed answer: try again later
    RATE = "rate"  # 429: try again after the wait the server asks for
    AUTH = "auth"  # 401/403: the credentials were rejected; a person must act
    CONFIG = "config"  # 404/410, a missing credential, a setting that cannot work: fix the watchlist
    REFUSED = "refused"  # another 4xx: the server refused this request as it is

    @property
    def needs_fixing(self) -> bool:
        """Nothing will work until someone changes the credentials or the watchlist."""
        return self in (ErrorKind.AUTH, ErrorKind.CONFIG)

    @property
    def worth_repeating(self) -> bool:
        """Would the same request, sent again, be answered differently? Not when it was refused as such."""
        return not self.needs_fixing and self is not ErrorKind.REFUSED


def backoff(
    attempt: int,
    kind: ErrorKind = ErrorKind.TRANSIENT,
    retry_after: float | None = None,
    *,
    cap: float,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait after the n-th failure in a row: the server's own wait when it gave one,
    else 2 s, 4 s, 8 s … up to `cap`, each drawn in [50%, 100%] so that retries do not stampede."""
    if retry_after is not None:
        return bound_delay(retry_after)  # a peer's wait, bounded where it enters: never hours, never negative
    if kind is ErrorKind.AUTH:
        return AUTH_WAIT
    delay = min(cap, BACKOFF_BASE * 2.0 ** max(0, attempt - 1))
    return delay * (rng.uniform(0.5, 1.0) if rng is not None else random.uniform(0.5, 1.0))
