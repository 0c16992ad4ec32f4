"""The networks the desk replies on, by the name a mention's `network` and a source's `type:` use.

Each gives what a reply must carry about the original (taken when the operator acts, so the delivery
worker never reads the mention again) and the sender that posts it. A new network with a reply API
adds one line here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from monitor.core.config import SourceSpec
from monitor.core.models import MentionRow
from monitor.networks.base import SourceContext
from monitor.networks.bluesky import sender as bluesky
from monitor.networks.mastodon import sender as mastodon
from monitor.networks.sending import Sender
from monitor.networks.x import sender as x


@dataclass(frozen=True, slots=True)
class ReplyNetwork:
    fields: Callable[[MentionRow, dict[str, Any]], dict[str, Any]]  # (mention, its raw payload) -> payload
    sender: Callable[[SourceSpec, SourceContext], Sender]


REPLY_NETWORKS: dict[str, ReplyNetwork] = {
    "bluesky": ReplyNetwork(bluesky.reply_fields, bluesky.BlueskySender),
    "mastodon": ReplyNetwork(mastodon.reply_fields, mastodon.MastodonSender),
    "x": ReplyNetwork(x.reply_fields, x.XSender),
}
