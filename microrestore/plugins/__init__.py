"""The plugin system: hook specifications, the manager that loads entry points, and the registry."""

from __future__ import annotations

from microrestore import formats as _formats
from microrestore.plugins.manager import get_host, get_plugin_manager, get_registry, reset
from microrestore.plugins.markers import hookimpl, hookspec
from microrestore.plugins.registry import (
    Method,
    PredictOptions,
    Predictor,
    Reader,
    Registry,
    TrainRequest,
    Writer,
    call_plugin,
)

__all__ = [
    "Method",
    "PredictOptions",
    "Predictor",
    "Reader",
    "Registry",
    "TrainRequest",
    "Writer",
    "get_host",
    "get_plugin_manager",
    "get_registry",
    "hookimpl",
    "hookspec",
    "reset",
]

# The I/O layer reads and writes the plugins' formats through microrestore.formats; it never imports the plugins.
_formats.connect(get_registry, call_plugin)
