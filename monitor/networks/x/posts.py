"""X posts as mentions: one page of API v2 (data, includes, errors, meta) to Mentions.

Fields (docs.x.com/x-api/fundamentals/data-dictionary): a post's `text` (HTML-escaped: &amp; &lt;
&gt;), `note_tweet.text` for the full text of a long post, `entities.urls` (t.co links with their
`expanded_url`), `referenced_tweets` (replied_to, quoted, retweeted), `conversation_id`,
`in_reply_to_user_id`, `lang`, `withheld`; the authors in `includes.users` (id, username, name,
withheld). What `errors` says is gone (deleted posts, suspended authors) is read by problems.py.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from monitor.core.models import Mention
from monitor.core.sanitize import clean, clean_line, safe_url
from monitor.core.timeutil import remote_time
from monitor.networks.x.options import USERNAME
from monitor.networks.x.problems import SUSPENDED_MARK, Problems, read_problems, withheld_note

log = logging.getLogger(__name__)

NETWORK = "x"
POST_ID = re.compile(r"^[0-9]{1,19}$")
MAX_LINKS = 50
_UNESCAPE = (("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&"))  # the only entities X escapes; &amp; last

# What each read asks for: every field a mention needs, and its author's username and name.
FIELDS = {
    "tweet.fields": ",".join(
        ("created_at", "author_id", "conversation_id", "in_reply_to_user_id", "referenced_tweets", "lang")
        + ("entities", "note_tweet", "withheld")
    ),
    "expansions": "author_id,referenced_tweets.id,in_reply_to_user_id",
    "user.fields": "username,name,withheld",
}


@dataclass
class Page:
    """One answer, read defensively: what it holds, and what it says is missing."""

    posts: list[dict[str, Any]] = field(default_factory=list)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    newest_id: str | None = None
    next_token: str | None = None
    result_count: int = 0  # what is charged: every post returned, kept or not
    problems: Problems = field(default_factory=Problems)


def read_page(body: Any) -> Page:
    """A page of posts; anything that is not the documented shape becomes an empty part of it."""
    page = Page()
    if not isinstance(body, dict):
        return page
    data = body.get("data")
    page.posts = [p for p in data if isinstance(p, dict)] if isinstance(data, list) else []
    includes = _object(body.get("includes"))
    users = includes.get("users")
    for user in users if isinstance(users, list) else ():
        if isinstance(user, dict) and isinstance(user.get("id"), str):
            page.users[user["id"]] = user
    includes_posts = includes.get("tweets")
    page.result_count = len(page.posts) + (len(includes_posts) if isinstance(includes_posts, list) else 0)
    page.problems = read_problems(body.get("errors"))
    meta = _object(body.get("meta"))
    newest, token = meta.get("newest_id"), meta.get("next_token")
    page.newest_id = newest if isinstance(newest, str) and POST_ID.match(newest) else None
    page.next_token = token if isinstance(token, str) and 0 < len(token) <= 512 and token.isprintable() else None
    return page


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def is_retweet(post: dict[str, Any]) -> bool:
    refs = post.get("referenced_tweets")
    return isinstance(refs, list) and any(isinstance(r, dict) and r.get("type") == "retweeted" for r in refs)


def addressed(post: dict[str, Any], me: str) -> bool:
    """A post that replies to the city's account or names it (found by search: kept whatever the terms)."""
    if post.get("in_reply_to_user_id") == me:
        return True
    mentions = _entities(post).get("mentions")
    return isinstance(mentions, list) and any(isinstance(m, dict) and m.get("id") == me for m in mentions)


