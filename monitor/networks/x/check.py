"""`monitor check --online` for X: are the credentials accepted, and at which access level?

Two cheap calls instead of a poll (a poll would buy a page of posts): GET /2/users/:id with the bearer
token, and GET /2/users/me with the user credentials, whose answer carries `x-access-level` ("read",
"read-write", "read-write-directmessages"). Each is a user read ($0.010).
"""

from __future__ import annotations

from monitor.core.config import SourceSpec
from monitor.core.retry import ErrorKind
from monitor.core.sanitize import clean_line
from monitor.networks.base import NetworkError, SourceContext
from monitor.networks.http import json_body, send
from monitor.networks.sending import secret
from monitor.networks.x.sender import XSender

WRITE_LEVELS = ("read-write", "read-write-directmessages")


async def check_online(spec: SourceSpec, context: SourceContext) -> str:
    """One line on what works; NetworkError (its message says which credential) when something does not."""
    sender = XSender(spec, context)
    try:
        what = f"x ({spec.name}): the bearer token"
        token = secret(spec.options.bearer_token_env, what)
        path = f"/2/users/{spec.options.user_id}"
        r = await send(sender.client, "GET", path, what, headers={"Authorization": f"Bearer {token}"})
        user = json_body(r, what).get("data") or {}
        parts = [f"reading as @{clean_line(str(user.get('username', '?')))[:15]}"]
        if spec.options.oauth1_env or spec.options.oauth2:
            what = f"x ({spec.name}): the user credentials"
            r = await send(sender.client, "GET", "/2/users/me", what, auth=await sender._auth(what))
            level = clean_line(r.headers.get("x-access-level", ""))[:40] or "not said"
            if level not in WRITE_LEVELS and level != "not said":
                raise NetworkError(f"{what}: access level {level}: replies need read-write", ErrorKind.AUTH)
            parts.append(f"replying with access level {level}")
        else:
            parts.append("no user credentials: replies cannot be sent")
        return "; ".join(parts)
    finally:
        await sender.aclose()
