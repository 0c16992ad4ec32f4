"""The normalised shapes that flow from sources to the store and the UI."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Any


class Status(StrEnum):
    NEW = "new"
    ESCALATED = "escalated"
    DONE = "done"
    DISMISSED = "dismissed"


class SourceState(StrEnum):
    """What the sources bar shows of a source (and the database keeps for other processes)."""

    LIVE = "live"  # streaming
    POLLING = "polling"  # the last poll succeeded
    BACKOFF = "backoff"  # failed, retrying after a delay
    FAILING = "failing"  # cannot work until fixed (credentials, configuration), or crashed
    IDLE = "idle"  # not started yet


# The statuses still waiting for the desk (their panes sort by urgency, the others by when they closed).
OPEN_STATUSES = (Status.NEW, Status.ESCALATED)


class ActionKind(StrEnum):
    REPLY = "reply"
    ESCALATE = "escalate"
    DISMISS = "dismiss"
    RESOLVE = "resolve"
    NOTE = "note"
    REOPEN = "reopen"
    LINK = "link"  # the mention joins an incident (payload: incident, from: the one it left, if any)
    UNLINK = "unlink"  # the mention leaves its incident (payload: incident)
    ACKNOWLEDGE = "acknowledge"  # an incident's templated "we know" reply: answered, still open


# Actions that stop the first-response clock (a public answer, a hand-off, or a decision).
RESPONSE_KINDS = frozenset({ActionKind.REPLY, ActionKind.ESCALATE, ActionKind.DISMISS, ActionKind.ACKNOWLEDGE})

# Actions that change which incident a mention belongs to: undone by `u` like a status change.
LINK_KINDS = frozenset({ActionKind.LINK, ActionKind.UNLINK})

# The status each action leaves the mention in; None leaves it as it was.
STATUS_AFTER: dict[ActionKind, Status | None] = {
    ActionKind.REPLY: Status.DONE,
    ActionKind.ESCALATE: Status.ESCALATED,
    ActionKind.DISMISS: Status.DISMISSED,
    ActionKind.RESOLVE: Status.DONE,
    ActionKind.NOTE: None,
    ActionKind.REOPEN: None,  # computed: the status before the action it undoes
    ActionKind.LINK: None,
    ActionKind.UNLINK: None,
    ActionKind.ACKNOWLEDGE: None,
}

# Between the matched terms of a mention where they are stored as one text (the database, statistics, exports).
TERM_SEP = "\x1f"


class Priority(IntEnum):
    URGENT = 0
    HIGH = 1
    NORMAL = 2
    LOW = 3

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(slots=True)
class Mention:
    """A post as a source saw it, already sanitised. Knows nothing of matching or storage."""

    source: str
    remote_id: str
    network: str
    author: str
    text: str
    published_at: datetime
    author_name: str = ""
    url: str = ""
    lang: str | None = None
    reply_to: str | None = None
    thread_id: str | None = None
    tags: tuple[str, ...] = ()
    raw: dict[str, Any] | None = None
    to_us: bool = False  # a mention of, reply or quote to the city's own account: kept whatever the terms


@dataclass(frozen=True, slots=True)
class Spend:
    """What a paid network (X) cost in one UTC month ('YYYY-MM'): reads by resources returned, writes by requests."""

    month: str
    reads_usd: float = 0.0
    writes_usd: float = 0.0
    writes: int = 0
    source: str = ""

    @property
    def total(self) -> float:
        return self.reads_usd + self.writes_usd


@dataclass(slots=True)
class Batch:
    """What one poll of a source produced, and the cursor to store with it in one transaction."""

    mentions: list[Mention] = field(default_factory=list)
    cursor: str | None = None
    edits: list[Mention] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    skipped: int = 0  # malformed items logged and dropped by the source
    # Deletes the source could not map to a remote id (Mastodon sends local ids): the store may know them.
    local_deletes: list[str] = field(default_factory=list)
    spend: Spend | None = None  # what this poll cost, stored in the same transaction as its mentions


@dataclass(frozen=True, slots=True)
class MatchResult:
    terms: tuple[str, ...]
    priority: Priority


@dataclass(frozen=True, slots=True)
class MentionRow:
    """A stored mention as the UI and stats see it (times are epoch milliseconds, UTC)."""

    id: int
    source: str
    network: str
    remote_id: str
    author: str
    author_name: str
    text: str
    url: str
    lang: str | None
    thread_id: str | None
    reply_to: str | None
    terms: tuple[str, ...]
    priority: Priority
    status: Status
    published_at: int
    first_seen_at: int
    status_at: int
    first_response_at: int | None
    edited_at: int | None
    deleted_at: int | None
    rev: int
    to_us: bool = False
    incident_id: int | None = None  # the incident it belongs to (at most one)
    suggested_incident: int | None = None  # computed at ingest, once: the likely incident, not a link
    suggestion_score: float = 0.0

    @property
    def term(self) -> str:
        return self.terms[0] if self.terms else ""

    @property
    def first_line(self) -> str:
        return self.text.strip().split("\n", 1)[0]


@dataclass(frozen=True, slots=True)
class ActionRow:
    id: int
    mention_id: int
    kind: ActionKind
    operator: str
    at: int
    payload: dict[str, Any]
