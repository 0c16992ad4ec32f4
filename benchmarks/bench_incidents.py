"""Incidents: what suggesting, resolving and grouping cost. Run:  python benchmarks/bench_incidents.py

1. Ingest 10,000 Mastodon statuses (bench_mastodon_ingest's pages of 40 and 500-term watchlist: parse, match,
   store) with 500 open incidents to suggest from; baseline: the same pages into a file with no incident
   (target: >= 90% of the baseline's rate).
2. Resolve an incident of 1,000 reports: the call until all 1,000 follow-ups are committed to the outbox
   (target < 200 ms); baseline: the same 1,000 resolves one action each, as the desk did before incidents.
3. A pane's first page with 100 incidents of 100 reports (one row each); baseline: the same page of the
   same file read without grouping (target: within 10%).

Each figure: min / median / max of 3 runs beside the same run's baseline (benchmarks/_runs.py).
"""

from __future__ import annotations

import asyncio
import json
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _runs import header, repeat, show
from bench_mastodon_ingest import CITY_FR, PAGE, make_status, watchlist_yaml

from monitor.core.config import Watchlist
from monitor.core.matching import Matcher
from monitor.core.models import ActionKind, MatchResult, Mention, Priority, Status
from monitor.db.store import Store
from monitor.engine import actions, incidents
from monitor.networks import load_watchlist
from monitor.networks.base import SourceContext
from monitor.networks.mastodon.source import MastodonOptions, MastodonSource

STREETS = ["rue", "avenue", "boulevard", "place", "allée", "quai", "chemin"]
PROBLEMS = [
    "arbre tombé bloque la chaussée", "fuite d'eau inonde le trottoir", "nid de poule énorme dangereux",
    "feu tricolore en panne carrefour", "poubelles débordent depuis trois jours", "éclairage public éteint la nuit",
    "dépôt sauvage de gravats encombrants", "voiture ventouse gêne le passage",
]  # fmt: skip
NOISE = [
    "Très belle balade au bord de l'eau ce soir", "Le métro est encore en retard ce matin",
    "Quelqu'un sait pourquoi la ligne A est coupée ?", "Bravo pour ce concert, quelle ambiance",
]  # fmt: skip
T0 = datetime(2026, 11, 17, 8, tzinfo=UTC)
MATCH = MatchResult(("voirie",), Priority.NORMAL)
WATCHLIST = Path(__file__).resolve().parent.parent / "monitor" / "data" / "watchlist.yaml"


def report(rng: random.Random, place: int) -> str:
    return f"{rng.choice(PROBLEMS).capitalize()} {STREETS[place % 7]} Lieu{place} près du numéro {rng.randint(1, 90)}"


def mentions(rng: random.Random, n: int, places: int, tag: str) -> list[Mention]:
    out = []
    for i in range(n):
        text = report(rng, rng.randrange(places)) if i % 3 == 0 else rng.choice(NOISE) + f" {i}"
        out.append(Mention("demo", f"{tag}{i}", "mastodon", f"c{i}", text, T0 + timedelta(seconds=i)))
    return out


async def with_incidents(path: Path, count: int, reports: int, rng: random.Random) -> list[int]:
    """`count` open incidents of `reports` reports each; returns their ids."""
    store = await Store.open(path)
    ids = []
    try:
        for k in range(count):
            rows = [(Mention("demo", f"seed{k}-{j}", "mastodon", f"s{k}-{j}", report(rng, k), T0), MATCH)
                    for j in range(reports)]  # fmt: skip
            await store.ingest("demo", rows, None)
            first = await store.read(lambda c: int(c.execute("SELECT max(id) FROM mentions").fetchone()[0]))
            first -= reports - 1
            incident = await store.create_incident(first, "bench")
            await store.write(
                lambda c, a=first, b=first + reports - 1, i=incident: c.execute(
                    "UPDATE mentions SET incident_id = ? WHERE id BETWEEN ? AND ?", (i, a, b)
                ),
                "bench",
            )  # bulk link: the benchmark measures what comes after
            ids.append(incident)
    finally:
        await store.close()
    return ids


async def ingest_rate(path: Path, pages: list[str], wl: Watchlist) -> float:
    """The collector's work on each page, as bench_mastodon_ingest measures it: parse, match, store."""
    source = MastodonSource("bench", MastodonOptions(instance="https://mastodon.example"), SourceContext())
    matcher = Matcher(wl)
    store = await Store.open(path)
    try:
        start, n = time.perf_counter(), 0
        for page in pages:
            mentions = [source.to_mention(s)[0] for s in json.loads(page)]
            await store.ingest("bench", [(m, r) for m in mentions if (r := matcher.match(m)) is not None], None)
            n += len(mentions)
        return n / (time.perf_counter() - start)
    finally:
        await store.close()
        await source.aclose()


