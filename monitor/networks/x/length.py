"""What an X reply costs, in words the operator reads before sending it.

A post with a link is dearer (docs.x.com pricing: $0.015 a post, $0.20 with a URL). Whether text holds a
link is twitter-text's call (the maintained port on PyPI, twitter-text-parser): a bare toulouse.fr counts.
"""

from __future__ import annotations

from twitter_text import extract_urls

from monitor.networks.x.budget import money
from monitor.networks.x.options import Budget


def has_link(text: str) -> bool:
    """What X would link: a URL with or without its scheme (toulouse.fr counts)."""
    return bool(extract_urls(text))


def cost_words(text: str, budget: Budget | None) -> str:
    """ "costs $0.015", or the link surcharge said plainly."""
    prices = budget or Budget(0.0)
    if not has_link(text):
        return f"costs ${prices.create:.3f}"
    return (
        f"costs {money(prices.create_with_link)}: it holds a link, and X charges a post with a link"
        f" {money(prices.create_with_link)} instead of ${prices.create:.3f}"
    )
