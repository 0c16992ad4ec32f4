"""User patterns (`patterns:` in the watchlist): checked when the watchlist is read, searched with a time budget.

Python's `re` backtracks: `(a|a)*$` takes exponential time on a 35-character post, and ingest (the
app's too, which matches in its event loop) would freeze. The `regex` module reads the same syntax,
defuses many such patterns itself (`(a+)+$` is fast there), and gives up on any search after a timeout.
Each pattern is compiled and searched on its own, so one pattern's inline flags, group names or
back-references cannot break another.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import regex

FLAGS = regex.IGNORECASE | regex.VERSION0  # VERSION0: the syntax of Python's re
MAX_LENGTH = 500
BUDGET_S = 0.1  # per pattern and text; a sane pattern takes microseconds on a post
STRIKES = 3  # timeouts before a pattern is switched off for the rest of the run

log = logging.getLogger(__name__)


class PatternError(ValueError):
    expected = "a Python regular expression"


def compile_pattern(text: str) -> regex.Pattern[str]:
    if len(text) > MAX_LENGTH:
        raise PatternError(f"{len(text)} characters, at most {MAX_LENGTH}")
    try:
        return regex.compile(text, FLAGS)
    except (regex.error, OverflowError, RecursionError, ValueError) as exc:
        raise PatternError(f"invalid regular expression: {exc}") from None


class PatternSet:
    """Which patterns occur in a text. A pattern that keeps running out of time is switched off, loudly."""

    def __init__(self, patterns: Sequence[str]) -> None:
        self.texts = tuple(patterns)
        self._compiled = [compile_pattern(p) for p in patterns]
        self._strikes = [0] * len(self._compiled)

    def __len__(self) -> int:
        return len(self._compiled)

    def search(self, text: str) -> list[int]:
        """Indexes of the patterns found in `text`; a search out of time counts as not found."""
        hits = []
        for i, pattern in enumerate(self._compiled):
            if self._strikes[i] >= STRIKES:
                continue
            try:
                if pattern.search(text, timeout=BUDGET_S) is not None:
                    hits.append(i)
            except TimeoutError:
                self._strikes[i] += 1
                off = self._strikes[i] >= STRIKES
                log.warning(
                    "pattern %r took over %ss on a %d-character text%s",
                    self.texts[i], BUDGET_S, len(text), ": switched off until restart" if off else "",
                )  # fmt: skip
        return hits

    def disabled(self) -> list[str]:
        return [t for t, n in zip(self.texts, self._strikes, strict=True) if n >= STRIKES]
