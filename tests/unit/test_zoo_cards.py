"""Model cards in docs/models are generated from the registry and must match it."""

from __future__ import annotations

from pathlib import Path

from microrestore.zoo import entries
from microrestore.zoo.cards import expected_cards, render_card, write_cards

DOCS = Path(__file__).resolve().parents[2] / "docs" / "models"


def test_committed_cards_match_the_registry():
    for name, text in expected_cards().items():
        path = DOCS / name
        assert path.is_file(), f"{path} missing: run 'microrestore zoo cards -o docs/models'"
        assert path.read_text() == text, f"{path} is stale: run 'microrestore zoo cards -o docs/models'"


def test_card_names_files_hashes_and_recipe():
    entry = entries()["care-demo-2d"]
    card = render_card(entry)
    for item in entry.files:
        assert item["sha256"] in card
    assert "microrestore zoo train care-demo-2d" in card
    assert "Weigert" in card


def test_write_cards_with_index(tmp_path):
    written = write_cards(tmp_path)
    assert (tmp_path / "index.md") in written
    assert "care-demo-2d" in (tmp_path / "index.md").read_text()
