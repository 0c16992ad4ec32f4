"""Type-ahead: every key is handled, in order, by the widget that would have had it if typed slowly.

Textual does not wait for a key to be handled before it takes the next one. The app posts each key to the
focused widget's queue and moves on; the key then bubbles up the DOM through more queues, and the app's
own (non-priority) bindings run only when it comes back. So in a burst from the terminal (SSH, a paste):
- a `priority=True` binding (ctrl+s) runs while the keys typed before it still wait in the TextArea's queue;
- keys typed after `n` were already queued on the desk's table when `n` opened the dialog, and reach the
  desk's action keys (e, d, r, x, u) or a screen that is gone;
- a dialog's `focus()` and its mount happen later, so keys typed meanwhile go to whatever had focus;
- Enter after ctrl+t reaches the TextArea before the focus has moved to the template list.

The gate fixes this once for every dialog and screen: the app hands it every key (and paste); it lets one
through, follows it up the DOM with a barrier callback posted behind it in each queue, then waits until
what the key set off has settled (screens pushed or popped are mounted and focused, messages the key
posted are handled, and a worker the key started has finished or is waiting on a screen it opened).
Only then does the next key go through. A consequence that takes longer than HOLD_MAX_S (a stuck
database) stops holding the keyboard, so the desk can always be quit.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from textual import events

if TYPE_CHECKING:
    from textual.app import App
    from textual.dom import DOMNode
    from textual.message_pump import MessagePump
    from textual.worker import Worker

log = logging.getLogger(__name__)

HOLD_MAX_S = 20.0
POLL_S = 0.25  # how often a barrier stuck in a closing widget's queue is given up


class KeyGate:
    def __init__(self, app: App[Any]) -> None:
        self.app = app
        self._queue: asyncio.Queue[events.Event] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._releasing: events.Event | None = None
        self._busy = False
        self._held: dict[Worker[Any], int] = {}  # workers a key started -> screen depth when that key came
        self._screen_changed = asyncio.Event()
        self.handled = 0  # keys (and pastes) handled so far, with what they set off: a test waits on it

    def take(self, event: events.Event) -> bool:
        """True when the gate keeps the event, to hand it back to the app in its turn."""
        if event is self._releasing:
            return False
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="keygate")
            self.app.screen_change_signal.subscribe(self.app, lambda _: self._screen_changed.set(), immediate=True)
        self._queue.put_nowait(event)
        return True

    def idle(self) -> bool:
        """Every key given so far has been handled, with what it set off."""
        return self._queue.empty() and not self._busy

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        while True:
            event = await self._queue.get()
            self._busy = True
            try:
                async with asyncio.timeout(HOLD_MAX_S):
                    await self._handle(event)
            except TimeoutError:
                log.warning("key %r still settling after %.0f s: the next keys go through", event, HOLD_MAX_S)
            except Exception:
                log.exception("key gate")
            finally:
                self._busy = False
                self.handled += 1

    async def _handle(self, event: events.Event) -> None:
        app = self.app
        depth = len(app.screen_stack)
        before = set(app.workers)
        handed: asyncio.Future[DOMNode] = asyncio.get_running_loop().create_future()

        async def release() -> None:
            target = app.focused or app.screen  # where Textual sends it, unless a priority binding takes it
            self._releasing = event
            try:
                await app.on_event(event)
            finally:
                self._releasing = None
                if not handed.done():
                    handed.set_result(target)

        if not app.call_later(release):
            return  # the app is closing
        target = await handed
        await self._follow(target)  # the key itself, up the DOM as it bubbles: its bindings have run
        # Only workers started by the key itself, not those a timer starts meanwhile (a storm refreshing panes).
        self._track(before, depth)
        while True:
            stack, focused = list(app.screen_stack), app.focused
            self._screen_changed.clear()
            # What the key posted on its way (Input.Submitted, RowHighlighted, a dismiss and its callback),
            # and a screen pushed meanwhile: mounted, then focused by the app's queue.
            await self._follow(target)
            now = app.focused or app.screen
            if now is not target:
                await self._follow(now)
            if await self._wait_for_workers():
                continue
            if stack == list(app.screen_stack) and focused is app.focused:
                return

    async def _follow(self, node: DOMNode) -> None:
        """A barrier goes up from `node` to the app, posted behind whatever each queue holds: when it arrives,
        everything ahead of it (the key, as it bubbled) has been handled. Each hop posts the next itself."""
        arrived = asyncio.get_running_loop().create_future()
        at: list[MessagePump] = [node]

        def hop(pump: MessagePump) -> None:
            at[0] = pump
            parent = pump._parent
            if parent is None:
                if not arrived.done():
                    arrived.set_result(None)
            elif not parent.call_later(hop, parent):
                hop(parent)  # closing: nothing of the key waits there

        if not node.call_later(hop, node):
            hop(node)
        while not arrived.done():
            await asyncio.wait([arrived], timeout=POLL_S)
            if not arrived.done() and (at[0]._closing or at[0]._closed):  # removed with the barrier queued
                hop(at[0])

    def _track(self, before: set[Worker[Any]], depth: int) -> None:
        """Workers the key started (a reply's claim, then its dialog) hold the keys until they settle."""
        for worker in self.app.workers:
            if worker not in before and worker.node is not self.app and not worker.is_finished:
                self._held.setdefault(worker, depth)

    async def _wait_for_workers(self) -> bool:
        """Wait while a key's worker runs with no screen of its own open; True if one was waited for."""
        self._held = {w: d for w, d in self._held.items() if not w.is_finished}
        blocking = [w for w, d in self._held.items() if len(self.app.screen_stack) <= d]
        if not blocking:
            return False
        # asyncio.wait never cancels what it waits on (awaiting a worker's task from a task we then cancel would).
        tasks: list[asyncio.Future[Any]] = [w._task for w in blocking if w._task is not None]
        changed = asyncio.ensure_future(self._screen_changed.wait())
        try:
            await asyncio.wait([*tasks, changed], return_when=asyncio.FIRST_COMPLETED)
        finally:
            changed.cancel()
        return True
