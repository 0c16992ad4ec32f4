"""Business time: opening hours per weekday in Europe/Paris, French public holidays, DST and midnight.

Every expected value is worked out by hand in the comments, in Paris wall-clock time.
"""

from __future__ import annotations

from datetime import date, time
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from monitor.core.business import BusinessCalendar
from monitor.core.config import BusinessHours
from tests.fakes_stats import DESK_HOURS, HOUR, MIN, NINE_TO_FIVE, PARIS, paris, write_watchlist


def calendar_for(tmp_path, hours, **kw) -> BusinessCalendar:
    return BusinessCalendar.from_watchlist(write_watchlist(tmp_path, hours=hours, **kw))


def test_hootsuite_example_friday_1645_plus_30_minutes_breaches_monday_0915(tmp_path):
    # Nine to five: 15 minutes left on Friday 4 July 2025, the other 15 on Monday 7 July from 09:00.
    cal = calendar_for(tmp_path, NINE_TO_FIVE)
    assert cal.add(paris(2025, 7, 4, 16, 45), 30 * MIN) == paris(2025, 7, 7, 9, 15)


def test_our_desk_opens_saturday_morning_so_the_same_target_falls_on_saturday(tmp_path):
    # Our Friday closes at 17:00 (15 min used), Saturday opens 09:00: deadline Saturday 09:15.
    cal = calendar_for(tmp_path, DESK_HOURS)
    assert cal.add(paris(2025, 7, 4, 16, 45), 30 * MIN) == paris(2025, 7, 5, 9, 15)


def test_fourteenth_of_july_is_skipped(tmp_path):
    # Friday 11 July 2025 16:45 + 30 min, nine to five: Monday 14 July is the Fête nationale, so
    # the remaining 15 minutes run on Tuesday 15 July from 09:00.
    cal = calendar_for(tmp_path, NINE_TO_FIVE)
    assert cal.is_holiday(date(2025, 7, 14))
    assert cal.add(paris(2025, 7, 11, 16, 45), 30 * MIN) == paris(2025, 7, 15, 9, 15)
    # Friday 16:45 -> Tuesday 10:00 is 15 min (Friday) + 60 min (Tuesday) of business time.
    assert cal.between(paris(2025, 7, 11, 16, 45), paris(2025, 7, 15, 10, 0)) == 75 * MIN


def test_weekend_and_holiday_with_our_desk_hours(tmp_path):
    # Friday 11 July 16:45 -> Tuesday 15 July 09:00 at our desk:
    # Friday 16:45-17:00 = 15 min, Saturday 09:00-12:00 = 180 min, Sunday closed,
    # Monday 14 July holiday, Tuesday 08:30-09:00 = 30 min: 225 min.
    cal = calendar_for(tmp_path, DESK_HOURS)
    assert cal.between(paris(2025, 7, 11, 16, 45), paris(2025, 7, 15, 9, 0)) == 225 * MIN


def test_a_mention_arriving_while_closed_starts_its_clock_at_the_next_opening(tmp_path):
    cal = calendar_for(tmp_path, DESK_HOURS)
    # Saturday 5 July 12:30 (after closing) -> next opening Monday 7 July 08:30.
    assert cal.next_opening(paris(2025, 7, 5, 12, 30)) == paris(2025, 7, 7, 8, 30)
    # Sunday 13 July -> Monday is 14 July -> Tuesday 15 July 08:30.
    assert cal.next_opening(paris(2025, 7, 13, 10, 0)) == paris(2025, 7, 15, 8, 30)
    # Open already: the instant itself.
    assert cal.next_opening(paris(2025, 7, 7, 10, 0)) == paris(2025, 7, 7, 10, 0)
    # Answered before the desk opens: no business time at all.
    assert cal.between(paris(2025, 7, 5, 12, 30), paris(2025, 7, 6, 20, 0)) == 0


def test_midnight_loses_no_minute(tmp_path):
    # Open 00:00-23:59 every weekday: Monday 23:00 -> Tuesday 01:00 is 59 min (Monday, the last
    # minute 23:59-24:00 is closed by the configuration) + 60 min (Tuesday from midnight) = 119 min.
    cal = calendar_for(tmp_path, dict.fromkeys(("monday", "tuesday"), "00:00-23:59"), holidays=None)
    assert cal.between(paris(2025, 7, 7, 23, 0), paris(2025, 7, 8, 1, 0)) == 119 * MIN
    # And a mention at 23:50 on a normal day waits for 08:30, not for "the next day".
    desk = calendar_for(tmp_path, DESK_HOURS)
    assert desk.between(paris(2025, 7, 8, 23, 50), paris(2025, 7, 9, 8, 40)) == 10 * MIN


