"""Panes grouped by incident: one row per incident, the row of its lead report standing for it.

The store reads a pane's page as entries (a mention, or an incident's summary); the pane's window keeps
mention rows in the pane's order, and an incident sorts by its lead, so the window holds the lead's row and
the pane draws the incident over it (`MentionTable.groups`). An incident of 1,000 reports is one row of the
200 the window holds. A filter shows mentions as they are (ungrouped): `incident:12` lists one incident's.
"""

from __future__ import annotations

from collections.abc import Iterable

from monitor.core.incidents import IncidentSummary
from monitor.core.models import MentionRow, Status
from monitor.db.api import Database, PaneEntry

Groups = dict[int, IncidentSummary]  # lead mention id -> its incident's summary


def split(entries: Iterable[PaneEntry]) -> tuple[list[MentionRow], Groups]:
    """Entries as the window's rows (an incident by its lead's row) and the incidents they stand for."""
    rows: list[MentionRow] = []
    groups: Groups = {}
    for entry in entries:
        if isinstance(entry, IncidentSummary):
            rows.append(entry.lead)
            groups[entry.lead.id] = entry
        else:
            rows.append(entry)
    return rows, groups


async def read_page(
    store: Database, status: Status, limit: int, after: MentionRow | None = None
) -> tuple[list[MentionRow], Groups]:
    return split(await store.pane_entries(status, limit, after))


def touched(changes: Iterable[MentionRow], status: Status, held: dict[int, MentionRow], groups: Groups) -> bool:
    """Whether these changes move an incident's counts in this pane (its page is then read again)."""
    return any(
        (row.incident_id is not None or row.id in groups) and (row.status is status or row.id in held)
        for row in changes
    )


def unknown_suggestions(rows: Iterable[MentionRow], titles: dict[int, str]) -> bool:
    """A row suggests an incident whose title the desk has not read yet."""
    return any(r.suggested_incident is not None and r.suggested_incident not in titles for r in rows)
