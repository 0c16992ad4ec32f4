"""How fast Mastodon statuses go from JSON pages to SQLite rows: parse, match, store.

10,000 statuses shaped like the API's (HTML content with mentions, hashtags and shortened links,
French and English), about a third of them matching; a watchlist of 500 generated terms; pages of
40 as the tag timeline serves them. Run:  python benchmarks/bench_mastodon_ingest.py [--n 10000]

Prints mentions/s end to end, the share of each phase, and a baseline measured in the same run
(json.loads + sqlite3 executemany of the same rows, no HTML, no matching) with the ratio, in wall and
CPU time: each as min / median / max of 3 runs (benchmarks/_runs.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from _runs import header, repeat, show

from monitor.core.matching import Matcher
from monitor.db.store import Store, configure
from monitor.networks import load_watchlist
from monitor.networks.base import SourceContext
from monitor.networks.mastodon.source import MastodonOptions, MastodonSource

PAGE = 40
CITY_FR = [
    "Le métro est encore en panne ce matin",
    "Énorme nid de poule avenue de Grande-Bretagne",
    "Quelqu'un sait pourquoi la ligne A est coupée ?",
    "Les poubelles débordent place du Capitole depuis trois jours",
    "Le tram T1 ne passe plus, des infos ?",
    "Dépôt sauvage rue des Lois à Toulouse, c'est insupportable",
]
CITY_EN = ["Does anyone know why the bus is late again?", "Huge pothole on the main road in Toulouse"]
OTHER_FR = [
    "Très belle balade au bord de l'eau ce soir",
    "Bravo pour ce concert, quelle ambiance",
    "Nouvelle recette de cassoulet testée ce week-end",
    "Je cherche un bon livre de science-fiction, des idées ?",
    "Premier jour de soleil, enfin le printemps",
]
OTHER_EN = [
    "Lovely evening walk along the river",
    "Great concert last night, thanks to everyone",
    "Working from a café today, the wifi is slow",
    "Reading a great book about the history of computing",
]
OTHER_TAGS = ["photo", "music", "velo", "cats", "news", "opensource", "france", "weekend"]
CITY_TAGS = ["Toulouse", "Tisseo", "ToulouseMetropole"]


def watchlist_yaml(directory: Path, terms: int) -> Path:
    """500 generated terms (keywords and hashtags) plus the desk's real ones, and a few ignore rules."""
    rng = random.Random(7)
    lines = [
        "city: Toulouse Métropole",
        "database: bench.db",
        "terms:",
        "  - name: ville",
        "    keywords: [Toulouse, Capitole, mairie de Toulouse]",
        "    hashtags: [Toulouse, ToulouseMetropole]",
        "    exclude: [Toulouse FC, Stade Toulousain]",
        "  - name: transports",
        "    keywords: [Tisséo, métro, ligne A, tram, bus]",
        "    hashtags: [Tisseo]",
        "  - name: voirie",
        "    keywords: [nid de poule, pothole, trottoir, travaux]",
        "  - name: propreté",
        "    keywords: [poubelles, dépôt sauvage, déchets]",
    ]
    syllables = ["ba", "lo", "mi", "ren", "tou", "gar", "pel", "vin", "cor", "dal", "fen", "sai"]
    for n in range(terms - 4):
        word = "".join(rng.choice(syllables) for _ in range(3)) + str(n)
        lines += [
            f"  - name: term{n}",
            f"    keywords: [{word}, quartier {word}, rue {word}]",
            f"    hashtags: [{word}tag]",
        ]
    lines += [
        "ignore: [airdrop, crypto giveaway]",
        "priority:",
        "  urgent: [accident, incendie, inondation]",
        "  high: [panne, bloqué, coupée]",
        "sources:",
        "  - name: bench",
        "    type: mastodon",
        "    instance: https://mastodon.example",
        "    hashtags: [Toulouse]",
    ]
    path = directory / "watchlist.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def account(rng: random.Random, n: int) -> dict[str, Any]:
    user = f"user{n % 800}"
    domain = rng.choice([None, "piaille.fr", "mamot.fr", "mastodon.social", "framapiaf.org"])
    return {
        "id": str(100000 + n % 800),
        "username": user,
        "acct": f"{user}@{domain}" if domain else user,
        "display_name": f"Utilisatrice {n % 800} 🌻",
        "locked": False,
        "bot": False,
        "discoverable": True,
        "group": False,
        "created_at": "2022-11-13T00:00:00.000Z",
        "note": "<p>Toulousaine, vélo et café.</p>",
        "url": f"https://{domain or 'mastodon.example'}/@{user}",
        "avatar": "https://files.mastodon.example/accounts/avatars/original/missing.png",
        "avatar_static": "https://files.mastodon.example/accounts/avatars/original/missing.png",
        "header": "https://files.mastodon.example/headers/original/missing.png",
        "header_static": "https://files.mastodon.example/headers/original/missing.png",
        "followers_count": 120,
        "following_count": 80,
        "statuses_count": 4000,
        "last_status_at": "2024-05-17",
        "emojis": [],
        "fields": [],
    }


