"""Model cards: one Markdown page per registry entry, generated from ``zoo/models/*.yaml``.

``microrestore zoo cards -o docs/models`` rewrites the pages; a test checks that the committed pages match
the registry, so a card can never drift from the model it describes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from microrestore.zoo import ZooEntry, entries


def render_card(entry: ZooEntry) -> str:
    """Return the Markdown model card of ``entry``."""
    import yaml

    command = "sim reconstruct" if entry.task == "sim" else entry.task  # SIM has its own command group
    usage = f"microrestore {command} IN -o OUT --method {entry.method} --model {entry.id}"
    lines = [
        f"# {entry.id}",
        "",
        f"{entry.description}",
        "",
        "| | |",
        "|---|---|",
        f"| method | `{entry.method}` (`{usage}`) |",
        f"| task | {entry.task} |",
        f"| version | {entry.version} |",
        f"| licence | {entry.license} |",
        f"| shipped | {'inside the package (works offline)' if entry.bundled else 'downloaded on first use'} |",
        "",
        "## Files",
        "",
        "| file | sha256 |",
        "|---|---|",
        *(f"| `{f['name']}` | `{f['sha256']}` |" for f in entry.files),
        "",
        "Every file is checked against its sha256 each time the model is used.",
        "",
    ]
    if entry.metrics:
        lines += ["## Measured", "", "```yaml", yaml.safe_dump(entry.metrics, sort_keys=False).rstrip(), "```", ""]
    if entry.recipe:
        lines += [
            "## Recipe",
            "",
            f"Rebuild these weights with `microrestore zoo train {entry.id} -o DIR` (data, configuration and seed):",
            "",
            "```yaml",
            yaml.safe_dump(entry.recipe, sort_keys=False).rstrip(),
            "```",
            "",
        ]
    if entry.citation:
        lines += ["## Citation", "", entry.citation.strip(), ""]
    return "\n".join(lines)


def write_cards(folder: Path) -> list[Path]:
    """Write one card per registry entry plus an index into ``folder``; return the written paths."""
    from microrestore.io.atomic import atomic_write_text

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    index: list[str] = ["# Model zoo", "", "Generated from `zoo/models/` by `microrestore zoo cards`.", ""]
    index += ["| id | method | task | description |", "|---|---|---|---|"]
    for entry in entries().values():
        path = folder / f"{entry.id}.md"
        atomic_write_text(path, render_card(entry))
        written.append(path)
        index.append(f"| [{entry.id}]({entry.id}.md) | `{entry.method}` | {entry.task} | {entry.description} |")
    atomic_write_text(folder / "index.md", "\n".join(index) + "\n")
    written.append(folder / "index.md")
    return written


def expected_cards() -> dict[str, str]:
    """The card texts the registry implies, keyed by file name (for the docs-up-to-date test)."""
    cards: dict[str, Any] = {f"{e.id}.md": render_card(e) for e in entries().values()}
    return cards
