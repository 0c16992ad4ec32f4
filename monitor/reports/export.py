"""`monitor export`: mentions or actions as JSON Lines or CSV, streamed row by row.

Rows come straight from an SQLite cursor and are written one at a time, so memory stays flat
whatever the size of the period. Times are ISO-8601 in UTC; text is written as stored (the csv module
quotes it), except that a CSV cell starting like a formula gets a leading ' (--raw-csv keeps it as is).
Mentions are selected by first_seen_at, actions by their time, both in [since, until).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import IO, Any

from monitor.core.models import TERM_SEP
from monitor.core.timeutil import iso_utc
from monitor.db.export import ACTION_COLUMNS, MENTION_COLUMNS
from monitor.db.reading import ReadConnection
from monitor.db.reading import export_rows as stored_rows
from monitor.reports.figures import priority_label

MENTION_FIELDS = (
    "id", "source", "network", "remote_id", "author", "author_name", "text", "url", "lang", "thread_id",
    "reply_to", "term", "terms", "priority", "status", "published_at", "first_seen_at", "status_at",
    "first_response_at", "first_response_by", "edited_at", "deleted_at",
)  # fmt: skip
ACTION_FIELDS = ACTION_COLUMNS
TIME_FIELDS = frozenset(
    {"published_at", "first_seen_at", "status_at", "first_response_at", "edited_at", "deleted_at", "at"}
)
# Fields that hold a list or an object: native in JSON Lines, JSON text in a CSV cell.
NESTED_FIELDS = frozenset({"terms", "payload"})


def _mention(row: tuple[Any, ...]) -> dict[str, Any]:
    stored = dict(zip(MENTION_COLUMNS, row, strict=True))
    out = {name: stored.get(name) for name in MENTION_FIELDS}  # the primary term next to the list
    terms = stored["terms"].split(TERM_SEP) if stored["terms"] else []
    out["terms"] = terms
    out["term"] = terms[0] if terms else ""
    out["priority"] = priority_label(stored["priority"])
    for name in TIME_FIELDS & out.keys():
        out[name] = iso_utc(out[name])
    return out


def _action(row: tuple[Any, ...]) -> dict[str, Any]:
    out = dict(zip(ACTION_COLUMNS, row, strict=True))
    out["at"] = iso_utc(out["at"])
    out["payload"] = json.loads(out["payload"]) if out["payload"] else {}
    return out


def rows(
    conn: ReadConnection,
    what: str,
    since: int | None = None,
    until: int | None = None,
    ids: Sequence[int] | None = None,
) -> Iterator[dict[str, Any]]:
    """The rows to export, one dict at a time, in id order (only `ids`, when given: a pane's rows)."""
    convert = _mention if what == "mentions" else _action
    for row in stored_rows(conn, what, since, until, ids):
        yield convert(row)


def write(
    conn: ReadConnection,
    what: str,
    fmt: str,
    out: IO[str],
    since: int | None = None,
    until: int | None = None,
    raw_csv: bool = False,
    ids: Sequence[int] | None = None,
) -> int:
    """Stream `what` to `out` as jsonl or csv; returns how many rows were written.

    CSV cells a spreadsheet would run as a formula get a leading ' unless `raw_csv` (see _inert)."""
    emit = _emitter(what, fmt, out, raw_csv)
    count = 0
    # Not through write_rows: a parameter would keep the cursor alive past its connection on a broken pipe.
    for row in rows(conn, what, since, until, ids):
        emit(row)
        count += 1
    return count


def write_rows(stored: Iterable[tuple[Any, ...]], what: str, fmt: str, out: IO[str], raw_csv: bool = False) -> int:
    """As `write`, for rows already read (a desk's pane, from either engine): the stored columns' tuples."""
    emit, convert = _emitter(what, fmt, out, raw_csv), _mention if what == "mentions" else _action
    count = 0
    for row in stored:
        emit(convert(row))
        count += 1
    return count


def _emitter(what: str, fmt: str, out: IO[str], raw_csv: bool) -> Callable[[dict[str, Any]], Any]:
    """What writes one row of `what` to `out` (a CSV's header is written at once)."""
    fields = MENTION_FIELDS if what == "mentions" else ACTION_FIELDS
    emit: Callable[[dict[str, Any]], Any]
    if fmt == "jsonl":

        def emit(row: dict[str, Any]) -> None:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")

    elif fmt == "csv":
        writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180
        writer.writerow(fields)

        def emit(row: dict[str, Any]) -> None:
            cells = [_cell(name, row[name]) for name in fields]
            writer.writerow(cells if raw_csv else [_inert(c) for c in cells])

    else:
        raise ValueError(f"unknown export format {fmt!r}: jsonl or csv")
    return emit


# What makes a spreadsheet read a cell as a formula (OWASP "CSV injection"); tab and CR hide one after them.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _inert(value: Any) -> Any:
    """A text cell a spreadsheet would evaluate (=HYPERLINK(…), @SUM…) starts with ' and stays text."""
    return "'" + value if isinstance(value, str) and value.startswith(_FORMULA_START) else value


def _cell(name: str, value: Any) -> Any:
    if name in NESTED_FIELDS:
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else value
