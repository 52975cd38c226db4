"""Write one section of docs/benchmarks.md, leaving the other sections as they are."""

from __future__ import annotations

import datetime as _dt
import platform
import re
from pathlib import Path

HEADER = """# Benchmarks

Every table here is written by a script in `bench/` that anyone can rerun; each section names its command.
Comparisons are measured side by side in one run (ratios), since machines are noisy.
"""


def write_section(path: Path, title: str, body: str) -> None:
    """Replace (or append) the section ``## title`` of ``path`` with ``body`` and a provenance line."""
    text = path.read_text(encoding="utf-8") if path.exists() else HEADER
    stamp = f"_Measured {_dt.date.today().isoformat()} on {platform.machine()} / Python {platform.python_version()}._"
    section = f"## {title}\n\n{body.rstrip()}\n\n{stamp}\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip() + "\n\n" + section
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(text.rstrip() + "\n", encoding="utf-8")
    tmp.replace(path)


def publish(title: str, lines: list[str], write: bool = True) -> str:
    """Print a section's lines and, when ``write``, put them into docs/benchmarks.md as ``## title``."""
    text = "\n".join(lines)
    print(text)
    if write:
        write_section(Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md", title, text)
    return text
