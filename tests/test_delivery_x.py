"""Replies on X (tests/fakes_x.py): POST /2/tweets with reply.in_reply_to_tweet_id under OAuth 1.0a,
what each costs, and exactly once without an idempotency key."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fakes_x import CITY_ID, DUPLICATE, FakeX, post_id

from monitor.core.config import SourceSpec
from monitor.core.outbox import ItemKind, OutboxItem, OutboxState
from monitor.core.retry import ErrorKind
from monitor.networks.base import NetworkError, SourceContext
from monitor.networks.x.options import Budget, XOptions
from monitor.networks.x.sender import XSender

KEYS = ("TEST_X_CK", "TEST_X_CS", "TEST_X_AT", "TEST_X_ATS")
PARENT = "1860000000000000042"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeX:
    for name in KEYS:
        monkeypatch.setenv(name, f"value-of-{name.lower()}")
    return FakeX()


@pytest.fixture
async def sender(fake: FakeX) -> Any:
    options = XOptions(user_id=CITY_ID, bearer_token_env="TEST_X_BEARER", username="toulouse",
                       budget=Budget(50.0), oauth1_env=KEYS)  # fmt: skip
    spec = SourceSpec("x", "x", timedelta(seconds=60), options)
    s = XSender(spec, SourceContext(http_factory=fake.factory))
    yield s
    await s.aclose()


def item(text: str, attempts: int = 1, parent: str = PARENT) -> OutboxItem:
    return OutboxItem(
        id=1, action_id=1, mention_id=1, kind=ItemKind.REPLY, target="source:x", idem_key="k",
        payload={"text": text, "in_reply_to_tweet_id": parent}, state=OutboxState.SENDING, attempts=attempts,
        next_attempt_at=0, claimed_at=None, last_error="", remote_id=None, remote_url=None, remote_status=None,
        checked_at=None, created_at=0, updated_at=0,
    )  # fmt: skip


async def test_a_reply_is_posted_in_reply_to_the_post_signed_with_oauth1(fake: FakeX, sender: XSender) -> None:
    sent = await sender.send(item("Merci, une équipe passe ce matin."))
    request = fake.calls("/2/tweets")[0]
    assert json.loads(request.content) == {  # the JSON body survives the signing (authlib#543)
        "text": "Merci, une équipe passe ce matin.",
        "reply": {"in_reply_to_tweet_id": PARENT},
    }
    auth = request.headers["authorization"]
    assert auth.startswith("OAuth ") and 'oauth_consumer_key="value-of-test_x_ck"' in auth
    assert 'oauth_token="value-of-test_x_at"' in auth and "oauth_signature=" in auth
    assert sent.remote_id == fake.created[0]["_post"]["id"]
    assert sent.remote_url == f"https://x.com/toulouse/status/{sent.remote_id}"
    assert sent.cost is not None and (sent.cost.writes_usd, sent.cost.writes) == (0.015, 1)


async def test_a_reply_with_a_link_costs_the_link_price(fake: FakeX, sender: XSender) -> None:
    sent = await sender.send(item("Les travaux : toulouse.fr/travaux"))
    assert sent.cost is not None and sent.cost.writes_usd == 0.20


async def test_a_retry_after_an_unknown_outcome_finds_the_reply_instead_of_posting_again(
    fake: FakeX, sender: XSender
) -> None:
    await sender.send(item("Merci & bonne journée"))  # X has it; suppose our commit never happened
    again = await sender.send(item("Merci & bonne journée", attempts=2))
    assert len(fake.created) == 1 and len(fake.calls("/2/tweets")) == 1  # looked, found, not posted
    assert again.remote_id == fake.created[0]["_post"]["id"]
    assert again.cost is not None and again.cost.writes == 1  # the post was paid for once: counted now


async def test_a_retry_with_nothing_found_posts(fake: FakeX, sender: XSender) -> None:
    sent = await sender.send(item("Bonjour", attempts=3))
    assert len(fake.created) == 1 and sent.remote_id == fake.created[0]["_post"]["id"]
    assert len(fake.calls(f"/2/users/{CITY_ID}/tweets")) == 1


async def test_duplicate_content_counts_as_sent_only_when_found(fake: FakeX, sender: XSender) -> None:
    first = await sender.send(item("Nous regardons."))
    assert (await sender.send(item("Nous regardons."))).remote_id == first.remote_id  # found: sent
    other = post_id()  # the same words to another post: X says duplicate, and it is not that reply
    with pytest.raises(NetworkError) as caught:
        await sender.send(item("Nous regardons.", parent=other))
    assert caught.value.kind is ErrorKind.REFUSED and "duplicate" in str(caught.value)
    assert len(fake.created) == 1


async def test_missing_user_credentials_are_a_config_error(fake: FakeX, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_X_ATS")
    options = XOptions(user_id=CITY_ID, bearer_token_env="B", oauth1_env=KEYS)
    s = XSender(SourceSpec("x", "x", timedelta(seconds=60), options), SourceContext(http_factory=fake.factory))
    try:
        with pytest.raises(NetworkError) as caught:
            await s.send(item("Bonjour"))
        assert caught.value.kind is ErrorKind.CONFIG and "TEST_X_ATS" in str(caught.value)
        assert fake.requests == []
    finally:
        await s.aclose()


async def test_a_reply_x_does_not_allow_is_refused_not_retried(fake: FakeX, sender: XSender) -> None:
    said = ("Reply to this conversation is not allowed because you have not been mentioned or otherwise engaged"
            " by the author of the post you are replying to.")  # fmt: skip
    fake.failures.append(httpx.Response(403, json={"title": "Forbidden", "status": 403, "detail": said}))
    with pytest.raises(NetworkError) as caught:
        await sender.send(item("Bonjour"))
    assert caught.value.kind is ErrorKind.REFUSED and not caught.value.kind.worth_repeating


def test_duplicate_answer_shape_is_x_s() -> None:
    assert DUPLICATE["detail"] == "You are not allowed to create a Tweet with duplicate content."


def x_watchlist(tmp_path: Any, url: str) -> Any:
    """One X source on `url`, with a $25 monthly budget."""
    path = tmp_path / "watchlist.yaml"
    path.write_text(
        "city: Toulouse\nterms:\n  - name: v\n    keywords: [Toulouse]\nsources:\n  - name: x\n    type: x\n"
        f'    api: {url}\n    user_id: "{CITY_ID}"\n    bearer_token_env: TEST_X_BEARER\n'
        "    oauth1: {consumer_key_env: TEST_X_CK, consumer_secret_env: TEST_X_CS,"
        " access_token_env: TEST_X_AT, access_token_secret_env: TEST_X_ATS}\n    budget: {monthly: 25}\n"
    )
    return path


async def test_check_online_says_the_access_level_and_the_spend_without_buying_posts(
    fake: FakeX, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    from monitor.cli import main
    from tests.fakes_delivery import serving
    from tests.fakes_x import LoopbackX

    monkeypatch.setenv("TEST_X_BEARER", "bearer")
    async with serving(LoopbackX()) as x:  # type: ignore[arg-type]
        path = x_watchlist(tmp_path, x.url)
        code = await asyncio.to_thread(main, ["check", "--online", "-w", str(path)])
        out = capsys.readouterr().out
        assert code == 0, out
        assert "x (x): ok, reading as @toulouse; replying with access level read-write" in out
        assert "spent this month: nothing yet (no database)" in out
        x.access_level = "read"
        code = await asyncio.to_thread(main, ["check", "--online", "-w", str(path)])
        assert code == 1 and "access level read: replies need read-write" in capsys.readouterr().out
        assert x.posts == []


async def test_check_online_says_this_months_spend_read_from_either_engine(
    fake: FakeX, tmp_path: Any, database: Any, db_target: Any, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    import asyncio

    from monitor.cli import main
    from monitor.core.models import Spend
    from monitor.networks.x.budget import billing_month
    from tests.fakes_delivery import serving
    from tests.fakes_x import LoopbackX

    await database.ingest("x", [], None, spend=Spend(billing_month(), reads_usd=1.25, writes_usd=0.5, writes=2))
    await database.ingest("x", [], None, spend=Spend("2020-01", reads_usd=99.0))  # another month: not counted
    monkeypatch.setenv("TEST_X_BEARER", "bearer")
    async with serving(LoopbackX()) as x:  # type: ignore[arg-type]
        path = x_watchlist(tmp_path, x.url)
        code = await asyncio.to_thread(main, ["check", "--online", "-w", str(path), "--db", str(db_target)])
        out = capsys.readouterr().out
        assert code == 0, out
        assert "spent this month: $1.75 of $25.00" in out
