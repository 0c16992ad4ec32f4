"""The Textual app: opens the store, runs the collector in the background, hosts the duty desk."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from textual import events, on, work
from textual.app import App
from textual.binding import Binding
from textual.worker import Worker, WorkerCancelled, WorkerFailed, WorkerState

from monitor.core.config import Watchlist
from monitor.core.models import ActionKind, Status
from monitor.core.paths import state_dir, stylesheet
from monitor.core.sanitize import clean_line
from monitor.core.timeutil import local_zone
from monitor.db import outbox
from monitor.db.api import Database
from monitor.db.engines import open_database
from monitor.db.faults import (
    CommitUnknown,
    StoreError,
    StoreGone,
    StoreLocked,
    StoreUnavailable,
    StoreUnreachable,
    first_cause,
)
from monitor.db.presence import HEARTBEAT_S, Presence
from monitor.db.writekey import ATTEMPT, Attempt
from monitor.engine import actions
from monitor.engine.collector import Collector, SourceStatus
from monitor.engine.delivery import DeliveryWorker
from monitor.engine.hangup import HangUp
from monitor.engine.leader import Job, run_as_leader
from monitor.networks import Source, SourceContext
from monitor.ui.messages import SourceStatusChanged
from monitor.ui.screens.keygate import KeyGate
from monitor.ui.screens.main import MainScreen

log = logging.getLogger(__name__)
T = TypeVar("T")
SAVE_SHOW_AFTER_S = 0.5  # a write slower than this shows "saving…" rather than nothing
SAVE_RETRY_S = 1.0  # between attempts on a locked database (each also waits SQLite's busy timeout)
SAVE_GIVE_UP_S = 120.0  # an accepted action pending longer than this is refused, loudly
WATCH_WITHIN_S = 5.0  # a watch for commits that hears nothing asks again after this
WATCH_SPACING_S = 0.05  # at most one wake of the panes per this, whatever the rate of commits
WATCH_RETRY_S = 1.0  # after the watch failed (the database is unavailable: the desk says so)


def freeze_startup_heap() -> None:
    """What start-up built (modules, styles, the desk's widgets) lives as long as the app: moved out of the
    collector's reach, so that a full collection walks only what came since. Before, each full collection
    walked ~100,000 objects and was the storm's worst key latency (issue 13). Once per process (it is
    global): the CLI's desk asks for it, not the tests' many apps in one process."""
    gc.collect()
    gc.freeze()


class MonitorApp(App[int]):
    CSS_PATH = [stylesheet()]  # from the installed package: a wheel carries styles/ as monitor/styles
    TITLE = "monitor"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = [
        Binding("q", "quit", "Quit", id="quit"),
        Binding("ctrl+p", "command_palette", "Commands", show=False, id="palette"),
    ]

    def __init__(
        self,
        watchlist: Watchlist,
        db_path: str | Path,
        operator: str,
        speed: float = 1.0,
        collect: bool = True,
        read_only: bool = False,
        context: SourceContext | None = None,
        sources: list[Source] | None = None,
        dry_run: bool | None = None,
    ) -> None:
        super().__init__()
        if self.console.color_system in ("standard", "windows"):
            self.theme = "ansi-dark"  # 16 colours: the terminal's own palette, not approximations
        self.watchlist = watchlist
        self.db_path = db_path  # a SQLite file, or a postgresql:// URL (monitor.db.engines)
        self.operator = operator
        self.collect = collect
        self.read_only = read_only
        self.context = context or SourceContext(speed=speed, state_dir=state_dir(watchlist.state_dir))
        self.log_path: Path | None = None  # the app's own log, shown on the `?` screen (set by the CLI)
        self.freeze_heap = False  # the CLI's desk, one app per process: freeze_startup_heap after the first paint
        self._sources = sources
        self.zone = local_zone(watchlist.timezone)
        self.source_statuses: dict[str, SourceStatus] = {}
        self.store: Database
        self.collector: Collector | None = None
        # The demo sends nothing unless asked: dry-run is its default.
        self.dry_run = dry_run if dry_run is not None else all(s.type == "demo" for s in watchlist.sources)
        self.delivery: DeliveryWorker | None = None
        self.presence: Presence
        self.leading = False  # this process holds the collector lease
        self.fatal: BaseException | None = None  # why the app could not start; the CLI prints it in one line
        self.storage_state = ""  # what is wrong with the database now ("" when nothing is)
        self.pending_saves = 0  # accepted actions not yet committed (the database is locked)
        self.unsaved = 0  # actions still waiting when the desk closed: the CLI says so on exit
        self.closing = False
        self.save_give_up_s = SAVE_GIVE_UP_S
        self.fault = ""  # a failing database or network call, shown until the next refresh succeeds
        self.keys = KeyGate(self)
        self.painted = False  # the first screen is drawn (the footer's keys wait for it)

    async def on_event(self, event: events.Event) -> None:
        # Keys and pastes from the terminal are handled one at a time, in order (see screens/keygate.py).
        if isinstance(event, (events.Key, events.Paste)) and not event.is_forwarded and self.keys.take(event):
            return
        await super().on_event(event)

    def keys_idle(self) -> bool:
        return self.keys.idle()

    async def on_mount(self) -> None:
        # Start-up allocates much and frees little: no collection until the first screen is drawn (a tenth
        # of the start's CPU went to collections, a full one among them), then one (_painted).
        gc.disable()
        if self.watchlist.keys:
            self.set_keymap(self.watchlist.keys)
        await self._starting(self._start)

    async def _starting(self, step: Callable[[], Awaitable[None]]) -> None:
        try:
            await step()
        except Exception as exc:  # noqa: BLE001 - a start-up failure is one line from the CLI, not a traceback
            log.exception("start-up failed")
            self.fatal = exc
            self.exit(return_code=1)

    async def _start(self) -> None:
        self.store = await open_database(self.db_path)
        self.presence = Presence(self.store, self.operator)
        # An SSH session that drops sends SIGHUP: leave cleanly if possible, and in any case within seconds.
        self.hang_up = HangUp(self, self.db_path, self.presence.holder)
        self.hang_up.install()
        if self.collect:  # built now: a source that cannot be built (a missing file) stops the desk unpainted
            self.collector = Collector(
                self.watchlist, self.store, self.context, on_status=self._status, sources=self._sources
            )
            self.collector.fence = self.presence.fence()
        if not self.read_only:  # a supervisor's read-only desk may collect, but never sends
            self.delivery = DeliveryWorker(self.store, self.watchlist, self.context, dry_run=self.dry_run)
        await self.push_screen(MainScreen())
        self.call_after_refresh(self._painted)
        # The open pane first: presence, collecting and delivering start once it is on screen.
        self.call_after_refresh(self._start_duties)

    def _painted(self) -> None:
        """The first screen is drawn: the footer shows its keys, the garbage is collected once (the CLI's desk
        freezes what is left)."""
        self.painted = True
        self.refresh_bindings()
        for screen in self.screen_stack:
            if isinstance(screen, MainScreen):
                screen.painted()
        if self.freeze_heap:
            freeze_startup_heap()
        gc.enable()

    @work(group="duty", exit_on_error=False, name="joining")
    async def _start_duties(self) -> None:
        """A worker: the desk takes keys while the first heartbeat waits for a busy database."""
        await self._starting(self._join)

    async def _join(self) -> None:
        """Presence (who is on duty), then collecting and delivering."""
        if self.closing:  # quit as soon as painted (--smoke): its store is closing
            return
        try:
            await self.presence.heartbeat()
        except StoreUnavailable as exc:  # locked or full now: the desk still opens, shows the mentions, says so
            self.show_storage(exc)
        if self.closing:  # quit before the first beat answered: nothing more to start
            return
        self.set_interval(HEARTBEAT_S, self.heartbeat, name="heartbeat")
        if self.store.notifies:  # SQLite's wait_change only times out: its refresh tick is the watch
            self.watch_commits()
        # Two leases: one process collects, one delivers (the service usually holds both). An app started
        # with --no-collect never takes the collector lease, so it cannot keep a service from collecting.
        if self.collector is not None:
            self.run_duty("collector", self.collector.run)
        if self.delivery is not None:
            self.run_duty("delivery", self.delivery.run)

    async def on_unmount(self) -> None:
        gc.enable()  # quit (or failed) before the first screen was drawn
        self.closing = True
        self.unsaved = self.pending_saves
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
                if hasattr(self, "presence"):
                    await self.presence.leave()
            except StoreUnavailable as exc:  # leaving is best effort: the state was already on screen
                log.warning("could not record leaving: %s", exc)
            except Exception:  # claims and presence then expire as designed
                log.exception("could not record leaving")
            finally:
                await self.store.close()

    @work(group="duty", exit_on_error=False, name="watching for commits")
    async def watch_commits(self) -> None:
        """Another process's commit wakes the panes' refresh now rather than at its next tick (a store that
        `notifies`). The rev is the truth: a notification missed only waits for the tick."""
        seen = 0
        while not self.closing:
            try:
                seen = await self.store.wait_change(seen, WATCH_WITHIN_S)
            except StoreError as exc:  # shown as the refresh tick's would be; the heartbeat sees it clear
                self.failed("watching for commits", exc, loud=False)
                await asyncio.sleep(WATCH_RETRY_S)
                continue
            for screen in self.screen_stack:
                if isinstance(screen, MainScreen):
                    await screen.commit_seen(seen)
            await asyncio.sleep(WATCH_SPACING_S)

    @work(group="presence", exclusive=True, exit_on_error=False, name="heartbeat")
    async def heartbeat(self) -> None:
        """Also the database watch: a file deleted or replaced, locked or full shows within one beat."""
        try:
            self.store.check_file()
            await self.presence.heartbeat()
        except StoreUnavailable as exc:
            if not self.pending_saves or isinstance(exc, StoreGone):  # "saving…" says more than "locked"
                self.show_storage(exc)
            return
        if self.storage_state and not self.pending_saves:
            self.show_storage(None)

    def show_storage(self, problem: StoreUnavailable | str | None) -> None:
        """Keep what is wrong with the database in the title bar until it clears; a change is also notified."""
        if isinstance(problem, StoreUnavailable):
            text = problem.state.upper() + (": not saving anything" if problem is self.store.gone else "")
        else:
            text = problem or ""
        before, self.storage_state = self.storage_state, text
        if text == before:
            return
        if isinstance(problem, StoreUnavailable):
            self.notify(str(problem), title=text, severity="error", markup=False, timeout=10)
        elif not text and not before.startswith("saving"):
            self.notify("Database available again.", markup=False)
        for screen in self.screen_stack:
            if isinstance(screen, MainScreen):
                screen.title = f"monitor · {text}" if text else "monitor"

    @work(group="duty", exit_on_error=False)
    async def run_duty(self, lease: str, job: Job) -> None:
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
        status = message.status
        before = self.source_statuses.get(status.name)
        self.source_statuses[status.name] = status
        if before is None or (before.state, before.detail) != (status.state, status.detail):
            self._show_sources()  # a source failing or recovering shows at once, not at the next clock tick

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Background failures go to the one handler instead of ending the app."""
        if event.state is WorkerState.ERROR and event.worker.error is not None:
            self.failed(event.worker.name or "background work", event.worker.error)

    def failed(self, what: str, exc: BaseException, loud: bool = True) -> None:
        """The one place a failed database or network call becomes a notice, and a state kept on screen.

        The desk keeps running; the next refresh tick retries, and `recovered` clears the state.
        `loud=False` (timers) notifies only when the fault starts or changes, not on every tick.
        """
        cause = first_cause(exc)
        if isinstance(cause, StoreUnavailable):  # a state of the database: the title bar keeps it until it clears
            log.warning("%s failed: %s", what, cause)
            self.show_storage(cause)
            return
        text = clean_line(str(exc)) or type(exc).__name__  # an error may quote data: sanitised, never markup
        if loud or text != self.fault:  # a tick failing five times a second says so once
            log.error("%s failed: %r", what, exc, exc_info=exc)
            self.notify(f"{what}: {text} — retrying", severity="error", markup=False, timeout=10)
        self.fault = text
        self._show_sources()

    def recovered(self) -> None:
        if self.fault:
            self.fault = ""
            self.notify("The database answers again.", markup=False)
            self._show_sources()

    def _show_sources(self) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, MainScreen):
                screen.render_sources()

    async def act(
        self, mention_id: int, kind: ActionKind, payload: dict[str, Any], expect_status: Status | None = None
    ) -> bool:
        """Log an action and its status change in one transaction; a refusal becomes a notice."""
        if not self.writable():
            return False
        try:
            # The action and its outbox items (replies, escalations) are written in one transaction.
            await self._save(
                lambda: actions.act(
                    self.store, self.watchlist, mention_id, kind, self.operator, payload,
                    dry_run=self.dry_run, expect_status=expect_status,
                )
            )  # fmt: skip
        except CommitUnknown as exc:  # the operator must check, not act again: it may be there already
            self.notify(f"Maybe saved: {exc}", title="Check this action", severity="error", markup=False, timeout=15)
            return False
        except StoreUnavailable as exc:
            self.notify(f"Not saved: {exc}", title="Action refused", severity="error", markup=False, timeout=15)
            return False
        except StoreError as exc:
            self.notify(str(exc), severity="warning", markup=False)
            return False
        except Exception as exc:  # locked, full, gone: not a refusal, a fault the desk survives
            self.failed("action not saved", exc)
            return False
        self._wake_delivery()
        return True

    async def save(self, write: Callable[[], Awaitable[T]]) -> T:
        """An operator's write other than `act` (incidents): committed like an action, or raises; what it
        queued goes out now."""
        result = await self._save(write)
        self._wake_delivery()
        return result

    async def _save(self, write: Callable[[], Awaitable[T]]) -> T:
        """Commit what the operator did, or raise; never drop it silently.

        A slow write says "saving…" at once. While the database is locked (or its server cannot be reached)
        the action stays pending here, retried until it commits or `save_give_up_s` passes: a failed attempt
        wrote nothing, or (a COMMIT lost with the connection) its key makes the retry find it done. Any other
        fault (read-only, full, deleted) refuses it at once.
        """
        give_up = time.monotonic() + self.save_give_up_s
        self.pending_saves += 1
        waited = False
        key = Attempt().key  # every attempt under one key: a retry after a lost COMMIT is not made twice
        try:
            while True:
                if self.closing:
                    raise StoreUnavailable("the desk closed before the database took the action")
                keyed = ATTEMPT.set(Attempt(key))
                attempt = asyncio.ensure_future(write())  # the task takes the key with it
                ATTEMPT.reset(keyed)
                done, _ = await asyncio.wait({attempt}, timeout=SAVE_SHOW_AFTER_S)
                if not done:
                    waited = True
                    self.show_storage(f"saving {self.pending_saves} action(s)… (waiting for the database)")
                try:
                    result = await attempt
                except (StoreLocked, StoreUnreachable) as exc:  # locked, or a server restarting: wait it out
                    waited = True
                    if time.monotonic() >= give_up:
                        self.show_storage(exc)
                        raise
                    self.show_storage(f"saving {self.pending_saves} action(s)… ({exc.state})")
                    await asyncio.sleep(SAVE_RETRY_S)
                    continue
                except StoreUnavailable as exc:
                    self.show_storage(exc)
                    raise
                if waited:
                    self.notify("Saved.", markup=False)
                return result
        finally:
            self.pending_saves -= 1
            if waited and not self.pending_saves and self.storage_state.startswith("saving"):
                self.show_storage(None)

    async def retry_outbox(self, mention_id: int) -> int:
        """Failed deliveries of a mention go back to pending; the worker takes them now."""
        if not self.writable():
            return 0
        n = await self._refusable(outbox.Outbox(self.store).retry(mention_id))
        self._wake_delivery()
        return n

    async def cancel_outbox(self, mention_id: int) -> int:
        if not self.writable():
            return 0
        return await self._refusable(outbox.Outbox(self.store).cancel(mention_id))

    async def _refusable(self, write: Awaitable[int]) -> int:
        """A write the operator can simply redo: on a database fault, nothing is done and the notice says why."""
        try:
            return await write
        except StoreUnavailable as exc:
            self.show_storage(exc)
            self.notify(f"Not done: {exc}", severity="error", markup=False, timeout=15)
            return 0

    def writable(self) -> bool:
        """Whether actions are allowed; in read-only mode, says so (the one read-only guard)."""
        if self.read_only:
            self.notify("Read-only: no actions.", severity="warning", markup=False)
        return not self.read_only

    def _wake_delivery(self) -> None:
        """Something was queued: the deliverer (when it is this process) looks now, not at its next tick."""
        if self.delivery is not None:
            self.delivery.wake()
