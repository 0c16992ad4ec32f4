"""Source types by the name used in watchlist.yaml's `type:`."""

from __future__ import annotations

from monitor.sources import demo
from monitor.sources.base import Source, SourceContext, SourceError, SourceType, StreamingSource

SOURCE_TYPES: dict[str, SourceType] = {
    "demo": demo.TYPE,
}

__all__ = ["SOURCE_TYPES", "Source", "SourceContext", "SourceError", "SourceType", "StreamingSource"]


def build_source(spec, context: SourceContext) -> Source:  # type: ignore[no-untyped-def]
    return SOURCE_TYPES[spec.type].build(spec.name, spec.options, context)
