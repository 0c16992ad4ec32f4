"""`monitor init`: write the commented sample watchlist."""

from __future__ import annotations

import argparse
from pathlib import Path

from monitor.cli.exits import EXIT_OK, UsageError
from monitor.core.paths import WATCHLIST_NAME, sample_watchlist

INIT_NEXT = """\
wrote {path}: a commented sample (the demo source, Toulouse's terms). Edit, for your city:
  city, timezone        its name and time zone
  terms, ignore         the words, hashtags and accounts to watch, and spam to drop
  sources               replace the demo with mastodon, bluesky or feed sources (README)
  services, templates   where escalations go, and canned replies
  business_hours        the desk's hours and public holidays
then check it: monitor check -w {path}
"""


def cmd_init(args: argparse.Namespace) -> int:
    path = Path(args.dir) / WATCHLIST_NAME
    if path.exists() and not args.force:
        raise UsageError(f"{path}: already exists (edit it, or --force to replace it with the sample)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(sample_watchlist(), encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: cannot write ({exc.strerror})") from exc
    print(INIT_NEXT.format(path=path), end="")
    return EXIT_OK
