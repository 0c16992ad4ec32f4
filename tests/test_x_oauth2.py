"""OAuth 2.0 with PKCE for X: `monitor auth x` over a pasted redirect, and rotating refresh tokens kept
in a 0600 file before they are used (a token endpoint and POST /2/tweets on httpx.MockTransport)."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from monitor.cli.auth import authorize
from monitor.cli.exits import UsageError
from monitor.core.config import SourceSpec
from monitor.core.outbox import ItemKind, OutboxItem, OutboxState
from monitor.networks.base import SourceContext
from monitor.networks.x.oauth2 import SCOPES, TokenFile
from monitor.networks.x.options import OAuth2App, XOptions
from monitor.networks.x.sender import XSender, token_path

REDIRECT = "http://127.0.0.1/x-callback"


class TokenServer:
    """POST /2/oauth2/token (authorization_code, refresh_token: each refresh token works once) and
    POST /2/tweets, which records what the token file held when the access token was used."""

    def __init__(self, path: Path) -> None:
        self.path, self.n, self.forms, self.live_refresh = path, 0, [], set()
        self.seen_on_disk: list[str] = []

    def issue(self) -> httpx.Response:
        self.n += 1
        self.live_refresh.add(f"refresh-{self.n}")
        body = {"token_type": "bearer", "expires_in": 7200, "access_token": f"access-{self.n}",
                "scope": " ".join(SCOPES), "refresh_token": f"refresh-{self.n}"}  # fmt: skip
        return httpx.Response(200, json=body)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/2/oauth2/token":
            form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
            self.forms.append(form)
            if form["grant_type"] == "refresh_token":
                if form["refresh_token"] not in self.live_refresh:
                    return httpx.Response(
                        400,
                        json={
                            "error": "invalid_request",
                            "error_description": "Value passed for the token was invalid.",
                        },
                    )  # noqa: E501
                self.live_refresh.discard(form["refresh_token"])  # rotated: the old one is spent
            return self.issue()
        assert request.url.path == "/2/tweets"
        self.seen_on_disk.append(json.loads(self.path.read_text())["refresh"])
        assert request.headers["authorization"] == f"Bearer access-{self.n}"
        return httpx.Response(201, json={"data": {"id": "1860000000000000999", "text": "ok"}})


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[SourceSpec, SourceContext, TokenServer]:
    monkeypatch.setenv("TEST_X_CLIENT_ID", "client-abc")
    options = XOptions(user_id="1500000000000000001", bearer_token_env="B",
                       oauth2=OAuth2App("TEST_X_CLIENT_ID", REDIRECT))  # fmt: skip
    spec = SourceSpec("x", "x", timedelta(seconds=60), options)
    server = TokenServer(token_path(tmp_path, "x"))

    def factory(**kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(server), **kwargs)

    return spec, SourceContext(state_dir=tmp_path, http_factory=factory), server


async def log_in(spec: SourceSpec, context: SourceContext, answer: Any = None) -> list[str]:
    said: list[str] = []

    def read(prompt: str) -> str:
        url = urlsplit(next(s for s in said if s.startswith("https://x.com/i/oauth2/authorize")))
        state = parse_qs(url.query)["state"][0]
        return answer(state) if answer else f"{REDIRECT}?state={state}&code=the-code"

    await authorize(spec, context, read, said.append)
    return said


async def test_auth_prints_a_pkce_url_and_exchanges_the_pasted_redirect(setup: Any) -> None:
    spec, context, server = setup
    said = await log_in(spec, context)
    query = parse_qs(urlsplit(next(s for s in said if s.startswith("https://"))).query)
    assert query["scope"] == ["tweet.read tweet.write users.read offline.access"]
    assert (query["code_challenge_method"], query["client_id"], query["redirect_uri"]) == (
        ["S256"],
        ["client-abc"],
        [REDIRECT],
    )
    form = server.forms[0]
    digest = hashlib.sha256(form["code_verifier"].encode()).digest()
    assert base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == query["code_challenge"][0]  # the pair matches
    assert (form["grant_type"], form["code"], form["redirect_uri"]) == ("authorization_code", "the-code", REDIRECT)
    path = token_path(context.state_dir, "x")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert TokenFile(path).load().refresh == "refresh-1"  # type: ignore[union-attr]
    assert not any("refresh-1" in s or "access-1" in s for s in said)  # never on screen


async def test_a_redirect_for_another_request_is_refused(setup: Any) -> None:
    spec, context, server = setup
    with pytest.raises(UsageError, match="state differs"):
        await log_in(spec, context, lambda state: f"{REDIRECT}?state=forged&code=c")
    with pytest.raises(UsageError, match="X refused: access_denied"):
        await log_in(spec, context, lambda state: f"{REDIRECT}?error=access_denied&state={state}")
    assert server.forms == []


def reply() -> OutboxItem:
    return OutboxItem(
        id=1, action_id=1, mention_id=1, kind=ItemKind.REPLY, target="source:x", idem_key="k",
        payload={"text": "Merci", "in_reply_to_tweet_id": "1860000000000000042"}, state=OutboxState.SENDING,
        attempts=1, next_attempt_at=0, claimed_at=None, last_error="", remote_id=None, remote_url=None,
        remote_status=None, checked_at=None, created_at=0, updated_at=0,
    )  # fmt: skip


async def test_an_expired_access_token_is_refreshed_and_the_new_refresh_token_saved_before_use(setup: Any) -> None:
    spec, context, server = setup
    await log_in(spec, context)
    sender = XSender(spec, context)
    try:
        await sender.send(reply())  # the fresh token: no refresh
        assert [f["grant_type"] for f in server.forms] == ["authorization_code"]
        assert sender.oauth2 is not None
        sender.oauth2.clock = lambda: 10_000_000_000.0  # two hours later, and more
        await sender.send(reply())
        assert server.forms[-1] == {
            "refresh_token": "refresh-1",
            "grant_type": "refresh_token",
            "client_id": "client-abc",
        }
        assert server.seen_on_disk == ["refresh-1", "refresh-2"]  # on disk before the new access token was used
        await sender.send(reply())  # within the new token's two hours: no refresh
        sender.oauth2.clock = lambda: 10_000_008_000.0  # past them: rotates again, from the file's token
        await sender.send(reply())
        assert server.seen_on_disk == ["refresh-1", "refresh-2", "refresh-2", "refresh-3"]
    finally:
        await sender.aclose()
