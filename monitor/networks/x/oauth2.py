"""OAuth 2.0 Authorization Code with PKCE for X (docs.x.com/fundamentals/authentication/oauth-2-0):
the authorize URL, the pasted redirect, the code for tokens, and rotating refresh tokens.

An access token lives two hours; `offline.access` brings a refresh token, and each refresh answers with
a new one (the old one stops working). So the new pair is written to the token file (0600, atomically,
through core.safefile) before the access token is used: a crash right after a refresh never leaves the
desk holding only a spent refresh token.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from monitor.core import safefile
from monitor.core.retry import ErrorKind
from monitor.core.sanitize import clean_line
from monitor.networks.base import NetworkError
from monitor.networks.http import answer, check, json_body, send

log = logging.getLogger(__name__)

AUTHORIZE = "https://x.com/i/oauth2/authorize"
TOKEN = "/2/oauth2/token"
SCOPES = ("tweet.read", "tweet.write", "users.read", "offline.access")
MARGIN = 120.0  # refresh this long before the access token expires
MAX_LIFETIME = 86_400.0  # an expires_in from the server is bounded: two hours is the documented value


@dataclass(frozen=True)
class Tokens:
    access: str = field(repr=False)
    refresh: str = field(repr=False)
    expires_at: float

    @classmethod
    def parse(cls, body: Any, what: str, now: float) -> Tokens:
        if isinstance(body, dict) and isinstance(body.get("access_token"), str) and body["access_token"]:
            refresh = body.get("refresh_token")
            if not isinstance(refresh, str) or not refresh:
                raise NetworkError(f"{what}: no refresh token (was offline.access granted?)", ErrorKind.AUTH)
            lifetime = body.get("expires_in")
            if not (isinstance(lifetime, int | float) and 0 < lifetime <= MAX_LIFETIME):
                lifetime = 7200.0  # absent, nan or absurd: the documented two hours
            return cls(body["access_token"], refresh, now + float(lifetime))
        raise NetworkError(f"{what}: no access token in the answer", ErrorKind.TRANSIENT)


def pkce() -> tuple[str, str]:
    """(code_verifier, its S256 code_challenge), RFC 7636."""
    verifier = secrets.token_urlsafe(64)[:96]
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorize_url(client_id: str, redirect_uri: str, state: str, challenge: str) -> str:
    query = {
        "response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "scope": " ".join(SCOPES),
        "state": state, "code_challenge": challenge, "code_challenge_method": "S256",
    }  # fmt: skip
    return f"{AUTHORIZE}?{urlencode(query)}"


def code_from_redirect(pasted: str, state: str) -> str:
    """The code in the redirect the operator pasted back (the whole address, or its query)."""
    query = parse_qs(urlsplit(pasted.strip()).query or pasted.strip().lstrip("?"))
    if query.get("error"):
        raise ValueError(f"X refused: {clean_line(query['error'][0])[:100]}")
    if query.get("state", [""])[0] != state:
        raise ValueError("this redirect is not the answer to this request (state differs)")
    code = query.get("code", [""])[0]
    if not code:
        raise ValueError("no code in the pasted address")
    return code


class TokenFile:
    """`<state_dir>/x-<source>.oauth2.json`, mode 0600, written atomically; tokens go nowhere else."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> Tokens | None:
        try:
            data = json.loads(self.path.read_text("utf-8"))
            return Tokens(str(data["access"]), str(data["refresh"]), float(data["expires_at"]))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("X token file %s unreadable: run `monitor auth x` again", self.path)
            return None

    def save(self, tokens: Tokens) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"access": tokens.access, "refresh": tokens.refresh, "expires_at": tokens.expires_at}
        safefile.write_text(self.path, json.dumps(data), safefile.PRIVATE)


class OAuth2Session:
    """A user's access token for one source, refreshed (and the refresh token rotated) as needed."""

    def __init__(self, client: httpx.AsyncClient, client_id: str, client_secret: str | None, store: TokenFile) -> None:
        self.client, self.client_id, self.client_secret, self.store = client, client_id, client_secret, store
        self.clock = time.time
        self._lock = asyncio.Lock()

    def _auth(self) -> tuple[str, str] | None:
        return (self.client_id, self.client_secret) if self.client_secret else None  # a confidential client

    async def exchange(self, code: str, verifier: str, redirect_uri: str) -> Tokens:
        form = {"code": code, "grant_type": "authorization_code", "client_id": self.client_id,
                "redirect_uri": redirect_uri, "code_verifier": verifier}  # fmt: skip
        return await self._token(form, "x: exchange the code")

    async def access_token(self) -> str:
        async with self._lock:
            tokens = self.store.load()  # another process may have rotated them: the file is the truth
            if tokens is None:
                raise NetworkError("x: no OAuth 2.0 tokens (run `monitor auth x`)", ErrorKind.CONFIG)
            if self.clock() < tokens.expires_at - MARGIN:
                return tokens.access
            form = {"refresh_token": tokens.refresh, "grant_type": "refresh_token", "client_id": self.client_id}
            return (await self._token(form, "x: refresh the access token")).access

    async def _token(self, form: dict[str, str], what: str) -> Tokens:
        auth = self._auth()
        kwargs: dict[str, Any] = {"data": form}
        if auth:
            kwargs["auth"] = httpx.BasicAuth(*auth)
        r = await send(self.client, "POST", TOKEN, what, checked=False, **kwargs)
        if r.status_code in (400, 401):
            said = clean_line(str(answer(r).get("error_description") or answer(r).get("error") or ""))[:200]
            raise NetworkError(f"{what}: refused ({said}); run `monitor auth x` again", ErrorKind.AUTH)
        tokens = Tokens.parse(json_body(check(r, what), what), what, self.clock())
        self.store.save(tokens)  # before any use: the old refresh token is spent now
        return tokens
