"""A hang-up ends the app within a few seconds, whatever it is doing.

When the terminal goes (an SSH link drops, tmux is killed) the kernel sends SIGHUP, and writes to the tty
fail. Textual's output thread dies on its first failed write; its queue (30 writes) then fills, and the
next write from the event loop blocks for ever: measured after a storm, the loop stuck in
`WriterThread.stop` -> `Queue.put` (LinuxDriver.close), the app alive minutes later at 30% CPU.

So SIGHUP gets a plain Python handler (it runs in the main thread even while the loop is blocked on that
queue) which asks the app to exit and starts a watchdog thread. The watchdog throws away output the dead
terminal cannot take, so a blocked loop moves on and the app leaves the normal way (lease and claims
released, store closed). If the process is still alive after GRACE_S, the watchdog releases this app's
claims, session and leases itself (`release_on_hangup`: its own short connection), and ends the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import signal
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

from monitor.db.presence import release_on_hangup

log = logging.getLogger(__name__)

GRACE_S = 3.0
RELEASE_TIMEOUT_S = 1.0
EXIT_HANGUP = 128 + signal.SIGHUP


class HangUp:
    def __init__(self, app: Any, db_path: str | Path, holder: str) -> None:
        self.app = app
        self.db_path = db_path
        self.holder = holder
        self._fired = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous: Any = None

    def install(self) -> None:
        self._loop = asyncio.get_running_loop()
        with contextlib.suppress(ValueError):  # not the main thread (an embedded app): no signals there
            self._previous = signal.signal(signal.SIGHUP, self._on_signal)

    def uninstall(self) -> None:
        """The app is gone: a later hang-up is no longer ours to handle (tests run many apps in one process)."""
        if self._previous is not None and not self._fired:
            with contextlib.suppress(ValueError):
                signal.signal(signal.SIGHUP, self._previous)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._fired:
            return
        self._fired = True
        threading.Thread(target=self._watchdog, name="hang-up", daemon=True).start()
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is already closed: the watchdog ends it
                self._loop.call_soon_threadsafe(lambda: self.app.exit(return_code=EXIT_HANGUP))

    def _watchdog(self) -> None:
        deadline = time.monotonic() + GRACE_S
        while time.monotonic() < deadline:
            self._discard_output()
            time.sleep(0.05)
        log.warning("still running %.0f s after the hang-up: releasing claims and exiting", GRACE_S)
        try:
            self._release()
        finally:
            for handler in logging.getLogger().handlers:
                with contextlib.suppress(Exception):
                    handler.flush()
            os._exit(EXIT_HANGUP)

    def _discard_output(self) -> None:
        """A dead output thread leaves its queue full and every writer blocked: empty it for them."""
        writer = getattr(getattr(self.app, "_driver", None), "_writer_thread", None)
        pending = getattr(writer, "_queue", None)
        if writer is None or writer.is_alive() or not isinstance(pending, queue.Queue):
            return
        with contextlib.suppress(queue.Empty):
            while True:
                pending.get_nowait()

    def _release(self) -> None:
        release_on_hangup(self.db_path, self.holder, RELEASE_TIMEOUT_S)