async def city_incidents(path: Path, wl: Watchlist, count: int) -> None:
    """`count` open incidents about what the statuses talk of, each somewhere else in the city."""
    words = [t.keywords[0] for t in wl.terms[4:]]
    store = await Store.open(path)
    try:
        for k in range(count):
            text = f"{CITY_FR[k % len(CITY_FR)]} près du quartier {words[k % len(words)]}"
            found = Matcher(wl).match(Mention("bench", f"inc{k}", "mastodon", "seed", text, T0))
            await store.ingest("bench", [(Mention("bench", f"inc{k}", "mastodon", "seed", text, T0),
                                          found or MATCH)], None)  # fmt: skip
            mention_id = await store.read(lambda c: int(c.execute("SELECT max(id) FROM mentions").fetchone()[0]))
            await store.create_incident(mention_id, "bench")
    finally:
        await store.close()


def measure_ingest(run: int, n: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        folder, rng = Path(tmp), random.Random(run)
        wl = load_watchlist(watchlist_yaml(folder, 500))
        words = [t.keywords[0] for t in wl.terms[4:]]
        statuses = [make_status(rng, i, words) for i in range(n)]
        pages = [json.dumps(statuses[i : i + PAGE]) for i in range(0, n, PAGE)]
        asyncio.run(city_incidents(folder / "inc.db", wl, 500))
        asyncio.run(city_incidents(folder / "base.db", wl, 0))
        base = asyncio.run(ingest_rate(folder / "base.db", pages, wl))
        ours = asyncio.run(ingest_rate(folder / "inc.db", pages, wl))
        return ours, base


async def resolve_ms(path: Path, wl_path: Path, one_by_one: bool) -> float:
    wl = load_watchlist(wl_path)
    store = await Store.open(path)
    try:
        [incident] = [s.incident.id for s in await store.open_incidents()]
        reports = await store.incident_reports(incident)
        start = time.perf_counter()
        if one_by_one:
            for r in reports:
                await actions.act(store, wl, r.id, ActionKind.RESOLVE, "bench", {"reply": "{author} réglé"}, True)
        else:
            await incidents.resolve(store, wl, incident, "bench", "{author} C'est réparé, merci !", dry_run=True)
        return (time.perf_counter() - start) * 1000
    finally:
        await store.close()


def measure_resolve(run: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        wl = WATCHLIST
        for name in ("ours.db", "base.db"):
            asyncio.run(with_incidents(Path(tmp) / name, 1, 1000, random.Random(run)))
        return asyncio.run(resolve_ms(Path(tmp) / "ours.db", wl, False)), asyncio.run(
            resolve_ms(Path(tmp) / "base.db", wl, True)
        )


async def pane_ms(path: Path, grouped: bool) -> float:
    """A refresh of the pane's first page (after the first read, as the desk's timer refreshes it)."""
    store = await Store.open(path)
    try:
        await (store.pane_entries(Status.NEW, 200) if grouped else store.pane(Status.NEW, 200))
        start = time.perf_counter()
        for _ in range(10):
            if grouped:
                await store.pane_entries(Status.NEW, 200)
            else:
                await store.pane(Status.NEW, 200)
        return (time.perf_counter() - start) * 100
    finally:
        await store.close()


def measure_pane(run: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(with_incidents(Path(tmp) / "p.db", 100, 100, random.Random(run)))
        return asyncio.run(pane_ms(Path(tmp) / "p.db", True)), asyncio.run(pane_ms(Path(tmp) / "p.db", False))


def main() -> None:
    header()
    ingest = repeat(lambda r: measure_ingest(r, 10_000))
    show("ingest with 500 open incidents", [o for o, _ in ingest], [b for _, b in ingest], unit="mentions/s",
         fmt=".0f", baseline_label="no incident", target="target: ratio >= 0.90")  # fmt: skip
    resolve = repeat(measure_resolve)
    show("resolve an incident of 1,000 reports", [o for o, _ in resolve], [b for _, b in resolve], unit="ms",
         fmt=".0f", baseline_label="1,000 resolves one by one", target="target: < 200 ms")  # fmt: skip
    pane = repeat(measure_pane)
    show("pane page, 100 incidents of 100 reports", [o for o, _ in pane], [b for _, b in pane], unit="ms",
         baseline_label="same page ungrouped", target="target: ratio <= 1.10")  # fmt: skip


if __name__ == "__main__":
    main()
