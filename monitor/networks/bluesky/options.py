"""A Bluesky source's options in watchlist.yaml: the account, its app password's variable, what to watch."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from monitor.core.yamlread import ENV_NAME, Node
from monitor.networks.bluesky.xrpc import PLC_DIRECTORY
from monitor.networks.http import secure_origin

DEFAULT_PDS = "https://bsky.social"
DEFAULT_MAX_PAGES = 5
HANDLE = re.compile(r"^([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$")
DID = re.compile(r"^did:[a-z]+:[a-zA-Z0-9._:%-]{1,2000}$")


@dataclass(frozen=True)
class BlueskyOptions:
    handle: str
    app_password_env: str
    pds: str = DEFAULT_PDS
    search: tuple[str, ...] = ()
    notifications: bool = True
    max_pages: int = DEFAULT_MAX_PAGES
    allow_insecure: bool = False  # a test PDS on plain http, not on this machine
    # Without `pds:` in the watchlist, the account's PDS comes from its DID document, found from here.
    plc: str | None = None


def parse_options(fields: dict[str, Node], node: Node) -> BlueskyOptions:
    if "handle" not in fields:
        node.fail("missing key 'handle' in a bluesky source", "the account's handle, e.g. name.bsky.social")
    if "app_password_env" not in fields:
        node.fail(
            "missing key 'app_password_env' in a bluesky source",
            "the name of the environment variable that holds the app password",
        )
    handle = fields["handle"].str().strip().lstrip("@")
    if not (HANDLE.match(handle) or DID.match(handle)):
        fields["handle"].fail(f"{handle!r} is not a handle", "a handle such as name.bsky.social")
    env = fields["app_password_env"].str().strip()
    if not ENV_NAME.match(env):
        fields["app_password_env"].fail(
            "this is not an environment variable name (never put the password itself here)",
            "a name such as BLUESKY_APP_PASSWORD",
        )
    allow_insecure = fields["allow_insecure"].bool() if "allow_insecure" in fields else False
    pds = _pds(fields["pds"], allow_insecure) if "pds" in fields else DEFAULT_PDS
    search: list[str] = []
    for query in fields["search"].str_list() if "search" in fields else []:
        if query.strip() and query.strip() not in search:
            search.append(query.strip())
    notifications = fields["notifications"].bool() if "notifications" in fields else True
    if not search and not notifications:
        node.fail("this bluesky source watches nothing", "search terms, or notifications: true")
    max_pages = fields["max_pages"].int(minimum=1) if "max_pages" in fields else DEFAULT_MAX_PAGES
    plc = None if "pds" in fields else PLC_DIRECTORY  # an explicit pds is used as it is
    return BlueskyOptions(handle, env, pds, tuple(search), notifications, max_pages, allow_insecure, plc)


def _pds(node: Node, allow_insecure: bool = False) -> str:
    url = node.str().strip().rstrip("/")
    parts = urlsplit(url)
    # The app password crosses this link: plain http only to this machine (tests, a local PDS) or when asked.
    if not parts.hostname or not secure_origin(url, allow_insecure):
        node.fail(f"{url!r} is not an https address", "the PDS address, e.g. https://bsky.social")
    if parts.path or parts.query or parts.fragment:
        node.fail(f"{url!r} has a path", "the PDS root only, e.g. https://bsky.social")
    return url
