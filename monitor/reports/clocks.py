"""The numpy engine of the statistics: per-row clocks, and the same clocks per group of a breakdown.

Finished durations are sorted once; a breakdown then only partitions them by group, so the hot loop
touches a row once whatever the number of breakdowns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from monitor.db.stats import NONE_KEY, Columns, Ints, Period
from monitor.reports.figures import DAY_NAMES, Clock, GroupRow, Positions, dist, priority_label
from monitor.reports.positions import split

Codes = npt.NDArray[np.signedinteger[Any]]  # a group per row, -1 for none
BLOCKS_FROM = 1 << 16  # values per clock from which a breakdown counts blocks (monitor.reports.positions)


def ceil_s(ms: Ints) -> Ints:
    """Milliseconds to whole seconds, rounded up, never negative (a clock skew is not a negative wait)."""
    return np.maximum((ms + 999) // 1000, 0)


class Clocks:
    """Per-row material of one clock: finished durations (whole seconds) and running ages (ms).

    Finished durations are sorted once; a breakdown then only partitions them by group with a stable
    radix sort of the small group codes, so every group's values come out already sorted.
    """

    def __init__(
        self,
        done_rows: Ints,
        done_c: Ints,
        done_b: Ints,
        run_rows: Ints,
        run_c: Ints,
        run_b: Ints,
    ) -> None:
        self.rows_c, self.values_c = _sort_with_rows(done_rows, done_c)
        self.rows_b, self.values_b = _sort_with_rows(done_rows, done_b)
        self.run_rows, self.run_c, self.run_b = run_rows, run_c, run_b

    def by_group(self, g: Codes, n_groups: int, target: int | None, complete: bool = False) -> list[Clock]:
        """One Clock per group; g gives each row's group (-1: not in this breakdown; none when `complete`)."""
        at_c = _partition(g[self.rows_c], n_groups, complete)
        at_b = _partition(g[self.rows_b], n_groups, complete)
        gr = g[self.run_rows]
        keep = gr >= 0
        gr, rc, rb = gr[keep], self.run_c[keep], self.run_b[keep]
        running = np.bincount(gr, minlength=n_groups)
        tms = target * 1000 if target is not None else None
        late_c = np.bincount(gr[rc > tms], minlength=n_groups) if tms is not None else running * 0
        late_b = np.bincount(gr[rb > tms], minlength=n_groups) if tms is not None else running * 0
        oldest_c = np.full(n_groups, -1, dtype=np.int64)
        oldest_b = np.full(n_groups, -1, dtype=np.int64)
        np.maximum.at(oldest_c, gr, rc)
        np.maximum.at(oldest_b, gr, rb)
        return [
            Clock(
                calendar=dist(self.values_c, target, int(late_c[i]), at_c[i]),
                business=dist(self.values_b, target, int(late_b[i]), at_b[i]),
                open=int(running[i]),
                oldest_open=int(oldest_c[i]) // 1000 if running[i] else None,
                oldest_open_business=int(oldest_b[i]) // 1000 if running[i] else None,
            )
            for i in range(n_groups)
        ]


def _sort_with_rows(rows: Ints, values: Ints) -> tuple[Ints, Ints]:
    """Values sorted, with their rows: one sort of value << bits | row (cheaper than an argsort)."""
    bits = max(1, int(rows.max()).bit_length()) if rows.size else 1
    key = (np.minimum(values, (1 << (62 - bits)) - 1) << bits) | rows
    key.sort()
    return key & ((1 << bits) - 1), key >> bits


def codes(g: Ints, n_groups: int) -> Codes:
    """Group codes (-1 kept) in the narrowest integer type: gathers and the radix sort move fewer bytes."""
    return g.astype(np.int8 if n_groups < 2**7 else np.int16 if n_groups < 2**15 else np.int64)


def _partition(groups: Codes, n_groups: int, complete: bool) -> Sequence[Positions | None]:
    """Each group's positions in the sorted values, ascending (-1: left out, none when `complete`); None
    for all of them (a single complete group). The values themselves are never copied."""
    if n_groups == 1 and complete:  # the whole period
        return [None]
    if groups.size >= BLOCKS_FROM:
        return split(groups, n_groups)
    # A short period: a stable argsort costs less than the blocks' per-group lookups.
    order = np.argsort(groups, kind="stable")  # radix sort for small ints: -1 first, each group ascending
    counts = np.bincount(groups + 1, minlength=n_groups + 1)
    bounds = np.cumsum(counts).tolist()
    return [order[bounds[i] : bounds[i + 1]] for i in range(n_groups)]


class Groups:
    """Breakdowns: each is a group code per row, then the same clocks per group."""

    def __init__(
        self,
        period: Period,
        how: Ints,
        first_response: Clocks,
        resolution: Clocks,
        targets: tuple[int, int | None],
    ) -> None:
        self.data: Columns = period.rows
        self.how = how  # per row: the local hour of the week it was first seen in
        self.first_response = first_response
        self.resolution = resolution
        self.targets = targets

    def rows(self, dim: str, g: Ints, labels: list[str], keep_empty: bool = False) -> list[GroupRow]:
        n_groups = len(labels)
        small = codes(g, n_groups)
        complete = not bool((small < 0).any())
        mentions = np.bincount(small if complete else small[small >= 0], minlength=n_groups)
        fr = self.first_response.by_group(small, n_groups, self.targets[0], complete)
        res = self.resolution.by_group(small, n_groups, self.targets[1], complete)
        out = [
            GroupRow(labels[i], int(mentions[i]), fr[i], res[i]) for i in range(n_groups) if mentions[i] or keep_empty
        ]
        if dim in ("source", "term", "operator", "service"):
            out.sort(key=lambda r: (-r.mentions, r.key))
        return out

    def breakdown(self, dim: str) -> list[GroupRow]:
        data = self.data
        if dim == "hour":
            return self.rows(dim, self.how % 24, [f"{h:02d}h" for h in range(24)])
        if dim == "weekday":
            return self.rows(dim, self.how // 24, list(DAY_NAMES))
        if dim == "priority":
            return self.rows(dim, data.priority, [priority_label(p) for p in range(16)])
        if dim == "service":  # only what was escalated: the standing escalation's service
            service = np.where(data.esc_at >= 0, data.service, -1)
            return self.rows(dim, service, [s or NONE_KEY for s in data.service_names])
        if dim == "source":
            return self.rows(dim, data.source, data.source_names)
        if dim == "operator":  # only who answered: '' is "nobody yet"
            names = data.operator_names
            keep = np.array([-1 if not name else i for i, name in enumerate(names)] or [0], dtype=np.int64)
            return self.rows(dim, keep[data.operator] if data.operator.size else data.operator, names)
        return self.rows(dim, data.terms, data.terms_names)  # primary terms already
