"""Tables on stdout that stay whole: plain aligned text when piped, a layout that fits the terminal otherwise.

Every table command renders through :func:`print_table`:

- **not a terminal** (``| cat``, a file, a test runner): plain text, columns aligned with spaces, nothing
  truncated or wrapped, whatever the width; the title first when there is one, notes last;
- **a terminal wide enough**: a rich table;
- **a narrower terminal**: the ``free_text`` column (the last) wraps; if that is not enough the columns marked
  ``optional`` are left out (a note says which, and that ``--json`` has them); when even that does not fit, one
  block per row (``key  value`` lines, long values wrapped).

No cell is ever cut with an ellipsis; ``--json`` on the same command gives every field.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: Width below which a wrapped free-text column is not worth showing beside the others.
MIN_FREE_TEXT = 24


@dataclass(frozen=True)
class Column:
    """One column of a table.

    Parameters
    ----------
    header
        Column heading.
    key
        Key of the row mappings whose value the column shows.
    justify
        ``left`` or ``right``.
    optional
        Left out on a terminal too narrow for every column (``--json`` still has it).
    free_text
        Long text that may wrap on a terminal; only the last column may be free text.
    style
        Rich style of a cell from its text (e.g. red for an error), on a terminal only.
    block_label
        In the one-block-per-row layout, the word before the first column's value (``orientation 0``).
    """

    header: str
    key: str
    justify: str = "left"
    optional: bool = False
    free_text: bool = False
    style: Callable[[str], str | None] | None = None
    block_label: str | None = None


def cell(value: Any) -> str:
    """The text of a cell on one line: ``-`` for nothing, the value as text otherwise (line breaks as spaces)."""
    text = " ".join(str(value).split()) if value is not None else ""
    return text or "-"


def print_table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[Column],
    *,
    title: str | None = None,
    notes: Sequence[str] = (),
) -> None:
    """Print ``rows`` to stdout as a table that is never truncated (see the module docstring)."""
    from rich.console import Console

    console = Console(highlight=False, soft_wrap=False)  # made now: reads COLUMNS and the terminal of this call
    texts = [[cell(row.get(c.key)) for c in columns] for row in rows]
    if not console.is_terminal:
        console.file.write(plain_text(texts, columns, title=title, notes=notes))
        return
    width = console.width
    every = list(range(len(columns)))
    essential = [i for i, c in enumerate(columns) if not c.optional]
    shown = next(
        (cols for cols in (every, essential) if _table_width(texts, columns, cols, free_min=MIN_FREE_TEXT) <= width),
        None,
    )
    hidden = [columns[i].header for i in every if i not in (shown or essential)]
    notes = [*notes, *([f"not shown at this width: {', '.join(hidden)} (see --json)"] if hidden else [])]
    if shown is None:
        kept = [[row[i] for i in essential] for row in texts]
        console.file.write(block_text(kept, [columns[i] for i in essential], width, title=title, notes=notes))
        return
    console.print(_rich_table(texts, columns, shown, title=title))
    for note in notes:
        console.print(note, markup=False)


def plain_text(
    texts: Sequence[Sequence[str]], columns: Sequence[Column], *, title: str | None = None, notes: Sequence[str] = ()
) -> str:
    """Columns aligned with two spaces, the last not padded; nothing cut, whatever the width."""
    widths = [max([len(c.header)] + [len(row[i]) for row in texts]) for i, c in enumerate(columns)]
    lines = [title] if title else []
    for row in [[c.header for c in columns], *texts]:
        parts = [_pad(text, widths[i], columns[i].justify) for i, text in enumerate(row)]
        parts[-1] = parts[-1].rstrip() if columns[-1].justify == "left" else parts[-1]
        lines.append("  ".join(parts))
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"


def block_text(
    texts: Sequence[Sequence[str]],
    columns: Sequence[Column],
    width: int,
    *,
    title: str | None = None,
    notes: Sequence[str] = (),
) -> str:
    """One block per row: the first column's value, then ``header: value`` lines wrapped to ``width``."""
    label = max(len(c.header) for c in columns[1:]) if len(columns) > 1 else 0
    indent = " " * (label + 4)
    lines = [title, ""] if title else []
    for row in texts:
        lines.append(f"{columns[0].block_label} {row[0]}" if columns[0].block_label else row[0])
        for c, text in zip(columns[1:], row[1:]):
            head = f"  {c.header.ljust(label)}  "
            wrapped = textwrap.wrap(
                text,
                width=max(width, len(head) + 16),
                initial_indent=head,
                subsequent_indent=indent,
                break_long_words=False,
                break_on_hyphens=False,
            )
            lines += wrapped or [head.rstrip()]
        lines.append("")
    lines += [wrapped for note in notes for wrapped in textwrap.wrap(note, width=max(width, 16))]
    return "\n".join(lines).rstrip("\n") + "\n"


def _pad(text: str, width: int, justify: str) -> str:
    return text.rjust(width) if justify == "right" else text.ljust(width)


def _table_width(
    texts: Sequence[Sequence[str]], columns: Sequence[Column], shown: Sequence[int], *, free_min: int | None
) -> int:
    """Width of a boxed rich table of the ``shown`` columns (a free-text column counted at ``free_min``)."""
    total = 1
    for i in shown:
        natural = max([len(columns[i].header)] + [len(row[i]) for row in texts])
        if columns[i].free_text and free_min is not None:
            natural = min(natural, free_min)
        total += natural + 3
    return total


def _rich_table(
    texts: Sequence[Sequence[str]], columns: Sequence[Column], shown: Sequence[int], *, title: str | None
) -> Any:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title)
    for i in shown:
        c = columns[i]
        table.add_column(c.header, justify=c.justify, no_wrap=not c.free_text, overflow="fold")
    for row in texts:
        cells = []
        for i in shown:
            style = columns[i].style(row[i]) if columns[i].style else None
            cells.append(Text(row[i], style=style or ""))  # Text: cell values are never read as markup
        table.add_row(*cells)
    return table
