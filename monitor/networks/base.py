"""The one small interface every source implements. Sources know nothing of SQLite or the UI."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol, runtime_checkable

from monitor import __version__
from monitor.core.config import Term
from monitor.core.models import Batch
from monitor.core.retry import ErrorKind
from monitor.core.yamlread import Node


class NetworkError(Exception):
    """A call to a network failed: a poll, a send, a session. `kind` (core.retry.ErrorKind) tells the
    collector and the delivery worker what to do next; most come from the one classifier, http.check."""

    def __init__(
        self, message: str, kind: ErrorKind | str = ErrorKind.TRANSIENT, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.kind = ErrorKind(kind)
        self.retry_after = retry_after


SourceError = NetworkError  # the name the sources raise it by


@runtime_checkable
class Source(Protocol):
    name: str

    async def poll(self, cursor: str | None) -> Batch:
        """Fetch what is new after `cursor`. Raise NetworkError on failure; never half-apply."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class StreamingSource(Source, Protocol):
    def stream(self, cursor: str | None) -> AsyncIterator[Batch]:
        """Yield batches as they arrive (backfilling from `cursor` first); raise NetworkError when cut."""
        ...


@runtime_checkable
class BudgetedSource(Source, Protocol):
    """A source that pays per call (X): the collector hands it the month's spend so far before each poll,
    and stores what the poll cost (Batch.spend) with its mentions."""

    def billing_month(self) -> str:
        """The month being paid for, 'YYYY-MM' (UTC)."""
        ...

    def restore_spend(self, month: str, usd: float) -> None: ...


@dataclass(frozen=True)
class SourceContext:
    """What a source may need from the outside world, passed in rather than reached for."""

    user_agent: str = f"monitor/{__version__} (city duty desk)"
    replay_all: bool = False  # the demo replays its whole file at once (collect --once)
    speed: float = 1.0
    state_dir: Any = None  # a folder for session files (e.g. Bluesky refresh tokens)
    http_factory: Callable[..., Any] | None = None  # tests inject transports
    terms: tuple[Term, ...] = ()  # the watchlist's terms, for networks that search by them (X)


@dataclass(frozen=True)
class SourceType:
    """How a `type:` in watchlist.yaml becomes a Source."""

    option_keys: tuple[str, ...]
    parse_options: Callable[[dict[str, Node], Node], Any]
    build: Callable[[str, Any, SourceContext], Source]
    default_interval: timedelta = timedelta(seconds=60)
