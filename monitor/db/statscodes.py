"""Text to small integer codes, in Python and as SQL: the statistics carry texts (sources, terms,
operators, services) as codes so that a year of rows travels as integers only."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from monitor.db.store import TERM_SEP

Ints = npt.NDArray[np.int64]
NONE_KEY = "(none)"


class Codes:
    """Strings to dense integer codes, append-only so that codes already given stay valid.

    Seeds come first, sorted; later names in order of first appearance."""

    def __init__(self, seeds: Iterable[str] = ()) -> None:
        self.names: list[str] = []
        self.index: dict[str, int] = {}
        for name in sorted(set(seeds)):
            self.add(name)

    def add(self, name: str) -> int:
        if name not in self.index:
            self.index[name] = len(self.names)
            self.names.append(name)
        return self.index[name]

    def encode(self, parts: Sequence[str]) -> Ints:
        """The code of each part, learning the new ones."""
        for name in dict.fromkeys(parts):
            self.add(name)
        return np.fromiter(map(self.index.__getitem__, parts), dtype=np.int64, count=len(parts))


def primary(terms: str | None) -> str:
    """A stored terms list's primary term (the first)."""
    return terms.split(TERM_SEP, 1)[0] if terms else NONE_KEY


def _tree(column: str, bounds: list[tuple[str, int]], tail: int) -> tuple[str, list[str]]:
    """A binary search of CASEs over sorted breakpoints: [bounds[i], bounds[i+1]) gives its code.
    log2(n) text comparisons a row (SQLite compares UTF-8 bytes: the order of Python's str)."""

    def build(lo: int, hi: int) -> tuple[str, list[str]]:
        if hi - lo == 1:
            return str(bounds[lo][1]), []
        mid = (lo + hi) // 2
        (left, lp), (right, rp) = build(lo, mid), build(mid, hi)
        return f"CASE WHEN {column} < ? THEN {left} ELSE {right} END", [bounds[mid][0], *lp, *rp]

    if not bounds:
        return str(tail), []
    sql, params = build(0, len(bounds))
    return f"CASE WHEN {column} < ? THEN {tail} ELSE {sql} END", [bounds[0][0], *params]


def exact_case(column: str, names: Codes) -> tuple[str, list[str]]:
    """SQL giving a value's code, -1 when it is not a known name (a plain CASE for a few names: it
    beats the search tree below a dozen)."""
    if len(names.names) <= 12:
        whens = " ".join(f"WHEN ? THEN {i}" for i in range(len(names.names)))
        return (f"CASE {column} {whens} ELSE -1 END" if whens else "-1"), list(names.names)
    bounds: list[tuple[str, int]] = []
    for name in sorted(names.names):
        bounds += [(name, names.index[name]), (name + "\x00", -1)]  # exactly `name`, nothing after it
    return _tree(column, bounds, -1)


def primary_case(column: str, names: Codes) -> tuple[str, list[str]]:
    """SQL giving the code of a terms list's primary term: the values from `name` up to `name` + ' '
    are `name` and `name` followed by '\x1f' and more terms (sanitised names have no control
    characters), so each primary term is one range."""
    bounds: list[tuple[str, int]] = []
    for name in sorted(names.names):
        bounds += [(name, names.index[name]), (name + " ", -1)]
    tree, params = _tree(column, bounds, -1)
    if not 0 < len(names.names) <= 12:
        return tree, params
    # Most lists hold one term: a plain CASE finds those first, cheaper than the tree.
    whens = " ".join(f"WHEN ? THEN {i}" for i in range(len(names.names)))
    return f"CASE {column} {whens} ELSE {tree} END", [*names.names, *params]
