"""The desk's footer: Textual's, recomposed once per burst of binding changes, without the keys it leaves
behind at each recompose."""

from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Footer


class DeskFooter(Footer):
    _recompose_waiting = False  # a recompose is scheduled for after the next refresh

    def bindings_changed(self, screen: Screen) -> None:
        """Textual schedules a recompose for each change of the bindings (a screen pushed, a widget focused,
        the app focused): five at start, each mounting and styling every key again, most before the first
        screen is drawn (issue 13). One recompose after the refresh reads the bindings as they are by then."""
        self._bindings_ready = True
        if self._recompose_waiting or not screen.app.app_focus:
            return
        if not getattr(screen.app, "painted", True):  # the desk's rows first: the app asks again once drawn
            return
        if self.is_attached and screen is self.screen:
            self._recompose_waiting = True
            self.call_after_refresh(self._recompose_now)

    async def _recompose_now(self) -> None:
        self._recompose_waiting = False  # a change from here on schedules another: this one may read too early
        await self.recompose()

    async def recompose(self) -> None:
        """Textual's Footer data-binds each key it composes to its own `compact`, and forgets a key's binding
        only when `compact` changes, which it never does here. So every recompose (each dialog opened or
        closed) kept the keys it replaced alive, ~2,500 objects a dialog: the heap, and with it each full
        collection and the keys' latency, grew all shift (issue 13). Touching `compact` lets Textual drop
        the bindings of the keys removed."""
        await super().recompose()
        self.mutate_reactive(Footer.compact)
