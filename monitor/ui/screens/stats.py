"""`s`: live statistics for a supervisor: the numbers and three plots, refreshed every few seconds.

The figures are computed by monitor.reports.stats in a thread worker on its own connection (opened by the
database layer); the screen only changes widgets in the message handler. Every string that comes from data
is a rich Text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Static
from textual.worker import Worker, WorkerState, get_current_worker
from textual_plotext import PlotextPlot

from monitor.core.config import Watchlist
from monitor.core.timeutil import fmt_local, now_ms, start_of_local_day
from monitor.db.reading import ConnectionFactory, reader
from monitor.reports import stats
from monitor.reports.figures import Report
from monitor.reports.render import fmt_secs, fmt_share, fmt_usd, series_rows

REFRESH_S = 5.0
RETRY_S = 15.0
DAY_MS = 86_400_000
# Period keys: label, and how far back from now (None: since local midnight).
PERIODS: dict[str, tuple[str, int | None]] = {
    "today": ("today", None),
    "week": ("7 days", 7 * DAY_MS),
    "month": ("30 days", 30 * DAY_MS),
}
SPEND_ROWS = 2  # paid sources shown here; `monitor stats` lists them all
WIDTH = 78
HIST_SHORT = ("5m", "15m", "30m", "1h", "2h", "4h", "8h", "1d", "1d+")  # upper edges of HIST_LABELS


@dataclass(frozen=True)
class Snapshot:
    period: str
    report: Report


class StatsScreen(Screen[None]):
    """Statistics for today, 7 days or 30 days; Esc goes back to the desk."""

    BINDINGS = [
        Binding("escape,q", "close", "Back", id="stats.close"),
        Binding("t", "period('today')", "Today", id="stats.today"),
        Binding("w", "period('week')", "7 days", id="stats.week"),
        Binding("m", "period('month')", "30 days", id="stats.month"),
        Binding("r", "refresh_now", "Refresh", id="stats.refresh"),
    ]
    DEFAULT_CSS = """
    StatsScreen { layout: vertical; }
    StatsScreen #stats-title { height: 1; padding: 0 1; background: $boost; }
    StatsScreen #stats-numbers { height: auto; max-height: 9; padding: 0 1; }
    StatsScreen #stats-plots { height: 1fr; min-height: 8; }
    StatsScreen PlotextPlot { width: 1fr; height: 1fr; }
    """

    class Computed(Message):
        """A report is ready (posted from the worker thread)."""

        def __init__(self, snapshot: Snapshot) -> None:
            super().__init__()
            self.snapshot = snapshot

    def __init__(self, db: str | Path | ConnectionFactory, watchlist: Watchlist, period: str = "today") -> None:
        super().__init__()
        self.connect: ConnectionFactory = db if callable(db) else reader(db)
        self.watchlist = watchlist
        self.zone = ZoneInfo(watchlist.timezone)
        self.period = period
        self.snapshot: Snapshot | None = None
        self._timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Static(Text("Statistics", style="bold"), id="stats-title")
        yield Static(Text("computing…", style="dim"), id="stats-numbers")
        with Horizontal(id="stats-plots"):
            yield PlotextPlot(id="plot-histogram")
            yield PlotextPlot(id="plot-volume")
            yield PlotextPlot(id="plot-backlog")
        yield Footer()

    def on_mount(self) -> None:
        if "ansi" in (self.app.current_theme.foreground or ""):
            # 16 colours: plotext's "auto" theme turns ansi_default into black on black. "pro" draws frames,
            # titles and labels in the terminal's own colours.
            for plot in self.query(PlotextPlot):
                plot.theme = "pro"
        self.refresh_stats()

    # -- actions --------------------------------------------------------------------------------

    def action_close(self) -> None:
        self.dismiss(None)

    def action_period(self, period: str) -> None:
        if period in PERIODS and period != self.period:
            self.period = period
            self.query_one("#stats-numbers", Static).update(Text("computing…", style="dim"))
            self.refresh_stats()

    def action_refresh_now(self) -> None:
        self.refresh_stats()

    # -- the worker -----------------------------------------------------------------------------

    def refresh_stats(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self._compute(self.period)

    @work(thread=True, exclusive=True, exit_on_error=False, group="stats", name="stats")
    def _compute(self, period: str) -> None:
        now = now_ms()
        back = PERIODS[period][1]
        since = start_of_local_day(now, self.zone) if back is None else now - back
        conn = self.connect()
        try:
            report = stats.compute(conn, self.watchlist, since=since, now=now)
        finally:
            conn.close()
        if not get_current_worker().is_cancelled:
            self.post_message(self.Computed(Snapshot(period, report)))

    def on_stats_screen_computed(self, message: Computed) -> None:
        if message.snapshot.period == self.period:
            self.snapshot = message.snapshot
            self._show(message.snapshot.report)
        self._rearm(REFRESH_S)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "stats" or event.state is not WorkerState.ERROR:
            return
        error = event.worker.error
        self.query_one("#stats-numbers", Static).update(
            Text(f"statistics unavailable: {error}", style="red")  # the error text may quote data
        )
        self._rearm(RETRY_S)

    def _rearm(self, delay: float) -> None:
        """Polls re-arm after they finish: never two computations at once."""
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(delay, self.refresh_stats)

    # -- rendering ------------------------------------------------------------------------------

    def _show(self, report: Report) -> None:
        label = PERIODS[self.period][0]
        title = Text.assemble(
            ("Statistics ", "bold"),
            (label, "bold reverse"),
            f"  {self.watchlist.timezone} · updated {fmt_local(report.generated_at, self.zone)[11:]}",
        )
        self.query_one("#stats-title", Static).update(title)
        self.query_one("#stats-numbers", Static).update(numbers_text(report))
        self._plot_histogram(report)
        self._plot_series(report, "volume")
        self._plot_series(report, "backlog")

    def _plot_histogram(self, report: Report) -> None:
        widget = self.query_one("#plot-histogram", PlotextPlot)
        plt = widget.plt
        plt.clear_figure()
        histogram = list(report.first_response.calendar.histogram)
        plt.bar(list(HIST_SHORT), histogram, width=0.6)
        _integer_yticks(plt, max(histogram))
        plt.title("First response")
        widget.refresh()

    def _plot_series(self, report: Report, which: str) -> None:
        widget = self.query_one(f"#plot-{which}", PlotextPlot)
        plt = widget.plt
        plt.clear_figure()
        rows = series_rows(report)
        hourly = len(rows) == len(report.volume)
        values = [v for _, v, _ in rows] if which == "volume" else [b for _, _, b in rows]
        xs = list(range(len(values)))
        if which == "volume":
            plt.bar(xs, values, width=0.8)
        else:
            plt.plot(xs, values, marker="braille")
        step = max(1, len(rows) // 4)
        ticks = list(range(0, len(rows), step))
        stamps = [fmt_local(rows[i][0], self.zone) for i in ticks]
        labels = [s[11:13] + "h" if hourly else s[8:10] for s in stamps]
        positions: list[float] = [*ticks]  # plotext's signature asks for a list of floats
        plt.xticks(positions, labels)
        _integer_yticks(plt, max(values, default=0))
        plt.title(("Seen per hour" if hourly else "Seen per day") if which == "volume" else "Waiting")
        widget.refresh()


def _integer_yticks(plt: object, peak: int) -> None:
    """Counts are whole numbers: at most five integer ticks."""
    step = max(1, -(-peak // 4))
    ticks = list(range(0, peak + step, step))
    plt.yticks(ticks, [str(t) for t in ticks])  # type: ignore[attr-defined]


def numbers_text(report: Report) -> Text:
    """The headline figures, at most 78 columns a line."""
    c, fr, res = report.counts, report.first_response, report.resolution
    t = Text()
    t.append(f"{c['mentions']} mentions", style="bold")
    t.append(f"  new {c['new']} · escalated {c['escalated']} · done {c['done']} · dismissed {c['dismissed']}\n")
    t.append("First response ", style="bold")
    t.append(
        f"median {fmt_secs(fr.calendar.median)} · p90 {fmt_secs(fr.calendar.p90)} · "
        f"in {fmt_secs(report.target_first_response)} {fmt_share(fr.calendar.share)}"
        f" · biz {fmt_share(fr.business.share)}\n"
    )
    t.append("  waiting ", style="bold")
    t.append(f"{fr.open}", style="bold red" if fr.calendar.late_open else "bold")
    oldest = f", oldest {fmt_secs(fr.oldest_open)}" if fr.open else ""
    t.append(f"{oldest} · business median {fmt_secs(fr.business.median)} p90 {fmt_secs(fr.business.p90)}\n")
    t.append("Resolution ", style="bold")
    t.append(
        f"median {fmt_secs(res.calendar.median)} · p90 {fmt_secs(res.calendar.p90)} · "
        f"with services {res.open}" + (f", oldest {fmt_secs(res.oldest_open)}" if res.open else "") + "\n"
    )
    _spend(t, report)
    operators = report.breakdowns.get("operator", [])[:3]
    if operators:
        t.append("Top responders ", style="bold")
        for i, row in enumerate(operators):
            if i:
                t.append(" · ")
            t.append(Text(row.key))  # an operator name is data: never markup
            t.append(f" {row.first_response.calendar.n} ({fmt_secs(row.first_response.calendar.median)})")
    return t


def _spend(t: Text, report: Report) -> None:
    """What each paid source (X) cost in the UTC months the period touches, as `monitor stats` says it."""
    for row in report.spend[:SPEND_ROWS]:
        name = row.source if len(row.source) <= 12 else row.source[:11] + "…"
        per = f" · {fmt_usd(row.per_answered)}/answer" if row.per_answered is not None else ""
        detail = f": {fmt_usd(row.total)} · reads {fmt_usd(row.reads_usd)} · {row.writes} replies"
        detail += f" {fmt_usd(row.writes_usd)}{per}"
        if len("Spend ") + len(name) + len(detail) > WIDTH:
            detail = f": {fmt_usd(row.total)} ({row.writes} replies){per}"
        t.append("Spend ", style="bold")
        t.append(Text(name))  # a source name is the watchlist's, still never markup
        t.append(detail + "\n")
    if len(report.spend) > SPEND_ROWS:
        t.append(f"  and {len(report.spend) - SPEND_ROWS} more paid sources: monitor stats\n", style="dim")
