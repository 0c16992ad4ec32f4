"""Payloads recorded from real servers by other projects, kept in tests/data/<origin>/ with their licence.

Mastodon.py's cassettes are vcrpy YAML: a list of interactions, each a request and the answer the
server gave (status, headers, body as a string).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

DATA = Path(__file__).parent / "data"


@dataclass(frozen=True)
class Recorded:
    method: str
    uri: str
    status: int
    body: str

    def json(self) -> Any:
        return json.loads(self.body)


def cassette(origin: str, name: str) -> list[Recorded]:
    data = yaml.safe_load((DATA / origin / f"{name}.yaml").read_text("utf-8"))
    return [
        Recorded(
            i["request"]["method"],
            i["request"]["uri"],
            int(i["response"]["status"]["code"]),
            i["response"]["body"]["string"],
        )
        for i in data["interactions"]
    ]


def answer(origin: str, name: str, method: str, path: str) -> Recorded:
    """The first recorded answer to `method` on a URI containing `path`."""
    return next(r for r in cassette(origin, name) if r.method == method and path in r.uri)


def sse_events(body: str) -> list[tuple[str, str]]:
    """(event, data) pairs of a recorded server-sent event stream."""
    events = []
    for block in body.replace("\r\n", "\n").split("\n\n"):
        lines = block.split("\n")
        name = next((line[6:].strip() for line in lines if line.startswith("event:")), "")
        data = "\n".join(line[5:].lstrip() for line in lines if line.startswith("data:"))
        if name:
            events.append((name, data))
    return events
