"""Response-time statistics a supervisor can trust.

One pass over the period's mentions (selected by first_seen_at), with the stored first response and standing
escalation of each mention (kept per mention: monitor.db.clocks), and business time from
monitor.core.business. Loading is monitor.db.stats, the per-group engine monitor.reports.clocks, the text
monitor.reports.render. Definitions: EXPLAIN (printed by `monitor stats --explain`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from zoneinfo import ZoneInfo

import numpy as np

from monitor.core.business import BusinessCalendar
from monitor.core.config import Watchlist
from monitor.core.timeutil import floor_local_hour, hourly_offsets, now_ms
from monitor.db.reading import ReadConnection, first_seen, load_period, spend_for_period
from monitor.db.stats import NO_END, Columns, Ints, Period
from monitor.reports.clocks import Clocks, Groups, ceil_s
from monitor.reports.explain import EXPLAIN
from monitor.reports.figures import DIMENSIONS, HOUR_MS, Clock, Report, SpendRow, percentile
from monitor.reports.render import fmt_secs, fmt_share, render, series_rows

# The names callers use, from the modules that define them.
__all__ = [
    "DIMENSIONS", "EXPLAIN", "Clock", "Report", "compute", "fmt_secs", "fmt_share", "percentile", "render",
    "series_rows",
]  # fmt: skip

Business = Callable[[Ints], Ints]  # F(t): the open time before t, so business(a, b) = F(b) - F(a)


def compute(
    conn: ReadConnection,
    watchlist: Watchlist,
    since: int | None = None,
    until: int | None = None,
    by: Iterable[str] | None = None,
    now: int | None = None,
) -> Report:
    """The statistics of mentions first seen in [since, until); `now` dates the open clocks."""
    dims = _dimensions(by)
    zone = ZoneInfo(watchlist.timezone)
    now = now_ms() if now is None else now
    if since is None:
        first = first_seen(conn)
        since = first if first is not None else now
    until = now + 1 if until is None else until
    if until <= since:
        raise ValueError("--until must come after --since")
    t_fr = int(watchlist.targets.first_response.total_seconds())
    t_res_td = watchlist.targets.resolution
    t_res = int(t_res_td.total_seconds()) if t_res_td is not None else None
    period = load_period(conn, since, until)
    rows = period.rows

    # Hour buckets from the local hour containing `since` to the end of the period (or now).
    base = floor_local_hour(since, zone)
    nb = max(1, -(-(max(min(until, now + 1), since + 1) - base) // HOUR_MS))
    how_table = _hour_of_week(base, nb, zone)
    business = _business(BusinessCalendar.from_watchlist(watchlist), period, (base, since, until, now))
    first_response, resolution = _clocks(period, business, now)
    k = np.clip((rows.seen - base) // HOUR_MS, 0, nb - 1)
    groups = Groups(period, how_table[k], first_response, resolution, (t_fr, t_res))
    # The breakdowns on two threads (numpy drops the GIL), the rest on this one meanwhile.
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="stats") as pool:
        parts = pool.map(groups.breakdown, dims)
        volume = np.bincount(k, minlength=nb)
        backlog = _backlog(rows, base, nb, period.carried)
        total = groups.rows("all", np.zeros(rows.seen.size, dtype=np.int64), ["all"], keep_empty=True)[0]
        spend = [SpendRow(*row) for row in spend_for_period(conn, since, until)]
        breakdowns = dict(zip(dims, parts, strict=True))
    return Report(
        city=watchlist.city,
        timezone=watchlist.timezone,
        since=since,
        until=until,
        generated_at=now,
        target_first_response=t_fr,
        target_resolution=t_res,
        counts=_counts(rows, period.tallies),
        first_response=total.first_response,
        resolution=total.resolution,
        breakdowns=breakdowns,
        series_start=base,
        volume=volume.tolist(),
        backlog=backlog.tolist(),
        spend=spend,
    )


def _hour_of_week(base: int, nb: int, zone: ZoneInfo) -> Ints:
    """Each hour bucket's local hour of the week (Monday 00h is 0): its local time in hours since the epoch,
    a Thursday (3 days after a Monday), modulo a week."""
    local_ms = base + np.arange(nb, dtype=np.int64) * HOUR_MS + np.array(hourly_offsets(base, nb, zone), dtype=np.int64)
    how: Ints = (local_ms // HOUR_MS + 3 * 24) % (7 * 24)
    return how


def _business(calendar: BusinessCalendar, period: Period, instants: tuple[int, int, int, int]) -> Business:
    """The calendar's F over every instant the clocks will ask about (one origin for every F)."""
    base, since, until, now = instants
    rows = period.rows
    timeline = calendar.timeline(base, max(now, until))
    used = [rows.seen, rows.fr[rows.fr >= 0], rows.closed[rows.closed >= 0], rows.esc_at[rows.esc_at >= 0]]
    present = [a for a in used if a.size]
    timeline.ensure(min([int(a.min()) for a in present] + [base, since, now]))
    timeline.ensure(max([int(a.max()) for a in present] + [now, until]))
    business: Business = timeline.business_before_array
    return business


