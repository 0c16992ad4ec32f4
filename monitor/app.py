"""The Textual app: opens the store, runs the collector in the background, hosts the duty desk."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from textual import events, on, work
from textual.app import App
from textual.binding import Binding
from textual.worker import Worker, WorkerCancelled, WorkerFailed, WorkerState

from monitor import outbox
from monitor.collector import Collector, SourceStatus
from monitor.config import Watchlist
from monitor.delivery.worker import DeliveryWorker
from monitor.hangup import HangUp
from monitor.leader import run_as_leader
from monitor.messages import SourceStatusChanged
from monitor.models import ActionKind, Status
from monitor.presence import HEARTBEAT_S, Presence
from monitor.screens.keygate import KeyGate
from monitor.screens.main import MainScreen
from monitor.sources import Source, SourceContext
from monitor.store import Store, StoreError
from monitor.timeutil import local_zone

log = logging.getLogger(__name__)
STYLES = Path(__file__).resolve().parent.parent / "styles"


class MonitorApp(App[int]):
    CSS_PATH = [STYLES / "app.tcss"]
    TITLE = "monitor"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = [
        Binding("q", "quit", "Quit", id="quit"),
        Binding("ctrl+p", "command_palette", "Commands", show=False, id="palette"),
    ]

    def __init__(
        self,
        watchlist: Watchlist,
        db_path: Path,
        operator: str,
        speed: float = 1.0,
        collect: bool = True,
        read_only: bool = False,
        context: SourceContext | None = None,
        sources: list[Source] | None = None,
        dry_run: bool | None = None,
    ) -> None:
        super().__init__()
        self.watchlist = watchlist
        self.db_path = db_path
        self.operator = operator
        self.collect = collect
        self.read_only = read_only
        self.context = context or SourceContext(speed=speed, state_dir=db_path.parent)
        self._sources = sources
        self.zone = local_zone(watchlist.timezone)
        self.source_statuses: dict[str, SourceStatus] = {}
        self.store: Store
        self.collector: Collector | None = None
        # The demo sends nothing unless asked: dry-run is its default.
        self.dry_run = dry_run if dry_run is not None else all(s.type == "demo" for s in watchlist.sources)
        self.delivery: DeliveryWorker | None = None
        self.presence: Presence
        self.leading = False  # this process holds the collector lease
        self.keys = KeyGate(self)

    async def on_event(self, event: events.Event) -> None:
        # Keys and pastes from the terminal are handled one at a time, in order (see screens/keygate.py).
        if isinstance(event, (events.Key, events.Paste)) and not event.is_forwarded and self.keys.take(event):
            return
        await super().on_event(event)

    def keys_idle(self) -> bool:
        return self.keys.idle()

    async def on_mount(self) -> None:
        if self.console.color_system in ("standard", "windows"):
            self.theme = "ansi-dark"  # 16 colours: the terminal's own palette, not approximations
        if self.watchlist.keys:
            self.set_keymap(self.watchlist.keys)
        self.store = await Store.open(self.db_path)
        self.presence = Presence(self.store, self.operator)
        # An SSH session that drops sends SIGHUP: leave cleanly if possible, and in any case within seconds.
        self.hang_up = HangUp(self, self.db_path, self.presence.holder)
        self.hang_up.install()
        await self.presence.heartbeat()
        self.set_interval(HEARTBEAT_S, self.heartbeat, name="heartbeat")
        await self.push_screen(MainScreen())
        if self.collect:
            self.collector = Collector(
                self.watchlist, self.store, self.context, on_status=self._status, sources=self._sources
            )
            self.collector.fence = self.presence.fence()
        if not self.read_only:  # a supervisor's read-only desk may collect, but never sends
            self.delivery = DeliveryWorker(self.store, self.watchlist, self.context, dry_run=self.dry_run)
        # Two leases: one process collects, one delivers (the service usually holds both). An app started
        # with --no-collect never takes the collector lease, so it cannot keep a service from collecting.
        if self.collector is not None:
            self.run_duty("collector", self.collector.run)
        if self.delivery is not None:
            self.run_duty("delivery", self.delivery.run)

    async def on_unmount(self) -> None:
        self.keys.close()
        if hasattr(self, "hang_up"):
            self.hang_up.uninstall()
        # Stop collecting and delivering before the store closes: the leader hands its lease back through it.
        for worker in self.workers.cancel_group(self, "duty"):
            try:
                await worker.wait()
            except (WorkerCancelled, WorkerFailed):
                pass
        if hasattr(self, "store"):
            try:
                await self.presence.leave()
            finally:
                await self.store.close()

    @work(group="presence", exclusive=True, exit_on_error=False, name="heartbeat")
    async def heartbeat(self) -> None:
        await self.presence.heartbeat()

    @work(group="duty", exit_on_error=False)
    async def run_duty(self, lease: str, job: Callable[[], Awaitable[None]]) -> None:
        """Run `job` only while this process holds `lease`; otherwise wait to take over."""
        on_change = self._leading if lease == "collector" else None
        await run_as_leader(self.presence, [job], on_change=on_change, name=lease)

    def _leading(self, leading: bool) -> None:
        self.leading = leading
        if leading and self.collector is not None:
            self.source_statuses = dict(self.collector.status)

    def _status(self, status: SourceStatus) -> None:
        self.post_message(SourceStatusChanged(status))

    @on(SourceStatusChanged)
    def _source_status(self, message: SourceStatusChanged) -> None:
        self.source_statuses[message.status.name] = message.status

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """One place where background failures become a visible notice instead of a crash."""
        if event.state is WorkerState.ERROR:
            log.error("worker %s failed: %r", event.worker.name, event.worker.error)
            self.notify(f"{event.worker.name}: {event.worker.error}", severity="error", markup=False, timeout=10)

    async def act(
        self, mention_id: int, kind: ActionKind, payload: dict[str, Any], expect_status: Status | None = None
    ) -> bool:
        """Log an action and its status change in one transaction; a refusal becomes a notice."""
        if not self._writable():
            return False
        try:
            # The action and its outbox items (replies, escalations) are written in one transaction.
            await outbox.act(
                self.store, self.watchlist, mention_id, kind, self.operator, payload,
                dry_run=self.dry_run, expect_status=expect_status,
            )  # fmt: skip
        except StoreError as exc:
            self.notify(str(exc), severity="warning", markup=False)
            return False
        self._wake_delivery()
        return True

    async def retry_outbox(self, mention_id: int) -> int:
        """Failed deliveries of a mention go back to pending; the worker takes them now."""
        if not self._writable():
            return 0
        n = await outbox.Outbox(self.store).retry(mention_id)
        self._wake_delivery()
        return n

    async def cancel_outbox(self, mention_id: int) -> int:
        if not self._writable():
            return 0
        return await outbox.Outbox(self.store).cancel(mention_id)

    def _writable(self) -> bool:
        if self.read_only:
            self.notify("Read-only: no actions.", severity="warning", markup=False)
        return not self.read_only

    def _wake_delivery(self) -> None:
        """Something was queued: the deliverer (when it is this process) looks now, not at its next tick."""
        if self.delivery is not None:
            self.delivery.wake()
