"""The networks the desk replies on, by the name a mention's `network` and a source's `type:` use.

Each gives what a reply must carry about the original (taken when the operator acts, so the delivery
worker never reads the mention again) and the sender that posts it. A new network with a reply API
adds one line here, and a `REPLY` in its sender module (imported only when a reply goes that way).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from monitor.core.config import SourceSpec
from monitor.core.models import MentionRow
from monitor.networks.base import SourceContext
from monitor.networks.registry import Lazy
from monitor.networks.sending import Sender


@dataclass(frozen=True, slots=True)
class ReplyNetwork:
    fields: Callable[[MentionRow, dict[str, Any]], dict[str, Any]]  # (mention, its raw payload) -> payload
    sender: Callable[[SourceSpec, SourceContext], Sender]


REPLY_NETWORKS: Lazy[ReplyNetwork] = Lazy(
    {
        "bluesky": "monitor.networks.bluesky.sender:REPLY",
        "mastodon": "monitor.networks.mastodon.sender:REPLY",
        "x": "monitor.networks.x.sender:REPLY",
    }
)