def test_spring_forward_hour_does_not_exist(tmp_path):
    # Sunday 30 March 2025, clocks go 02:00 -> 03:00. A desk open 01:00-04:00 that night is open
    # 01:00 CET (00:00 UTC) to 04:00 CEST (02:00 UTC): two real hours, not three.
    hours = {"saturday": "09:00-10:00", "sunday": "01:00-04:00"}
    cal = calendar_for(tmp_path, hours, holidays=None)
    assert cal.between(paris(2025, 3, 29, 12, 0), paris(2025, 3, 31, 0, 0)) == 2 * HOUR
    # An ordinary desk across the same night: Saturday 29 March 11:00 -> Monday 31 March 09:00 at
    # our desk = 1 h (Saturday 11-12) + 30 min (Monday 08:30-09:00); calendar time is 45 h, not 46.
    desk = calendar_for(tmp_path, DESK_HOURS)
    assert desk.between(paris(2025, 3, 29, 11, 0), paris(2025, 3, 31, 9, 0)) == 90 * MIN
    assert paris(2025, 3, 31, 9, 0) - paris(2025, 3, 29, 11, 0) == 45 * HOUR


def test_fall_back_hour_happens_twice(tmp_path):
    # Sunday 26 October 2025, clocks go 03:00 -> 02:00. Open 01:00-04:00 that night = 01:00 CEST
    # (23:00 UTC Saturday) to 04:00 CET (03:00 UTC): four real hours.
    hours = {"sunday": "01:00-04:00"}
    cal = calendar_for(tmp_path, hours, holidays=None)
    assert cal.between(paris(2025, 10, 25, 12, 0), paris(2025, 10, 27, 0, 0)) == 4 * HOUR
    # Opening hours after the change keep their wall-clock time: Monday 27 October opens 08:30 CET.
    desk = calendar_for(tmp_path, DESK_HOURS)
    assert desk.next_opening(paris(2025, 10, 26, 12, 0)) == paris(2025, 10, 27, 8, 30)
    assert desk.opening(date(2025, 10, 27)) == (paris(2025, 10, 27, 8, 30), paris(2025, 10, 27, 18, 0))


def test_extra_holidays_and_subdivisions(tmp_path):
    cal = calendar_for(tmp_path, NINE_TO_FIVE, extra_holidays=("2025-07-15",))
    # 14 July (national) and 15 July (extra): Friday 11 July 16:45 + 30 min -> Wednesday 16 July 09:15.
    assert cal.add(paris(2025, 7, 11, 16, 45), 30 * MIN) == paris(2025, 7, 16, 9, 15)
    # Moselle (57) keeps Good Friday and Saint Stephen's day; the rest of France does not.
    moselle = BusinessCalendar(BusinessHours(holidays_country="FR", holidays_subdiv="57"), PARIS)
    national = BusinessCalendar(BusinessHours(holidays_country="FR"), PARIS)
    assert moselle.is_holiday(date(2025, 12, 26)) and not national.is_holiday(date(2025, 12, 26))
    assert moselle.is_holiday(date(2025, 4, 18)) and not national.is_holiday(date(2025, 4, 18))


def test_unknown_holiday_country_is_a_clear_error():
    with pytest.raises(ValueError, match="no holiday calendar"):
        BusinessCalendar(BusinessHours(days={0: (time(9), time(17))}, holidays_country="XX"), PARIS)


def test_without_opening_hours_business_time_is_calendar_time():
    cal = BusinessCalendar(BusinessHours(), ZoneInfo("Europe/Paris"))
    a, b = paris(2025, 7, 13, 10, 0), paris(2025, 7, 14, 18, 30)
    assert cal.between(a, b) == b - a
    assert cal.add(a, 30 * MIN) == a + 30 * MIN


def test_vectorised_timeline_agrees_with_the_scalar_one(tmp_path):
    # The statistics use F(t) on arrays; it must be the very function between() uses.
    cal = calendar_for(tmp_path, DESK_HOURS)
    start = paris(2025, 3, 20)
    timeline = cal.timeline(start, paris(2025, 11, 10))
    instants = np.arange(start, paris(2025, 11, 10), 7 * MIN + 13_001, dtype=np.int64)
    vector = timeline.business_before_array(instants)
    scalar = [timeline.business_before(int(t)) for t in instants]
    assert vector.tolist() == scalar
    # And differences match between() for a few random pairs, across both DST changes.
    rng = np.random.default_rng(3)
    for a, b in rng.choice(instants, size=(50, 2)):
        a, b = int(min(a, b)), int(max(a, b))
        assert int(vector[instants == b][0] - vector[instants == a][0]) == cal.between(a, b)


def test_timeline_grows_backwards_and_forwards_consistently(tmp_path):
    cal = calendar_for(tmp_path, DESK_HOURS)
    timeline = cal.timeline(paris(2025, 7, 10), paris(2025, 7, 11))
    later = timeline.between(paris(2025, 7, 11, 16, 45), paris(2025, 7, 15, 9, 0))
    earlier = timeline.between(paris(2025, 1, 3, 16, 45), paris(2025, 1, 6, 9, 0))
    # Friday 3 January 16:45 -> Monday 6 January 09:00: 15 + 180 (Saturday) + 30 = 225 min.
    assert (later, earlier) == (225 * MIN, 225 * MIN)
