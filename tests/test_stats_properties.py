"""Property tests: random action logs, written through the real store, against invariants and an oracle
computed straight from the log (the first reply, escalation or dismissal of each mention)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.core.business import BusinessCalendar
from monitor.core.models import Priority
from monitor.db.store import StoreError
from monitor.reports.stats import Clock, compute, percentile
from tests.fakes_stats import DESK_HOURS, MIN, Desk, paris, write_watchlist

BASE = paris(2025, 7, 10, 6, 0)  # a Thursday: the logs run over a weekend and 14 July
KINDS = ("reply", "escalate", "dismiss", "resolve", "note", "reopen")
PAYLOADS = {
    "reply": {"text": "Merci"}, "escalate": {"service": "voirie", "note": ""}, "dismiss": {"reason": "spam"},
    "resolve": {"note": ""}, "note": {"text": "vu"}, "reopen": {},
}  # fmt: skip

action = st.tuples(
    st.sampled_from(KINDS),
    st.integers(0, 36 * 60 * 60_000),  # milliseconds after the previous step (rounding matters)
    st.sampled_from(("alice", "bruno", "chloé")),
    st.sampled_from(("voirie", "eau", "")),
)
mention = st.fixed_dictionaries(
    {
        "seen": st.integers(0, 6 * 24 * 3_600_000),  # milliseconds after BASE
        "source": st.sampled_from(("mastodon", "bluesky")),
        "terms": st.sampled_from((("voirie",), ("eau", "voirie"), ("eau",))),
        "priority": st.sampled_from(list(Priority)),
        "actions": st.lists(action, max_size=6),
        "deleted_after": st.none() | st.integers(0, 48 * 60),
    }
)


def check_clock(clock: Clock) -> None:
    for dist in (clock.calendar, clock.business):
        if dist.n:
            assert 0 <= dist.median <= dist.p90 <= dist.p95 <= dist.max
            assert sum(dist.histogram) == dist.n
            assert 0 <= dist.within <= dist.n
        else:
            assert dist.median is None and dist.max is None
        assert dist.late_open <= clock.open
    # Business time never exceeds calendar time, row by row, so order statistic by order statistic.
    if clock.calendar.n:
        assert clock.business.median <= clock.calendar.median
        assert clock.business.p90 <= clock.calendar.p90
        assert clock.business.max <= clock.calendar.max
    if clock.open:
        assert 0 <= clock.oldest_open_business <= clock.oldest_open


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mention, min_size=1, max_size=10))
def test_random_action_logs_keep_every_invariant(log):
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        watchlist = write_watchlist(directory, hours=DESK_HOURS, first_response="1h", resolution="8h")
        desk = Desk(directory / "monitor.db")
        calendar = BusinessCalendar.from_watchlist(watchlist)
        expected_c, expected_b = [], []
        try:
            for m in log:
                seen = BASE + m["seen"]
                mid = desk.mention(seen, source=m["source"], terms=m["terms"], priority=m["priority"])
                t, first = seen, None
                for kind, delay, operator, service in m["actions"]:
                    t += delay
                    payload = dict(PAYLOADS[kind], service=service) if kind == "escalate" else PAYLOADS[kind]
                    try:
                        desk.act(mid, kind, t, operator, **payload)
                    except StoreError:
                        continue  # a reopen with nothing to undo
                    if first is None and kind in ("reply", "escalate", "dismiss"):
                        first = t
                if m["deleted_after"] is not None:
                    desk.delete(mid, seen + m["deleted_after"] * MIN)
                if first is not None:
                    expected_c.append(-(-(first - seen) // 1000))
                    expected_b.append(-(-calendar.between(seen, first) // 1000))
            now = BASE + 30 * 24 * 60 * MIN
            r = compute(desk.conn, watchlist, since=BASE, until=BASE + 7 * 24 * 60 * MIN, now=now)
        finally:
            desk.close()

    c = r.counts
    assert c["mentions"] == len(log)
    assert c["new"] + c["escalated"] + c["done"] + c["dismissed"] == c["mentions"]
    fr = r.first_response
    unanswered = c["deleted_before_response"] + c["closed_without_response"]
    assert fr.calendar.n + fr.open + unanswered == c["mentions"]
    # The oracle: percentiles of the first responses read straight from the log.
    expected_c.sort()
    expected_b.sort()
    assert fr.calendar.n == len(expected_c)
    assert fr.calendar.median == percentile(expected_c, 50)
    assert fr.calendar.p90 == percentile(expected_c, 90)
    assert fr.business.median == percentile(expected_b, 50)
    assert fr.business.max == (expected_b[-1] if expected_b else None)
    for clock in (fr, r.resolution):
        check_clock(clock)
    for dim, rows in r.breakdowns.items():
        for row in rows:
            check_clock(row.first_response)
            check_clock(row.resolution)
        total = sum(row.mentions for row in rows)
        if dim in ("source", "term", "priority", "hour", "weekday"):
            assert total == c["mentions"], dim
        elif dim == "operator":
            assert total == fr.calendar.n
    assert sum(r.volume) == c["mentions"]
    assert min(r.backlog) >= 0


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 100_000), max_size=60),
    st.lists(st.integers(-1, 3), min_size=60, max_size=60),
    st.none() | st.integers(0, 100_000),
)
def test_a_groups_distribution_read_at_its_positions_is_that_of_its_own_values(values, groups, target):
    """A breakdown reads each group's durations where they stand in the clock's sorted values (clocks.
    _partition): the figures are those of the group's values gathered on their own."""
    import numpy as np

    from monitor.reports.clocks import _partition
    from monitor.reports.figures import dist

    ordered = np.sort(np.array(values, dtype=np.int64))
    codes = np.array(groups[: ordered.size], dtype=np.int8)
    for complete in (False, True):
        g = codes if not complete else np.maximum(codes, 0)
        for i, at in enumerate(_partition(g, 4, complete)):
            assert at is not None
            assert dist(ordered, target, 2, at) == dist(ordered[g == i], target, 2)
    assert _partition(np.zeros(ordered.size, dtype=np.int8), 1, True) == [None]


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 30_000), st.integers(1, 40), st.integers(0, 2**32 - 1))
def test_a_groups_positions_found_by_blocks_are_those_a_scan_finds(n, n_groups, seed):
    """Ranks and cuts across many blocks of 4,096 positions (monitor.reports.positions), against a scan."""
    import numpy as np

    from monitor.reports.figures import dist
    from monitor.reports.positions import split

    rng = np.random.default_rng(seed)
    codes = rng.integers(-1, n_groups, n).astype(np.int8)
    values = np.sort(rng.integers(0, 100_000, n))
    cuts = [0, 1, 4095, 4096, 4097, n // 2, n - 1, n]
    for code, group in enumerate(split(codes, n_groups)):
        assert dist(values, 900, 1, group) == dist(values[codes == code], 900, 1)
        wanted = np.flatnonzero(codes == code)
        assert group.size == wanted.size
        for rank in {0, wanted.size // 2, wanted.size - 1} if wanted.size else ():
            assert group[rank] == wanted[rank]
        assert group.searchsorted(np.array(cuts)).tolist() == np.searchsorted(wanted, cuts).tolist()
        assert group.searchsorted(n // 3) == np.searchsorted(wanted, n // 3)
