"""A pane: a DataTable of mentions of one status, keyed by mention id, updated by batch diff."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from rich.text import Text
from textual._two_way_dict import TwoWayDict
from textual.binding import Binding
from textual.widgets import DataTable
from textual.widgets.data_table import CellKey, RowKey

from monitor.core.models import MentionRow, Priority, Status
from monitor.core.timeutil import fmt_age, fmt_duration
from monitor.db.store import OPEN_STATUSES

PRIORITY_MARK = {
    Priority.URGENT: Text("!!", style="bold red"),
    Priority.HIGH: Text("! ", style="yellow"),
    Priority.NORMAL: Text("  "),
    Priority.LOW: Text("· ", style="dim"),
}
NETWORK_SHORT = {"mastodon": "mastdn", "bluesky": "bsky", "feed": "feed", "demo": "demo"}
FIXED_WIDTHS = {"prio": 3, "source": 7, "author": 14, "age": 5, "term": 9}


class SortCell(Text):
    """A cell that carries its row's sort key, since DataTable.sort sees only cell values."""

    sort_key: tuple[Any, ...] = ()


def sort_key(row: MentionRow) -> tuple[Any, ...]:
    if row.status in OPEN_STATUSES:
        return (int(row.priority), row.first_seen_at, row.id)
    return (-row.status_at, -row.id)


