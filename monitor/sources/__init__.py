"""Source types by the name used in watchlist.yaml's `type:`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from monitor.sources import bluesky, demo, feed, mastodon
from monitor.sources.base import Source, SourceContext, SourceError, SourceType, StreamingSource

if TYPE_CHECKING:  # config imports this package to check each source's options
    from monitor.config import SourceSpec

SOURCE_TYPES: dict[str, SourceType] = {
    "bluesky": bluesky.TYPE,
    "demo": demo.TYPE,
    "feed": feed.TYPE,
    "mastodon": mastodon.TYPE,
}

__all__ = ["SOURCE_TYPES", "Source", "SourceContext", "SourceError", "SourceType", "StreamingSource"]


def build_source(spec: SourceSpec, context: SourceContext) -> Source:
    return SOURCE_TYPES[spec.type].build(spec.name, spec.options, context)
