"""Suggested incidents: each new mention is scored against the open incidents at ingest, once, in the
ingest's transaction; the best one above SUGGEST_AT is stored on the mention (never a link).

Stays fast with hundreds of open incidents: their profiles are read once per change of any incident (a
generation token, rewritten with each change, keys the cache), and a mention is only scored against the
incidents that share a distinctive word or place with it (an inverted index), not against all of them.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from monitor.core.incidents import (
    SUGGEST_AT,
    WINDOW_MS,
    Profile,
    Suggestion,
    likeness,
    profile,
    profile_dump,
    profile_load,
    union,
)
from monitor.core.models import TERM_SEP, MatchResult, Mention, MentionRow
from monitor.db.mentions import mention_sync

PROFILE_REPORTS = 300  # an incident's profile is made from its latest reports
SCORED = 5  # at ingest, how many of the incidents sharing most tokens with a report are scored


@dataclass
class _Index:
    gen: str
    incidents: dict[int, tuple[str, Profile]] = field(default_factory=dict)
    by_token: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    terms: set[str] = field(default_factory=set)  # every open incident's terms: a report sharing none is skipped


_CACHE: dict[int, _Index] = {}  # by id(connection): one store, one connection, one index


def _report_profile(text: str, terms: str, at: int) -> Profile:
    return profile(text, terms.split(TERM_SEP) if terms else (), at)


def refresh_profile_sync(c: sqlite3.Connection, incident_id: int) -> None:
    rows = c.execute(PROFILE_SQL.format(mark="?"), (incident_id, PROFILE_REPORTS)).fetchall()
    c.execute("UPDATE incidents SET profile = ? WHERE id = ?", (merged_profile(rows), incident_id))


PROFILE_SQL = "SELECT text, terms, first_seen_at FROM mentions WHERE incident_id = {mark} ORDER BY id DESC LIMIT {mark}"


def _index(c: sqlite3.Connection) -> _Index | None:
    """The open incidents' profiles, read again only when an incident changed since."""
    r = c.execute(GEN_SQL).fetchone()
    if r is None:
        return None
    return cached(c, r[0]) or keep(c, build_index(r[0], c.execute(OPEN_PROFILES_SQL)))


GEN_SQL = "SELECT gen FROM incidents ORDER BY rev DESC LIMIT 1"
OPEN_PROFILES_SQL = "SELECT id, title, profile FROM incidents WHERE status IN ('open', 'escalated')"


def cached(conn: object, gen: str) -> _Index | None:
    """The index this connection built at generation `gen` (GEN_SQL's), if it is still the current one.

    Either engine's: the gen is read first, so an index keyed on it never holds older profiles than its key."""
    index = _CACHE.get(id(conn))
    return index if index is not None and index.gen == gen else None


def keep(conn: object, index: _Index) -> _Index:
    if len(_CACHE) >= 16:  # connections come and go (tests, one-shot commands, reconnects): keep it bounded
        _CACHE.clear()
    _CACHE[id(conn)] = index
    return index


