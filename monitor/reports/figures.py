"""The statistics' results: distributions, clocks, breakdown rows and the report, with the percentile
definition they use. Built by monitor.reports.stats, rendered by monitor.reports.render and .html."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from monitor.core.config import WEEKDAYS
from monitor.core.models import Priority
from monitor.core.timeutil import iso_utc

DIMENSIONS = ("source", "term", "service", "operator", "priority", "hour", "weekday")
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
DAY_NAMES = tuple(d[:3].capitalize() for d in WEEKDAYS)
# Response-time histogram bins, in seconds: [edge, next edge).
HIST_EDGES = (0, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400)
HIST_LABELS = ("<5m", "5-15m", "15-30m", "30m-1h", "1-2h", "2-4h", "4-8h", "8-24h", ">=24h")


def priority_label(level: int) -> str:
    """A priority's name; a level this program does not know stays a number."""
    try:
        return Priority(level).label
    except ValueError:
        return str(level)


@dataclass(frozen=True, slots=True)
class Dist:
    """The distribution of one clock's finished durations (seconds)."""

    n: int
    median: float | None
    p90: float | None
    p95: float | None
    max: int | None
    within: int  # finished within the target
    late_open: int  # still running and already past the target
    target: int | None
    histogram: tuple[int, ...]

    @property
    def share(self) -> float | None:
        """Finished within target / (finished + open already late); None without a target or data."""
        if self.target is None:
            return None
        total = self.n + self.late_open
        return self.within / total if total else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "n": self.n, "median_s": self.median, "p90_s": self.p90, "p95_s": self.p95, "max_s": self.max,
            "within_target": self.within, "open_past_target": self.late_open, "target_s": self.target,
            "share_within_target": self.share,
            "histogram": dict(zip(HIST_LABELS, self.histogram, strict=True)),
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class Clock:
    """One clock (first response or resolution), in calendar and business time."""

    calendar: Dist
    business: Dist
    open: int  # still running
    oldest_open: int | None  # seconds, calendar age now
    oldest_open_business: int | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "calendar": self.calendar.as_dict(),
            "business": self.business.as_dict(),
            "open": self.open,
            "oldest_open_s": self.oldest_open,
            "oldest_open_business_s": self.oldest_open_business,
        }


@dataclass(frozen=True, slots=True)
class GroupRow:
    key: str
    mentions: int
    first_response: Clock
    resolution: Clock

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "mentions": self.mentions,
            "first_response": self.first_response.as_dict(),
            "resolution": self.resolution.as_dict(),
        }


@dataclass(frozen=True)
class SpendRow:
    """What a paid source (X) cost in the months the period touches, and per mention answered by a reply."""

    source: str
    reads_usd: float
    writes_usd: float
    writes: int
    answered: int  # mentions of this source, first seen in the period, answered with a reply

    @property
    def total(self) -> float:
        return self.reads_usd + self.writes_usd

    @property
    def per_answered(self) -> float | None:
        return self.total / self.answered if self.answered else None

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "reads_usd": round(self.reads_usd, 4), "writes_usd": round(self.writes_usd, 4),
                "replies_paid": self.writes, "total_usd": round(self.total, 4), "answered": self.answered,
                "per_answered_usd": None if self.per_answered is None else round(self.per_answered, 4)}  # fmt: skip


@dataclass(frozen=True)
class Report:
    city: str
    timezone: str
    since: int  # epoch ms, inclusive
    until: int  # epoch ms, exclusive
    generated_at: int
    target_first_response: int  # seconds
    target_resolution: int | None
    counts: dict[str, int]
    first_response: Clock
    resolution: Clock
    breakdowns: dict[str, list[GroupRow]]
    series_start: int  # epoch ms of the first hour bucket (a local hour)
    volume: list[int] = field(default_factory=list)  # mentions first seen per hour
    backlog: list[int] = field(default_factory=list)  # waiting at the end of each hour (or now)
    series_step: int = HOUR_MS
    spend: list[SpendRow] = field(default_factory=list)  # paid networks only: empty without one

    def as_dict(self) -> dict[str, Any]:
        spend = {"spend": [row.as_dict() for row in self.spend]} if self.spend else {}  # absent: nothing paid
        return {
            "city": self.city,
            "timezone": self.timezone,
            "since": iso_utc(self.since),
            "until": iso_utc(self.until),
            "generated_at": iso_utc(self.generated_at),
            "targets": {
                "first_response_s": self.target_first_response,
                "resolution_s": self.target_resolution,
            },
            "counts": self.counts,
            "first_response": self.first_response.as_dict(),
            "resolution": self.resolution.as_dict(),
            "breakdowns": {dim: [row.as_dict() for row in rows] for dim, rows in self.breakdowns.items()},
            "series": {
                "start": iso_utc(self.series_start),
                "step_s": self.series_step // 1000,
                "volume": self.volume,
                "backlog": self.backlog,
            },
            **spend,
        }


# -- percentiles -------------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float] | np.ndarray | Ranked, pct: int) -> float | None:
    """Linear interpolation between closest ranks (type 7) on an already sorted sequence."""
    n = len(sorted_values)
    if n == 0:
        return None
    lo, rem = divmod((n - 1) * pct, 100)  # integer arithmetic: no float drift in the rank
    low = float(sorted_values[lo])
    if rem == 0 or lo + 1 >= n:
        return low
    return low + rem / 100 * (float(sorted_values[lo + 1]) - low)


class Positions(Protocol):
    """A group's positions in a clock's sorted values, ascending: an array of them, or one read like it
    (monitor.reports.positions)."""

    @property
    def size(self) -> int: ...

    def __getitem__(self, rank: int) -> Any: ...

    def searchsorted(self, cuts: Any) -> Any: ...


class Ranked:
    """One group's values within a clock's sorted values: their positions there, ascending (so the group's
    values in order), read one at a time, not gathered into an array of their own."""

    __slots__ = ("at", "values")

    def __init__(self, values: np.ndarray, at: Positions) -> None:
        self.values, self.at = values, at

    def __len__(self) -> int:
        return int(self.at.size)

    def __getitem__(self, i: int) -> Any:
        return self.values[self.at[i]]


def dist(values: np.ndarray, target: int | None, late_open: int, at: Positions | None = None) -> Dist:
    """A distribution from one group's durations, already sorted (whole seconds); with `at`, the group is
    the values at those positions (ascending) of `values`."""
    ranked: np.ndarray | Ranked = values if at is None else Ranked(values, at)
    n = len(ranked)
    if n == 0:
        return Dist(0, None, None, None, None, 0, late_open, target, (0,) * len(HIST_LABELS))
    within = int(np.searchsorted(values, target, side="right")) if target is not None else 0
    below = np.searchsorted(values, HIST_EDGES[1:], side="left")
    if at is not None:  # from positions in all the values to positions in the group's
        within = int(at.searchsorted(within)) if target is not None else 0
        below = at.searchsorted(below)
    edges = below.tolist()
    hist = tuple(b - a for a, b in zip([0, *edges], [*edges, n], strict=True))
    return Dist(
        n, percentile(ranked, 50), percentile(ranked, 90), percentile(ranked, 95), int(ranked[n - 1]),
        within, late_open, target, hist,
    )  # fmt: skip