def make_status(rng: random.Random, n: int, watch_words: list[str]) -> dict[str, Any]:
    french = rng.random() < 0.7
    city = rng.random() < 0.25  # about a quarter concern the city, a few more name a watched place
    sentence = rng.choice((CITY_FR if french else CITY_EN) if city else (OTHER_FR if french else OTHER_EN))
    tags = rng.sample(OTHER_TAGS, 2)
    if city and rng.random() < 0.5:
        tags.append(rng.choice(CITY_TAGS))
    if rng.random() < 0.1:
        sentence += f" près du quartier {rng.choice(watch_words)}"
    tag_html = " ".join(
        f'<a href="https://mastodon.example/tags/{t}" class="mention hashtag" rel="tag">#<span>{t}</span></a>'
        for t in tags
    )
    mention = (
        '<span class="h-card" translate="no"><a href="https://mastodon.example/@voisin" '
        'class="u-url mention">@<span>voisin</span></a></span> '
        if rng.random() < 0.3
        else ""
    )
    link = (
        '<a href="https://www.ladepeche.fr/2024/05/17/toulouse-travaux-ligne-b-12345.html" '
        'rel="nofollow noopener" target="_blank"><span class="invisible">https://www.</span>'
        '<span class="ellipsis">ladepeche.fr/2024/05/17/toulouse</span>'
        '<span class="invisible">-travaux-ligne-b-12345.html</span></a>'
        if city and rng.random() < 0.4
        else '<a href="https://example.org/blog/2024/05/un-article-sans-rapport-avec-la-ville" '
        'rel="nofollow noopener" target="_blank"><span class="invisible">https://</span>'
        '<span class="ellipsis">example.org/blog/2024/05/un-art</span>'
        '<span class="invisible">icle-sans-rapport-avec-la-ville</span></a>'
        if rng.random() < 0.3
        else ""
    )
    content = f"<p>{mention}{sentence} &amp; voilà.</p><p>{link}<br>{tag_html}</p>"
    status_id = str(112_456_967_201_894_256 + n)
    return {
        "id": status_id,
        "created_at": "2024-05-17T14:45:41.171Z",
        "in_reply_to_id": None,
        "in_reply_to_account_id": None,
        "sensitive": False,
        "spoiler_text": "",
        "visibility": "public",
        "language": "fr" if french else "en",
        "uri": f"https://mastodon.example/users/u/statuses/{status_id}",
        "url": f"https://mastodon.example/@u/{status_id}",
        "replies_count": 0,
        "reblogs_count": 0,
        "favourites_count": 2,
        "edited_at": None,
        "favourited": False,
        "reblogged": False,
        "muted": False,
        "bookmarked": False,
        "content": content,
        "filtered": [],
        "reblog": None,
        "application": {"name": "Web", "website": None},
        "account": account(rng, n),
        "media_attachments": [],
        "mentions": [],
        "tags": [{"name": t.lower(), "url": f"https://mastodon.example/tags/{t.lower()}"} for t in tags],
        "emojis": [],
        "card": None,
        "poll": None,
    }


