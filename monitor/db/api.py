"""What the layers above ask of the database: the operations, the shapes they trade, the errors they raise.

`monitor.db.store.Store` is the SQLite implementation. A second engine (PostgreSQL, when a region outgrows one
server) implements `Database` with its own `open`; nothing engine-specific (PRAGMA, schema version, the
connection's thread) crosses this interface. The modules inside `monitor.db` run their SQL through the
implementation's `read`/`write`, which are not part of it: each engine brings its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from monitor.core.incidents import Incident, IncidentDetail, IncidentStatus, IncidentSummary, Suggestion
from monitor.core.models import ActionKind, ActionRow, MatchResult, Mention, MentionRow, Spend, Status
from monitor.db.faults import StoreError, StoreGone

if TYPE_CHECKING:
    from monitor.db.incidents import IncidentPlan
    from monitor.db.outbox import OutboxItem

# A source's state as the desk shows it: (source, state, detail, until_at, last_ok_at).
SourceState = tuple[str, str, str, int | None, int | None]


class NotFound(StoreError):
    pass


class Conflict(StoreError):
    """The mention changed under the operator (another operator acted first)."""


# A pane's row: a mention on its own, or one row for an incident with reports in that pane.
PaneEntry = MentionRow | IncidentSummary


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
    notifies: bool  # whether wait_change hears other processes' commits (or only times out)

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

    async def refresh_digests(self) -> int:
        """Rebuild the statistics' per-day digests that writes made dirty; how many days were."""
        ...

    # -- reads ------------------------------------------------------------------------------
    async def max_rev(self) -> int: ...

    async def wait_change(self, after: int, within: float) -> int:
        """Until a commit raises the rev past `after`, or `within` seconds; returns the rev then. PostgreSQL
        is notified of every commit; SQLite cannot be, and only waits (its desks find commits by polling)."""
        ...

    async def export_mentions(self, ids: Sequence[int]) -> list[tuple[object, ...]]:
        """These mentions as `monitor export` stores them (monitor.db.export.MENTION_COLUMNS), in id order."""
        ...

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

    # -- incidents (monitor.db.incidents; the plans that act on them are in monitor.engine.incidents) ----
    async def create_incident(
        self, mention_id: int, operator: str, title: str = "", *, expect_incident: int | None = None
    ) -> int:
        """A new incident whose first report is this mention (title drafted from it when ""); returns its id.

        The mention leaves the incident it was in: `expect_incident` must name it (None: it was in none),
        else Conflict (someone linked it meanwhile). One transaction, the link logged as an action.
        """
        ...

    async def create_incident_for(self, source: str, remote_id: str, operator: str, title: str) -> int | None:
        """An incident opened from a stored mention known by its source's id (the demo's own incidents);
        None if there is no such mention or it is already in one."""
        ...

    async def link(self, mention_id: int, incident_id: int, operator: str, *, expect_incident: int | None) -> int:
        """Link (or move, when `expect_incident` names its current incident) a mention; returns the action id.

        Conflict when the mention's incident is not `expect_incident` (another operator linked it first) or
        the incident is closed; NotFound when either is gone. Linking to its own incident is a no-op (0).
        """
        ...

    async def unlink(self, mention_id: int, operator: str, *, expect_incident: int) -> int:
        """Take a mention out of its incident (Conflict unless it is in `expect_incident`); the action id.

        Undone by `act(mention_id, REOPEN)` like any action: the latest link or unlink is reversed.
        """
        ...

    async def accept_suggestion(self, mention_id: int, operator: str) -> int:
        """Link the mention to its suggested incident; returns the incident id.

        Conflict when it has no suggestion any more, is already in an incident, or the incident closed.
        """
        ...

    async def rank_incidents(self, mention_id: int, limit: int = 20) -> list[Suggestion]:
        """The open incidents, most alike this mention first (every open one, score 0 when unalike)."""
        ...

    async def incident(self, incident_id: int) -> Incident: ...

    async def open_incidents(self, limit: int = 500) -> list[IncidentSummary]:
        """Open and escalated incidents with their counts, the most urgent first."""
        ...

    async def incident_detail(self, incident_id: int) -> IncidentDetail:
        """Reports, history, deliveries and broadcast progress (sent / pending / failed), read at one moment."""
        ...

    async def rename_incident(self, incident_id: int, title: str, operator: str, *, expect_rev: int) -> None:
        """Set the title (Conflict if the incident changed since it was read at `expect_rev`), logged in its
        history; ValueError when empty."""
        ...

    async def incidents_rev(self) -> int:
        """The latest incident revision: it moves with every change of an incident or of its reports, whoever
        made it (a desk reads its incident rows again when it moved)."""
        ...

    async def note_incident(self, incident_id: int, text: str, operator: str) -> int:
        """An internal note on the incident as a whole, in its history; the action id (ValueError when empty)."""
        ...

    async def set_incident_status(
        self, incident_id: int, status: IncidentStatus, operator: str, *, service: str | None = None
    ) -> None:
        """The incident's own status (its reports' statuses change through their actions)."""
        ...

    async def pane_entries(self, status: Status, limit: int, after: MentionRow | None = None) -> list[PaneEntry]:
        """A pane grouped by incident: unlinked mentions, and one IncidentSummary per incident with
        reports in `status` (counting only those), in the pane's order (an incident sorts by its lead)."""
        ...

    async def incident_reports(self, incident_id: int, status: Status | None = None) -> list[MentionRow]:
        """The reports of an incident (those in `status` only, if given), oldest first: the expanded row."""
        ...

    async def act_on_incident(
        self, incident_id: int, operator: str, plan: IncidentPlan, label: str, *, expect_rev: int | None = None
    ) -> list[int]:
        """Every report's action and the outbox items `plan` says, in one transaction (engine.incidents);
        Conflict when the incident changed since `expect_rev` or is closed."""
        ...
