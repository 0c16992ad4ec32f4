"""XRPC over HTTP with an app-password session that outlives the process.

createSession is limited to 30 per 5 minutes and 300 per day per account, so the session is opened
once, kept in a 0600 file in the state folder, reused at the next start, and renewed with
refreshSession when the PDS answers ExpiredToken. Only a rejected refresh token opens a new session.
Tokens and the password are never logged, and never stored anywhere but that file.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from monitor.core import safefile
from monitor.core.retry import ErrorKind
from monitor.networks.base import NetworkError, SourceContext
from monitor.networks.http import check, json_body, make_client, pacing_delay, parse_json, secure_origin, send

log = logging.getLogger(__name__)

CREATE_SESSION = "com.atproto.server.createSession"
RESOLVE_HANDLE = "com.atproto.identity.resolveHandle"
PLC_DIRECTORY = "https://plc.directory"
REFRESH_SESSION = "com.atproto.server.refreshSession"
# Access-token errors that a new token cures (the PDS sends them as 400 InvalidRequest).
TOKEN_ERRORS = frozenset({"ExpiredToken", "InvalidToken"})
CONFIG_ERRORS = frozenset({"BadQueryString"})
MAX_PACING = 30.0  # never stall a poll longer than this to spread calls before a rate-limit reset
_ERROR_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,63}$")
_DID = re.compile(r"^did:(plc:[a-z2-7]{24}|web:[A-Za-z0-9.-]{1,253})$")


@dataclass(frozen=True)
class Session:
    did: str
    handle: str
    access_jwt: str = field(repr=False)
    refresh_jwt: str = field(repr=False)

    @classmethod
    def parse(cls, body: Any, what: str) -> Session:
        """A createSession/refreshSession answer; all four fields are required by the lexicon."""
        if isinstance(body, dict):
            keys = ("did", "handle", "accessJwt", "refreshJwt")
            values = [v for k in keys if isinstance(v := body.get(k), str) and v]
            if len(values) == 4:
                return cls(*values)
        raise NetworkError(f"{what}: unexpected response (no session in it)", ErrorKind.TRANSIENT)


class SessionFile:
    """The session of one source, in `<state_dir>/bluesky-<source>.session.json`, mode 0600.

    It records the PDS and identifier it belongs to, so that editing either in the watchlist does
    not reuse another account's tokens.
    """

    def __init__(self, path: Path | None, pds: str, identifier: str) -> None:
        self.path = path
        self.pds = pds
        self.identifier = identifier

    def load(self) -> Session | None:
        if self.path is None:
            return None
        try:
            data = json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            log.warning("session file %s unreadable (%s); a new session will be opened", self.path, type(exc).__name__)
            return None
        if not isinstance(data, dict) or data.get("pds") != self.pds or data.get("identifier") != self.identifier:
            return None
        try:
            return Session.parse(data, "session file")
        except NetworkError:
            return None

    def save(self, session: Session) -> None:
        if self.path is None:
            return
        data = {
            "pds": self.pds,
            "identifier": self.identifier,
            "did": session.did,
            "handle": session.handle,
            "accessJwt": session.access_jwt,
            "refreshJwt": session.refresh_jwt,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # 0600 from the start (never world-readable, even briefly), never through a planted symlink.
        safefile.write_text(self.path, json.dumps(data), safefile.PRIVATE)


def pds_endpoint(doc: Any, did: str) -> str:
    """The #atproto_pds service of a DID document: an https origin (http only on this machine)."""
    if dig(doc, "id") != did:
        raise NetworkError("DID document of another DID")
    services = dig(doc, "service")
    for service in services if isinstance(services, list) else ():
        if dig(service, "id") in ("#atproto_pds", f"{did}#atproto_pds"):
            url = dig(service, "serviceEndpoint")
            parts = urlsplit(url if isinstance(url, str) else "")
            if parts.hostname and secure_origin(parts.geturl()):
                if parts.path.strip("/") or parts.query or parts.fragment or parts.username:
                    break
                return f"{parts.scheme}://{parts.netloc}"
            break
    raise NetworkError("no usable #atproto_pds service in the DID document")


