"""All time handling in one place: UTC epoch milliseconds in the database, local time on screen.

Every time read from outside is parsed here (ISO-8601 from APIs, HTTP dates, feed dates, --since,
holiday dates) and bounded where it enters. Opening hours and holidays (business time) live in
monitor/core/business.py.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def to_ms(dt: datetime) -> int:
    if dt.tzinfo is None:
        raise ValueError("naive datetime: every timestamp must be aware")
    return int(dt.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    # Clamped: a stored time written by an older version (a year-33715 retry) must not crash a screen.
    return datetime.fromtimestamp(min(max(ms, _MIN_MS), _MAX_MS) / 1000, tz=UTC)


def utcnow() -> datetime:
    return datetime.now(tz=UTC)


# -- values from outside: bounded where they enter -------------------------------------------

MAX_DELAY = 86_400.0  # a peer may ask us to wait, but never longer than a day
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)  # no post is older; far-off years overflow conversions
MAX_AHEAD = timedelta(days=1)  # a clock ahead (or a lie) is pulled back to at most a day ahead
_MIN_MS, _MAX_MS = -62_135_596_800_000 + 86_400_000, 253_402_214_400_000  # inside datetime's range


def bound_delay(seconds: float | None, default: float = 60.0) -> float:
    """A wait asked for by a peer (Retry-After, a reset header) in [0, MAX_DELAY]; nan or junk -> default."""
    if seconds is None or seconds != seconds:  # None or nan
        return min(default, MAX_DELAY)
    return min(max(0.0, seconds), MAX_DELAY)


def bound_time(when: datetime, now: datetime | None = None) -> datetime:
    """A peer's timestamp (aware) as UTC, clamped into [EARLIEST, now + MAX_AHEAD].

    Compared before converting: astimezone() on 0001-01-01T00:00+01:00 raises OverflowError.
    """
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    latest = (now or utcnow()) + MAX_AHEAD
    if when < EARLIEST:
        return EARLIEST
    if when > latest:
        return latest
    return when.astimezone(UTC)


def parse_date(text: str) -> date:
    """A calendar date written YYYY-MM-DD (a holiday); ValueError if it is not one."""
    return date.fromisoformat(text)


def parse_iso(text: str) -> datetime:
    """An ISO-8601 time as peers write it ('Z' or an offset), as written: naive without an offset, not bounded.
    ValueError if unreadable."""
    return datetime.fromisoformat(text.strip().replace("Z", "+00:00"))


def parse_remote_time(text: str) -> datetime:
    """An ISO-8601 time from a peer ('Z' or an offset; none means UTC), bounded; ValueError if unreadable."""
    return bound_time(parse_iso(text))


def remote_time(value: object) -> datetime | None:
    """A peer's ISO-8601 time from a JSON value (see parse_remote_time), or None if absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_remote_time(value)
    except ValueError:
        return None


def parse_utc_fields(fields: Sequence[int]) -> datetime:
    """A UTC time given as fields (year, month, day, hour, minute, second, ...: a time.struct_time, as feedparser
    gives dates), bounded. ValueError or TypeError if the fields are not a time."""
    year, month, day, hour, minute, second = fields[:6]
    return bound_time(datetime(year, month, day, hour, minute, second, tzinfo=UTC))


def parse_http_date(text: str) -> datetime | None:
    """An HTTP-date (RFC 9110 §5.6.7, e.g. a Retry-After) as an aware time, not bounded; None if unreadable."""
    import email.utils  # here: 0.01 s at every start otherwise, and only the networks' retries ask

    try:
        parsed = email.utils.parsedate_to_datetime(text)
    except (ValueError, TypeError, OverflowError):
        return None
    return parsed if parsed.tzinfo is not None else None


def local_zone(name: str | None = None) -> tzinfo:
    if name:
        return ZoneInfo(name)
    return datetime.now().astimezone().tzinfo or UTC


def local(ms: int, zone: tzinfo) -> datetime:
    return from_ms(ms).astimezone(zone)