def build_index(gen: str, rows: Iterable[Sequence[Any]]) -> _Index:
    """The index of the open incidents' (id, title, profile) rows (either engine's)."""
    index = _Index(gen)
    for incident_id, title, text in rows:
        p = profile_load(text)
        index.incidents[incident_id] = (title, p)
        index.terms |= p.terms
        for token in p.words | p.places:
            index.by_token[token].add(incident_id)
    # A word many incidents share ("chaussee", "bloque") says little about which one: it does not make a
    # candidate (it still counts in the score of one that is).
    common = max(8, len(index.incidents) // 20)
    index.by_token = {token: ids for token, ids in index.by_token.items() if len(ids) <= common}
    return index


def _candidates(index: _Index, mine: Profile) -> list[int]:
    """The few incidents sharing the most distinctive tokens with the report (a place counts double): only
    those are scored. likeness needs two shared words, or a place, to reach SUGGEST_AT: fewer never is."""
    hits: dict[int, int] = {}
    for weight, tokens in ((1, mine.words), (2, mine.places)):
        for token in tokens:
            for incident_id in index.by_token.get(token, ()):
                hits[incident_id] = hits.get(incident_id, 0) + weight
    best = sorted((n, i) for i, n in hits.items() if n >= 2)[-SCORED:]
    return [i for _, i in best]


def _best(index: _Index, mine: Profile, limit: int, everyone: bool = False) -> list[Suggestion]:
    candidates = list(index.incidents) if everyone else _candidates(index, mine)
    out = []
    for incident_id in candidates:
        title, theirs = index.incidents[incident_id]
        if not everyone and abs(mine.at - theirs.at) > WINDOW_MS:
            continue
        score, reasons = likeness(mine, theirs)
        out.append(Suggestion(incident_id, title, score, reasons))
    out.sort(key=lambda s: (-s.score, -s.incident_id))
    return out[:limit]


def suggest_new_sync(c: sqlite3.Connection, after_rev: int, upto_rev: int) -> int:
    """Score the mentions inserted with revs in (after_rev, upto_rev]; returns how many got a suggestion."""
    index = _index(c)
    if index is None or not index.incidents:
        return 0
    found = suggestions(index, c.execute(NEW_REPORTS_SQL.format(mark="?"), (after_rev, upto_rev)).fetchall())
    c.executemany("UPDATE mentions SET suggested_incident = ?, suggestion_score = ? WHERE id = ?", found)
    return len(found)


NEW_REPORTS_SQL = (
    "SELECT id, text, terms, first_seen_at FROM mentions WHERE rev > {mark} AND rev <= {mark} AND incident_id IS NULL"
)


def suggestions(index: _Index, reports: Iterable[Sequence[Any]]) -> list[tuple[int, float, int]]:
    """(incident, score, mention) for the NEW_REPORTS_SQL rows alike an open incident enough to suggest it."""
    found = []
    for mention_id, text, terms, at in reports:
        if terms and not index.terms.intersection(terms.split(TERM_SEP)):
            continue  # no open incident shares a watch term with it: not even tokenised
        best = _best(index, _report_profile(text, terms, at), 1)
        if best and best[0].score >= SUGGEST_AT:
            found.append((best[0].incident_id, best[0].score, mention_id))
    return found


def score_batch(
    index: _Index | None, matched: Iterable[tuple[Mention, MatchResult]], seen: int
) -> dict[str, tuple[int, float]]:
    """remote id -> (incident, score) for a poll's mentions alike an open incident enough: the scores
    `suggestions` gives their rows once stored (first seen at `seen`), computed before the write takes its locks."""
    if index is None or not index.incidents:
        return {}
    rows = [(m.remote_id, m.text, TERM_SEP.join(r.terms), seen) for m, r in matched]
    return {str(key): (incident_id, score) for incident_id, score, key in suggestions(index, rows)}


def score_new_sync(
    c: sqlite3.Connection, matched: Iterable[tuple[Mention, MatchResult]], seen: int
) -> dict[str, tuple[int, float]]:
    """`score_batch` on the open incidents as they are now (SQLite's twin of pg.incidents.score_new)."""
    return score_batch(_index(c), matched, seen)


def rank(index: _Index | None, row: MentionRow, limit: int) -> list[Suggestion]:
    """Every open incident, the most alike `row` first, its own incident left out."""
    if index is None:
        return []
    mine = profile(row.text, row.terms, row.first_seen_at)
    return [s for s in _best(index, mine, limit + 1, everyone=True) if s.incident_id != row.incident_id][:limit]


def merged_profile(rows: Iterable[Sequence[Any]]) -> str:
    """An incident's profile (JSON text) from its latest reports' (text, terms, first_seen_at)."""
    return profile_dump(union(_report_profile(t, terms, at) for t, terms, at in rows))


def rank_sync(c: sqlite3.Connection, mention_id: int, limit: int = 20) -> list[Suggestion]:
    """Every open incident, the most alike the mention first (the picker's list)."""
    return rank(_index(c), mention_sync(c, mention_id), limit)
