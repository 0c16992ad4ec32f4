"""A broken watchlist names file, line and what was expected; never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from monitor.config import ConfigError, load_watchlist
from tests.conftest import ROOT

GOOD = """\
city: Toulouse
sources:
  - name: demo
    type: demo
terms:
  - name: ville
    keywords: [Toulouse]
"""


def load_text(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "watchlist.yaml"
    path.write_text(text, encoding="utf-8")
    return load_watchlist(path)


def error_for(tmp_path: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_text(tmp_path, text)
    return info.value


def test_shipped_watchlist_loads_into_typed_objects() -> None:
    w = load_watchlist(ROOT / "watchlist.yaml")
    assert w.city == "Toulouse Métropole"
    assert [s.type for s in w.sources] == ["demo"]
    assert w.targets.first_response.total_seconds() == 3600
    assert {s.id for s in w.services} >= {"voirie", "proprete", "eau"}
    assert any(t.use == "followup" for t in w.templates)
    assert w.business_hours.holidays_country == "FR"


def test_minimal_watchlist_gets_defaults(tmp_path: Path) -> None:
    w = load_text(tmp_path, GOOD)
    assert w.database == tmp_path / "monitor.db"
    assert "spam" in w.dismiss_reasons


def test_bad_yaml_syntax_names_the_line(tmp_path: Path) -> None:
    err = error_for(tmp_path, GOOD + "  - name: [unclosed\n")
    assert err.line == 8
    assert "YAML syntax error" in str(err)
    assert str(err).startswith(f"{tmp_path / 'watchlist.yaml'}:8:")


def test_wrong_type_names_the_line_and_what_was_expected(tmp_path: Path) -> None:
    err = error_for(tmp_path, GOOD.replace("city: Toulouse", "city: [Toulouse, Blagnac]"))
    assert err.line == 1
    assert "expected text" in str(err)


def test_unknown_key_is_named_with_its_line(tmp_path: Path) -> None:
    err = error_for(tmp_path, GOOD + "sorces: []\n")
    assert err.line == 8
    assert "unknown key 'sorces'" in str(err)
    assert "sources" in err.expected


def test_unknown_key_inside_a_term(tmp_path: Path) -> None:
    err = error_for(tmp_path, GOOD.replace("    keywords: [Toulouse]", "    keywords: [Toulouse]\n    keyword: x"))
    assert err.line == 8
    assert "unknown key 'keyword' in a term" in str(err)


def test_missing_section_is_named(tmp_path: Path) -> None:
    err = error_for(tmp_path, "city: Toulouse\nterms:\n  - name: a\n    keywords: [a]\n")
    assert err.line == 1
    assert "missing key 'sources'" in str(err)


def test_bad_duration_names_the_line(tmp_path: Path) -> None:
    err = error_for(tmp_path, GOOD + "targets:\n  first_response: soon\n")
    assert err.line == 9
    assert "'soon' is not a duration" in str(err)
    assert "30m" in err.expected


def test_bad_regex_names_the_line(tmp_path: Path) -> None:
    err = error_for(tmp_path, GOOD + "  - name: bad\n    patterns: ['rue (de']\n")
    assert err.line == 9
    assert "invalid regular expression" in str(err)


def test_unknown_source_type_lists_the_known_ones(tmp_path: Path) -> None:
    err = error_for(tmp_path, GOOD.replace("type: demo", "type: twitter"))
    assert err.line == 4
    assert "demo" in err.expected


def test_bad_business_hours(tmp_path: Path) -> None:
    err = error_for(tmp_path, GOOD + "business_hours:\n  monday: 18:00-08:00\n")
    assert err.line == 9


@pytest.mark.parametrize(
    "text",
    [GOOD + "  - name: [unclosed\n", GOOD + "sorces: []\n", ""],
    ids=["syntax", "unknown-key", "empty"],
)
def test_cli_reports_config_errors_with_status_2_and_no_traceback(tmp_path: Path, text: str) -> None:
    path = tmp_path / "watchlist.yaml"
    path.write_text(text, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "check", "--watchlist", str(path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith(f"monitor: {path}:")


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    err = error_for_path(tmp_path / "nope.yaml")
    assert "file not found" in str(err)


def error_for_path(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_watchlist(path)
    return info.value


def test_an_unquoted_date_is_read_as_text(tmp_path: Path) -> None:
    w = load_text(tmp_path, GOOD + "business_hours:\n  monday: '08:00-17:00'\n  extra_holidays: [2026-12-26]\n")
    assert w.business_hours.extra_holidays == ("2026-12-26",)
