"""What the layers above ask of the database: the operations, the shapes they trade, the errors they raise.

`monitor.db.store.Store` is the SQLite implementation. A second engine (PostgreSQL, when a region outgrows one
server) implements `Database` with its own `open`; nothing engine-specific (PRAGMA, schema version, the
connection's thread) crosses this interface. The modules inside `monitor.db` run their SQL through the
implementation's `read`/`write`, which are not part of it: each engine brings its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from monitor.core.models import ActionKind, ActionRow, MatchResult, Mention, MentionRow, Spend, Status
from monitor.db.faults import StoreError, StoreGone

if TYPE_CHECKING:
    from monitor.db.outbox import OutboxItem

# A source's state as the desk shows it: (source, state, detail, until_at, last_ok_at).
SourceState = tuple[str, str, str, int | None, int | None]


class NotFound(StoreError):
    pass


class Conflict(StoreError):
    """The mention changed under the operator (another operator acted first)."""


class LeaseLost(Exception):
    """This process no longer holds the collector lease: another one took over."""


@dataclass(frozen=True, slots=True)
class Fence:
    """A write that only the holder of `lease` may make: checked inside the write's transaction."""

    lease: str
    holder: str


@dataclass(frozen=True, slots=True)
class MentionDetail:
    """Everything the detail panel shows of one mention, read at one moment."""

    row: MentionRow
    actions: list[ActionRow]
    thread: list[MentionRow]  # the rest of the conversation, oldest first
    deliveries: list[OutboxItem]  # what its replies and escalations became
    related: list[tuple[float, MentionRow]]  # possibly the same incident, most alike first


@dataclass
class Handover:
    """What happened since an operator last left (times are epoch milliseconds, UTC)."""

    since: int
    new: int = 0
    still_open: list[MentionRow] = field(default_factory=list)
    escalated: int = 0
    resolved: int = 0
    breaches: list[MentionRow] = field(default_factory=list)
    by_operator: dict[str, dict[str, int]] = field(default_factory=dict)


class Database(Protocol):
    """The store of mentions, actions and source states, as the engine and the UI use it."""

    path: Path
    gone: StoreGone | None  # set once the file was deleted or replaced under us: nothing more is written
    on_commit: Callable[[str], None] | None  # called with a label the moment a write is durable (benchmarks)

    async def close(self) -> None: ...

    def check_file(self) -> None:
        """Raise StoreGone if the database this store opened is no longer there."""
        ...

    # -- ingest -----------------------------------------------------------------------------
    async def ingest(
        self,
        source: str,
        matched: Iterable[tuple[Mention, MatchResult]],
        cursor: str | None,
        edits: Iterable[tuple[Mention, MatchResult | None]] = (),
        deletes: Iterable[str] = (),
        seen_at: int | None = None,
        fence: Fence | None = None,
        spend: Spend | None = None,
    ) -> int: ...

    async def spend(self, month: str | None = None) -> list[Spend]: ...

    async def add_spend(self, source: str, spend: Spend) -> None: ...

    async def mastodon_uris(self, source: str, local_ids: Iterable[str]) -> list[str]: ...

    async def cursor(self, source: str) -> str | None: ...

    async def set_source_state(
        self, source: str, state: str, detail: str = "", until_at: int | None = None, ok: bool = False
    ) -> None: ...

    async def source_states(self) -> list[SourceState]: ...

    # -- actions ----------------------------------------------------------------------------
    async def act(
        self,
        mention_id: int,
        kind: ActionKind,
        operator: str,
        payload: Mapping[str, object] | None = None,
        *,
        expect_status: Status | None = None,
    ) -> int: ...

    # -- reads ------------------------------------------------------------------------------
    async def max_rev(self) -> int: ...

    async def changes_since(self, rev: int, limit: int = 2000) -> list[MentionRow]: ...

    async def pane(
        self,
        status: Status,
        limit: int,
        after: MentionRow | None = None,
        keep: Callable[[MentionRow], bool] | None = None,
    ) -> list[MentionRow]: ...

    async def counts(self) -> dict[Status, int]: ...

    async def mention(self, mention_id: int) -> MentionRow: ...

    async def actions(self, mention_id: int) -> list[ActionRow]: ...

    async def thread(self, row: MentionRow, limit: int = 20) -> list[MentionRow]: ...

    # -- the desk's views -------------------------------------------------------------------
    async def detail(self, mention_id: int) -> MentionDetail:
        """The mention as stored now, its actions, thread, deliveries and likely duplicates (NotFound if gone)."""
        ...

    async def handover(self, since: int, now: int, target_ms: int, limit: int = 20) -> Handover:
        """The shift's summary since `since`; a breach waited longer than `target_ms` for a first response."""
        ...
