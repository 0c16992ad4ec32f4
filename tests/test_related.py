"""Many citizens report the same pothole: the desk suggests the likely duplicates of a mention."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from monitor.core.models import MatchResult, Mention, Priority
from monitor.db.related import related_sync, words
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
