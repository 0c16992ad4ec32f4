"""A desk imports only the networks its watchlist names: what start-up never needs is never loaded.

Each check runs a fresh interpreter (a test process has imported everything already) and reads its
`sys.modules` after the real start-up path: the CLI, the watchlist, the app's first screen, the collector
building its sources and the delivery worker.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, write_watchlist

# Start the desk as `monitor --smoke` does (first screen, collector and delivery started), then build every
# source as the collector does, and print the modules this process loaded.
CHILD = """
import json, sys
from monitor.cli import main
from monitor.networks import SourceContext, build_source, load_watchlist

watchlist, db, smoke = sys.argv[1], sys.argv[2], sys.argv[3] == "smoke"
if smoke:
    assert main(["-w", watchlist, "--db", db, "--smoke"]) == 0
for spec in load_watchlist(watchlist).sources:
    build_source(spec, SourceContext())
print(json.dumps(sorted(sys.modules)))
"""

NETWORK_MODULES = (
    "httpx", "feedparser", "bs4", "soupsieve", "apprise",
    "monitor.networks.http", "monitor.networks.feed", "monitor.networks.targets",
    "monitor.networks.mastodon.source", "monitor.networks.mastodon.sender",
    "monitor.networks.bluesky.source", "monitor.networks.bluesky.sender",
)  # fmt: skip


def loaded(watchlist: Path, db: Path, smoke: bool = True) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(watchlist), str(db), "smoke" if smoke else "load"],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=True,
    )  # fmt: skip
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_the_demo_desk_imports_no_network_client_feed_parser_or_statistics(tmp_path: Path) -> None:
    modules = loaded(write_watchlist(tmp_path), tmp_path / "monitor.db")
    assert "monitor.ui.screens.main" in modules and "monitor.networks.demo" in modules  # the desk did start
    assert sorted(set(NETWORK_MODULES) & modules) == []
    assert "numpy" not in modules  # the statistics' (and the CSV export's) numpy waits for them


def test_the_desk_starts_without_the_modules_only_other_commands_need(tmp_path: Path) -> None:
    # Each is milliseconds at every start, before the first screen (issue 13): shell completion (shtab, and
    # with it importlib.metadata), the holiday calendars, HTTP dates (email), secrets' random names, the dialogs'
    # text area.
    modules = loaded(write_watchlist(tmp_path), tmp_path / "monitor.db")
    assert "monitor.ui.screens.main" in modules  # the desk did start
    left_out = {"shtab", "importlib.metadata", "holidays", "email.utils", "secrets", "textual.widgets._text_area"}
    assert sorted(left_out & modules) == []  # the text area: with the first dialog that writes


def test_a_holiday_country_is_checked_without_importing_holidays(tmp_path: Path) -> None:
    # The shipped watchlist names FR; its calendar (a tenth of a second) is loaded by statistics, not start-up,
    # and its code is checked from a list (core/holidaycodes.py), not the package's registry (0.07 s).
    modules = loaded(write_watchlist(tmp_path), tmp_path / "monitor.db", smoke=False)
    assert "monitor.core.config" in modules and "holidays" not in modules


def test_a_mastodon_watchlist_imports_mastodon_and_nothing_of_the_others(tmp_path: Path) -> None:
    path = tmp_path / "watchlist.yaml"
    path.write_text(
        "city: Toulouse\nterms:\n  - name: voirie\n    keywords: [travaux]\nsources:\n  - name: masto\n"
        "    type: mastodon\n    instance: https://mastodon.example\n    hashtags: [toulouse]\n",
        encoding="utf-8",
    )
    modules = loaded(path, tmp_path / "monitor.db", smoke=False)
    assert {"monitor.networks.mastodon.source", "httpx"} <= modules
    assert not {"feedparser", "monitor.networks.feed", "monitor.networks.bluesky.source"} & modules
