"""Child process for bench_desk: start the app (or a trivial app) headless, report time to first paint and RSS.

`trivial-tty` runs the trivial app in the terminal it was given (bench_desk's pty baseline) until it is quit.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

T0 = float(sys.argv[2])  # wall time just before the parent spawned us


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def report(kind: str, extra: dict[str, float]) -> None:
    print(json.dumps({"kind": kind, "first_paint_s": time.time() - T0, "rss_mb": rss_mb(), **extra}), flush=True)


def main() -> None:
    mode = sys.argv[1]
    if mode in ("trivial", "trivial-tty"):
        from textual.app import App
        from textual.widgets import Static

        class Trivial(App[None]):
            def compose(self):  # type: ignore[no-untyped-def]
                yield Static("hello")

            def on_mount(self) -> None:
                if mode == "trivial":
                    self.call_after_refresh(self._painted)

            def _painted(self) -> None:
                report("trivial", {})
                self.exit()

        Trivial().run(headless=mode == "trivial")
        return

    from textual.css.query import NoMatches

    from monitor.core.models import Status
    from monitor.networks import load_watchlist
    from monitor.ui.app import MonitorApp
    from monitor.ui.screens.main import MainScreen

    watchlist = load_watchlist(Path(sys.argv[3]))
    db = Path(sys.argv[4])

    class Probe(MonitorApp):
        # Textual calls on_mount of every class in the MRO: no super() call here.
        def on_mount(self) -> None:
            self.set_interval(0.01, self._check)

        def _check(self) -> None:
            screen = self.screen
            if not isinstance(screen, MainScreen):
                return
            try:
                rows = screen.pane(Status.NEW).row_count
            except NoMatches:  # the screen is pushed before its panes are mounted: wait for them
                return
            if rows:
                self.call_after_refresh(self._painted)

        def _painted(self) -> None:
            if getattr(self, "_done", False):
                return
            self._done = True
            report("app", {"rows": self.screen.pane(Status.NEW).row_count})  # type: ignore[attr-defined]
            self.exit()

    Probe(watchlist, db, "bench", collect=False).run(headless=True, size=(120, 40))


if __name__ == "__main__":
    main()
