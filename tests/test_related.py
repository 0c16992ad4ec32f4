"""Many citizens report the same pothole: the desk suggests the likely duplicates of a mention."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from monitor.core.models import MatchResult, Mention, Priority
from monitor.db.related import SCANNED, related_sync, words
from monitor.db.store import ingest_sync, mention_sync, open_sync


def test_handles_links_and_common_words_do_not_make_mentions_alike() -> None:
    assert words("@toulousemetropole.bsky.social merci ! https://t.co/abc #Toulouse") == frozenset()
    assert {"passage", "pieton", "compans"} <= words("Le passage piéton de Compans est bloqué")


def test_reports_of_the_same_incident_are_suggested_and_others_not(tmp_path: Path) -> None:
    c = open_sync(tmp_path / "m.db")
    texts = [
        "Fuite d'eau énorme rue de la République à Saint-Cyprien, la chaussée est inondée",
        "Rue de la République inondée à Saint-Cyprien, grosse fuite d'eau sur la chaussée",
        "La Garonne est magnifique ce soir depuis le pont Saint-Pierre",
        "Encore une fuite d'eau rue de la République, Saint-Cyprien, depuis ce matin",
    ]
    when = datetime(2026, 11, 17, 8, tzinfo=UTC)
    match = MatchResult(("eau",), Priority.HIGH)
    rows = [(Mention("demo", f"r{i}", "mastodon", f"@c{i}", t, when), match) for i, t in enumerate(texts)]
    c.execute("BEGIN IMMEDIATE")
    ingest_sync(c, "demo", rows, None, [], [], 1_000_000)
    c.execute("COMMIT")
    related = related_sync(c, mention_sync(c, 1))
    assert [m.id for _, m in related] == [2, 4]
    assert all(score >= 0.2 for score, _ in related)


def steps_to_find_related(path: Path, others: int) -> int:
    """SQLite's virtual machine steps (in thousands) to find the related mentions of one mention, in a table
    where `others` mentions of the same term arrived within the hour around it (a storm)."""
    c = open_sync(path)
    when = datetime(2026, 11, 17, 8, tzinfo=UTC)
    match = MatchResult(("eau",), Priority.HIGH)
    rows = [(Mention("demo", f"r{i}", "mastodon", f"@c{i}", f"Fuite d'eau numéro {i} rue {i % 97}", when), match)
            for i in range(others + 1)]  # fmt: skip
    c.execute("BEGIN IMMEDIATE")
    for n, batch in enumerate(range(0, len(rows), 1000)):  # seen over the hour, a thousand at a time
        ingest_sync(c, "demo", rows[batch : batch + 1000], None, [], [], 1_000_000 + n * 60_000)
    c.execute("COMMIT")
    target = mention_sync(c, others // 2)
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    c.set_progress_handler(count, 1000)
    related_sync(c, target)
    c.close()
    return steps[0]


def test_finding_related_mentions_costs_no_more_in_a_big_storm_than_in_a_small_one(tmp_path: Path) -> None:
    """The detail of a mention reads its related ones: a bounded walk, not every open mention sorted (the
    detail's wait grew with each arrival of a storm, issue 13). Counted in SQLite steps: no clock."""
    small = steps_to_find_related(tmp_path / "small.db", SCANNED + 1_000)
    big = steps_to_find_related(tmp_path / "big.db", 5 * SCANNED)
    assert big < 2 * small, (small, big)
