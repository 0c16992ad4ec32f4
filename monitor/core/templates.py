"""Reply templates and the length rules of each network."""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

import regex

from monitor.core.models import MentionRow

# What a reply may hold on each network: (limit, unit). Bluesky counts graphemes, Mastodon characters.
# X counts weighted characters (a link 23, CJK and emoji 2), by twitter-text's rules.
LIMITS: dict[str, tuple[int, str]] = {"mastodon": (500, "chars"), "bluesky": (300, "graphemes"), "x": (280, "weighted")}
_GRAPHEME = regex.compile(r"\X")
# What a template may name; `variables()` fills exactly these.
VARIABLES = ("author", "author_name", "city", "service", "ref")


class TemplateUse(StrEnum):
    REPLY = "reply"  # an answer to the citizen
    FOLLOWUP = "followup"  # what to tell them once the service fixed it
    ACKNOWLEDGE = "acknowledge"  # what every reporter of an incident hears: we know, a crew is on its way


@dataclass(frozen=True)
class Template:
    id: str
    name: str
    text: str
    lang: str | None = None
    use: TemplateUse = TemplateUse.REPLY


class _Keep(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


_EMPTY = "\x00"  # where an empty variable was: removed with one of the spaces around it
_HOLE = re.compile(r"(?m)^\x00[ \t]?|[ \t]?\x00")


def render(text: str, variables: Mapping[str, str]) -> str:
    """Fill {variables}; unknown ones stay visible rather than raising; an empty one leaves no double space."""
    filled = _Keep({name: value.strip() or _EMPTY for name, value in variables.items()})
    try:
        out = string.Formatter().vformat(text.replace(_EMPTY, ""), (), filled)
    except (ValueError, IndexError, AttributeError, KeyError):  # checked at load (template_problem): belt and braces
        return text
    return _HOLE.sub("", out)


def template_problem(text: str) -> str | None:
    """Why `text` cannot be a template, or None. Only plain {variable} fields: no attribute or index
    access ({author.x} raises when filled), no conversion, no format spec ({author:>999999999})."""
    try:
        fields = [(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(text) if name is not None]
    except ValueError as exc:
        return f"{exc} (write {{{{ or }}}} for a literal brace)"
    for name, spec, conv in fields:
        if name not in VARIABLES:
            return f"unknown field {{{name}}}"
        if spec or conv:
            return f"field {{{name}}} has a format or conversion"
    return None


def variables(row: MentionRow, city: str, service: str = "") -> dict[str, str]:
    return {
        "author": "@" + row.author
        if row.network in ("mastodon", "bluesky", "x") and row.author[:1] != "@"
        else row.author,
        "author_name": row.author_name or row.author,
        "city": city,
        "service": service,
        "ref": reference(row.id),
    }


def reference(mention_id: int) -> str:
    """A short reference a citizen can quote back to the desk."""
    return f"M-{mention_id:06d}"


def length(text: str, network: str) -> int:
    unit = LIMITS.get(network, (0, "chars"))[1]
    if unit == "graphemes":
        return len(_GRAPHEME.findall(text))
    if unit == "weighted":
        from twitter_text import parse_tweet  # the maintained port of twitter-text's counting rules

        return int(parse_tweet(text).weightedLength)
    return len(text)


def limit(network: str) -> int | None:
    return LIMITS[network][0] if network in LIMITS else None


def draft_followup(templates: tuple[Template, ...], row: MentionRow, city: str, service: str = "") -> str:
    """What to tell the citizen once the service fixed it: the first follow-up template (in their language if
    there is one), filled; "" without one. The operator sees it before it is sent."""
    chosen = for_use(templates, TemplateUse.FOLLOWUP, row.lang)
    return render(chosen[0].text, variables(row, city, service)) if chosen else ""


def for_use(templates: tuple[Template, ...], use: str, lang: str | None) -> list[Template]:
    """Templates for a use, those in the mention's language first."""
    chosen = [t for t in templates if t.use == use]
    return sorted(chosen, key=lambda t: t.lang is not None and lang is not None and t.lang != lang)
