"""An X source's options in watchlist.yaml: the API, the account, the token's variable, the budget.

Prices are per docs.x.com/x-api/getting-started/pricing at the time of writing: a post read is
charged per resource returned ($0.005), a post created per request ($0.015, $0.20 with a URL).
They change: the watchlist may set its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from monitor.core.yamlread import ENV_NAME, Node
from monitor.networks.http import secure_origin

DEFAULT_API = "https://api.x.com"
DEFAULT_MAX_PAGES = 3
READ_PRICE = 0.005  # per post returned
CREATE_PRICE = 0.015  # per post created
CREATE_WITH_LINK_PRICE = 0.20  # per post created that holds a URL
USER_READ_PRICE = 0.010  # per user returned (the authors in includes)
USER_ID = re.compile(r"^[0-9]{1,19}$")
USERNAME = re.compile(r"^[A-Za-z0-9_]{1,15}$")


@dataclass(frozen=True)
class Budget:
    """What a month of this source may cost, in US dollars, and the unit prices it is counted with."""

    monthly: float
    read: float = READ_PRICE
    create: float = CREATE_PRICE
    create_with_link: float = CREATE_WITH_LINK_PRICE
    user_read: float = USER_READ_PRICE


@dataclass(frozen=True)
class OAuth2App:
    client_id_env: str
    redirect_uri: str
    client_secret_env: str | None = None  # a confidential client authenticates to the token endpoint


@dataclass(frozen=True)
class XOptions:
    user_id: str  # the city's account (numeric): its mentions, its own posts
    bearer_token_env: str  # app-only token for reading
    username: str = ""
    api: str = DEFAULT_API
    terms: tuple[str, ...] | None = None  # the watchlist's terms searched here; None: all of them
    mentions: bool = True
    retweets: bool = False
    stream: bool = False  # the filtered stream (where the plan allows it), search polling otherwise
    max_pages: int = DEFAULT_MAX_PAGES
    budget: Budget | None = None
    # OAuth 1.0a user context for replies: the names of four variables (consumer key and secret, token and secret).
    oauth1_env: tuple[str, str, str, str] | None = None
    oauth2: OAuth2App | None = None  # OAuth 2.0 with PKCE: `monitor auth x` keeps its tokens in the state folder
    allow_insecure: bool = False


OPTION_KEYS = (
    "api", "user_id", "username", "bearer_token_env", "terms", "mentions", "retweets", "max_pages",
    "budget", "oauth1", "oauth2", "allow_insecure", "stream",
)  # fmt: skip


def parse_options(fields: dict[str, Node], node: Node) -> XOptions:
    for key, hint in (("user_id", "the city's numeric account id"), ("bearer_token_env", "X_BEARER_TOKEN")):
        if key not in fields:
            node.fail(f"missing key {key!r} in an x source", hint)
    user_id = fields["user_id"].str().strip()
    if not USER_ID.match(user_id):
        fields["user_id"].fail(f"{user_id!r} is not an X user id", "digits only, e.g. 2244994945")
    username = fields["username"].str().strip().lstrip("@") if "username" in fields else ""
    if username and not USERNAME.match(username):
        fields["username"].fail(f"{username!r} is not an X username", "letters, digits and _, at most 15")
    allow_insecure = fields["allow_insecure"].bool() if "allow_insecure" in fields else False
    api = fields["api"].str().strip().rstrip("/") if "api" in fields else DEFAULT_API
    if not secure_origin(api, allow_insecure):
        fields["api"].fail("the token would cross the network in clear (http)", "https://api.x.com")
    terms = tuple(fields["terms"].str_list()) if "terms" in fields else None
    mentions = fields["mentions"].bool() if "mentions" in fields else True
    if terms == () and not mentions:
        node.fail("this x source watches nothing", "terms, or mentions: true")
    return XOptions(
        user_id=user_id,
        bearer_token_env=_env(fields["bearer_token_env"]),
        username=username,
        api=api,
        terms=terms,
        mentions=mentions,
        retweets=fields["retweets"].bool() if "retweets" in fields else False,
        stream=fields["stream"].bool() if "stream" in fields else False,
        max_pages=fields["max_pages"].int(minimum=1, maximum=50) if "max_pages" in fields else DEFAULT_MAX_PAGES,
        budget=_budget(fields["budget"]) if "budget" in fields else None,
        oauth1_env=_oauth1(fields["oauth1"]) if "oauth1" in fields else None,
        oauth2=_oauth2(fields["oauth2"]) if "oauth2" in fields else None,
        allow_insecure=allow_insecure,
    )


def _env(node: Node) -> str:
    name = node.str().strip()
    if not ENV_NAME.match(name):
        node.fail("this is not an environment variable name (never put the secret itself here)", "X_BEARER_TOKEN")
    return name


def _budget(node: Node) -> Budget:
    names = ("read", "create", "create_with_link", "user_read")
    f = node.mapping(("monthly", *names), required=("monthly",), what="a budget")
    prices = {k: f[k].float(minimum=0.0, maximum=100.0) for k in names if k in f}
    return Budget(f["monthly"].float(minimum=0.0, maximum=1_000_000.0), **prices)


def _oauth1(node: Node) -> tuple[str, str, str, str]:
    keys = ("consumer_key_env", "consumer_secret_env", "access_token_env", "access_token_secret_env")
    f = node.mapping(keys, required=keys, what="oauth1 (the names of four environment variables)")
    a, b, c, d = (_env(f[k]) for k in keys)
    return a, b, c, d


def _oauth2(node: Node) -> OAuth2App:
    f = node.mapping(("client_id_env", "client_secret_env", "redirect_uri"), required=("client_id_env", "redirect_uri"),
                     what="oauth2")  # fmt: skip
    redirect = f["redirect_uri"].str().strip()
    if not redirect.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        f["redirect_uri"].fail("not a callback address", "the callback URL set in the app, e.g. http://127.0.0.1/x")
    secret_env = _env(f["client_secret_env"]) if "client_secret_env" in f else None
    return OAuth2App(_env(f["client_id_env"]), redirect, secret_env)
