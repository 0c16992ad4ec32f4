"""Incidents: many citizens report one problem. The shapes, and how alike a report is to an incident.

An incident groups mentions (its reports); a mention belongs to at most one. Acting on an incident acts
on every report, each logged as its own action (engine.incidents). A new mention is *suggested* to the
most alike open incident at ingest, once, never silently linked: the operator accepts or not.

Likeness is computed here, from what ingest already knows (the matcher's terms, the text, the time),
so the database can score a mention without the engine.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from monitor.core.matching import fold
from monitor.core.models import MentionRow, Priority
from monitor.core.outbox import OutboxItem, OutboxState
from monitor.core.sanitize import clean_line


class IncidentStatus(StrEnum):
    """open -> escalated -> resolved, or dismissed; resolved and dismissed incidents take no new reports."""

    OPEN = "open"
    ESCALATED = "escalated"
    RESOLVED = "resolved"
    DISMISSED = "dismissed"


OPEN_INCIDENT_STATUSES = (IncidentStatus.OPEN, IncidentStatus.ESCALATED)


TITLE_MAX = 80  # an incident's title, in cells: it fits a pane row and the picker at 80 columns


def clean_title(text: str) -> str:
    """A title as stored: one safe line (an operator may paste anything), at most TITLE_MAX characters."""
    line = clean_line(text)
    return line if len(line) <= TITLE_MAX else line[: TITLE_MAX - 1].rstrip() + "…"


def draft_title(row: MentionRow) -> str:
    """The title offered for a new incident: its first report's first line."""
    return clean_title(row.first_line)


def incident_reference(incident_id: int) -> str:
    """The one reference every report of an incident shares (with the service, and in replies)."""
    return f"I-{incident_id:05d}"


@dataclass(frozen=True, slots=True)
class Incident:
    """An incident as stored (times are epoch milliseconds, UTC)."""

    id: int
    title: str
    service: str  # the service it was escalated to, "" before
    reference: str  # incident_reference(id), shared by every report's escalation
    status: IncidentStatus
    created_at: int
    updated_at: int
    created_by: str
    rev: int  # bumped by every change of the incident or of its list of reports

    @property
    def open(self) -> bool:
        return self.status in OPEN_INCIDENT_STATUSES


@dataclass(frozen=True, slots=True)
class IncidentSummary:
    """One row of a pane (or of the picker) for an incident: its counts, read at one moment."""

    incident: Incident
    reports: int  # reports linked now
    networks: tuple[str, ...]  # sorted, distinct
    oldest_seen_at: int  # the first report's first_seen_at (its age on the desk)
    priority: Priority  # the most urgent report's
    lead: MentionRow  # the most urgent, then oldest, report: where the row sorts in its pane
    unanswered: int = 0  # reports with no first response yet


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A likely incident for a mention, with why: shown in the picker and as the row's mark."""

    incident_id: int
    title: str
    score: float  # 0..1; only suggestions >= SUGGEST_AT are stored at ingest
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Progress:
    """Where an incident's deliveries stand (a broadcast to 200 reporters takes minutes at Mastodon's pace)."""

    sent: int = 0
    pending: int = 0  # pending or sending
    failed: int = 0
    cancelled: int = 0

    @property
    def total(self) -> int:
        return self.sent + self.pending + self.failed + self.cancelled

    @classmethod
    def of(cls, items: Iterable[OutboxItem]) -> Progress:
        n = dict.fromkeys(OutboxState, 0)
        for item in items:
            n[item.state] += 1
        return cls(n[OutboxState.SENT], n[OutboxState.PENDING] + n[OutboxState.SENDING], n[OutboxState.FAILED],
                   n[OutboxState.CANCELLED])  # fmt: skip


@dataclass(frozen=True, slots=True)
class IncidentEvent:
    """One line of an incident's history: an action on one of its reports, or on the incident itself."""

    action_id: int
    mention_id: int
    kind: str  # an ActionKind value
    operator: str
    at: int
    payload: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class IncidentDetail:
    """Everything the incident's detail shows, read at one moment."""

    incident: Incident
    reports: list[MentionRow]  # oldest first
    history: list[IncidentEvent]  # oldest first: links, unlinks, and every action on its reports
    deliveries: list[OutboxItem]  # the escalation and every reply/follow-up sent for it
    progress: Progress
    answered: frozenset[int] = frozenset()  # reports already sent (or queued) a reply of ours

    @property
    def service_draft(self) -> str | None:
        """The follow-up drafted when the service closed its request (to review, then resolve), if it did."""
        for event in reversed(self.history):
            if event.kind == "note" and event.payload.get("service_closed"):
                return str(event.payload.get("draft", ""))
        return None


