"""Typed messages from background work to the UI."""

from __future__ import annotations

from textual.message import Message

from monitor.engine.collector import SourceStatus


class SourceStatusChanged(Message):
    def __init__(self, status: SourceStatus) -> None:
        super().__init__()
        self.status = status
