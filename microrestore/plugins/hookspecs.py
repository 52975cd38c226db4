"""The hooks a microrestore plugin can implement.

Each hook hands the plugin a ``register`` callback, so the core owns name clashes and bookkeeping (as in
llm). Hooks are called once, when the plugin manager is first built. See ``docs/plugins.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from microrestore.plugins.markers import hookspec


@hookspec
def register_methods(register: Callable[[Any], None]) -> None:
    """Register restoration methods: call ``register(Method(...))`` once per method."""


@hookspec
def register_commands(register: Callable[[str, Any], None]) -> None:
    """Register extra CLI commands: call ``register(name, typer_app_or_function)``."""


@hookspec
def register_readers(register: Callable[[Any], None]) -> None:
    """Register image readers for extra formats: call ``register(Reader(name, suffixes, read))``."""


@hookspec
def register_writers(register: Callable[[Any], None]) -> None:
    """Register image writers for extra formats: call ``register(Writer(name, suffixes, write))``."""