# -- likeness --------------------------------------------------------------------------------------

SUGGEST_AT = 0.35  # a score below this is not stored as a suggestion (nor marked on the row)
TIME_SCALE_MS = 6 * 3600_000  # reports this far apart lose half the time bonus
WINDOW_MS = 72 * 3600_000  # an incident whose last report is older than this is not suggested
MAX_WORDS = 120  # an incident's profile keeps its reports' most frequent words
_WORD = re.compile(r"[a-z0-9]{4,}")
_NOISE = re.compile(r"@\S+|https?://\S+|#")  # handles and links say who and where it was posted, not what
_PLACE = re.compile(
    r"\b(?:rue|bd|boulevard|av|avenue|place|pl|pont|quai|allee|allees|chemin|impasse|cours|route|rond point|"
    r"station|arret|square|parc)\s+(?:(?:de|du|des|la|le|l|d)\s+)?([a-z0-9][a-z0-9-]{2,})"
)
_STOP = frozenset(
    "avec dans pour plus sont cette mais tout tous elle nous vous leur sans sous alors encore depuis "
    "comme bien fait faire quand merci bonjour toulouse metropole this that with from have there what "
    "about just your they been were will would http https www".split()
)


@dataclass(frozen=True, slots=True)
class Profile:
    """What distinguishes a report (or an incident, the union of its reports): compared at ingest."""

    terms: frozenset[str]
    words: frozenset[str]
    places: frozenset[str]
    at: int  # epoch ms: a report's first_seen_at; an incident's latest report's


def profile(text: str, terms: Iterable[str], at: int) -> Profile:
    """The terms, distinctive words and places of a report."""
    folded = _NOISE.sub(" ", fold(text))
    words = frozenset(w for w in _WORD.findall(folded) if w not in _STOP and not w.isdigit())
    places = frozenset(m.group(1) for m in _PLACE.finditer(folded))
    return Profile(frozenset(terms), words, places, at)


def likeness(report: Profile, incident: Profile) -> tuple[float, tuple[str, ...]]:
    """How alike a report is to an incident (0..1), and the reasons an operator reads.

    Words weigh most (Jaccard against the report's own words, so a big incident is not penalised for
    having many); a shared place and a shared term add; time apart takes away.
    """
    words = sorted(report.words & incident.words)
    places = sorted(report.places & incident.places)
    terms = sorted(report.terms & incident.terms)
    word_part = min(1.0, len(words) / max(4, len(report.words))) if len(words) >= 2 else 0.0
    raw = 0.6 * word_part + (0.25 if places else 0.0) + (0.15 if terms else 0.0)
    apart = abs(report.at - incident.at)
    score = round(raw * (0.6 + 0.4 / (1 + apart / TIME_SCALE_MS)), 3)
    reasons = []
    if terms:
        reasons.append("term: " + ", ".join(terms))
    if words:
        reasons.append("words: " + ", ".join(words[:6]))
    if places:
        reasons.append("place: " + ", ".join(places))
    reasons.append(_apart(apart))
    return score, tuple(reasons)


def _apart(ms: int) -> str:
    minutes = ms // 60_000
    if minutes < 60:
        return f"{minutes} min apart"
    return f"{minutes // 60} h apart" if minutes < 48 * 60 else f"{minutes // 1440} days apart"


def profile_dump(p: Profile) -> str:
    return json.dumps({"terms": sorted(p.terms), "words": sorted(p.words), "places": sorted(p.places), "at": p.at})


def profile_load(text: str | None) -> Profile:
    try:
        d = json.loads(text or "{}")
        return Profile(frozenset(d.get("terms", ())), frozenset(d.get("words", ())), frozenset(d.get("places", ())),
                       int(d.get("at", 0)))  # fmt: skip
    except (ValueError, TypeError, AttributeError):
        return Profile(frozenset(), frozenset(), frozenset(), 0)


def union(profiles: Iterable[Profile], max_words: int = MAX_WORDS) -> Profile:
    """An incident's profile: its reports' terms and places, and their most frequent words (bounded, so a
    1,000-report incident is not like everything)."""
    counts: Counter[str] = Counter()
    terms: set[str] = set()
    places: set[str] = set()
    at = 0
    for p in profiles:
        counts.update(p.words)
        terms |= p.terms
        places |= p.places
        at = max(at, p.at)
    words = frozenset(w for w, _ in counts.most_common(max_words))
    return Profile(frozenset(terms), words, frozenset(places), at)
