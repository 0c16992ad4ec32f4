"""`monitor auth x`: OAuth 2.0 with PKCE in a terminal, over SSH. It prints the address to open in any
browser, reads the address X redirects to (pasted back: nothing needs to listen on this machine), and
keeps the tokens in the state folder, 0600."""

from __future__ import annotations

import argparse
import asyncio
import secrets
from collections.abc import Callable

from monitor.cli.exits import EXIT_OK, UsageError
from monitor.core.config import SourceSpec, Watchlist
from monitor.core.paths import state_dir
from monitor.networks import SourceContext
from monitor.networks.http import make_client


def cmd_auth(args: argparse.Namespace, watchlist: Watchlist) -> int:
    spec = x_source(watchlist, args.source)
    context = SourceContext(state_dir=state_dir(watchlist.state_dir))
    return asyncio.run(authorize(spec, context, input, print))


def x_source(watchlist: Watchlist, name: str | None) -> SourceSpec:
    found = [s for s in watchlist.sources if s.type == "x" and s.options.oauth2 and (name is None or s.name == name)]
    if len(found) != 1:
        which = f"named {name!r} " if name else ""
        raise UsageError(f"no single x source {which}with oauth2: in the watchlist (--source NAME picks one)")
    return found[0]


async def authorize(
    spec: SourceSpec, context: SourceContext, read: Callable[[str], str], say: Callable[[str], object]
) -> int:
    from monitor.networks.x.oauth2 import authorize_url, code_from_redirect, pkce
    from monitor.networks.x.sender import oauth2_session

    app = spec.options.oauth2
    async with make_client(context, spec.options.api) as client:
        session = oauth2_session(client, spec, context.state_dir)
        verifier, challenge = pkce()
        state = secrets.token_urlsafe(24)
        say("Open this address in a browser, logged in as the city's account, and allow the app:\n")
        say(authorize_url(session.client_id, app.redirect_uri, state, challenge))
        say("\nThe browser then goes to an address starting with " + app.redirect_uri)
        say("(the page may not load: that is expected). Copy that whole address and paste it here.")
        try:
            code = code_from_redirect(read("address: "), state)
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
        await session.exchange(code, verifier, app.redirect_uri)
    say(f"Saved: {session.store.path} (readable by you only). Replies on {spec.name} can go out.")
    return EXIT_OK
