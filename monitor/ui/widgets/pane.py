"""A pane: a bounded window of mentions of one status, drawn with the Line API.

Only the lines on screen are rendered, into fixed-width columns (nothing is measured per cell). The window's
bookkeeping is in `window.py`; rows past it stay in SQLite, and the pane asks the desk for them with a
`PageWanted` message (a page turned, or the window topped up after rows left it).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from monitor.core.incidents import IncidentSummary
from monitor.core.models import OPEN_STATUSES, MentionRow, Priority, Status
from monitor.core.timeutil import fmt_age, fmt_duration
from monitor.ui.widgets.incident import incident_cells, row_mark
from monitor.ui.widgets.window import WINDOW, Window, sort_key

__all__ = ["WINDOW", "MentionTable", "sort_key"]

PRIORITY_MARK = {
    Priority.URGENT: Text("!!", style="bold red"),
    Priority.HIGH: Text("! ", style="yellow"),
    Priority.NORMAL: Text("  "),
    Priority.LOW: Text("· ", style="dim"),
}
NETWORK_SHORT = {"mastodon": "mastdn", "bluesky": "bsky", "feed": "feed", "demo": "demo"}
COLUMNS = ("prio", "source", "author", "age", "term", "text")
FIXED_WIDTHS = (3, 7, 14, 5, 9)  # priority, source, author, age, term; the text takes the rest
PAD = 1  # blank cells each side of a column


class MentionTable(ScrollView, can_focus=True, inherit_bindings=False):
    """Rows keyed by mention id; `apply` adds, updates and removes a batch in one pass."""

    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False, id="down"),
        Binding("k", "cursor_up", "Up", show=False, id="up"),
        Binding("g", "scroll_top", "Top", show=False, id="top"),
        Binding("G", "scroll_bottom", "Bottom", show=False, id="bottom"),
        # As in less and vi: a screen at a time; at the window's edge, the next or previous window.
        # Not ctrl+b as in less: it is the tmux prefix (keycheck.TAKEN).
        Binding("pagedown", "page_down", "Page down (next window at the end)", show=False, id="page.down"),
        Binding("pageup", "page_up", "Page up (previous window at the top)", show=False, id="page.up"),
        Binding("down", "cursor_down", "Down", show=False),
        Binding("up", "cursor_up", "Up", show=False),
        Binding("home", "scroll_top", "Top", show=False),
        Binding("end", "scroll_bottom", "Bottom", show=False),
    ]
    COMPONENT_CLASSES = {"mention-table--header", "mention-table--cursor"}
    DEFAULT_CSS = """
    MentionTable {
        overflow-x: hidden;  /* the text column takes what the fixed ones leave: nothing to scroll to */
        background: $surface;
        color: $foreground;
        &:focus { background-tint: $foreground 5%; }
        & > .mention-table--header { text-style: bold; background: $panel; color: $foreground; }
        &:ansi > .mention-table--header { background: ansi_bright_blue; color: ansi_default; }
        & > .mention-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        &:focus > .mention-table--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
            text-style: $block-cursor-text-style;
        }
    }
    """

    class RowHighlighted(Message):
        """The selection moved to another mention (or to none)."""

        def __init__(self, table: MentionTable, cursor_row: int) -> None:
            super().__init__()
            self.data_table = table
            self.cursor_row = cursor_row

        @property
        def control(self) -> MentionTable:
            return self.data_table

    class PageWanted(Message):
        """Read up to `limit` rows of the pane's query after `after` (None: from the start), then call
        `table.page_in(this message, rows)`: the desk reads under its refresh lock, so no change is missed."""

        def __init__(self, table: MentionTable, kind: Literal["fill", "next", "previous"],
                     after: MentionRow | None, limit: int, generation: int) -> None:  # fmt: skip
            super().__init__()
            self.table, self.kind, self.after, self.limit, self.generation = table, kind, after, limit, generation

    def __init__(self, status: Status, warning_ms: int, target_ms: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.status = status
        self.warning_ms = warning_ms
        self.target_ms = target_ms
        self.window = Window(status)
        self.total = 0  # rows of this status in the database (the widget holds a window of them)
        self.claimed: dict[int, str] = {}  # mention id -> the other operator replying to it
        # Incidents shown as one row: the row of their lead report stands for them (widgets/incident.py).
        self.groups: dict[int, IncidentSummary] = {}  # lead mention id -> its incident, counted in this pane
        self.titles: dict[int, str] = {}  # open incident id -> title, for the rows' suggestion marks
        self.cursor_row = 0
        self._now = 0
        self._shown_id: int | None = None  # the selection last announced by RowHighlighted
        self._generation = 0  # a reload makes pages asked for before it stale
        self._asking = False  # one page request at a time
        self._strips: LRUCache[tuple[Any, ...], Strip] = LRUCache(maxsize=400)  # lines drawn, as in Toolong

    # -- what the desk reads ------------------------------------------------------------------

    @property
    def mentions(self) -> dict[int, MentionRow]:
        """The window's rows by id."""
        return self.window.by_id

    @property
    def row_count(self) -> int:
        return len(self.window.rows)

    def ids(self) -> list[int]:
        """The window's mention ids, in the pane's order."""
        return [r.id for r in self.window.rows]

    def index_of(self, mention_id: int) -> int:
        return next(i for i, r in enumerate(self.window.rows) if r.id == mention_id)

    def selected_id(self) -> int | None:
        rows = self.window.rows
        return rows[self.cursor_row].id if 0 <= self.cursor_row < len(rows) else None

    def get_cell(self, row_key: str, column: str) -> Text:
        """What the pane draws in a column (one of COLUMNS) for the mention whose id is `row_key`."""
        return self._cells(self.window.by_id[int(row_key)])[COLUMNS.index(column)]

    def tab_label(self, count: int) -> str:
        """'New 8629 ↓8429': the status's count, and how many wait past the window (↑ those before it)."""
        label = f"{self.status.value.title()} {count}"
        if self.window.above:
            label += f" ↑{self.window.above}"
        beyond = self.window.beyond(count)
        return label + (f" ↓{beyond}" if beyond else "")

    # -- updates ------------------------------------------------------------------------------

    def load(self, rows: Iterable[MentionRow], now: int) -> None:
        """Replace the whole window with the query's first page (first load, filter change)."""
        self._generation += 1
        self._asking = False
        self.window.reset(list(rows))
        self._now = now
        self._settle(None, 0)

    def apply(self, upserts: Iterable[MentionRow], removals: Iterable[int], now: int) -> None:
        """One batch: remove leavers, update or add the rest, keep the window bounded, the selection kept."""
        selected, cursor = self.selected_id(), self.cursor_row
        self._now = now
        if self.window.merge(upserts, removals):
            self._settle(selected, cursor)
        if self.window.wants_fill():
            self._ask("fill")

    def page_in(self, request: PageWanted, rows: list[MentionRow] | None) -> None:
        """The desk's answer to a PageWanted (None: the read failed)."""
        self._asking = False
        if rows is None or request.generation != self._generation:
            return  # the window was reloaded meanwhile
        selected, cursor = self.selected_id(), self.cursor_row
        window = self.window
        if request.kind == "fill":
            if window.fill(rows, request.limit):
                self._settle(selected, cursor)
        elif request.kind == "next":
            if request.after is not None and window.turn_forward(rows, request.after):
                self._settle(None, 0)
        elif window.anchors:
            window.turn_back(rows)
            self._settle(None, len(window.rows) - 1)

    def regroup(self, rows: list[MentionRow], groups: dict[int, IncidentSummary]) -> None:
        """The page re-read with its incidents' fresh counts (their reports changed): the selected row, or
        the row of the selected incident, stays selected."""
        selected, cursor = self.selected_id(), self.cursor_row
        incident = self.groups[selected].incident.id if selected in self.groups else None
        self.groups = groups
        if incident is not None:
            selected = next((i for i, g in groups.items() if g.incident.id == incident), selected)
        self.window.replace(rows, self.window.size)
        self._settle(selected, cursor)

    def selected_incident(self) -> IncidentSummary | None:
        """The incident whose row is selected (None on a mention's own row)."""
        selected = self.selected_id()
        return self.groups.get(selected) if selected is not None else None

    def _ask(self, kind: Literal["fill", "next", "previous"]) -> None:
        if self._asking:
            return
        window = self.window
        if kind == "fill":
            after, limit = (window.rows[-1] if window.rows else None), window.size - len(window.rows)
            if after is None and window.anchors:
                after = window.anchors[-1]
        elif kind == "next":
            after, limit = window.rows[-1], window.size
        else:
            after, limit = (window.anchors[-2] if len(window.anchors) > 1 else None), window.size
        self._asking = True
        self.post_message(self.PageWanted(self, kind, after, limit, self._generation))

    def _settle(self, selected: int | None, cursor: int) -> None:
        """After the rows changed: keep the selected mention selected, else the cursor's place; scroll only as
        far as keeps it on screen (arrivals above stay in view as long as it does); announce; repaint."""
        rows = self.window.rows
        self.virtual_size = Size(self.size.width, len(rows) + 1)
        index = next((i for i, r in enumerate(rows) if r.id == selected), None) if selected is not None else None
        self.cursor_row = index if index is not None else max(0, min(cursor, len(rows) - 1))
        self._scroll_to_cursor()  # what the operator's next key acts on is never off screen
        self._announce()
        self.refresh()

    def tick(self, now: int) -> None:
        """Refresh the live age clocks of the rows on screen."""
        if self.status in OPEN_STATUSES and self.window.rows:
            self._now = now
            self.refresh()

    # -- keys ---------------------------------------------------------------------------------

    def _move(self, row: int) -> None:
        self.cursor_row = max(0, min(row, len(self.window.rows) - 1))
        self._scroll_to_cursor()
        self._announce()
        self.refresh()

    def _page_height(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def action_cursor_down(self) -> None:
        self._move(self.cursor_row + 1)

    def action_cursor_up(self) -> None:
        self._move(self.cursor_row - 1)

    def action_scroll_top(self) -> None:
        self._move(0)

    def action_scroll_bottom(self) -> None:
        self._move(len(self.window.rows) - 1)

    def action_page_down(self) -> None:
        if self.cursor_row < len(self.window.rows) - 1:
            self._move(self.cursor_row + self._page_height())
        elif self.window.rows and not self.window.complete:
            self._ask("next")

    def action_page_up(self) -> None:
        if self.cursor_row > 0:
            self._move(self.cursor_row - self._page_height())
        elif self.window.anchors:
            self._ask("previous")

    def _scroll_to_cursor(self) -> None:
        body = self._page_height()
        top = int(self.scroll_y)
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False, force=True)
        elif self.cursor_row >= top + body:
            self.scroll_to(y=self.cursor_row - body + 1, animate=False, force=True)

    def _announce(self) -> None:
        selected = self.selected_id()
        if selected != self._shown_id:
            self._shown_id = selected
            self.post_message(self.RowHighlighted(self, self.cursor_row))

    def on_resize(self) -> None:
        self.virtual_size = Size(self.size.width, len(self.window.rows) + 1)
        self.refresh()

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    # -- rendering ----------------------------------------------------------------------------

    def _widths(self) -> list[int]:
        width = self.scrollable_content_region.width
        fixed = sum(FIXED_WIDTHS) + 2 * PAD * (len(FIXED_WIDTHS) + 1)
        return [*FIXED_WIDTHS, max(10, width - fixed)]

    def _age_cell(self, row: MentionRow) -> Text:
        now = self._now
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

    def _cells(self, row: MentionRow) -> list[Text]:
        group = self.groups.get(row.id)
        if group is not None:
            mark = PRIORITY_MARK[group.priority].copy()
            if row.id in self.claimed:  # another operator writes to its reporters (claims cover every report)
                mark.append("✎", style="bold magenta")
            return [mark, *incident_cells(group, self._now - group.oldest_seen_at)]
        prio = PRIORITY_MARK[row.priority].copy()
        if row.id in self.claimed:  # another operator is writing to this citizen right now: the mark stays
            prio.append("✎", style="bold magenta")
        return [
            prio,
            Text(NETWORK_SHORT.get(row.network, row.network)),
            Text(row.author),
            self._age_cell(row),
            # Addressed to the city's own account (a mention, reply or quote), with or without a term.
            Text(f"→us {row.term}".strip() if row.to_us else row.term),
            self._text_cell(row),
        ]

    def _text_cell(self, row: MentionRow) -> Text:
        text = Text(row.first_line, style="strike dim" if row.deleted_at else "")
        likely = row.suggested_incident
        if likely is None or row.incident_id is not None or likely not in self.titles:
            return text
        return row_mark(likely, self.titles[likely]) + text  # a suggestion, not a link: `a` accepts it

    def _line(self, cells: list[Text], style: Style) -> Strip:
        line = Text(no_wrap=True, end="")
        for cell, width in zip(cells, self._widths(), strict=True):
            cell.truncate(width, overflow="ellipsis", pad=True)
            line.append(" " * PAD)
            line.append_text(cell)
            line.append(" " * PAD)
        segments = list(line.render(self.app.console))
        width = self.scrollable_content_region.width
        return Strip(segments, line.cell_len).crop_extend(0, width, None).apply_style(style)

    def render_line(self, y: int) -> Strip:
        base = self.rich_style
        if y == 0:  # the header stays put while the rows scroll under it
            age = "Age" if self.status in OPEN_STATUSES else "Resp"
            labels = [Text(s) for s in ("", "Source", "Author", age, "Term", "Text")]
            return self._line(labels, base + self.get_component_rich_style("mention-table--header"))
        index = int(self.scroll_y) + y - 1
        rows = self.window.rows
        if index >= len(rows):
            return Strip([Segment(" " * self.scrollable_content_region.width, base)])
        row, cursor = rows[index], index == self.cursor_row
        clock = self._age_cell(row)  # the one cell that changes on its own, with time
        if (group := self.groups.get(row.id)) is not None:
            clock = Text(fmt_age(self._now - group.oldest_seen_at))  # an incident's age is its oldest report's
        key = (row, clock.plain, str(clock.style), cursor, self.has_focus, self.claimed.get(row.id), self.size.width,
               group, self.titles.get(row.suggested_incident or 0))  # fmt: skip
        strip = self._strips.get(key)
        if strip is None:
            style = base + self.get_component_rich_style("mention-table--cursor") if cursor else base
            strip = self._strips[key] = self._line(self._cells(row), style)
        return strip

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()  # a new theme: every line is drawn again