def dig(obj: Any, *keys: str) -> Any:
    """obj[k1][k2]..., or None where a level is missing or not an object."""
    for key in keys:
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj


def xrpc_error(response: httpx.Response) -> str:
    """The XRPC error name of an error answer (`{"error": "ExpiredToken", "message": ...}`), or ''."""
    try:
        body = parse_json(response.content, "")
    except NetworkError:
        return ""
    name = body.get("error") if isinstance(body, dict) else None
    # It comes from the network and may end up on screen: accept only a plain identifier.
    return name if isinstance(name, str) and _ERROR_NAME.match(name) else ""


def check_xrpc(response: httpx.Response, what: str) -> None:
    """check() (its message quotes the XRPC error), with a bad query as a config error."""
    try:
        check(response, what)
    except NetworkError as exc:
        if xrpc_error(response) not in CONFIG_ERRORS:
            raise
        raise NetworkError(str(exc), ErrorKind.CONFIG, exc.retry_after) from None


def _is_token_error(response: httpx.Response) -> bool:
    return response.status_code in (400, 401) and xrpc_error(response) in TOKEN_ERRORS


class XrpcClient:
    """Calls `/xrpc/<nsid>` on one PDS with the account's session, renewing it when needed."""

    def __init__(
        self,
        context: SourceContext,
        pds: str,
        identifier: str,
        password_env: str,
        session_path: Path | None,
        label: str,
        plc: str | None = None,
    ) -> None:
        self.context = context
        self.plc = plc  # None: use `pds` as configured; else find the account's own PDS first
        self._resolved = False
        self.identifier = identifier
        self.password_env = password_env
        self.label = label
        self.store = SessionFile(session_path, pds, identifier)
        self.client = make_client(context, base_url=pds)
        self.session: Session | None = None
        self._opening = asyncio.Lock()
        self.sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep  # tests record instead of waiting
        if session_path is None:
            log.warning("%s: no state folder; the Bluesky session will not survive a restart", label)

    async def aclose(self) -> None:
        await self.client.aclose()

    async def query(self, nsid: str, params: dict[str, Any]) -> Any:
        return await self._call("GET", nsid, params=params)

    async def current(self) -> Session:
        """The session: this process's, else the saved one, else a new one (createSession is rate-limited)."""
        self._require_password()  # fail as a config error even while a saved session still works
        async with self._opening:  # concurrent sends share one createSession
            await self._resolve_pds()
            self.session = self.session or self.store.load() or await self._create()
        return self.session

    async def raw(self, method: str, nsid: str, **kwargs: Any) -> httpx.Response:
        """An authenticated call whose answer the caller reads itself; an expired session is renewed once."""
        session = await self.current()
        response = await self._send(method, nsid, session, **kwargs)
        if _is_token_error(response):
            session = await self._renew(session)
            response = await self._send(method, nsid, session, **kwargs)
            if _is_token_error(response):
                raise NetworkError(f"{nsid}: session rejected right after renewal", ErrorKind.AUTH)
        return response

    async def _resolve_pds(self) -> None:
        """Move to the PDS named in the account's DID document (did:plc at the PLC directory, did:web
        at its /.well-known/did.json); the configured one answers for its own accounts only."""
        if self.plc is None or self._resolved:
            return
        self._resolved = True
        try:
            did = self.identifier if self.identifier.startswith("did:") else await self._resolve_handle()
            endpoint = pds_endpoint(await self._did_document(did), did)
        except NetworkError as exc:
            log.warning("%s: the account's PDS is unknown (%s); using %s", self.label, exc, self.store.pds)
            return
        if endpoint != self.store.pds:
            log.info("%s: the account lives on %s", self.label, endpoint)
            await self.client.aclose()
            self.client = make_client(self.context, base_url=endpoint)
            self.store.pds = endpoint  # a session saved for another PDS is not reused

    async def _resolve_handle(self) -> str:
        response = await send(
            self.client, "GET", f"/xrpc/{RESOLVE_HANDLE}", RESOLVE_HANDLE, params={"handle": self.identifier}
        )
        did = dig(json_body(response, RESOLVE_HANDLE), "did")
        if not isinstance(did, str) or not _DID.match(did):
            raise NetworkError(f"{RESOLVE_HANDLE}: no DID in the answer")
        return did

    async def _did_document(self, did: str) -> Any:
        if did.startswith("did:plc:"):
            url = f"{(self.plc or PLC_DIRECTORY).rstrip('/')}/{did}"
        elif did.startswith("did:web:") and re.fullmatch(r"[A-Za-z0-9.-]+", did[8:]):
            url = f"https://{did[8:]}/.well-known/did.json"
        else:
            raise NetworkError(f"{did[:40]}: a DID method without a known document")
        async with make_client(self.context) as client:
            return json_body(await send(client, "GET", url, "DID document"), "DID document")

    async def _call(self, method: str, nsid: str, **kwargs: Any) -> Any:
        response = await self.raw(method, nsid, **kwargs)
        check_xrpc(response, nsid)
        body = json_body(response, nsid)
        delay = pacing_delay(response)
        if delay > 0:
            log.info("%s: rate-limit window nearly used; waiting %.1fs", self.label, min(delay, MAX_PACING))
            await self.sleep(min(delay, MAX_PACING))
        return body

    async def _send(self, method: str, nsid: str, session: Session, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {session.access_jwt}"}
        return await send(self.client, method, f"/xrpc/{nsid}", nsid, checked=False, headers=headers, **kwargs)

    def _require_password(self) -> str:
        value = os.environ.get(self.password_env, "")
        if not value.strip():
            raise NetworkError(
                f"environment variable {self.password_env} is not set (it must hold the app password)",
                ErrorKind.CONFIG,
            )
        return value

    async def _create(self) -> Session:
        body = {"identifier": self.identifier, "password": self._require_password()}
        response = await send(self.client, "POST", f"/xrpc/{CREATE_SESSION}", CREATE_SESSION, checked=False, json=body)
        if response.status_code == 400 and (name := xrpc_error(response)):
            # AccountTakedown, AuthFactorTokenRequired (a main password with e-mail 2FA), ...
            raise NetworkError(f"{CREATE_SESSION}: credentials rejected ({name})", ErrorKind.AUTH)
        check_xrpc(response, CREATE_SESSION)  # 401 AuthenticationRequired: a wrong app password
        session = Session.parse(json_body(response, CREATE_SESSION), CREATE_SESSION)
        self.store.save(session)
        log.info("%s: opened a Bluesky session for %s", self.label, session.handle)
        return session

    async def _refresh(self, session: Session) -> Session | None:
        """A renewed session, or None when the refresh token itself is expired, revoked or invalid."""
        headers = {"Authorization": f"Bearer {session.refresh_jwt}"}
        response = await send(
            self.client, "POST", f"/xrpc/{REFRESH_SESSION}", REFRESH_SESSION, checked=False, headers=headers
        )
        if _is_token_error(response) or response.status_code == 401:
            return None
        check_xrpc(response, REFRESH_SESSION)  # 429 and 5xx: keep the session, retry later
        return Session.parse(json_body(response, REFRESH_SESSION), REFRESH_SESSION)

    async def _renew(self, stale: Session) -> Session:
        on_disk = self.store.load()
        if on_disk is not None and on_disk.access_jwt != stale.access_jwt:
            # Another process with this source (the app and `collect`) renewed it already; refreshing
            # again would rotate the refresh token under its feet.
            self.session = on_disk
            return on_disk
        fresh = await self._refresh(stale)
        if fresh is None:
            log.info("%s: refresh token rejected; opening a new session", self.label)
            fresh = await self._create()
        else:
            self.store.save(fresh)
        self.session = fresh
        return fresh
