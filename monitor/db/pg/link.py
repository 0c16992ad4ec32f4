"""One connection to the server that comes back by itself: after a restart, a failover, a dropped network.

A call finding the connection closed or broken opens a new one (libpq tries each host of the URL and keeps
the primary). While the server stays unreachable, new attempts are spaced out (bounded backoff): the calls
in between fail at once with the last error, instead of each waiting for a connect that cannot succeed.
"""

from __future__ import annotations

import time

from monitor.db.faults import StoreError
from monitor.db.pg.connect import connect
from monitor.db.pg.mentions import Conn

FIRST_RETRY_S = 0.25
MAX_RETRY_S = 4.0


class Link:
    def __init__(self, url: str, conn: Conn | None = None) -> None:
        self.url = url
        self.conn = conn
        self._delay = 0.0
        self._retry_at = 0.0
        self._last: StoreError | None = None
        self.clock = time.monotonic  # tests move it instead of waiting

    @property
    def usable(self) -> bool:
        return self.conn is not None and not self.conn.closed and not self.conn.broken

    async def get(self) -> Conn:
        """The open connection, or a new one; a StoreError (StoreUnreachable, mostly) when none can be had."""
        if self.conn is not None and self.usable:
            return self.conn
        await self.drop()
        if self._last is not None and self.clock() < self._retry_at:
            raise type(self._last)(str(self._last))  # the same one-line state until the next attempt is due
        try:
            self.conn = await connect(self.url)
        except StoreError as exc:
            self._delay = min(max(self._delay * 2, FIRST_RETRY_S), MAX_RETRY_S)
            self._retry_at = self.clock() + self._delay
            self._last = exc
            raise
        self._delay, self._last = 0.0, None
        return self.conn

    async def drop(self) -> None:
        """Forget the connection (a broken one is closed quietly: there is nobody left to tell)."""
        conn, self.conn = self.conn, None
        if conn is not None and not conn.closed:
            try:
                await conn.close()
            except Exception:  # noqa: BLE001 - closing a dead connection: nothing to report
                pass

    async def close(self) -> None:
        await self.drop()
