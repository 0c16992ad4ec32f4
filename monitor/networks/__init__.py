"""Source types by the name used in watchlist.yaml's `type:`."""

from __future__ import annotations

from pathlib import Path

from monitor.core import config
from monitor.core.config import SourceSpec, Watchlist
from monitor.networks.base import BudgetedSource, Source, SourceContext, SourceError, SourceType, StreamingSource
from monitor.networks.registry import Lazy

# Each network is imported when a watchlist names it (reading its options, building its source): a desk on
# the demo never loads an HTTP client or a feed parser. A new network adds one line here.
SOURCE_TYPES: Lazy[SourceType] = Lazy(
    {
        "bluesky": "monitor.networks.bluesky.source:TYPE",
        "demo": "monitor.networks.demo:TYPE",
        "feed": "monitor.networks.feed:TYPE",
        "mastodon": "monitor.networks.mastodon.source:TYPE",
        "x": "monitor.networks.x.source:TYPE",
    }
)

__all__ = [
    "SOURCE_TYPES",
    "BudgetedSource",
    "Source",
    "SourceContext",
    "SourceError",
    "SourceType",
    "StreamingSource",
    "build_source",
    "load_watchlist",
]


def load_watchlist(path: str | Path) -> Watchlist:
    """The watchlist at `path`, each source's options read by its network (ConfigError names the line)."""
    return config.load_watchlist(path, SOURCE_TYPES)


def build_source(spec: SourceSpec, context: SourceContext) -> Source:
    return SOURCE_TYPES[spec.type].build(spec.name, spec.options, context)
