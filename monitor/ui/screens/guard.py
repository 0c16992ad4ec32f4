"""The one guard for database and network calls made by the UI outside a worker.

A locked, read-only, full or deleted database (or a network error) must never end the desk: the failure
goes to the app's one handler (`MonitorApp.failed`), which shows it and keeps it on screen until the
next refresh succeeds. Workers report to the same handler through `on_worker_state_changed`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")


class Failable(Protocol):
    def failed(self, what: str, exc: BaseException, loud: bool = True) -> None: ...


def guarded(
    what: str, loud: bool = True
) -> Callable[[Callable[Concatenate[Any, P], Awaitable[T]]], Callable[Concatenate[Any, P], Awaitable[T | None]]]:
    """Decorate a screen's coroutine method: any exception becomes the app's notice, the call returns None.

    `loud=False` for timers: they notify once when a fault starts, not on every tick.
    """

    def decorate(fn: Callable[Concatenate[Any, P], Awaitable[T]]) -> Callable[Concatenate[Any, P], Awaitable[T | None]]:
        @functools.wraps(fn)
        async def run(self: Any, *args: P.args, **kwargs: P.kwargs) -> T | None:
            try:
                return await fn(self, *args, **kwargs)
            except Exception as exc:
                app: Failable = self.app
                app.failed(what, exc, loud)
                return None

        return run

    return decorate
