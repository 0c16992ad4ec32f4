"""Templates: variables filled, unknown ones kept visible, an empty one leaves no hole."""

from __future__ import annotations

from monitor.core.config import Template
from monitor.core.models import MentionRow, Priority, Status
from monitor.core.templates import draft_followup, render


def test_an_empty_variable_leaves_no_double_space() -> None:
    text = "Merci {author_name}, le service {service} est prévenu.\n{service} vous répondra."
    assert render(text, {"author_name": "Léa", "service": ""}) == "Merci Léa, le service est prévenu.\nvous répondra."
    assert render(text, {"author_name": "Léa", "service": "Voirie"}).startswith("Merci Léa, le service Voirie est")


def test_an_unknown_variable_stays_visible_and_a_stray_brace_is_kept() -> None:
    assert render("voir {inconnu} ici", {}) == "voir {inconnu} ici"
    assert render("accolade { seule", {"service": ""}) == "accolade { seule"


def row(lang: str | None) -> MentionRow:
    return MentionRow(
        id=42, source="m", network="mastodon", remote_id="1", author="lea@ex.test", author_name="Léa", text="",
        url="", lang=lang, thread_id=None, reply_to=None, terms=("voirie",), priority=Priority.NORMAL,
        status=Status.ESCALATED, published_at=0, first_seen_at=0, status_at=0, first_response_at=None,
        edited_at=None, deleted_at=None, rev=1,
    )  # fmt: skip


def test_the_follow_up_is_drafted_in_the_citizens_language_from_the_first_follow_up_template() -> None:
    templates = (
        Template("r", "r", "Reply {author}", lang="fr"),
        Template("en", "en", "Fixed by {service}, {author} ({ref}).", lang="en", use="followup"),
        Template("fr", "fr", "{service} a réparé, {author} ({ref}) — {city}.", lang="fr", use="followup"),
    )
    assert (
        draft_followup(templates, row("fr"), "Toulouse", "Voirie")
        == "Voirie a réparé, @lea@ex.test (M-000042) — Toulouse."
    )
    assert draft_followup(templates, row("de"), "Toulouse", "Voirie") == "Fixed by Voirie, @lea@ex.test (M-000042)."
    assert draft_followup(templates[:1], row("fr"), "Toulouse") == ""
