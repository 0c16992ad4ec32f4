"""A month's spend on X, counted per call, and the pace of polling that keeps it under the budget.

Reads are charged per resource returned, writes per request (docs.x.com pricing). The meter knows
nothing of storage: the source carries the month's spend in its cursor, which the collector commits
in the same transaction as the mentions the spend paid for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from monitor.core.models import Spend
from monitor.core.timeutil import utcnow
from monitor.networks.x.options import Budget

MIN_READ = 10  # recent search returns at least 10 posts a page (max_results 10..100): a call costs that much
PAGE = 100  # the most a page holds
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def month_key(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m")


def billing_month() -> str:
    """The month X bills now, 'YYYY-MM' (UTC)."""
    return month_key(utcnow())


def next_month(when: datetime) -> datetime:
    when = when.astimezone(UTC)
    year, month = (when.year + 1, 1) if when.month == 12 else (when.year, when.month + 1)
    return datetime(year, month, 1, tzinfo=UTC)


def money(usd: float) -> str:
    return f"${usd:,.2f}"


@dataclass
class Meter:
    """This month's spend (UTC months, as X bills), and when the next poll may spend again.

    `committed` is what the database holds (handed in by the collector before each poll); `unreported`
    what was spent since the last batch, a failed poll's calls included: the next batch carries it.
    """

    budget: Budget | None
    clock: Callable[[], datetime] = utcnow
    month: str = ""
    committed: float = 0.0
    unreported: float = 0.0
    next_due: datetime | None = None
    poll_cost: float = 0.0  # what a poll has cost lately (a moving average), to pace the next ones

    @property
    def spent(self) -> float:
        return self.committed + self.unreported

    def billing_month(self) -> str:
        return month_key(self.clock())

    def restore(self, month: str, committed: float) -> None:
        self._roll()
        if month == self.month:
            self.committed = max(0.0, committed)

    def _roll(self) -> None:
        if self.month != (now := month_key(self.clock())):
            self.month, self.committed, self.unreported = now, 0.0, 0.0

    def charge(self, usd: float) -> None:
        self._roll()
        self.unreported += max(0.0, usd)

    def report(self) -> Spend | None:
        """What to store with the batch being built: the reads since the last one."""
        self._roll()
        if self.unreported <= 0:
            return None
        spend = Spend(self.month, reads_usd=self.unreported)
        self.committed, self.unreported = self.spent, 0.0
        return spend

    def remaining(self) -> float:
        self._roll()
        return float("inf") if self.budget is None else max(0.0, self.budget.monthly - self.spent)

    def affordable(self, price: float, wanted: int = PAGE) -> int:
        """How many posts the next call may return without going over (0: not even one page)."""
        if self.budget is None or price <= 0:
            return wanted
        n = min(wanted, int(self.remaining() / price + 1e-9))
        return n if n >= MIN_READ else 0

    def reached_until(self) -> str:
        """The state shown when the month's budget is spent, e.g. "budget reached until 1 Dec"."""
        start = next_month(self.clock())
        return f"budget reached until {start.day} {_MONTHS[start.month - 1]}"

    def seconds_to_next_month(self) -> float:
        now = self.clock()
        return (next_month(now) - now).total_seconds()

    def due(self) -> bool:
        return self.next_due is None or self.clock() >= self.next_due

    def paced(self, cost: float, interval: float) -> None:
        """After a poll that cost `cost`: the next one waits so that the rest of the month, at this
        rate, fits in what is left (never sooner than the source's own interval)."""
        self.poll_cost = cost if self.poll_cost == 0 else 0.7 * self.poll_cost + 0.3 * cost
        now = self.clock()
        wait = interval
        left = self.remaining()
        if self.budget is not None and self.poll_cost > 0:
            seconds = (next_month(now) - now).total_seconds()
            wait = max(interval, seconds * self.poll_cost / left) if left > 0 else seconds
        self.next_due = datetime.fromtimestamp(now.timestamp() + wait, UTC)

    def summary(self) -> str:
        """What the sources bar shows: "$1.23 of $50.00 this month"."""
        self._roll()
        if self.budget is None:
            return f"{money(self.spent)} this month"
        return f"{money(self.spent)} of {money(self.budget.monthly)} this month"
