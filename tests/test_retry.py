"""One error taxonomy, one status classifier and one backoff, for collection and delivery alike."""

from __future__ import annotations

import random

import httpx
import pytest

from monitor.core.retry import DELIVERY_CAP, POLL_CAP, ErrorKind, backoff
from monitor.core.timeutil import MAX_DELAY
from monitor.networks.base import NetworkError
from monitor.networks.http import check


def answer(status: int, body: object = None, **headers: str) -> httpx.Response:
    request = httpx.Request("POST", "https://mastodon.example/api/v1/statuses")
    return httpx.Response(status, json=body, headers=headers, request=request)


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    rng = random.Random(1)
    polls = [backoff(n, rng=rng, cap=POLL_CAP) for n in range(1, 12)]
    assert polls[0] <= 2.0 and polls[3] > polls[0]
    assert max(polls) <= POLL_CAP
    sends = [backoff(n, rng=rng, cap=DELIVERY_CAP) for n in range(1, 14)]
    assert POLL_CAP < max(sends) <= DELIVERY_CAP
    assert backoff(1, ErrorKind.RATE, retry_after=42, cap=POLL_CAP) == 42
    assert backoff(1, ErrorKind.RATE, retry_after=float("inf"), cap=POLL_CAP) == MAX_DELAY  # a peer's wait, bounded
    assert backoff(1, ErrorKind.AUTH, cap=POLL_CAP) >= 600


@pytest.mark.parametrize(
    ("status", "kind", "words"),
    [
        (429, ErrorKind.RATE, "rate limited (429)"),
        (401, ErrorKind.AUTH, "credentials rejected (401): The access token is invalid"),
        (404, ErrorKind.CONFIG, "not found (HTTP 404): Record not found"),
        (410, ErrorKind.CONFIG, "not found (HTTP 410)"),
        (422, ErrorKind.REFUSED, "refused as invalid (422): Validation failed"),
        (400, ErrorKind.REFUSED, "HTTP 400"),
        (408, ErrorKind.TRANSIENT, "HTTP 408, try again later"),
        (503, ErrorKind.TRANSIENT, "server error 503"),
    ],
)
def test_one_classifier_gives_the_kind_and_quotes_the_server(status: int, kind: ErrorKind, words: str) -> None:
    reasons = {401: "The access token is invalid", 404: "Record not found", 422: "Validation failed"}
    body = {"error": reasons[status]} if status in reasons else None
    with pytest.raises(NetworkError) as caught:
        check(answer(status, body, **{"Retry-After": "30"}), "mastodon: post the reply")
    assert caught.value.kind is kind
    assert str(caught.value).startswith("mastodon: post the reply: " + words)
    assert caught.value.retry_after == (30 if kind is ErrorKind.RATE else None)


def test_the_servers_words_are_cleaned_and_an_unread_stream_is_classified_without_them() -> None:
    with pytest.raises(NetworkError) as caught:
        check(answer(403, {"error": "\x1b]52;c;cm0gLXJmIH4=\x07nope [bold]x[/]"}), "sse")
    assert "\x1b" not in str(caught.value) and "\x07" not in str(caught.value)
    stream = httpx.Response(401, stream=httpx.ByteStream(b'{"error": "x"}'), request=httpx.Request("GET", "https://x"))
    with pytest.raises(NetworkError) as caught:
        check(stream, "sse")  # a stream checked before its body is read (Mastodon's streaming API)
    assert str(caught.value) == "sse: credentials rejected (401)"


def test_what_a_kind_means_for_the_next_try() -> None:
    # The collector shows a source as failing when a person must fix something; it keeps polling otherwise.
    assert {k for k in ErrorKind if k.needs_fixing} == {ErrorKind.AUTH, ErrorKind.CONFIG}
    # The delivery worker gives an item up when sending it again would get the same answer.
    assert {k for k in ErrorKind if k.worth_repeating} == {ErrorKind.TRANSIENT, ErrorKind.RATE}
    assert NetworkError("x", "auth").kind is ErrorKind.AUTH  # the sources still name kinds by their values
