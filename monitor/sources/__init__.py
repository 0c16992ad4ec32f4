"""Source types by the name used in watchlist.yaml's `type:`."""

from __future__ import annotations

from monitor.sources import bluesky, demo, feed, mastodon
from monitor.sources.base import Source, SourceContext, SourceError, SourceType, StreamingSource

SOURCE_TYPES: dict[str, SourceType] = {
    "bluesky": bluesky.TYPE,
    "demo": demo.TYPE,
    "feed": feed.TYPE,
    "mastodon": mastodon.TYPE,
}

__all__ = ["SOURCE_TYPES", "Source", "SourceContext", "SourceError", "SourceType", "StreamingSource"]


def build_source(spec, context: SourceContext) -> Source:  # type: ignore[no-untyped-def]
    return SOURCE_TYPES[spec.type].build(spec.name, spec.options, context)
