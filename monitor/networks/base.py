"""The one small interface every source implements. Sources know nothing of SQLite or the UI."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol, runtime_checkable

from monitor import __version__
from monitor.core.models import Batch
from monitor.core.yamlread import Node


class SourceError(Exception):
    """A poll failed. `kind` tells the collector how to back off.

    transient: network faults and 5xx (exponential backoff); rate: 429 (wait retry_after);
    auth: 401/403 ("credentials rejected", slow backoff); config: cannot work until fixed.
    """

    def __init__(self, message: str, kind: str = "transient", retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.retry_after = retry_after


@runtime_checkable
class Source(Protocol):
    name: str

    async def poll(self, cursor: str | None) -> Batch:
        """Fetch what is new after `cursor`. Raise SourceError on failure; never half-apply."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class StreamingSource(Source, Protocol):
    def stream(self, cursor: str | None) -> AsyncIterator[Batch]:
        """Yield batches as they arrive (backfilling from `cursor` first); raise SourceError when cut."""
        ...


@dataclass(frozen=True)
class SourceContext:
    """What a source may need from the outside world, passed in rather than reached for."""

    user_agent: str = f"monitor/{__version__} (city duty desk)"
    replay_all: bool = False  # the demo replays its whole file at once (collect --once)
    speed: float = 1.0
    state_dir: Any = None  # a folder for session files (e.g. Bluesky refresh tokens)
    http_factory: Callable[..., Any] | None = None  # tests inject transports


@dataclass(frozen=True)
class SourceType:
    """How a `type:` in watchlist.yaml becomes a Source."""

    option_keys: tuple[str, ...]
    parse_options: Callable[[dict[str, Node], Node], Any]
    build: Callable[[str, Any, SourceContext], Source]
    default_interval: timedelta = timedelta(seconds=60)
