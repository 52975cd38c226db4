"""The plugin system: hook specifications, the manager that loads entry points, and the registry."""

from __future__ import annotations

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
