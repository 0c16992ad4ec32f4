"""A key for each attempt at an operator's write, so that a retry after a lost COMMIT is not made twice.

When the connection to a server drops during a COMMIT, the client cannot know whether the transaction
committed. The app retries an accepted action until it commits (`MonitorApp._save`); each attempt runs
under the same key, numbered per write, and PostgreSQL records the key with the write's result in the
same transaction (monitor.db.pg.store): a retry finds it and returns that result instead of acting again.
SQLite commits locally, never with an unknown outcome: it ignores the key.
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field


@dataclass
class Attempt:
    """One attempt at an operator's write: its writes are numbered in order, the same way on every retry."""

    key: str = field(default_factory=lambda: uuid.uuid4().hex)
    count: int = 0

    def next_key(self) -> str:
        self.count += 1
        return f"{self.key}:{self.count}"


# Set around one attempt (a task copies it when it is created); None: a write that is not retried this way.
ATTEMPT: ContextVar[Attempt | None] = ContextVar("monitor_write_attempt", default=None)
