"""A broken watchlist names file, line and what was expected; never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from monitor.core.config import ConfigError
from monitor.networks import load_watchlist
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
        capture_output=True, text=True, timeout=120,  # a safety net: `check` exits by itself
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


# Issue 9, finding 13: values the fuzzer found that crashed the reader (traceback, exit 1) are located errors.
@pytest.mark.parametrize("value", ["0x10", "1:30", "99999999999999999999", "1000000000d", "-5", "9" * 5000])
def test_a_duration_in_another_base_or_out_of_range_is_a_located_error(tmp_path: Path, value: str) -> None:
    err = error_for(tmp_path, GOOD + f"targets:\n  first_response: {value}\n")
    assert err.line == 9
    assert "duration" in str(err)


def test_a_duration_up_to_a_year_still_reads(tmp_path: Path) -> None:
    w = load_text(tmp_path, GOOD + "targets:\n  first_response: 366d\n  warning: 90\n")
    assert w.targets.first_response.days == 366 and w.targets.warning.total_seconds() == 90 * 60


@pytest.mark.parametrize("value", [".inf", ".nan", "-.inf", "0x7f", "1e400", "1:30.5"])
def test_a_float_must_be_a_finite_decimal_number(tmp_path: Path, value: str) -> None:
    text = GOOD.replace("    type: demo\n", f"    type: demo\n    speed: {value}\n")
    err = error_for(tmp_path, text)
    assert err.line == 5
    assert "finite number" in str(err)


@pytest.mark.parametrize("value", ["1:30", "0x10", "010x", "99999999999999999999"])
def test_a_whole_number_in_another_base_or_out_of_range_is_a_located_error(tmp_path: Path, value: str) -> None:
    text = GOOD.replace(
        "  - name: demo\n    type: demo\n",
        f"  - name: sky\n    type: bluesky\n    handle: city.bsky.social\n    app_password_env: BSKY\n"
        f"    max_pages: {value}\n",
    )
    err = error_for(tmp_path, text)
    assert err.line == 7
    assert "number" in str(err)


@pytest.mark.parametrize("opening, closing", [("[", "]"), ("{a: ", "}"), ("- ", "")])
def test_nesting_100000_deep_is_a_located_error_not_a_recursion_error(
    tmp_path: Path, opening: str, closing: str
) -> None:
    depth = 100_000  # "- - - x" is block style, compact: each dash one level deeper
    err = error_for(tmp_path, GOOD + "ignore:\n  " + opening * depth + "x" + closing * depth + "\n")
    assert err.line == 9
    assert "nested too deep" in str(err)


def test_a_500_character_keyword_is_a_located_error(tmp_path: Path) -> None:
    err = error_for(tmp_path, GOOD + "  - name: long\n    keywords: [" + "x" * 500 + "]\n")
    assert err.line == 9
    assert "at most 100" in str(err)


@pytest.mark.parametrize("field", ["{author.x}", "{author[0]}", "{author.__class__}", "{0}", "{author:>99999}", "{x}"])
def test_a_template_field_other_than_a_plain_variable_is_refused_at_load(tmp_path: Path, field: str) -> None:
    err = error_for(tmp_path, GOOD + f"templates:\n  - id: t\n    text: 'Bonjour {field}'\n")
    assert err.line == 10
    assert "{author}" in str(err)  # says which variables exist


def test_a_template_that_slipped_past_the_check_renders_as_written_not_a_crash() -> None:
    from monitor.core.templates import render

    for text in ("{author.x} merci", "{author.x.y}", "{0}", "a } b"):
        assert render(text, {"author": "@a"}) == text


def test_every_variable_a_template_may_name_is_filled() -> None:
    from monitor.core.models import MentionRow, Priority, Status
    from monitor.core.templates import VARIABLES, variables

    row = MentionRow(
        7, "demo", "mastodon", "r1", "a", "A", "text", "https://x.example/1", "fr", None, None, ("ville",),
        Priority.NORMAL, Status.NEW, 0, 0, 0, None, None, None, 1,
    )  # fmt: skip
    assert tuple(variables(row, "Toulouse")) == VARIABLES


def test_an_unknown_holiday_country_is_a_located_error(tmp_path: Path) -> None:
    err = error_for(tmp_path, GOOD + "business_hours:\n  monday: '09:00-17:00'\n  holidays: XX\n")
    assert err.line == 10
    assert "no holiday calendar for 'XX'" in str(err)


def test_a_holiday_country_by_its_other_names_is_accepted(tmp_path: Path) -> None:
    # Two-letter codes are checked from a list (core/holidaycodes.py); the package's other names still work.
    for name in ("FR", "FRA", "France"):
        w = load_text(tmp_path, GOOD + f"business_hours:\n  monday: '09:00-17:00'\n  holidays: {name}\n")
        assert w.business_hours.holidays_country == name


def test_an_unknown_holiday_subdivision_is_a_located_error(tmp_path: Path) -> None:
    err = error_for(tmp_path, GOOD + "business_hours:\n  holidays: FR\n  subdivision: ZZ\n")
    assert err.line == 10


def test_an_impossible_extra_holiday_names_its_line(tmp_path: Path) -> None:
    err = error_for(tmp_path, GOOD + "business_hours:\n  extra_holidays:\n    - 2025-07-14\n    - 2025-13-45\n")
    assert err.line == 11
    assert "'2025-13-45' is not a date" in str(err)


def test_check_refuses_what_stats_would_refuse(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from monitor.cli import main

    path = tmp_path / "watchlist.yaml"
    path.write_text(GOOD + "business_hours:\n  holidays: XX\n", encoding="utf-8")
    assert main(["check", "-w", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{path}:9:" in err


@pytest.mark.parametrize(
    "keys, line, words",
    [
        ("  reply: d\n", 9, "reply on 'd' clashes with dismiss"),
        ("  note: r\n  reply: R\n  escalate: j\n", 11, "escalate on 'j' clashes with down"),  # the pane's own key
        ("  reply: q\n", 9, "clashes with quit"),  # the app's key, live on every screen
        ("  dialog.send: escape\n", 9, "clashes with dialog.cancel"),
        ("  replyy: R\n", 9, "unknown action id 'replyy'"),
        ("  page.up: ctrl+b\n", 9, "page.up on 'ctrl+b', which is the tmux prefix"),
        ("  reply: ctrl+m\n", 9, "which is enter"),
    ],
)
def test_a_key_remap_that_clashes_is_a_watchlist_error_naming_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], keys: str, line: int, words: str
) -> None:
    from monitor.cli import main

    path = tmp_path / "watchlist.yaml"
    path.write_text(GOOD + "keys:\n" + keys, encoding="utf-8")
    assert main(["check", "-w", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"monitor: {path}:{line}: ") and words in err and err.count("\n") == 1


def test_no_built_in_key_is_one_the_terminal_takes() -> None:
    """tmux's and screen's prefixes, and the controls that arrive as tab, enter, backspace and escape."""
    from monitor.ui.screens.keycheck import scopes, taken

    assert {screen: taken(bindings) for screen, bindings in scopes().items() if taken(bindings)} == {}


def test_swapped_keys_do_not_clash(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from monitor.cli import main

    path = tmp_path / "watchlist.yaml"
    path.write_text(GOOD + "keys:\n  reply: d\n  dismiss: r\n  help: '?'\n", encoding="utf-8")
    assert main(["check", "-w", str(path)]) == 0, capsys.readouterr().err


def test_the_core_reads_source_options_through_the_source_kinds_it_is_given(tmp_path: Path) -> None:
    """The core knows no network: the caller passes the kinds of source, and each reads its own options."""
    from dataclasses import dataclass
    from datetime import timedelta

    from monitor.core import config

    @dataclass(frozen=True)
    class Echo:
        option_keys: tuple[str, ...] = ("word",)
        default_interval: timedelta = timedelta(seconds=7)

        @property
        def parse_options(self):  # type: ignore[no-untyped-def]
            return lambda fields, node: fields["word"].str().upper()

    path = tmp_path / "watchlist.yaml"
    path.write_text(GOOD.replace("type: demo", "type: echo\n    word: hello"), encoding="utf-8")
    (spec,) = config.load_watchlist(path, {"echo": Echo()}).sources
    assert (spec.type, spec.options, spec.poll_interval) == ("echo", "HELLO", timedelta(seconds=7))
    with pytest.raises(ConfigError, match=r"watchlist.yaml:4: unknown value 'demo' — expected one of echo"):
        path.write_text(GOOD, encoding="utf-8")
        config.load_watchlist(path, {"echo": Echo()})


def test_template_uses_and_service_targets_are_typed_and_checked(tmp_path: Path) -> None:
    from monitor.core.config import TargetType, TemplateUse

    extra = """\
services:
  - id: voirie
    name: Voirie
    targets: [{type: open311, url: "https://311.example/api", service_code: "pothole"}]
templates:
  - id: merci
    text: Merci {author}
  - id: fixed
    use: followup
    text: C'est réparé, {author}.
"""
    w = load_text(tmp_path, GOOD + extra)
    assert [t.use for t in w.templates] == [TemplateUse.REPLY, TemplateUse.FOLLOWUP]
    assert w.services[0].targets[0].type is TargetType.OPEN311
    error = error_for(tmp_path, GOOD + extra.replace("use: followup", "use: later"))
    assert (error.line, error.problem) == (16, "unknown value 'later'")
    assert error.expected == "one of reply, followup, acknowledge"
    error = error_for(tmp_path, GOOD + extra.replace("type: open311", "type: fax"))
    assert error.problem == "unknown value 'fax'" and error.expected == "one of apprise, webhook, open311"
