"""The header, whose clock shows the city's time (the watchlist's timezone), like every time on screen."""

from __future__ import annotations

from datetime import datetime, tzinfo

from rich.text import Text
from textual.app import ComposeResult, RenderResult
from textual.widgets import Header
from textual.widgets._header import HeaderClock, HeaderIcon, HeaderTitle


class CityClock(HeaderClock):
    def render(self) -> RenderResult:
        zone: tzinfo | None = getattr(self.app, "zone", None)
        return Text(datetime.now(zone).strftime(self.time_format))


class CityHeader(Header):
    def compose(self) -> ComposeResult:
        yield HeaderIcon().data_bind(Header.icon)
        yield HeaderTitle()
        yield CityClock().data_bind(Header.time_format)
