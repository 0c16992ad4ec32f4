"""A fuzzer on the watchlist: whatever is changed, `monitor check` says ok (0) or one located line (2).

It mutates the shipped watchlist the way the fuzzing of issue 9 did (scalars, nesting, patterns,
durations, templates, keys, lines dropped or doubled) and runs the CLI's own `check` in process.
A traceback fails the test; a hang is stopped by pytest-timeout. Small and derandomized for CI.
"""

from __future__ import annotations

import contextlib
import io
import re
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.cli import main
from tests.conftest import ROOT

BASE = (ROOT / "watchlist.yaml").read_text(encoding="utf-8")
LINES = BASE.splitlines()
# Lines holding `key: value` (or `- key: value`): the places a scalar can be swapped.
VALUE_LINES = [i for i, line in enumerate(LINES) if re.match(r"^\s*(- )?[\w.]+: \S", line)]
NASTY = [
    "0x10", "1:30", "99999999999999999999", "1000000000d", "9" * 5000, "-1", "0", "010", "1_000", "1e400",
    ".inf", "-.inf", ".nan", "0x7f", "1:30.5", "~", "''", "yes", "2025-13-45", "2025-07-14", "XX", "FR",
    "'(a+)+$'", "'(?i)x'", "'(?P<p0>a)'", "'(a'", "'{author.x}'", "'{author:>999999999}'", "'{0}'", "'{'",
    "[", "]", "{", "}", "&a x", "*a", "*undefined", "!!python/object:os.system x", "!!binary aGk=",
    "'" + "x" * 501 + "'", "'\x1f'", "|\n  block", ">-", "- a", "? a", "%", "@", "`", "\t", "'\\x1b[2J'",
    "\"\\u202e\"", "[a, [b, [c]]]", "{a: 1}",
]  # fmt: skip
BINDING_IDS = ["reply", "dismiss", "quit", "help", "down", "dialog.send", "dialog.cancel", "pane.next", "nope"]
KEYS = ["d", "r", "R", "q", "?", "question_mark", "j", "escape", "tab", "ctrl+s", "enter", "", "a,b", "ctrl+c"]
REGEX_CHARS = "a()|*+?[]{}\\^$.<>=!:Pp01i-wsd "
DURATION_CHARS = "0123456789dhms: x.-_"

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
scalar = st.one_of(st.sampled_from(NASTY), text.map(lambda t: "'" + t.replace("'", "''") + "'"), text)


@st.composite
def mutation(draw: st.DrawFn, lines: list[str]) -> None:
    kind = draw(st.sampled_from(["scalar", "nest", "pattern", "duration", "template", "keys", "drop", "double"]))
    if kind in ("scalar", "nest"):
        i = draw(st.sampled_from([j for j in VALUE_LINES if j < len(lines)] or [0]))
        head = lines[i].split(":", 1)[0] + ":"
        if kind == "scalar":
            value = draw(scalar)
        else:
            opening, closing = draw(st.sampled_from([("[", "]"), ("{a: ", "}"), ("- ", "")]))
            depth = draw(st.sampled_from([1, 2, 5, 19, 20, 21, 60, 100_000]))
            value = opening * depth + "x" + closing * depth
        lines[i] = head + " " + value
    elif kind == "pattern":
        pattern = draw(st.text(st.sampled_from(REGEX_CHARS), min_size=1, max_size=20))
        lines.append("  - name: fuzz\n    patterns: ['" + pattern.replace("'", "''") + "']")
        lines.insert(lines.index("ignore:"), lines.pop())  # inside `terms:`, which precedes `ignore:`
    elif kind == "duration":
        value = draw(st.one_of(st.text(st.sampled_from(DURATION_CHARS), max_size=25), st.sampled_from(NASTY)))
        lines[lines.index("  first_response: 1h")] = "  first_response: " + value
    elif kind == "template":
        body = draw(st.text(st.sampled_from("{}author_nme.x[0]!r:>9 city"), max_size=25))
        lines.append("  - id: fuzz\n    text: '" + body.replace("'", "''") + "'")
        lines.insert(lines.index("dismiss_reasons: [spam, off-topic, duplicate, no action needed, abusive, other]"),
                     lines.pop())  # fmt: skip
    elif kind == "keys":
        remaps = draw(st.lists(st.tuples(st.sampled_from(BINDING_IDS), st.sampled_from(KEYS)), min_size=1, max_size=3))
        lines[lines.index("keys: {}")] = "keys:\n" + "".join(f"  {k}: '{v}'\n" for k, v in remaps)
    elif lines:
        i = draw(st.integers(0, len(lines) - 1))
        if kind == "drop":
            del lines[i]
        else:
            lines.insert(i, lines[i])


@st.composite
def watchlists(draw: st.DrawFn) -> str:
    lines = list(LINES)
    for _ in range(draw(st.integers(1, 3))):
        try:
            draw(mutation(lines))
        except ValueError:  # an anchor line (such as `keys: {}`) was already changed: skip this one
            continue
    return "\n".join(lines) + "\n"


@settings(
    max_examples=200, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)  # fmt: skip
@given(watchlists())
def test_check_answers_ok_or_one_located_line_whatever_the_watchlist(source: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "watchlist.yaml"
        path.write_text(source, encoding="utf-8")
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["check", "-w", str(path)])
        if code == 0:
            assert ": ok — " in out.getvalue()
        else:
            assert code == 2
            assert re.fullmatch(rf"monitor: {re.escape(str(path))}:\d+: [^\n]+\n", err.getvalue()), err.getvalue()
