"""Replies on X: POST /2/tweets {"text", "reply": {"in_reply_to_tweet_id"}}, under a user context.

OAuth 1.0a user tokens (they do not expire) are signed by Authlib's httpx integration, from four
environment variables. X has no idempotency key: before posting again after an unknown outcome (a
timeout, a crash between X accepting and our commit), the desk's own recent posts
(GET /2/users/:id/tweets) are searched for a reply to that post with that text. A 403 "duplicate
content" counts as sent only when found that way.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Generator
from pathlib import Path
from typing import Any

import authlib.deprecate  # noqa: F401  (imported first: it turns its own warnings on for good)
import httpx

from monitor.core.config import SourceSpec
from monitor.core.models import MentionRow, Spend
from monitor.core.outbox import OutboxItem
from monitor.core.retry import ErrorKind
from monitor.core.sanitize import clean, clean_line
from monitor.core.timeutil import utcnow
from monitor.networks.base import NetworkError, SourceContext
from monitor.networks.http import answer, check, json_body, make_client, send
from monitor.networks.replies import ReplyNetwork
from monitor.networks.sending import Sent, secret
from monitor.networks.x.budget import month_key
from monitor.networks.x.length import has_link
from monitor.networks.x.oauth2 import OAuth2Session, TokenFile
from monitor.networks.x.options import XOptions
from monitor.networks.x.posts import POST_ID, full_text, read_page

with warnings.catch_warnings():  # recent Authlib prefers the httpx2 fork, and says so when it imports httpx
    warnings.simplefilter("ignore")
    from authlib.integrations.httpx_client import OAuth1Auth

RECENT = 20  # the desk's own posts looked through for an earlier attempt (X serves 5..100)
DUPLICATE = "duplicate content"


class JsonOAuth1(OAuth1Auth):
    """OAuth1Auth that keeps a JSON body. RFC 5849 signs only form bodies; Authlib's httpx flow signs
    without the body, as it should, but then sends the request without it too (authlib#543)."""

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        _, headers, _ = self.sign(request.method, str(request.url), dict(request.headers), b"")
        request.headers["Authorization"] = headers["Authorization"]
        yield request


class Bearer(httpx.Auth):
    def __init__(self, token: str) -> None:
        self.token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token}"
        yield request