async def run(n: int, terms: int) -> dict[str, float]:
    """One run: our ingest phase by phase, then the baseline on the same pages."""
    rng = random.Random(42)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        wl = load_watchlist(watchlist_yaml(directory, terms))
        watch_words = [t.keywords[0] for t in wl.terms[4:]]
        statuses = [make_status(rng, i, watch_words) for i in range(n)]
        pages = [json.dumps(statuses[i : i + PAGE]) for i in range(0, n, PAGE)]  # as the server sends them
        del statuses  # a collector holds the answers' text, not 10,000 parsed statuses for the GC to walk

        options = MastodonOptions(instance="https://mastodon.example", hashtags=("Toulouse",))
        source = MastodonSource("bench", options, SourceContext())
        matcher = Matcher(wl)
        store = await Store.open(directory / "bench.db")
        t_parse = t_match = t_store = 0.0
        kept = 0
        cpu0 = time.process_time()
        for number, page in enumerate(pages):
            t0 = time.perf_counter()
            mentions = [source.to_mention(s)[0] for s in json.loads(page)]
            t1 = time.perf_counter()
            matched = [(mm, r) for mm in mentions if (r := matcher.match(mm)) is not None]
            t2 = time.perf_counter()
            await store.ingest("bench", matched, json.dumps({"tag:toulouse": str(number)}))
            t3 = time.perf_counter()
            t_parse += t1 - t0
            t_match += t2 - t1
            t_store += t3 - t2
            kept += len(matched)
        cpu = time.process_time() - cpu0  # this process's threads (the database thread too)
        await store.close()
        await source.aclose()

        # Baseline: the same pages, json.loads and a plain executemany of the same rows.
        conn = sqlite3.connect(str(directory / "baseline.db"), isolation_level=None)
        configure(conn)
        conn.execute("CREATE TABLE t (remote_id TEXT UNIQUE, author TEXT, text TEXT, published TEXT, raw TEXT)")
        b0, b_cpu0 = time.perf_counter(), time.process_time()
        for page in pages:
            items = json.loads(page)
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT INTO t VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [(s["uri"], s["account"]["acct"], s["content"], s["created_at"], json.dumps(s)) for s in items],
            )
            conn.execute("COMMIT")
        baseline, baseline_cpu = time.perf_counter() - b0, time.process_time() - b_cpu0
        conn.close()
    return {
        "n": n,
        "pages": len(pages),
        "terms": len(wl.terms),
        "kept": kept,
        "parse": t_parse,
        "match": t_match,
        "store": t_store,
        "total": t_parse + t_match + t_store,
        "baseline": baseline,
        "cpu": cpu,
        "baseline_cpu": baseline_cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="statuses to generate")
    parser.add_argument("--terms", type=int, default=500, help="watch terms")
    args = parser.parse_args()
    runs = repeat(lambda _: asyncio.run(run(args.n, args.terms)))
    first = runs[0]
    print(f"statuses: {args.n} in {first['pages']:.0f} pages of {PAGE}; watch terms: {first['terms']:.0f};"
          f" matched: {first['kept']:.0f}")  # fmt: skip
    header()
    n = args.n
    total = [r["total"] for r in runs]
    show(
        "end to end, mentions/s",
        [n / t for t in total],
        [n / r["baseline"] for r in runs],
        fmt=",.0f",
        baseline_label="baseline, statuses/s",
        target="target >= 2,000",
    )
    for phase, label in (("parse", "parse (JSON -> Mention, HTML to text, sanitise)"), ("match", "match (Matcher)"),
                         ("store", "store (Store.ingest, one transaction per page)")):  # fmt: skip
        show(f"  {label}, share", [r[phase] / r["total"] * 100 for r in runs], unit="%", fmt=".1f")
    show(
        "end to end, s",
        total,
        [r["baseline"] for r in runs],
        unit="s",
        fmt=".3f",
        baseline_label="baseline (json.loads + sqlite3 executemany of the same pages, no HTML, no matching)",
        target="target: ratio <= 4",
    )
    # Wall time on a shared machine includes waiting for a core; CPU time does not.
    show(
        "end to end, CPU s",
        [r["cpu"] for r in runs],
        [r["baseline_cpu"] for r in runs],
        unit="s",
        fmt=".3f",
        baseline_label="baseline, CPU",
    )


if __name__ == "__main__":
    main()
