"""How fast X posts go from API v2 pages to SQLite rows (parse, match, store), next to Mastodon's in the same run.

10,000 posts shaped like recent search answers (data with entities, t.co links and their expanded_url,
hashtags, some long posts with note_tweet; includes.users with each page's authors), pages of 100 as
the API serves them; the watchlist of 500 generated terms of bench_mastodon_ingest.py. The baseline is
bench_mastodon_ingest's own ingest of 10,000 statuses, run in the same process right after.
Run:  python benchmarks/bench_x_ingest.py [--n 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import bench_mastodon_ingest as masto
from _runs import header, repeat, show

from monitor.core.matching import Matcher
from monitor.core.models import Batch
from monitor.db.store import Store
from monitor.networks import load_watchlist
from monitor.networks.base import SourceContext
from monitor.networks.x.options import XOptions
from monitor.networks.x.posts import read_page
from monitor.networks.x.source import XSource

PAGE = 100


def make_post(rng: random.Random, n: int, watch_words: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    french = rng.random() < 0.7
    city = rng.random() < 0.25
    sentence = rng.choice((masto.CITY_FR if french else masto.CITY_EN) if city else
                          (masto.OTHER_FR if french else masto.OTHER_EN))  # fmt: skip
    if rng.random() < 0.1:
        sentence += f" près du quartier {rng.choice(watch_words)}"
    tags = rng.sample(masto.OTHER_TAGS, 2) + ([rng.choice(masto.CITY_TAGS)] if city and rng.random() < 0.5 else [])
    text = f"{sentence} &amp; voilà. " + " ".join(f"#{t}" for t in tags)
    entities: dict[str, Any] = {"hashtags": [{"start": text.index("#" + t), "end": text.index("#" + t) + len(t) + 1,
                                              "tag": t} for t in tags]}  # fmt: skip
    target = (
        "https://www.ladepeche.fr/2024/05/17/toulouse-travaux-ligne-b-12345.html"
        if city and rng.random() < 0.4
        else "https://example.org/blog/2024/05/un-article-sans-rapport-avec-la-ville"
        if rng.random() < 0.3
        else ""
    )  # the same links as bench_mastodon_ingest's statuses
    if target:
        short = f"https://t.co/{n:010d}"
        start = len(text) + 1
        text += " " + short
        entities["urls"] = [{"start": start, "end": start + len(short), "url": short,
                             "expanded_url": target, "display_url": target.split("//")[1][:24] + "…"}]  # fmt: skip
    post_id = str(1_790_000_000_000_000_000 + n)
    user = str(100_000 + n % 800)
    post: dict[str, Any] = {
        "id": post_id, "text": text, "author_id": user, "created_at": "2024-05-17T14:45:41.000Z",
        "conversation_id": post_id, "lang": "fr" if french else "en", "entities": entities,
        "edit_history_tweet_ids": [post_id],
    }  # fmt: skip
    if rng.random() < 0.05:  # a long post: the full text is in note_tweet
        post["note_tweet"] = {"text": (sentence + " ") * 12 + text, "entities": entities}
    return post, {"id": user, "username": f"user{n % 800}", "name": f"Utilisatrice {n % 800} 🌻"}


async def run(n: int, terms: int) -> dict[str, float]:
    rng = random.Random(42)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        wl = load_watchlist(masto.watchlist_yaml(directory, terms))
        watch_words = [t.keywords[0] for t in wl.terms[4:]]
        pages = []
        for start in range(0, n, PAGE):
            made = [make_post(rng, i, watch_words) for i in range(start, min(n, start + PAGE))]
            users = list({u["id"]: u for _, u in made}.values())
            pages.append(json.dumps({"data": [p for p, _ in made], "includes": {"users": users},
                                     "meta": {"result_count": len(made), "newest_id": made[0][0]["id"]}}))  # fmt: skip
        options = XOptions(user_id="1500000000000000001", bearer_token_env="UNUSED")
        source = XSource("bench", options, SourceContext(terms=wl.terms))
        matcher = Matcher(wl)
        store = await Store.open(directory / "bench.db")
        t_parse = t_match = t_store = 0.0
        kept = 0
        cpu0 = time.process_time()
        for number, text in enumerate(pages):
            t0 = time.perf_counter()
            page, batch = read_page(json.loads(text)), Batch()
            source._take(page, False, batch, set())
            t1 = time.perf_counter()
            matched = [(m, r) for m in batch.mentions if (r := matcher.match(m)) is not None]
            t2 = time.perf_counter()
            await store.ingest("bench", matched, json.dumps({"feeds": {"search": {"since": str(number)}}}))
            t3 = time.perf_counter()
            t_parse, t_match, t_store = t_parse + t1 - t0, t_match + t2 - t1, t_store + t3 - t2
            kept += len(matched)
        cpu = time.process_time() - cpu0
        await store.close()
        await source.aclose()
    baseline = await masto.run(n, terms)
    return {"pages": len(pages), "terms": len(wl.terms), "kept": kept, "parse": t_parse, "match": t_match,
            "store": t_store, "total": t_parse + t_match + t_store, "cpu": cpu, "masto": baseline["total"],
            "masto_kept": baseline["kept"],
            "masto_cpu": baseline["cpu"]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="posts to generate")
    parser.add_argument("--terms", type=int, default=500, help="watch terms")
    args = parser.parse_args()
    runs = repeat(lambda _: asyncio.run(run(args.n, args.terms)))
    first = runs[0]
    print(f"X posts: {args.n} in {first['pages']:.0f} pages of {PAGE}; watch terms: {first['terms']:.0f};"
          f" matched: {first['kept']:.0f} (Mastodon's statuses: {first['masto_kept']:.0f})")  # fmt: skip
    header()
    n = args.n
    show("X end to end, mentions/s", [n / r["total"] for r in runs], [n / r["masto"] for r in runs], fmt=",.0f",
         baseline_label="Mastodon end to end (bench_mastodon_ingest, same run), mentions/s")  # fmt: skip
    for phase, label in (("parse", "parse (page -> Mention, links, sanitise)"), ("match", "match (Matcher)"),
                         ("store", "store (Store.ingest, one transaction per page)")):  # fmt: skip
        show(f"  {label}, share", [r[phase] / r["total"] * 100 for r in runs], unit="%", fmt=".1f")
    show("X end to end, CPU s", [r["cpu"] for r in runs], [r["masto_cpu"] for r in runs], unit="s", fmt=".3f",
         baseline_label="Mastodon, CPU")  # fmt: skip


if __name__ == "__main__":
    main()
