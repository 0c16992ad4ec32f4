"""`?`: the keys, generated from the bindings (so remapped keys show as remapped)."""

from __future__ import annotations

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.keys import format_key
from textual.screen import ModalScreen
from textual.widgets import Static


class ReadingScreen(ModalScreen[None]):
    """A page to read and close: a title, a body, a hint; j/k, arrows, space/b scroll, Esc or q closes."""

    BINDINGS = [
        Binding("escape,q", "close", "Close", id="page.close"),
        Binding("j,down", "scroll_down", show=False, id="page.down"),
        Binding("k,up", "scroll_up", show=False, id="page.up"),
        Binding("space,pagedown", "page(1)", show=False, id="page.next"),
        Binding("b,pageup", "page(-1)", show=False, id="page.previous"),
        Binding("g,home", "scroll_home", show=False, id="page.top"),
        Binding("G,end", "scroll_end", show=False, id="page.bottom"),
    ]
    TITLE_TEXT = ""
    HINT = "Esc closes."

    def body(self) -> RenderableType:
        raise NotImplementedError

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="dialog", classes="help"):
            yield Static(Text(self.TITLE_TEXT, style="bold"))
            yield Static(self.body())
            yield Static(Text(self.HINT, style="dim"))

    def action_close(self) -> None:
        self.dismiss(None)

    def action_scroll_down(self) -> None:
        self.query_one(VerticalScroll).scroll_down()

    def action_scroll_up(self) -> None:
        self.query_one(VerticalScroll).scroll_up()

    def action_page(self, step: int) -> None:
        box = self.query_one(VerticalScroll)
        box.scroll_relative(y=step * max(1, box.scrollable_content_region.height - 1), animate=False)

    def action_scroll_home(self) -> None:
        self.query_one(VerticalScroll).scroll_home(animate=False)

    def action_scroll_end(self) -> None:
        self.query_one(VerticalScroll).scroll_end(animate=False)


class HelpScreen(ReadingScreen):
    BINDINGS = [Binding("question_mark", "close", "Close", id="help.close")]
    TITLE_TEXT = "Keys"
    HINT = "Esc or ? closes. Remap any key by id under `keys:` in watchlist.yaml."

    def __init__(self, rows: list[tuple[str, str, str]], notes: str = "") -> None:
        super().__init__()
        self.rows = rows
        self.notes = notes

    def body(self) -> RenderableType:
        table = Table(box=None, expand=True, show_header=True, header_style="bold")
        table.add_column("key", no_wrap=True)
        table.add_column("action")
        table.add_column("id (for keys: in watchlist.yaml)", style="dim")
        for key, description, binding_id in self.rows:
            table.add_row(Text(key, style="bold"), Text(description), Text(binding_id))
        caption = [self.notes] if self.notes else []
        if log_path := getattr(self.app, "log_path", None):
            caption.append(f"This app's log: {log_path}")
        if caption:
            table.caption = Text("\n".join(caption), style="dim")
        return table


def key_display(key: str) -> str:
    """A key as people type it: `/` and `?`, not `slash` and `question_mark`."""
    return {"enter": "Enter", "escape": "Esc"}.get(key) or format_key(key)


def binding_rows(groups: list[list[BindingType]], keymap: dict[str, str]) -> list[tuple[str, str, str]]:
    rows, seen = [], set()
    for bindings in groups:
        for b in bindings:
            if not isinstance(b, Binding) or not b.id or b.id in seen:  # a tuple binding has no id to remap
                continue
            seen.add(b.id)
            keys = keymap.get(b.id, b.key)
            label = ", ".join(key_display(k.strip()) for k in keys.split(","))
            rows.append((label, b.description or b.action.replace("_", " "), b.id))
    return rows