def post_mention(
    source: str, post: dict[str, Any], users: dict[str, dict[str, Any]], suspended: Collection[str] = ()
) -> Mention | None:
    """A Mention from one post of `data`, or None (logged) when it is not a post we can show. A post
    X withholds says so before its text; one whose author X reports suspended is kept, marked."""
    post_id = post.get("id")
    try:
        if not isinstance(post_id, str) or not POST_ID.match(post_id):
            raise ValueError("no post id")
        text = full_text(post)
        published = remote_time(post.get("created_at"))
        if published is None:
            raise ValueError("no created_at")
        held = withheld_note(post)
        text = f"[{held}] {text}" if held else text
        username, name = _author(users, str(post.get("author_id")), suspended)
        lang = post.get("lang")
        conversation = post.get("conversation_id")
        return Mention(
            source=source,
            remote_id=post_id,
            network=NETWORK,
            author=username,
            author_name=name,
            text=text,
            published_at=published,
            url=f"https://x.com/{'i/web' if username == SUSPENDED else username}/status/{post_id}",
            lang=clean_line(lang)[:16] if isinstance(lang, str) and lang else None,
            reply_to=_replied_to(post),
            thread_id=conversation if isinstance(conversation, str) and POST_ID.match(conversation) else None,
            tags=_tags(post),
            raw=post,
        )
    except (KeyError, TypeError, ValueError, IndexError, OverflowError) as exc:
        log.warning("%s: post %s skipped: %s", source, clean_line(str(post_id))[:40], exc)
        return None


SUSPENDED = "(suspended)"  # no username can hold brackets: never mistaken for a real account


def _author(users: dict[str, dict[str, Any]], author_id: str, suspended: Collection[str]) -> tuple[str, str]:
    """(username, display name) of a post's author, the name saying when X withholds the account."""
    if author_id in suspended and author_id not in users:
        return SUSPENDED, SUSPENDED_MARK
    author = users.get(author_id, {})
    username, name = author.get("username"), author.get("name")
    if not isinstance(username, str) or not USERNAME.match(username):
        raise ValueError("author unknown (not in includes)")
    name = clean_line(name) if isinstance(name, str) else ""
    held = withheld_note(author)
    return username, f"{name} ({held})".strip() if held else name


def _entities(post: dict[str, Any]) -> dict[str, Any]:
    note = post.get("note_tweet")
    if isinstance(note, dict) and isinstance(note.get("text"), str) and isinstance(note.get("entities"), dict):
        return note["entities"]
    found = post.get("entities")
    return found if isinstance(found, dict) else {}


def full_text(post: dict[str, Any]) -> str:
    """The long text when there is one (`note_tweet`), its t.co links shown as where they lead."""
    note = post.get("note_tweet")
    text = note.get("text") if isinstance(note, dict) and isinstance(note.get("text"), str) else post.get("text")
    if not isinstance(text, str):
        raise ValueError("text is not a string")
    urls = _entities(post).get("urls")
    for link in (urls if isinstance(urls, list) else [])[:MAX_LINKS]:
        if not isinstance(link, dict) or not isinstance(link.get("url"), str):
            continue
        target = safe_url(link.get("unwound_url") or link.get("expanded_url"))  # javascript: is no link
        if target and link["url"].startswith("https://t.co/"):
            text = text.replace(link["url"], target)
    for escaped, char in _UNESCAPE:
        text = text.replace(escaped, char)
    return clean(text)


def _replied_to(post: dict[str, Any]) -> str | None:
    refs = post.get("referenced_tweets")
    for ref in refs if isinstance(refs, list) else ():
        if isinstance(ref, dict) and ref.get("type") == "replied_to" and POST_ID.match(str(ref.get("id"))):
            return str(ref["id"])
    return None


def _tags(post: dict[str, Any]) -> tuple[str, ...]:
    tags = _entities(post).get("hashtags")
    unique: dict[str, str] = {}
    for tag in tags if isinstance(tags, list) else ():
        value = clean_line(tag.get("tag")) if isinstance(tag, dict) and isinstance(tag.get("tag"), str) else ""
        if value:
            unique.setdefault(value.casefold(), value)
    return tuple(unique.values())
