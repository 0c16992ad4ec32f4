"""The bundled demo stream: a file of realistic mentions replayed with realistic pacing."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from monitor.core.models import Batch, Mention
from monitor.core.sanitize import clean, clean_line, safe_url
from monitor.core.timeutil import utcnow
from monitor.core.yamlread import Node
from monitor.networks.base import SourceContext, SourceType
from monitor.networks.links import unwrap_link

log = logging.getLogger(__name__)
WARM_START = 12  # mentions shown at once on a first start, so the desk is never empty


@dataclass(frozen=True)
class DemoOptions:
    file: Path | None = None
    speed: float = 1.0
    loop: bool = True


def parse_options(fields: dict[str, Node], node: Node) -> DemoOptions:
    file = Path(fields["file"].str()) if "file" in fields else None
    if file is not None and not file.is_absolute():
        file = Path(node.file).parent / file
    return DemoOptions(
        file=file,
        speed=fields["speed"].float(minimum=0.01) if "speed" in fields else 1.0,
        loop=fields["loop"].bool() if "loop" in fields else True,
    )


def load_items(file: Path | None = None) -> list[dict[str, Any]]:
    if file is None:
        text = resources.files("monitor.data").joinpath("demo_mentions.jsonl").read_text("utf-8")
    else:
        text = file.read_text("utf-8")
    items = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            items.append(json.loads(line))
        except json.JSONDecodeError as exc:
            log.warning("demo file line %d skipped: %s", n, exc)
    return items


class DemoSource:
    """Replays the file from the cursor (an absolute index), looping with fresh ids when it ends."""

    def __init__(self, name: str, options: DemoOptions, context: SourceContext) -> None:
        self.name = name
        self.items = load_items(options.file)
        self.speed = options.speed * context.speed
        self.loop = options.loop
        self.replay_all = context.replay_all
        self._origin: tuple[float, float] | None = None  # (monotonic start, file offset at start)

    def _at(self, index: int) -> float:
        n = len(self.items)
        loops, i = divmod(index, n)
        span = self.items[-1]["at"] + 30.0
        return loops * span + float(self.items[i]["at"])

    async def poll(self, cursor: str | None) -> Batch:
        start = int(cursor) if cursor else 0
        n = len(self.items)
        end_limit = n if (self.replay_all or not self.loop) else None
        if end_limit is not None and start >= end_limit:
            return Batch(cursor=str(start))
        if self.replay_all:
            stop = n
        else:
            if self._origin is None:
                warm = start + WARM_START if start == 0 else start
                self._origin = (time.monotonic(), self._at(min(warm, start + n - 1)))
            due = self._origin[1] + (time.monotonic() - self._origin[0]) * self.speed
            stop = start
            while (end_limit is None or stop < end_limit) and self._at(stop) <= due:
                stop += 1
        batch = Batch(cursor=str(stop))
        for index in range(start, stop):
            mention = self._mention(index)
            if mention is None:
                batch.skipped += 1
            else:
                batch.mentions.append(mention)
        return batch

    def _mention(self, index: int) -> Mention | None:
        loops, i = divmod(index, len(self.items))
        item = self.items[i]
        suffix = f"~{loops}" if loops else ""
        try:
            reply_to = item.get("reply_to")
            return Mention(
                source=self.name,
                remote_id=str(item["id"]) + suffix,
                network=str(item.get("network") or "demo"),
                author=clean_line(item["author"]),
                author_name=clean_line(item.get("author_name")),
                text=clean(item["text"]),
                # The file keeps links as Google Alerts sends them; the feed source's unwrapping applies.
                url=unwrap_link(safe_url(item.get("url"))),
                lang=item.get("lang"),
                reply_to=(reply_to + suffix) if reply_to else None,
                thread_id=(self._root(reply_to) + suffix) if reply_to else None,
                tags=tuple(clean_line(t) for t in item.get("tags") or ()),
                published_at=utcnow() - timedelta(seconds=float(item.get("published_ago") or 0)),
                # The bundled file is its own audit trail; an item may open one of the demo's incidents.
                raw={"demo_incident": clean_line(item["incident"])} if item.get("incident") else None,
                to_us=bool(item.get("to_us")),  # a mention of, or reply to, the city's own account
            )
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("demo item %s skipped: %r", item.get("id"), exc)
            return None

    def _root(self, remote_id: str) -> str:
        by_id = getattr(self, "_by_id", None)
        if by_id is None:
            by_id = self._by_id = {it.get("id"): it for it in self.items}
        seen = set()
        while (parent := by_id.get(remote_id, {}).get("reply_to")) and remote_id not in seen:
            seen.add(remote_id)
            remote_id = parent
        return remote_id

    async def aclose(self) -> None:
        return None


TYPE = SourceType(
    option_keys=("file", "speed", "loop"),
    parse_options=parse_options,
    build=DemoSource,
    default_interval=timedelta(seconds=1),
)