def fmt_local(ms: int | None, zone: tzinfo, with_date: bool = True) -> str:
    if ms is None:
        return "—"
    dt = local(ms, zone)
    return dt.strftime("%Y-%m-%d %H:%M:%S") if with_date else dt.strftime("%H:%M")


def fmt_age(ms: int) -> str:
    """A compact clock: 45s, 12m, 1h05, 3d."""
    seconds = max(0, ms // 1000)
    if seconds < 60:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 48:
        return f"{hours}h{minutes % 60:02d}"
    return f"{hours // 24}d"


def fmt_duration(ms: float | None) -> str:
    if ms is None:
        return "—"
    seconds = int(round(ms / 1000))
    if seconds < 60:
        return f"{seconds}s"
    minutes, s = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{s:02d}s"
    hours, m = divmod(minutes, 60)
    return f"{hours}h{m:02d}m"


# The span --since/--until may name: statistics walk a period day by day (from year 2: minutes and gigabytes).
# A day of margin each side, so the local midnights of 2000-01-01 and 2099-12-31 are in, in any zone.
EARLIEST = datetime(1999, 12, 31, tzinfo=UTC)
LATEST = datetime(2100, 1, 2, tzinfo=UTC)


def parse_when(text: str, zone: tzinfo) -> int:
    """Parse --since/--until: ISO date or datetime (local unless it carries an offset), or '7d'/'12h' ago.

    Raises ValueError, with what is accepted, for anything else or outside EARLIEST..LATEST."""
    text = text.strip()
    units = {"d": 86400, "h": 3600, "m": 60}
    accepted = "an ISO date in the years 2000 to 2099, or an age like 7d, 12h or 30m"
    if text[:-1].isdigit() and text[-1:] in units:
        if len(text) > 10:
            raise ValueError(f"{text!r} is out of range: {accepted}")
        ms = now_ms() - int(text[:-1]) * units[text[-1]] * 1000
    else:
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a date or an age: {accepted}") from None
        ms = to_ms(dt if dt.tzinfo is not None else dt.replace(tzinfo=zone))
    if not to_ms(EARLIEST) <= ms <= to_ms(LATEST):
        raise ValueError(f"{text!r} is out of range: {accepted}")
    return ms


def td_ms(delta: timedelta) -> int:
    return int(delta.total_seconds() * 1000)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def iso_utc(ms: int | None) -> str | None:
    """ISO-8601 in UTC with milliseconds and a Z, for exports: 2025-07-14T08:30:00.000Z."""
    if ms is None:
        return None
    return (_EPOCH + timedelta(milliseconds=ms)).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def parse_iso_ms(text: str) -> int:
    """The inverse of iso_utc (any ISO-8601 with an offset)."""
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset")
    return (dt - _EPOCH) // timedelta(milliseconds=1)  # integer arithmetic: exact to the millisecond


def floor_local_hour(ms: int, zone: tzinfo) -> int:
    """The start of the local hour containing ms (hour buckets line up with the wall clock)."""
    return to_ms(local(ms, zone).replace(minute=0, second=0, microsecond=0))


def start_of_local_day(ms: int, zone: tzinfo) -> int:
    """Local midnight of the day containing ms, as epoch ms (a 23- or 25-hour day around DST)."""
    day = local(ms, zone).date()
    return to_ms(datetime(day.year, day.month, day.day, tzinfo=zone))


def hourly_offsets(base: int, count: int, zone: tzinfo, hour: int = 3_600_000) -> list[int]:
    """The zone's UTC offset (ms) at base + k hours for k < count, so local time is UTC plus it. The zone
    is asked once a day, and hour by hour only through a day whose two ends differ (a zone changes its
    offset at most once in a day), not 8,760 times for a year."""

    def offset(k: int) -> int:
        delta = local(base + k * hour, zone).utcoffset()
        return (delta // timedelta(milliseconds=1)) if delta is not None else 0

    out: list[int] = []
    ends = [*range(0, count, 24), count]
    for a, b in zip(ends, ends[1:], strict=False):
        first, last = offset(a), offset(b - 1)
        out += [first] * (b - a) if first == last else [offset(k) for k in range(a, b)]
    return out