def token_path(state_dir: Any, source: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", source)
    return Path(state_dir or ".") / f"x-{safe}.oauth2.json"


def oauth2_session(client: httpx.AsyncClient, spec: SourceSpec, state_dir: Any) -> OAuth2Session:
    app = spec.options.oauth2
    what = f"x ({spec.name}): OAuth 2.0"
    client_secret = secret(app.client_secret_env, what) if app.client_secret_env else None
    return OAuth2Session(
        client, secret(app.client_id_env, what), client_secret, TokenFile(token_path(state_dir, spec.name))
    )


def reply_fields(row: MentionRow, raw: dict[str, Any]) -> dict[str, Any]:
    """The post answered, taken when the operator acts: its id (X threads the reply from it)."""
    post_id = str(raw.get("id") or row.remote_id)
    return {"in_reply_to_tweet_id": post_id if POST_ID.match(post_id) else ""}


class XSender:
    def __init__(self, spec: SourceSpec, context: SourceContext) -> None:
        self.name = spec.name
        self.options: XOptions = spec.options
        self.client: httpx.AsyncClient = make_client(context, self.options.api)
        self.oauth2 = oauth2_session(self.client, spec, context.state_dir) if self.options.oauth2 else None

    async def aclose(self) -> None:
        await self.client.aclose()

    async def _auth(self, what: str) -> httpx.Auth:
        """OAuth 1.0a when configured (its tokens never expire), else the OAuth 2.0 user's token."""
        names = self.options.oauth1_env
        if names is not None:
            key, key_secret, token, token_secret = (secret(n, what) for n in names)
            auth: httpx.Auth = JsonOAuth1(key, key_secret, token=token, token_secret=token_secret)
            return auth
        if self.oauth2 is not None:
            return Bearer(await self.oauth2.access_token())
        raise NetworkError(f"{what}: no user credentials (oauth1: or oauth2: in the x source)", ErrorKind.CONFIG)

    def cost(self, text: str, read: int = 0) -> Spend | None:
        """What posting `text` cost: a post created, or one with a link (X's dearer price), and the
        posts read looking for an earlier attempt."""
        b = self.options.budget
        if b is None:
            return None
        write = b.create_with_link if has_link(text) else b.create
        return Spend(month_key(utcnow()), reads_usd=read * b.read, writes_usd=write, writes=1)

    async def send(self, item: OutboxItem) -> Sent:
        what = f"x ({self.name}): post the reply"
        p = item.payload
        text, parent = str(p["text"]), str(p.get("in_reply_to_tweet_id") or "")
        if not POST_ID.match(parent):
            raise NetworkError(f"{what}: the original has no post id", ErrorKind.CONFIG)
        auth = await self._auth(what)
        read = 0
        if item.attempts > 1:
            found, read = await self.find_earlier(parent, text, auth)
            if found is not None:
                return self._sent(found, text, read)  # an earlier attempt got through (and was paid for)
        body = {"text": text, "reply": {"in_reply_to_tweet_id": parent}}
        r = await send(self.client, "POST", "/2/tweets", what, checked=False, json=body, auth=auth)
        said = clean_line(str(answer(r).get("detail") or answer(r).get("title") or ""))[:200]
        if r.status_code == 403 and DUPLICATE in said:
            found, more = await self.find_earlier(parent, text, auth)
            if found is not None:
                return self._sent(found, text, read + more)
            raise NetworkError(f"{what}: refused as a duplicate, and not among the desk's posts", ErrorKind.REFUSED)
        if r.status_code == 401:
            raise NetworkError(f"{what}: the OAuth 1.0a user credentials were rejected (401)", ErrorKind.AUTH)
        if r.status_code == 403:  # a reply X does not allow (not mentioned by the author), or a read-only app
            kind = ErrorKind.REFUSED if "reply" in said.lower() else ErrorKind.AUTH
            raise NetworkError(f"{what}: forbidden (403): {said or 'the app may lack write access'}", kind)
        data = json_body(check(r, what), what)
        post_id = data.get("data", {}).get("id") if isinstance(data, dict) else None
        if not isinstance(post_id, str) or not POST_ID.match(post_id):
            raise NetworkError(f"{what}: no post id in the answer")
        return self._sent(post_id, text, read)

    def _sent(self, post_id: str, text: str, read: int) -> Sent:
        username = self.options.username or "i/web"  # x.com/i/web/status/ID opens any post
        return Sent(post_id, f"https://x.com/{username}/status/{post_id}", cost=self.cost(text, read))

    async def find_earlier(self, parent: str, text: str, auth: httpx.Auth) -> tuple[str | None, int]:
        """The id of the desk's reply to `parent` with `text` among its recent posts (or None), and how
        many posts the look cost."""
        what = f"x ({self.name}): look for an earlier attempt"
        params = {"max_results": RECENT, "tweet.fields": "referenced_tweets,entities,note_tweet"}
        path = f"/2/users/{self.options.user_id}/tweets"
        r = await send(self.client, "GET", path, what, params=params, auth=auth)
        wanted = clean(text).strip()
        page = read_page(json_body(r, what))
        for post in page.posts:
            refs = post.get("referenced_tweets")
            replies_to = isinstance(refs, list) and any(
                isinstance(ref, dict) and ref.get("type") == "replied_to" and ref.get("id") == parent for ref in refs
            )
            if replies_to and _same_text(post, wanted) and POST_ID.match(str(post.get("id"))):
                return str(post["id"]), page.result_count
        return None, page.result_count


def _same_text(post: dict[str, Any], wanted: str) -> bool:
    try:
        return full_text(post).strip() == wanted
    except ValueError:
        return False


REPLY = ReplyNetwork(reply_fields, XSender)  # monitor.networks.replies names it
