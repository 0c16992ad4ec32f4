"""Business time: the desk's opening hours per weekday, in the watchlist's zone, less public holidays.

The one place that knows when the desk is open. Everything is computed on UTC epoch milliseconds: each
opening is turned into a UTC interval once (zoneinfo applies the offset of that very date, so the
last Sundays of March and October and midnight need no special case), and business time between two
instants is a difference of a cumulative sum over those intervals.
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

import holidays
import numpy as np

from monitor.core.config import BusinessHours, Watchlist
from monitor.core.holidaycal import country_holidays
from monitor.core.timeutil import from_ms, parse_date, to_ms

DAY = timedelta(days=1)


class BusinessCalendar:
    """When the desk is open. With no opening hours configured, it is always open (business = calendar)."""

    def __init__(self, hours: BusinessHours, zone: tzinfo) -> None:
        self.hours = hours
        self.zone = zone
        self._holidays: holidays.HolidayBase | None = None
        if hours.holidays_country:
            try:
                self._holidays = country_holidays(hours.holidays_country, subdiv=hours.holidays_subdiv)
            except NotImplementedError as exc:
                raise ValueError(
                    f"business_hours: no holiday calendar for {hours.holidays_country!r}"
                    f"{' subdivision ' + repr(hours.holidays_subdiv) if hours.holidays_subdiv else ''}"
                ) from exc
        try:
            self._extra = frozenset(parse_date(d) for d in hours.extra_holidays)
        except ValueError as exc:
            raise ValueError(f"business_hours.extra_holidays: {exc} (expected YYYY-MM-DD)") from exc

    @classmethod
    def from_watchlist(cls, watchlist: Watchlist) -> BusinessCalendar:
        return cls(watchlist.business_hours, ZoneInfo(watchlist.timezone))

    @property
    def always_open(self) -> bool:
        return not self.hours.days

    def is_holiday(self, day: date) -> bool:
        return day in self._extra or (self._holidays is not None and day in self._holidays)

    def opening(self, day: date) -> tuple[int, int] | None:
        """The desk's open interval on a local date, as UTC epoch ms, or None when closed all day."""
        span = self.hours.days.get(day.weekday())
        if span is None or self.is_holiday(day):
            return None
        start = to_ms(datetime.combine(day, span[0], tzinfo=self.zone))
        end = to_ms(datetime.combine(day, span[1], tzinfo=self.zone))
        return (start, end) if end > start else None

    def local_date(self, ms: int) -> date:
        return from_ms(ms).astimezone(self.zone).date()

    def timeline(self, start_ms: int, end_ms: int) -> Timeline:
        """Open intervals covering [start_ms, end_ms] (and a day either side); it grows on demand."""
        return Timeline(self, start_ms, end_ms)

    def between(self, a: int, b: int) -> int:
        """Business milliseconds in [a, b); 0 when b <= a."""
        return self.timeline(a, b).between(a, b)

    def add(self, start: int, duration_ms: int) -> int:
        """The instant when `duration_ms` of business time has passed since `start` (a deadline)."""
        return self.timeline(start, start + duration_ms).add(start, duration_ms)

    def next_opening(self, ms: int) -> int:
        """`ms` itself when the desk is open then, else the next opening."""
        return self.add(ms, 0) if not self.always_open else ms


