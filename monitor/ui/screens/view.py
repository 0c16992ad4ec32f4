"""`v`: the selected mention full screen, to read a long post, its history and deliveries without a mouse."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from monitor.ui.screens.help import ReadingScreen
from monitor.ui.widgets.detail import MentionDetail


class MentionView(ReadingScreen):
    HINT = "j/k or arrows scroll · space/b page · g/G top/end · Esc or q back"

    def __init__(self, shown: dict[str, Any]) -> None:
        super().__init__()
        self.shown = shown  # the arguments of MentionDetail.show, as the desk's detail panel had them

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="dialog", classes="view"):
            yield MentionDetail(id="view-detail")
            yield Static(Text(self.HINT, style="dim"))

    def on_mount(self) -> None:
        self.query_one("#view-detail", MentionDetail).show(**self.shown)
