"""`?`: the keys, generated from the bindings (so remapped keys show as remapped)."""

from __future__ import annotations

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


class ReadingScreen(ModalScreen[None]):
    """A page to read and close: a title, a body, a hint; j/k scroll, Esc or q closes."""

    BINDINGS = [
        Binding("escape,q", "close", "Close", id="page.close"),
        Binding("j", "scroll_down", show=False, id="page.down"),
        Binding("k", "scroll_up", show=False, id="page.up"),
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


class HelpScreen(ReadingScreen):
    BINDINGS = [Binding("question_mark", "close", "Close", id="help.close")]
    TITLE_TEXT = "Keys"
    HINT = "Esc or ? closes. Remap any key by id under `keys:` in watchlist.yaml."

    def __init__(self, rows: list[tuple[str, str, str]]) -> None:
        super().__init__()
        self.rows = rows

    def body(self) -> RenderableType:
        table = Table(box=None, expand=True, show_header=True, header_style="bold")
        table.add_column("key", no_wrap=True)
        table.add_column("action")
        table.add_column("id (for keys: in watchlist.yaml)", style="dim")
        for key, description, binding_id in self.rows:
            table.add_row(Text(key, style="bold"), Text(description), Text(binding_id))
        if log_path := getattr(self.app, "log_path", None):
            table.caption = Text(f"This app's log: {log_path}", style="dim")
        return table


def binding_rows(groups: list[list[Binding]], keymap: dict[str, str]) -> list[tuple[str, str, str]]:
    rows, seen = [], set()
    for bindings in groups:
        for b in bindings:
            if not b.id or b.id in seen:
                continue
            seen.add(b.id)
            keys = keymap.get(b.id, b.key)
            label = ", ".join(Binding(k.strip(), "").key_display or k.strip() for k in keys.split(","))
            rows.append((label, b.description or b.action.replace("_", " "), b.id))
    return rows