class MentionTable(DataTable[Any]):
    """Rows are keyed by mention id; `apply` adds, updates and removes a batch in one pass."""

    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False, id="down"),
        Binding("k", "cursor_up", "Up", show=False, id="up"),
        Binding("g", "scroll_top", "Top", show=False, id="top"),
        Binding("G", "scroll_bottom", "Bottom", show=False, id="bottom"),
    ]

    def __init__(self, status: Status, warning_ms: int, target_ms: int, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self.status = status
        self.warning_ms = warning_ms
        self.target_ms = target_ms
        self.mentions: dict[int, MentionRow] = {}
        self.total = 0  # rows of this status in the database (the widget holds a window of them)
        self.claimed: dict[int, str] = {}  # mention id -> the other operator replying to it

    def on_mount(self) -> None:
        age_label = "Age" if self.status in OPEN_STATUSES else "Resp"
        for key, label in (("prio", ""), ("source", "Source"), ("author", "Author"), ("age", age_label),
                           ("term", "Term")):  # fmt: skip
            self.add_column(label, width=FIXED_WIDTHS[key], key=key)
        self.add_column("Text", width=self._text_width(), key="text")

    def _text_width(self) -> int:
        fixed = sum(FIXED_WIDTHS.values()) + 2 * self.cell_padding * (len(FIXED_WIDTHS) + 1)
        return max(20, (self.size.width or self.app.size.width) - fixed - 2)

    def on_resize(self) -> None:
        column = self.columns.get(self._column_key("text"))
        width = self._text_width()
        if column is not None and column.width != width:
            column.width = width
            self._require_update_dimensions = True
            self.refresh(layout=True)

    def _column_key(self, key: str) -> Any:
        return next((k for k in self.columns if k.value == key), None)

    # -- rendering ------------------------------------------------------------------------

    def _age_cell(self, row: MentionRow, now: int) -> Text:
        if self.status in OPEN_STATUSES:
            age = now - row.first_seen_at
            style = "bold red" if age >= self.target_ms else "yellow" if age >= self.warning_ms else ""
            if row.status is Status.ESCALATED:
                style = ""  # the clock that matters now is the service's
                age = now - row.status_at
            return Text(fmt_age(age), style=style)
        if row.first_response_at is None:
            return Text("—", style="dim")
        taken = row.first_response_at - row.first_seen_at
        return Text(fmt_duration(taken), style="red" if taken > self.target_ms else "")

    def _cells(self, row: MentionRow, now: int) -> list[Any]:
        mark = PRIORITY_MARK[row.priority]
        prio = SortCell(mark.plain, style=mark.style)
        if row.id in self.claimed:  # another operator is writing to this citizen right now: the mark stays
            prio.append("✎", style="bold magenta")
        prio.sort_key = sort_key(row)
        text_style = "strike dim" if row.deleted_at else ""
        return [
            prio,
            Text(NETWORK_SHORT.get(row.network, row.network), overflow="ellipsis", no_wrap=True),
            Text(row.author, overflow="ellipsis", no_wrap=True),
            self._age_cell(row, now),
            # Addressed to the city's own account (a mention, reply or quote), with or without a term.
            Text(f"→us {row.term}".strip() if row.to_us else row.term, overflow="ellipsis", no_wrap=True),
            Text(row.first_line, style=text_style, overflow="ellipsis", no_wrap=True),
        ]

    # -- updates --------------------------------------------------------------------------

    def selected_id(self) -> int | None:
        if not self.row_count:
            return None
        try:
            key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        except Exception:  # cursor out of range while rows change
            return None
        return int(key.value) if key.value is not None else None

    def load(self, rows: Iterable[MentionRow], now: int) -> None:
        """Replace the whole window (first load, filter change)."""
        self.clear()
        self.mentions = {}
        self.apply(rows, (), now)

    def apply(self, upserts: Iterable[MentionRow], removals: Iterable[int], now: int) -> None:
        """One batch: remove leavers, update or add the rest, then restore order and selection."""
        selected = self.selected_id()
        cursor_row = self.cursor_row
        self._remove_rows([i for i in removals if i in self.mentions])
        resort = False
        for row in upserts:
            key = str(row.id)
            if row.id in self.mentions:
                resort = resort or sort_key(self.mentions[row.id]) != sort_key(row)
                self.mentions[row.id] = row
                for column, cell in zip(("prio", "source", "author", "age", "term", "text"),
                                        self._cells(row, now), strict=True):  # fmt: skip
                    self.update_cell(key, column, cell)
            else:
                self.mentions[row.id] = row
                self.add_row(*self._cells(row, now), key=key)
                resort = True
        if resort:  # sorting re-renders every row: only when the order may have changed
            self.sort("prio", key=lambda cell: cell.sort_key)
        if selected is not None and selected in self.mentions:
            self.move_cursor(row=self.get_row_index(str(selected)), animate=False, scroll=False)
        elif self.row_count:
            self.move_cursor(row=min(cursor_row, self.row_count - 1), animate=False)

    def _remove_rows(self, ids: list[int]) -> None:
        """Remove many rows in one pass; DataTable.remove_row rebuilds its index on every call."""
        if not ids:
            return
        if len(ids) < 4:
            for i in ids:
                self.remove_row(str(i))
                del self.mentions[i]
            return
        gone = {RowKey(str(i)) for i in ids}
        for i in ids:
            del self.mentions[i]
        # Every key iterated is in _row_locations, so its index is never None.
        order = sorted(
            (k for k in self._row_locations if k not in gone), key=lambda k: cast(int, self._row_locations.get(k))
        )
        for key in gone:
            for column_key in self._data.get(key, {}):
                self._updated_cells.discard(CellKey(key, column_key))
            self.rows.pop(key, None)
            self._data.pop(key, None)
        self._row_locations = TwoWayDict({key: index for index, key in enumerate(order)})
        self._require_update_dimensions = True
        self._update_count += 1
        self.cursor_coordinate = self.cursor_coordinate
        self.refresh(layout=True)

    def tick(self, now: int) -> None:
        """Refresh the live age clocks of the rows on screen."""
        if self.status not in OPEN_STATUSES or not self.row_count:
            return
        first = max(0, int(self.scroll_y))
        last = min(self.row_count, first + self.size.height + 1)
        for index in range(first, last):
            key = self._row_locations.get_key(index)
            if key is None or key.value is None:
                continue
            row = self.mentions.get(int(key.value))
            if row is not None:
                self.update_cell(key, "age", self._age_cell(row, now))