def _clocks(period: Period, business: Business, now: int) -> tuple[Clocks, Clocks]:
    """First response (first seen to first response) and resolution (standing escalation to closing)."""
    rows = period.rows
    esc_at, resolved = rows.esc_at, rows.resolved
    seen, fr, closed = rows.seen, rows.fr, rows.closed
    f_now = int(business(np.array([now], dtype=np.int64))[0])
    answered, is_closed = fr >= 0, closed >= 0
    waiting = ~answered & ~(rows.deleted >= 0) & ~is_closed
    a_rows = np.flatnonzero(answered)
    f_seen = business(seen)
    w_rows = np.flatnonzero(waiting)
    first_response = Clocks(
        a_rows,
        ceil_s(fr[a_rows] - seen[a_rows]),
        ceil_s(business(fr[a_rows]) - f_seen[a_rows]),
        w_rows,
        np.maximum(now - seen[w_rows], 0),
        np.maximum(f_now - f_seen[w_rows], 0),
    )
    r_rows = np.flatnonzero(resolved >= 0)
    o_rows = np.flatnonzero((esc_at >= 0) & ~is_closed)
    resolution = Clocks(
        r_rows,
        ceil_s(resolved[r_rows] - esc_at[r_rows]),
        ceil_s(business(resolved[r_rows]) - business(esc_at[r_rows])),
        o_rows,
        np.maximum(now - esc_at[o_rows], 0),
        np.maximum(f_now - business(esc_at[o_rows]), 0),
    )
    return first_response, resolution


def _backlog(rows: Columns, base: int, nb: int, carried: Ints) -> Ints:
    """How many wait at the end of each hour: a mention waits from first seen until its first response
    (or its deletion, or a close without response); it counts at the end of each hour it still waits."""
    seen, fr, closed, deleted = rows.seen, rows.fr, rows.closed, rows.deleted
    answered, is_deleted = fr >= 0, deleted >= 0
    end = np.full(seen.size, np.iinfo(np.int64).max // 2, dtype=np.int64)
    end[answered] = np.where(is_deleted & (deleted < fr), deleted, fr)[answered]
    deleted_unanswered = ~answered & is_deleted
    closed_unanswered = ~answered & ~is_deleted & (closed >= 0)
    end[deleted_unanswered] = deleted[deleted_unanswered]
    end[closed_unanswered] = closed[closed_unanswered]
    ks = np.clip((seen - base - 1) // HOUR_MS, 0, nb)
    ke = np.clip((end - base - 1) // HOUR_MS, 0, nb)
    counted = ke > ks
    diff = np.bincount(ks[counted], minlength=nb + 1) - np.bincount(ke[counted], minlength=nb + 1)
    _carry_over(carried, base, nb, diff)
    backlog: Ints = np.cumsum(diff[:nb])
    return backlog


def _carry_over(ends: Ints, base: int, nb: int, diff: Ints) -> None:
    """Mentions seen before the period and still waiting in it join the backlog from its first hour, until
    the end of the hour before the one they stopped waiting in."""
    ke = (ends - base - 1) // HOUR_MS
    waiting = (ends == NO_END) | (ke > 0)
    diff[0] += int(np.count_nonzero(waiting))
    diff -= np.bincount(np.minimum(ke[waiting & (ends != NO_END)], nb), minlength=nb + 1)


def _counts(rows: Columns, tallies: list[int]) -> dict[str, int]:
    *by_status, edited_n, to_us_n = tallies
    answered, is_deleted = rows.fr >= 0, rows.deleted >= 0
    return {
        "mentions": int(rows.seen.size),
        **{status: int(c or 0) for status, c in zip(("new", "escalated", "done", "dismissed"), by_status, strict=True)},
        "edited": int(edited_n),
        "deleted": int(np.count_nonzero(is_deleted)),
        "deleted_before_response": int(np.count_nonzero(~answered & is_deleted)),
        "closed_without_response": int(np.count_nonzero(~answered & ~is_deleted & (rows.closed >= 0))),
        "to_us": int(to_us_n),
    }


def _dimensions(by: Iterable[str] | None) -> tuple[str, ...]:
    if by is None:
        return DIMENSIONS
    names = [n.strip() for item in by for n in item.split(",") if n.strip()]
    unknown = [n for n in names if n not in DIMENSIONS]
    if unknown:
        raise ValueError(f"unknown breakdown {', '.join(unknown)}: choose from {', '.join(DIMENSIONS)}")
    return tuple(dict.fromkeys(names))
