"""Mastodon: hashtag timelines, mentions of the city's account, keyword search, and live SSE streams.

API: docs.joinmastodon.org (methods/timelines, notifications, search, streaming; api/guidelines).
The cursor is one JSON object of per-feed positions, e.g. {"tag:toulouse": "1132…", "notifications":
"3497…", "search:toulouse metropole": "1132…"}, and only ever covers what a batch returns.

The source type is here; its parts are beside it: options.py (the watchlist's keys), statuses.py (ids,
cursors, feeds), polling.py (REST), streaming.py (server-sent events) and html.py (status text).
"""

from __future__ import annotations

import os
from datetime import timedelta

from monitor.networks.base import SourceContext, SourceType
from monitor.networks.mastodon.options import MastodonOptions, parse_options
from monitor.networks.mastodon.polling import MastodonSource
from monitor.networks.mastodon.statuses import decode_cursor, encode_cursor, id_key
from monitor.networks.mastodon.streaming import MastodonStreamingSource

__all__ = [
    "TYPE",
    "MastodonOptions",
    "MastodonSource",
    "MastodonStreamingSource",
    "build",
    "decode_cursor",
    "encode_cursor",
    "id_key",
    "parse_options",
]


def build(name: str, options: MastodonOptions, context: SourceContext) -> MastodonSource:
    """Stream only when asked and a token is configured; otherwise poll (no `stream` attribute)."""
    if options.stream and options.token_env and os.environ.get(options.token_env):
        return MastodonStreamingSource(name, options, context)
    return MastodonSource(name, options, context)


TYPE = SourceType(
    option_keys=("instance", "token_env", "hashtags", "notifications", "search", "stream", "allow_insecure"),
    parse_options=parse_options,
    build=build,
    default_interval=timedelta(seconds=60),
)
