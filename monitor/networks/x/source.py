"""X: recent search built from the watchlist's terms, and the city's mentions timeline, polled.

API v2 (docs.x.com): GET /2/tweets/search/recent (query, since_id, next_token, max_results 10..100)
and GET /2/users/:id/mentions (since_id, pagination_token, max_results 5..100), both answering
{data, includes, errors, meta: {newest_id, next_token, result_count}}. The cursor is one JSON
object: per feed the since_id reached, and while a round of pages is unfinished its next_token and
the newest id it started from. What the calls cost goes out with the batch (Batch.spend), stored in
the same transaction as the mentions; the collector hands the month's spend back before each poll.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx

from monitor.core.config import Term
from monitor.core.models import Batch
from monitor.core.retry import ErrorKind
from monitor.core.sanitize import clean_line
from monitor.core.timeutil import MAX_DELAY
from monitor.networks.base import NetworkError, SourceContext, SourceType
from monitor.networks.http import answer, check, json_body, make_client, pacing_delay, send
from monitor.networks.sending import secret
from monitor.networks.x.budget import MIN_READ, Meter
from monitor.networks.x.options import OPTION_KEYS, XOptions, parse_options
from monitor.networks.x.posts import FIELDS, POST_ID, Page, addressed, is_retweet, post_mention, read_page
from monitor.networks.x.query import build_queries

log = logging.getLogger(__name__)

SEARCH = "/2/tweets/search/recent"
MAX_PACING = 30.0  # never stall a poll longer than this to spread calls before a rate-limit reset

__all__ = ["TYPE", "XOptions", "XSource", "parse_options"]


@dataclass
class Position:
    since: str | None = None  # the newest post of the last finished round
    next: str | None = None  # the next page of an unfinished round
    newest: str | None = None  # the newest post of that unfinished round

    def dump(self) -> dict[str, str]:
        return {k: v for k, v in (("since", self.since), ("next", self.next), ("newest", self.newest)) if v}

    @classmethod
    def load(cls, data: Any) -> Position:
        if not isinstance(data, dict):
            return cls()
        since, newest, token = data.get("since"), data.get("newest"), data.get("next")
        return cls(_post_id(since), token if isinstance(token, str) and token.isprintable() else None, _post_id(newest))


def _post_id(value: Any) -> str | None:
    return value if isinstance(value, str) and POST_ID.match(value) else None


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@dataclass
class Cursor:
    feeds: dict[str, Position]

    @classmethod
    def load(cls, text: str | None) -> Cursor:
        try:
            data = json.loads(text) if text else {}
        except ValueError:
            log.warning("unreadable X cursor; starting from the latest posts")
            data = {}
        return cls({str(k): Position.load(v) for k, v in _object(_object(data).get("feeds")).items()})

    def dump(self) -> str:
        data = {"v": 1, "feeds": {k: p.dump() for k, p in self.feeds.items()}}
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


class StalePosition(Exception):
    """X refused the since_id or page token the cursor holds: too old (recent search covers 7 days)."""


def _names_position(body: dict[str, Any]) -> bool:
    errors = body.get("errors")
    for error in errors if isinstance(errors, list) else ():
        params = error.get("parameters") if isinstance(error, dict) else None
        if isinstance(params, dict) and {"since_id", "next_token", "pagination_token"} & set(params):
            return True
    return False


def watched_terms(all_terms: tuple[Term, ...], names: tuple[str, ...] | None) -> list[Term]:
    return list(all_terms) if names is None else [t for t in all_terms if t.name in names]


class XSource:
    def __init__(self, name: str, options: XOptions, context: SourceContext) -> None:
        self.name = name
        self.options = options
        self.interval = 0.0  # the least wait the budget adds (the collector's own interval comes first)
        self.queries = build_queries(watched_terms(context.terms, options.terms), options.retweets)
        if options.terms and not self.queries:
            log.warning("%s: none of the terms %s gives a search query", name, ", ".join(options.terms))
        self.meter = Meter(options.budget)
        self.note = ""  # what the sources bar adds: the month's spend
        self._client: httpx.AsyncClient = make_client(context, options.api)
        self.sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep  # tests record instead of waiting

    async def aclose(self) -> None:
        await self._client.aclose()

    def feeds(self) -> list[tuple[str, str, str | None]]:
        """(cursor key, path, query) of every feed: the mentions first, kept whatever the terms."""
        out: list[tuple[str, str, str | None]] = []
        if self.options.mentions:
            out.append(("mentions", f"/2/users/{self.options.user_id}/mentions", None))
        out += [(f"search:{q}", SEARCH, q) for q in self.queries]
        return out

    async def poll(self, cursor: str | None) -> Batch:
        state = Cursor.load(cursor)
        self.check_budget()
        if not self.meter.due():
            return Batch()  # paced by the budget: nothing spent, the cursor stays as it is
        before = self.meter.spent
        batch = Batch()
        taken: set[str] = set()
        feeds: dict[str, Position] = {}
        for key, path, query in self.feeds():
            feeds[key] = await self._read(key, path, query, state.feeds.get(key) or Position(), batch, taken)
        self.meter.paced(self.meter.spent - before, self.interval)
        self.note = self.meter.summary()
        batch.cursor = Cursor(feeds).dump()
        batch.spend = self.meter.report()
        return batch

    def check_budget(self) -> None:
        """NetworkError "budget reached until 1 Dec" when not even one more page fits in the month."""
        if self.meter.affordable(self._read_price()) == 0:
            self.note = self.meter.summary()
            wait = min(self.meter.seconds_to_next_month(), MAX_DELAY)  # a look costs nothing: no call is made
            raise NetworkError(f"{self.meter.reached_until()} ({self.meter.summary()})", ErrorKind.RATE, wait)

    def billing_month(self) -> str:
        return self.meter.billing_month()

    def restore_spend(self, month: str, usd: float) -> None:
        self.meter.restore(month, usd)

    def _read_price(self) -> float:
        """The most one post of a page may cost: itself, a post it refers to, its author (all in includes)."""
        b = self.options.budget
        return 2 * b.read + b.user_read if b else 0.0

    async def _read(
        self, key: str, path: str, query: str | None, old: Position, batch: Batch, taken: set[str]
    ) -> Position:
        """One round of pages newer than `old.since` (resumed at old.next), at most max_pages of it."""
        newest, token = old.newest, old.next
        for _ in range(self.options.max_pages):
            wanted = self.meter.affordable(self._read_price())
            if wanted == 0:
                break  # the budget ran out mid-round: the next month resumes at this page
            params: dict[str, str | int] = {**FIELDS, "max_results": max(wanted, MIN_READ)}
            if query is not None:
                params["query"] = query
            if old.since:
                params["since_id"] = old.since
            if token:
                params["next_token" if query is not None else "pagination_token"] = token
            try:
                page = read_page(await self._get(path, params, key))
            except StalePosition as exc:  # stopped for more than recent search's 7 days: start from the latest
                if not (old.since or old.next):  # nothing to forget: a peer that says so anyway is refused
                    raise NetworkError(f"{exc}: refused (400)", ErrorKind.REFUSED) from None
                log.warning(
                    "%s: %s: the saved position is too old for X; starting from the latest posts", self.name, key
                )
                return await self._read(key, path, query, Position(), batch, taken)
            self._charge(page.result_count, len(page.users))
            self._note_problems(key, page, batch)
            newest = newest or page.newest_id
            self._take(page, key == "mentions", batch, taken)
            token = page.next_token
            if token is None or old.since is None:  # done; a first poll starts from the latest page only
                return Position(newest or old.since)
        return Position(old.since, token, newest)

    def _charge(self, posts: int, users: int) -> None:
        if self.options.budget:
            self.meter.charge(posts * self.options.budget.read + users * self.options.budget.user_read)

    def _note_problems(self, key: str, page: Page, batch: Batch) -> None:
        """Posts X no longer finds are marked deleted if the desk holds them, as Mastodon's deletes are."""
        found = page.problems
        batch.deletes.extend(i for i in found.deleted if i not in batch.deletes)
        if found.deleted or found.suspended or found.other:
            log.info(
                "%s: %s: partial errors: %d deleted, %d suspended, %d other",
                self.name, key, len(found.deleted), len(found.suspended), found.other,
            )  # fmt: skip

    def _take(self, page: Page, to_us: bool, batch: Batch, taken: set[str]) -> None:
        for post in page.posts:
            if is_retweet(post) and not self.options.retweets:
                continue
            post_id = str(post.get("id"))
            if post_id in taken:
                continue
            mention = post_mention(self.name, post, page.users, page.problems.suspended)
            if mention is None:
                batch.skipped += 1
                continue
            mention.to_us = to_us or addressed(post, self.options.user_id)
            taken.add(post_id)
            batch.mentions.append(mention)

    async def _get(self, path: str, params: dict[str, str | int], key: str) -> Any:
        what = f"x: {key[:60]}"
        headers = self.bearer(what)
        response = await send(self._client, "GET", path, what, checked=False, params=params, headers=headers)
        self._check(response, what)
        body = json_body(response, what)
        delay = pacing_delay(response)  # x-rate-limit-remaining nearly used: spread the rest to the reset
        if delay > 0:
            log.info("%s: rate-limit window nearly used; waiting %.1fs", self.name, min(delay, MAX_PACING))
            await self.sleep(min(delay, MAX_PACING))
        return body

    def bearer(self, what: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {secret(self.options.bearer_token_env, what)}"}

    def _check(self, response: httpx.Response, what: str) -> None:
        """check(), with 401 and 403 saying which credential or access level is missing, and a 400 about
        since_id or the page token (older than recent search reaches) as StalePosition."""
        status = response.status_code
        if status == 400 and _names_position(answer(response)):
            raise StalePosition(what)
        if status not in (401, 402, 403):
            check(response, what)
            return
        body = answer(response)
        said = clean_line(str(body.get("detail") or body.get("title") or ""))[:200]
        env = self.options.bearer_token_env
        if status == 401:
            raise NetworkError(f"{what}: the bearer token in {env} was rejected (401) {said}".strip(), ErrorKind.AUTH)
        raise NetworkError(
            f"{what}: the app's access level or credits do not allow this ({status}) {said}".strip(), ErrorKind.AUTH
        )


def build(name: str, options: XOptions, context: SourceContext) -> XSource:
    if options.stream:
        from monitor.networks.x.stream import XStreamSource  # it builds on this module

        return XStreamSource(name, options, context)
    return XSource(name, options, context)


TYPE = SourceType(
    option_keys=OPTION_KEYS,
    parse_options=parse_options,
    build=build,
    default_interval=timedelta(seconds=60),
)
