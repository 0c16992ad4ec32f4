"""Time parsing: every timestamp from outside is read by monitor.core.timeutil, and nowhere else."""

from __future__ import annotations

import ast
import time
from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from monitor.core.timeutil import (
    EARLIEST,
    floor_local_hour,
    hourly_offsets,
    local,
    parse_date,
    parse_http_date,
    parse_iso,
    parse_utc_fields,
    remote_time,
    to_ms,
    utcnow,
)
from tests.conftest import ROOT

PARSERS = {"fromisoformat", "strptime", "parsedate", "parsedate_tz", "parsedate_to_datetime", "isoparse"}


def test_time_is_parsed_only_in_the_time_module() -> None:
    found = []
    for path in sorted((ROOT / "monitor").rglob("*.py")):
        if path == ROOT / "monitor" / "core" / "timeutil.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            name = getattr(node, "attr", None) or getattr(node, "id", None)
            if name in PARSERS:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}")  # type: ignore[attr-defined]
    assert found == []


def test_a_peers_json_time_is_read_bounded_or_none() -> None:
    assert remote_time("2025-07-14T08:30:00.123Z") == datetime(2025, 7, 14, 8, 30, 0, 123000, tzinfo=UTC)
    assert remote_time("2025-07-14T10:30:00+02:00") == datetime(2025, 7, 14, 8, 30, tzinfo=UTC)
    assert remote_time("2025-07-14T08:30:00") == datetime(2025, 7, 14, 8, 30, tzinfo=UTC)  # no offset: UTC
    assert remote_time("0001-01-01T00:00:00+01:00") == EARLIEST
    assert remote_time("9999-12-31T23:59:59Z") <= utcnow() + timedelta(days=1)  # type: ignore[operator]
    for junk in (None, "", "yesterday", 12, {"at": "2025-07-14"}):
        assert remote_time(junk) is None


def test_iso_as_written_keeps_a_missing_offset_visible() -> None:
    assert parse_iso(" 2025-07-14T08:30:00Z ") == datetime(2025, 7, 14, 8, 30, tzinfo=UTC)
    assert parse_iso("2025-07-14T08:30:00").tzinfo is None
    with pytest.raises(ValueError):
        parse_iso("14/07/2025")


def test_feed_time_fields_are_utc_and_bounded() -> None:
    fields = time.strptime("2025-07-14 08:30:05", "%Y-%m-%d %H:%M:%S")
    assert parse_utc_fields(fields) == datetime(2025, 7, 14, 8, 30, 5, tzinfo=UTC)
    assert parse_utc_fields((1, 1, 1, 0, 0, 0)) == EARLIEST
    with pytest.raises(ValueError):
        parse_utc_fields((2025, 2, 30, 0, 0, 0))
    with pytest.raises(TypeError):
        parse_utc_fields((2025, None, 1, 0, 0, 0))  # type: ignore[arg-type]


def test_an_http_date_is_aware_or_none() -> None:
    assert parse_http_date("Mon, 14 Jul 2025 08:30:00 GMT") == datetime(2025, 7, 14, 8, 30, tzinfo=UTC)
    assert parse_http_date("Mon, 14 Jul 2025 10:30:00 +0200") == datetime(
        2025, 7, 14, 10, 30, tzinfo=timezone(timedelta(hours=2))
    )
    for junk in ("soon", "", "Mon, 14 Jul 2025 08:30:00 -0000", "Mon, 99 Jul 99999 08:30:00 GMT"):
        assert parse_http_date(junk) is None, junk


def test_a_holiday_date_is_yyyy_mm_dd() -> None:
    assert parse_date("2025-07-14") == date(2025, 7, 14)
    with pytest.raises(ValueError):
        parse_date("14/07/2025")


@pytest.mark.parametrize("zone", ["Europe/Paris", "Asia/Kolkata", "Australia/Lord_Howe", "America/St_Johns", "UTC"])
def test_hourly_offsets_are_the_zones_offset_at_every_hour_across_its_changes(zone: str) -> None:
    tz = ZoneInfo(zone)
    base = floor_local_hour(to_ms(datetime(2024, 1, 1, 5, tzinfo=UTC)), tz)
    count = 2 * 366 * 24 + 7  # two years: every change of offset, and a last day cut short
    wanted = [int(local(base + k * 3_600_000, tz).utcoffset().total_seconds() * 1000) for k in range(count)]
    assert hourly_offsets(base, count, tz) == wanted
    assert hourly_offsets(base, 0, tz) == []