class Timeline:
    """Open intervals in time order with the business time before each: F(t) by one bisection.

    `before[i]` is the business time from the timeline's first opening to `starts[i]`, so the business
    time between a and b is F(b) - F(a) whatever happens in between (nights, weekends, holidays).
    """

    __slots__ = (
        "calendar", "always_open", "starts", "ends", "before",
        "first_day", "last_day", "covers_from", "covers_until",
    )  # fmt: skip

    def __init__(self, calendar: BusinessCalendar, start_ms: int, end_ms: int) -> None:
        self.calendar = calendar
        self.always_open = calendar.always_open
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.before: list[int] = []
        self.first_day = calendar.local_date(start_ms) - DAY
        self.last_day = self.first_day - DAY
        # Instants in [covers_from, covers_until) are covered: local midnights around the days built.
        self.covers_from = self._midnight(self.first_day)
        self.covers_until = self.covers_from
        self._extend_to(calendar.local_date(max(start_ms, end_ms)) + DAY)

    def _midnight(self, day: date) -> int:
        return to_ms(datetime.combine(day, datetime.min.time(), tzinfo=self.calendar.zone))

    def _extend_to(self, day: date) -> None:
        """Append the openings of the days after last_day up to `day`: existing sums stay valid."""
        total = self.before[-1] + self.ends[-1] - self.starts[-1] if self.starts else 0
        d = self.last_day + DAY
        while d <= day:
            span = self.calendar.opening(d)
            if span is not None:
                self.starts.append(span[0])
                self.ends.append(span[1])
                self.before.append(total)
                total += span[1] - span[0]
            d += DAY
        self.last_day = max(self.last_day, day)
        self.covers_until = self._midnight(self.last_day + DAY)

    def _prepend_from(self, day: date) -> None:
        """Rebuild from an earlier day, in place (callers may hold the lists); every sum shifts."""
        last = self.last_day
        self.starts.clear()
        self.ends.clear()
        self.before.clear()
        self.first_day, self.last_day = day, day - DAY
        self.covers_from = self._midnight(day)
        self._extend_to(last)

    def _ensure(self, t: int) -> None:
        if t < self.covers_from:
            self._prepend_from(self.calendar.local_date(t) - DAY)
        if t >= self.covers_until:
            self._extend_to(self.calendar.local_date(t) + DAY)

    def ensure(self, t: int) -> None:
        """Cover instant t (extending the timeline if needed)."""
        self._ensure(t)

    def business_before_array(self, t: np.ndarray) -> np.ndarray:
        """F(t) for an array of instants (int64 ms) at once; the timeline must cover them (see ensure)."""
        if self.always_open:
            return t.astype(np.int64, copy=True)
        if t.size:
            self._ensure(int(t.min()))
            self._ensure(int(t.max()))
        if not self.starts:
            return np.zeros_like(t, dtype=np.int64)
        # Interval i: F(t) = min(t - starts[i] + before[i], before[i] + its length), i.e. two lookups; a first
        # interval of no length before every opening gives 0 before the first opening (t >= 0: epoch ms).
        starts = np.asarray([np.iinfo(np.int64).min, *self.starts], dtype=np.int64)
        before = np.asarray([0, *self.before], dtype=np.int64)
        shift = before - starts
        shift[0] = 0
        after = before + np.asarray([0, *self.ends], dtype=np.int64) - np.asarray([0, *self.starts], dtype=np.int64)
        i = np.searchsorted(starts, t, side="right") - 1
        value: np.ndarray = np.minimum(t + shift[i], after[i])
        return value

    def business_before(self, t: int) -> int:
        """F(t): business ms from the timeline's start to t."""
        if self.always_open:
            return t
        self._ensure(t)
        i = bisect_right(self.starts, t) - 1
        if i < 0:
            return 0
        return self.before[i] + min(t - self.starts[i], self.ends[i] - self.starts[i])

    def between(self, a: int, b: int) -> int:
        if b <= a:
            return 0
        if self.always_open:
            return b - a
        self._ensure(a)
        self._ensure(b)
        return self.business_before(b) - self.business_before(a)

    def add(self, start: int, duration_ms: int) -> int:
        if self.always_open:
            return start + duration_ms
        if duration_ms < 0:
            raise ValueError("negative duration")
        target = self.business_before(start) + duration_ms
        guard = 0
        while True:
            # The deadline falls in the first interval whose end brings the sum to the target; a target
            # reached exactly at a closing is that closing, not the next opening (except for 0).
            for i in range(max(0, bisect_right(self.starts, start) - 1), len(self.starts)):
                end_sum = self.before[i] + self.ends[i] - self.starts[i]
                if end_sum > target or (end_sum == target and duration_ms > 0 and self.ends[i] > start):
                    return max(start, self.starts[i] + (target - self.before[i]))
            guard += 1
            if guard > 40:  # ~40 years with no opening: the calendar is closed for good
                raise ValueError("the desk never opens within 40 years")
            self._extend_to(self.last_day + timedelta(days=366))
