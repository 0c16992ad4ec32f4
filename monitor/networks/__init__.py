"""Source types by the name used in watchlist.yaml's `type:`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from monitor.networks import demo, feed
from monitor.networks.base import Source, SourceContext, SourceError, SourceType, StreamingSource
from monitor.networks.bluesky import source as bluesky
from monitor.networks.mastodon import source as mastodon

if TYPE_CHECKING:  # config imports this package to check each source's options
    from monitor.core.config import SourceSpec

SOURCE_TYPES: dict[str, SourceType] = {
    "bluesky": bluesky.TYPE,
    "demo": demo.TYPE,
    "feed": feed.TYPE,
    "mastodon": mastodon.TYPE,
}

__all__ = ["SOURCE_TYPES", "Source", "SourceContext", "SourceError", "SourceType", "StreamingSource"]


def build_source(spec: SourceSpec, context: SourceContext) -> Source:
    return SOURCE_TYPES[spec.type].build(spec.name, spec.options, context)
