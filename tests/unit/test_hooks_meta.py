"""Meta-tests: every hook has a test and is documented with its exact signature (as datasette does)."""

from __future__ import annotations

import inspect
from pathlib import Path

from microrestore.plugins import hookspecs
from microrestore.plugins.manager import HOOKS

ROOT = Path(__file__).resolve().parents[2]


def _hooks() -> list[str]:
    return sorted(name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("register"))


def test_hook_list_matches_the_manager():
    assert sorted(HOOKS) == _hooks()


def test_every_hook_has_a_one_line_docstring():
    for name in _hooks():
        doc = getattr(hookspecs, name).__doc__
        assert doc and len(doc.strip().splitlines()) == 1, name


def test_every_hook_is_documented_with_its_signature():
    text = (ROOT / "docs" / "plugins.md").read_text()
    for name in _hooks():
        params = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
        assert f"### `{name}({params})`" in text, name


def test_every_hook_is_tested():
    tests = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("test_*.py") if p.name != Path(__file__).name)
    for name in _hooks():
        assert f"def test_hook_{name}" in tests, f"no test_hook_{name} found"
