"""One country's holidays without loading every country the holidays package knows."""

from __future__ import annotations

import subprocess
import sys
from datetime import date

import holidays
import pytest

from monitor.core.holidaycal import country_holidays


@pytest.mark.parametrize(("country", "subdiv"), [("FR", None), ("FR", "57"), ("DE", "BY"), ("BE", None), ("CHE", "GE")])
def test_a_country_gives_the_days_the_package_gives(country, subdiv):
    ours, theirs = country_holidays(country, subdiv), holidays.country_holidays(country, subdiv=subdiv)
    days = [date.fromordinal(date(2024, 1, 1).toordinal() + i) for i in range(3 * 366)]
    assert [day in ours for day in days] == [day in theirs for day in days]
    assert any(day in ours for day in days)
    assert type(ours) is type(theirs)


def test_an_unknown_country_or_subdivision_is_refused_as_the_package_refuses_it():
    with pytest.raises(NotImplementedError):
        country_holidays("XX")
    with pytest.raises(NotImplementedError):
        country_holidays("FR", "nowhere")


def test_only_that_country_is_loaded():
    code = (
        "import sys\nfrom monitor.core.holidaycal import country_holidays\n"
        "country_holidays('FR')\n"
        "print(sorted(m for m in sys.modules if m.startswith('holidays.countries')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['holidays.countries.france']"


def test_the_country_codes_checked_without_holidays_are_the_registrys_two_letter_codes():
    # The watchlist's `holidays: FR` is accepted at start from this list, without importing the package: a
    # code listed here must be one the package has a calendar for, and the list must keep up with it.
    from holidays.registry import COUNTRIES

    from monitor.core.holidaycodes import COUNTRY_CODES

    names = {name for names in COUNTRIES.values() for name in names}
    assert COUNTRY_CODES <= names
    assert {n for n in names if len(n) == 2 and n.isupper()} == COUNTRY_CODES
