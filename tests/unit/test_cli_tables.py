"""The table renderer: plain text when piped, wrapping or blocks on a narrow terminal, nothing ever cut."""

from __future__ import annotations

from microrestore.cli.tables import Column, block_text, cell, plain_text

COLUMNS = (Column("name", "name"), Column("n", "n", justify="right"), Column("note", "note", free_text=True))


def test_cells_are_one_line_and_never_empty() -> None:
    assert cell(None) == "-" and cell("") == "-" and cell(0) == "0"
    assert cell("a failed\n  to load:\tbad") == "a failed to load: bad"


def test_plain_text_aligns_and_keeps_every_character() -> None:
    long = "word " * 40
    text = plain_text([["a", "1", long.strip()], ["bbbbbb", "22", "x"]], COLUMNS, title="t", notes=["n1"])
    lines = text.splitlines()
    assert lines[0] == "t" and lines[1].split() == ["name", "n", "note"]
    assert lines[2] == "a        1  " + long.strip() and lines[3] == "bbbbbb  22  x"
    assert lines[-2:] == ["", "n1"]


def test_blocks_wrap_to_the_width_without_cutting_words() -> None:
    long = "supercalifragilistic " * 8
    text = block_text([["item-1", "7", long.strip()]], COLUMNS, 40, notes=["a note " * 10])
    lines = text.splitlines()
    assert lines[0] == "item-1" and lines[1] == "  n     7"
    assert all(len(line) <= 40 for line in lines)
    assert text.count("supercalifragilistic") == 8
