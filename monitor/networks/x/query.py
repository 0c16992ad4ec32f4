"""Recent-search queries built from the watchlist's terms, each within the API's length limit.

Operators (docs.x.com/x-api/posts/search/integrate/build-a-query): a keyword or "exact phrase",
#hashtag, @username, `-` negates, OR between alternatives, `-is:retweet` drops retweets.
Recent search takes 512 characters per query (4,096 on Enterprise): longer lists are split.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from monitor.core.config import Term

MAX_QUERY = 512
_BARE = re.compile(r"^[\w'’-]+$")
_HANDLE = re.compile(r"^@?[A-Za-z0-9_]{1,15}$")


def _phrase(text: str) -> str:
    text = " ".join(text.replace('"', " ").split())
    return text if _BARE.match(text) and not text.upper() == "OR" else f'"{text}"'


def operands(terms: Iterable[Term]) -> tuple[list[str], list[str]]:
    """(what any post may match, what no post may contain), each once, in the watchlist's order."""
    wanted: dict[str, None] = {}
    excluded: dict[str, None] = {}
    for term in terms:
        for word in term.keywords:
            if word.strip():
                wanted.setdefault(_phrase(word), None)
        for tag in term.hashtags:
            if tag.strip().lstrip("#"):
                wanted.setdefault("#" + tag.strip().lstrip("#"), None)
        for account in term.accounts:
            if _HANDLE.match(account.strip()):
                wanted.setdefault("@" + account.strip().lstrip("@"), None)
        for word in term.exclude:
            if word.strip():
                excluded.setdefault("-" + _phrase(word), None)
    return list(wanted), list(excluded)


def build_queries(terms: Iterable[Term], retweets: bool = False, limit: int = MAX_QUERY) -> list[str]:
    """As few queries as fit `limit`: (a OR b OR …) followed by every exclusion and -is:retweet.

    An exclusion list that leaves no room for even one operand is cut (logged by the caller as a
    query that could not be built): every query must carry all of them to mean the same thing.
    """
    wanted, excluded = operands(terms)
    suffix = " ".join(excluded + ([] if retweets else ["-is:retweet"]))
    room = limit - len(suffix) - (3 if suffix else 2)  # the brackets, and the space before the suffix
    queries: list[str] = []
    group: list[str] = []
    for operand in wanted:
        if len(operand) > room:
            continue  # an operand alone longer than a query: cannot be searched
        if group and len(" OR ".join([*group, operand])) > room:
            queries.append(_query(group, suffix))
            group = []
        group.append(operand)
    if group:
        queries.append(_query(group, suffix))
    return queries


def _query(group: list[str], suffix: str) -> str:
    core = group[0] if len(group) == 1 else "(" + " OR ".join(group) + ")"
    return f"{core} {suffix}".strip()
