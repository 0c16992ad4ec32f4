"""Source types by the name used in watchlist.yaml's `type:`."""

from __future__ import annotations

from pathlib import Path

from monitor.core import config
from monitor.core.config import SourceSpec, Watchlist
from monitor.networks import demo, feed
from monitor.networks.base import BudgetedSource, Source, SourceContext, SourceError, SourceType, StreamingSource
from monitor.networks.bluesky import source as bluesky
from monitor.networks.mastodon import source as mastodon
from monitor.networks.x import source as x

SOURCE_TYPES: dict[str, SourceType] = {
    "bluesky": bluesky.TYPE,
    "demo": demo.TYPE,
    "feed": feed.TYPE,
    "mastodon": mastodon.TYPE,
    "x": x.TYPE,
}

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
