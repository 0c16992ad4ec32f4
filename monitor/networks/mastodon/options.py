"""A Mastodon source's options in watchlist.yaml: the instance, the token's variable, what to watch."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import yaml

from monitor.core.yamlread import ENV_NAME, Node
from monitor.networks.http import secure_origin

_TAG = re.compile(r"^\w+$")


@dataclass(frozen=True)
class MastodonOptions:
    instance: str  # "https://host", no trailing slash
    token_env: str | None = None
    hashtags: tuple[str, ...] = ()
    notifications: bool = False
    search: tuple[str, ...] = ()
    stream: bool = False
    allow_insecure: bool = False  # a test server on plain http, not on this machine

    @property
    def host(self) -> str:
        return urlsplit(self.instance).netloc


def parse_options(fields: dict[str, Node], node: Node) -> MastodonOptions:
    if "instance" not in fields:
        node.fail("missing key 'instance' in a mastodon source", "instance: https://mastodon.example")
    instance = _instance(fields["instance"])
    token_env = None
    if "token_env" in fields:
        token_env = fields["token_env"].str().strip()
        if not ENV_NAME.match(token_env):
            fields["token_env"].fail(
                "token_env is not an environment variable name",
                "the NAME of a variable holding the token (e.g. MASTODON_TOKEN), never the token itself",
            )
    hashtags: list[str] = []
    for item in _items(fields.get("hashtags")):
        tag = item.str().strip().lstrip("#")
        if not _TAG.match(tag):
            item.fail(f"{tag!r} is not a hashtag", "letters, digits and _ only, without spaces")
        if tag.lower() not in (t.lower() for t in hashtags):
            hashtags.append(tag)
    search = tuple(dict.fromkeys(item.str().strip() for item in _items(fields.get("search"))))
    notifications = fields["notifications"].bool() if "notifications" in fields else False
    stream = fields["stream"].bool() if "stream" in fields else False
    if not (hashtags or notifications or search):
        node.fail("this mastodon source watches nothing", "hashtags, notifications: true, or search")
    if token_env is None:
        for key, wanted in (("notifications", notifications), ("search", bool(search)), ("stream", stream)):
            if wanted:
                fields[key].fail(f"{key} needs a logged-in token", "token_env: NAME_OF_A_VARIABLE")
    allow_insecure = fields["allow_insecure"].bool() if "allow_insecure" in fields else False
    if token_env is not None and not secure_origin(instance, allow_insecure):
        fields["instance"].fail(
            "the token would cross the network in clear (http)",
            "an https address, or allow_insecure: true for a test server",
        )
    return MastodonOptions(instance, token_env, tuple(hashtags), notifications, search, stream, allow_insecure)


def _instance(node: Node) -> str:
    text = node.str().strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("https", "http") or not parts.netloc or parts.path or parts.query:
        node.fail(f"{text!r} is not an instance address", "an address like https://mastodon.social")
    return text


def _items(node: Node | None) -> list[Node]:
    """A list, or a single value standing for a list of one."""
    if node is None or node.is_null():
        return []
    return [node] if isinstance(node.node, yaml.ScalarNode) else node.list()
