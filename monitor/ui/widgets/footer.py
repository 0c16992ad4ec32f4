"""The desk's footer: Textual's, without the keys it leaves behind at each recompose."""

from __future__ import annotations

from textual.widgets import Footer


class DeskFooter(Footer):
    async def recompose(self) -> None:
        """Textual's Footer data-binds each key it composes to its own `compact`, and forgets a key's binding
        only when `compact` changes, which it never does here. So every recompose (each dialog opened or
        closed) kept the keys it replaced alive, ~2,500 objects a dialog: the heap, and with it each full
        collection and the keys' latency, grew all shift (issue 13). Touching `compact` lets Textual drop
        the bindings of the keys removed."""
        await super().recompose()
        self.mutate_reactive(Footer.compact)
