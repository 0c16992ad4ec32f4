"""Templates: variables filled, unknown ones kept visible, an empty one leaves no hole."""

from __future__ import annotations

from monitor.core.templates import render


def test_an_empty_variable_leaves_no_double_space() -> None:
    text = "Merci {author_name}, le service {service} est prévenu.\n{service} vous répondra."
    assert render(text, {"author_name": "Léa", "service": ""}) == "Merci Léa, le service est prévenu.\nvous répondra."
    assert render(text, {"author_name": "Léa", "service": "Voirie"}).startswith("Merci Léa, le service Voirie est")


def test_an_unknown_variable_stays_visible_and_a_stray_brace_is_kept() -> None:
    assert render("voir {inconnu} ici", {}) == "voir {inconnu} ici"
    assert render("accolade { seule", {"service": ""}) == "accolade { seule"
