"""The operator's pane filter: `/` then words, with optional source:, term:, prio:, by:, to:us and incident:
fields (`incident:12` lists the reports of one incident: how the desk expands an incident's row)."""

from __future__ import annotations

from dataclasses import dataclass

from monitor.core.matching import fold
from monitor.core.models import MentionRow, Priority

_FIELDS = {"source": "source", "src": "source", "term": "term", "prio": "priority", "priority": "priority", "to": "to",
           "incident": "incident"}  # fmt: skip


@dataclass(frozen=True)
class PaneFilter:
    text: str = ""
    source: str = ""
    term: str = ""
    priority: Priority | None = None
    to_us: bool = False  # to:us: only what is addressed to the city's own accounts
    incident: int | None = None  # incident:12: only its reports

    @classmethod
    def parse(cls, query: str) -> PaneFilter:
        """'prio:urgent source:demo passage piéton' -> fields plus free text (accent-insensitive)."""
        words, fields = [], {}
        for word in query.split():
            name, sep, value = word.partition(":")
            if sep and name.lower() in _FIELDS and value:
                fields[_FIELDS[name.lower()]] = value
            else:
                words.append(word)
        priority = None
        if "priority" in fields:
            value = fields["priority"].lower()
            matches = [p for p in Priority if p.label.startswith(value)]
            if not matches:
                raise ValueError(f"unknown priority {fields['priority']!r}: urgent, high, normal or low")
            priority = matches[0]
        if "to" in fields and fields["to"].lower() != "us":
            raise ValueError(f"unknown to:{fields['to']}: only to:us")
        incident = None
        if "incident" in fields:
            if not (fields["incident"].isascii() and fields["incident"].isdigit()):
                raise ValueError(f"unknown incident:{fields['incident']}: an incident's number, such as incident:12")
            incident = int(fields["incident"])
        return cls(" ".join(words), fields.get("source", ""), fields.get("term", ""), priority, "to" in fields,
                   incident)  # fmt: skip

    @property
    def active(self) -> bool:
        return bool(self.text or self.source or self.term or self.priority is not None or self.to_us
                    or self.incident is not None)  # fmt: skip

    def matches(self, row: MentionRow) -> bool:
        if self.priority is not None and row.priority != self.priority:
            return False
        if self.to_us and not row.to_us:
            return False
        if self.incident is not None and row.incident_id != self.incident:
            return False
        if self.source and not (fold(self.source) in fold(row.source) or fold(self.source) in row.network):
            return False  # by source name or by network as shown (mastodon, bluesky, feed)
        if self.term and not any(fold(self.term) in fold(t) for t in row.terms):
            return False
        if self.text:
            hay = fold(f"{row.text} {row.author} {row.author_name}")
            return all(w in hay for w in fold(self.text).split())
        return True

    def describe(self) -> str:
        parts = [f"“{self.text}”"] if self.text else []
        parts += [f"source:{self.source}"] if self.source else []
        parts += [f"term:{self.term}"] if self.term else []
        parts += [f"prio:{self.priority.label}"] if self.priority is not None else []
        parts += ["to:us"] if self.to_us else []
        parts += [f"incident:{self.incident}"] if self.incident is not None else []
        return " ".join(parts)
