"""How X counts a post's length, and whether it holds a link (which X charges more for).

X counts weighted characters (docs.x.com counting-characters): most Latin text 1, CJK and emoji 2,
any URL 23 whatever its length; 280 at most. The rules are twitter-text's, through the maintained
port on PyPI (twitter-text-parser), checked against twitter-text's conformance data in the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

from twitter_text import extract_urls, parse_tweet

MAX_WEIGHTED = 280


@dataclass(frozen=True)
class Length:
    weighted: int
    valid: bool

    @property
    def left(self) -> int:
        return MAX_WEIGHTED - self.weighted


def weighted_length(text: str) -> Length:
    result = parse_tweet(text)
    return Length(int(result.weightedLength), bool(result.valid))


def has_link(text: str) -> bool:
    """What twitter-text would link: a URL with or without its scheme (toulouse.fr counts)."""
    return bool(extract_urls(text))
