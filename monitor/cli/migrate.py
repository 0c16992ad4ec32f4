"""`monitor migrate --from monitor.db --to postgresql://…`: move a desk's whole history to PostgreSQL."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from monitor.cli.exits import EXIT_OK, UsageError
from monitor.core.dburl import describe, is_database_url, url_problem


def cmd_migrate(args: argparse.Namespace) -> int:
    from monitor.db.pg.copy import move

    if not is_database_url(args.to):
        raise UsageError(f"--to {args.to}: expected a postgresql:// URL")
    problem = url_problem(args.to)
    if problem:
        raise UsageError(f"--to: {problem}")
    moved = asyncio.run(move(Path(args.source), args.to))
    copied = ", ".join(f"{n} {table}" for table, n in moved.counts.items())
    print(f"{args.source} -> {describe(args.to)}: {copied}; action log sha256 {moved.checksum} on both sides")
    return EXIT_OK
