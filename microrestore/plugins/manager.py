"""Discovering and loading plugins.

Entry points in the ``microrestore.plugins`` group are loaded one by one (as sqlfluff does): a plugin that
fails to import, fails validation (a misspelled hook, caught by ``pm.check_pending()``) or raises inside a
``register_*`` hook prints one warning naming it and its version, and everything else keeps working.
``MICRORESTORE_STRICT_PLUGINS=1`` turns those warnings into errors (for plugin authors).
``MICRORESTORE_LOAD_PLUGINS=a,b`` loads only the named plugins (empty: none).
``MICRORESTORE_TRACE_PLUGINS=1`` prints every hook call.

Environment variables are read when the manager is built, never at import time.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from microrestore.errors import PluginError
from microrestore.plugins import hookspecs
from microrestore.plugins.markers import PROJECT
from microrestore.plugins.registry import Reader, Registry, Writer

ENTRY_POINT_GROUP = "microrestore.plugins"
ENV_LOAD = "MICRORESTORE_LOAD_PLUGINS"
ENV_STRICT = "MICRORESTORE_STRICT_PLUGINS"
ENV_TRACE = "MICRORESTORE_TRACE_PLUGINS"

#: The hooks, in the order they are called; each takes one ``register`` callback.
HOOKS = ("register_methods", "register_commands", "register_readers", "register_writers")


@dataclass
class PluginInfo:
    """One plugin as ``microrestore plugins`` shows it."""

    name: str
    version: str = ""
    distribution: str = ""
    module: str = ""
    hooks: list[str] = field(default_factory=list)
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "name": self.name,
            "version": self.version,
            "distribution": self.distribution,
            "module": self.module,
            "hooks": self.hooks,
            "error": self.error,
        }


class PluginHost:
    """A pluggy manager plus the :class:`Registry` its plugins filled."""

    def __init__(self, *, strict: bool | None = None, warn: Callable[[str], None] | None = None) -> None:
        self.pm = pluggy.PluginManager(PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.registry = Registry()
        self.plugins: dict[str, PluginInfo] = {}
        self.strict = _env_flag(ENV_STRICT) if strict is None else strict
        self._warn = warn or _print_warning
        if _env_flag(ENV_TRACE):
            self.pm.add_hookcall_monitoring(_trace_before, _trace_after)

    # -- loading ---------------------------------------------------------------------------------------
    def load_entry_points(self, only: list[str] | None = None) -> None:
        """Load every entry point of the group (or only those named), each in its own try/except.

        A name in ``only`` that no installed plugin has is reported like a broken plugin (a warning, or a
        :class:`PluginError` in strict mode), naming it and the installed ones.
        """
        available = _entry_points()
        if only is not None:
            names = {ep.name for ep in available}
            for name in only:
                if name not in names:
                    known = ", ".join(sorted(names)) or "none"
                    self._failed(PluginInfo(name=name), f"named in {ENV_LOAD} is not installed (installed: {known})")
        for ep in available:
            if only is not None and ep.name not in only:
                continue
            dist = getattr(ep, "dist", None)
            version = dist.version if dist is not None else ""
            dist_name = _distribution_name(ep)
            info = PluginInfo(name=ep.name, version=version, distribution=dist_name, module=ep.value)
            try:
                plugin = ep.load()
            except (Exception, SystemExit) as exc:  # a broken plugin must never take the CLI down
                self._failed(info, f"failed to import: {_describe(exc)}")
                continue
            self.add_plugin(plugin, ep.name, version=version, info=info)

    def add_plugin(self, plugin: object, name: str, *, version: str = "", info: PluginInfo | None = None) -> bool:
        """Register a plugin object (a module or any object with hook implementations).

        Returns ``True`` when the plugin was registered and all its hooks ran.
        """
        info = info or PluginInfo(name=name, version=version, module=getattr(plugin, "__name__", repr(plugin)))
        if name in self.plugins and self.plugins[name].error is None:
            self._failed(info, f"a plugin named {name!r} is already loaded")
            return False
        try:
            self.pm.register(plugin, name=name)
            self.pm.check_pending()
        except (Exception, SystemExit) as exc:
            if self.pm.is_registered(plugin):
                self.pm.unregister(plugin)
            self._failed(info, f"is invalid: {' '.join(str(exc).split())}")
            return False
        info.hooks = sorted(caller.name for caller in self.pm.get_hookcallers(plugin) or [])
        self.plugins[name] = info
        snapshot = _snapshot(self.registry)
        try:
            self._call_hooks(plugin, name, version)
        except (Exception, SystemExit) as exc:
            _restore(self.registry, snapshot)
            self.pm.unregister(plugin)
            del self.plugins[name]
            self._failed(info, f"failed to register: {_describe(exc)}")
            return False
        return True

    def _call_hooks(self, plugin: object, name: str, version: str) -> None:
        # Each plugin's hooks are called on their own, so a failure is attributed to the right plugin.
        others = [other for other in self.pm.get_plugins() if other is not plugin]
        for hook in HOOKS:
            caller = self.pm.subset_hook_caller(hook, remove_plugins=others)
            if caller.get_hookimpls():
                caller(register=self._register_callback(hook, name, version))

    def _register_callback(self, hook: str, plugin: str, version: str) -> Callable[..., None]:
        registry = self.registry

        if hook == "register_methods":

            def register(method: Any) -> None:
                registry.add_method(method, plugin, version)

        elif hook == "register_commands":

            def register(name: str, command: Any) -> None:  # type: ignore[misc]
                if any(existing == name for existing, _ in registry.commands):
                    raise PluginError(f"command {name!r} is already registered")
                registry.commands.append((name, command))

        elif hook == "register_readers":

            def register(reader: Any) -> None:  # type: ignore[misc]
                if not isinstance(reader, Reader):
                    raise PluginError(f"register_readers expects a Reader, got {type(reader).__name__}")
                reader.plugin = plugin
                registry.readers.append(reader)

        else:

            def register(writer: Any) -> None:  # type: ignore[misc]
                if not isinstance(writer, Writer):
                    raise PluginError(f"register_writers expects a Writer, got {type(writer).__name__}")
                writer.plugin = plugin
                registry.writers.append(writer)

        return register

    def _failed(self, info: PluginInfo, problem: str) -> None:
        label = f"{info.name} {info.version}".strip()
        message = f"plugin {label} {problem}"
        if self.strict:
            raise PluginError(message)
        info.error = problem
        self.plugins.setdefault(info.name, info)
        self._warn(message)


_host: PluginHost | None = None


def get_host() -> PluginHost:
    """Return the process-wide plugin host, loading plugins on first use."""
    global _host
    if _host is None:
        host = PluginHost()
        host.load_entry_points(only=_env_list(ENV_LOAD))
        _host = host
    return _host


def get_registry() -> Registry:
    """Return the registry of methods, readers, writers and commands of the loaded plugins."""
    return get_host().registry


def get_plugin_manager() -> pluggy.PluginManager:
    """Return the process-wide pluggy manager."""
    return get_host().pm


def reset() -> None:
    """Forget the loaded plugins (tests use this to reload with other settings)."""
    global _host
    _host = None


def _entry_points() -> list[metadata.EntryPoint]:
    selected = metadata.entry_points(group=ENTRY_POINT_GROUP)
    seen: set[str] = set()
    unique = []
    for ep in selected:  # the same distribution can appear twice on sys.path (editable + site)
        if ep.name not in seen:
            seen.add(ep.name)
            unique.append(ep)
    # Built-in methods first, then third parties by name: a plugin cannot take over a built-in's name.
    return sorted(unique, key=lambda ep: (_distribution_name(ep) != "microrestore", ep.name))


def _distribution_name(ep: metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return dist.metadata["Name"] if dist is not None else ""


def _snapshot(registry: Registry) -> tuple[dict[str, Any], int, int, int]:
    return dict(registry.methods), len(registry.readers), len(registry.writers), len(registry.commands)


def _restore(registry: Registry, snapshot: tuple[dict[str, Any], int, int, int]) -> None:
    methods, n_readers, n_writers, n_commands = snapshot
    registry.methods = methods
    del registry.readers[n_readers:]
    del registry.writers[n_writers:]
    del registry.commands[n_commands:]


def _describe(exc: BaseException) -> str:
    """``Type: message`` of a plugin's exception; a ``sys.exit`` is named as such (its message is the status)."""
    if isinstance(exc, SystemExit):
        return f"called sys.exit({exc.code!r})"
    return f"{type(exc).__name__}: {exc}"


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _env_list(name: str) -> list[str] | None:
    value = os.environ.get(name)
    if value is None:
        return None
    return [item.strip() for item in value.split(",") if item.strip()]


def _print_warning(message: str) -> None:
    sys.stderr.write(f"Warning: {message}\n")


def _trace_before(hook_name: str, hook_impls: list[Any], kwargs: dict[str, Any]) -> None:
    plugins = ", ".join(getattr(impl, "plugin_name", "?") for impl in hook_impls)
    sys.stderr.write(f"[plugins] {hook_name} -> {plugins}\n")


def _trace_after(outcome: Any, hook_name: str, hook_impls: list[Any], kwargs: dict[str, Any]) -> None:
    sys.stderr.write(f"[plugins] {hook_name} done\n")
