"""X's weighted length (twitter-text's rules through twitter-text-parser), checked against cases of
twitter-text's published conformance data (conformance/tests/validate.yml, WeightedTweetsWith-
DiscountedEmojiCounterTest, Apache-2.0), and the reply dialog showing the count and the price."""

from __future__ import annotations

from typing import Any

import pytest

from monitor.core import templates as tpl
from monitor.networks.x.length import cost_words, has_link
from monitor.networks.x.options import Budget

POEM = (
    "故人西辞黄鹤楼，烟花三月下扬州。孤帆远影碧空尽，唯见长江天际流。朱雀桥边野草花，乌衣巷口夕阳斜。旧时王谢堂前燕，"
    "飞入寻常百姓家。朝辞白帝彩云间，千里江陵一日还。两岸猿声啼不住，轻舟已过万重山。泪湿罗巾梦不成，夜深前殿按歌声。"
    "红颜未老恩先断，斜倚薰笼坐到明。独在异乡为异客，每逢佳节倍思亲。遥知兄弟登高处，遍插茱萸少一人。"
)

CONFORMANCE = [  # (description, text, weightedLength) as published
    ("Long tweet, overflow at char index 280", "285 chars-" + "xxxxxxxxxx-" * 25, 285),
    ("10 url string, no overflow", "https://www.twitter.com/aloha " * 10, 240),
    ("160 CJK char, overflow at char index 140", POEM, 320),
    ("3 latin char + 160 CJK char", "the" + POEM, 323),
    ("'Á' is normalized into 1 char", "A\u0301B", 2),
    ("Count unicode emoji chars inside the basic multilingual plane", "😷👾😡🔥💩", 10),
]


@pytest.mark.parametrize(("description", "text", "expected"), CONFORMANCE, ids=[c[0] for c in CONFORMANCE])
def test_weighted_length_matches_twitter_text_conformance(description: str, text: str, expected: int) -> None:
    assert len(POEM) == 160
    assert tpl.length(text, "x") == expected


def test_the_x_limit_is_280_weighted() -> None:
    assert tpl.limit("x") == 280


def test_links_with_or_without_scheme_are_links() -> None:
    assert has_link("voir toulouse.fr/travaux") and has_link("https://www.toulouse.fr")
    assert not has_link("Merci, une équipe passe ce matin.")


def test_the_price_says_the_link_surcharge_in_plain_words() -> None:
    assert cost_words("Merci", Budget(10.0)) == "costs $0.015"
    said = cost_words("Détails : toulouse.fr/travaux", Budget(10.0))
    assert said == "costs $0.20: it holds a link, and X charges a post with a link $0.20 instead of $0.015"
    assert cost_words("Merci", Budget(10.0, create=0.02)) == "costs $0.020"


async def test_the_reply_dialog_counts_as_x_does_shows_the_price_and_the_reply_is_paid_once(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from textual.widgets import Label

    from monitor.db.store import Store
    from tests.fakes_delivery import outbox_rows, serving
    from tests.fakes_x import LoopbackX
    from tests.test_app import started, wait_for
    from tests.test_delivery_app import app_for
    from tests.test_delivery_crash_x import KEYS, seed, x_watchlist

    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)
    async with serving(LoopbackX()) as x:  # type: ignore[arg-type]
        wl = x_watchlist(tmp_path, x.url)
        store = await Store.open(wl.database)
        (_, parent), *_ = await seed(store)
        await store.close()
        app = app_for(wl)
        async with app.run_test(size=(80, 24)) as pilot:
            await started(pilot, 4)
            await pilot.press("r")
            await pilot.press(*"Les travaux : toulouse.fr/travaux 東京")
            count = str(app.screen.query_one("#count", Label).render())
            cost = str(app.screen.query_one("#cost", Label).render())
            assert count.startswith("42/280")  # 14 + a link as 23 + a space + two CJK characters as 2 each
            assert "costs $0.20: it holds a link" in cost and "instead of $0.015" in cost
            await pilot.press("ctrl+s")
            await wait_for(pilot, lambda: [r["state"] for r in outbox_rows(wl.database)] == ["sent"])
    [posted] = x.posts
    assert posted["text"] == "Les travaux : toulouse.fr/travaux 東京"
    assert posted["referenced_tweets"] == [{"type": "replied_to", "id": parent}]
    store = await Store.open(wl.database)
    try:
        [spend] = await store.spend()
    finally:
        await store.close()
    assert (spend.source, spend.writes, spend.writes_usd) == ("x", 1, 0.20)
