"""Image formats beyond TIFF, MRC and PNG/JPEG: the readers and writers that plugins add.

A base-layer extension point (it imports nothing of microrestore), so that the I/O layer never imports the
plugins: the plugin host pushes its registered readers and writers down into this module with :func:`connect`
(a *source*, called only when a file needs a format microrestore does not read itself, and the *caller* that
reports a plugin's own failures with its name), and :mod:`microrestore.io` asks it. Reading or writing TIFF,
MRC, PNG or JPEG therefore never loads a plugin; a suffix only a plugin knows (``.zarr``) loads them once,
through the source. Without a connected source there are no extra formats.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

__all__ = ["FormatSource", "call", "connect", "reader_for", "reader_suffixes", "readers", "writer_for"]


class FormatSource(Protocol):
    """What :func:`connect` needs: the readers and writers registered so far.

    Each reader has ``name``, ``suffixes``, ``read(path, axes=...)`` and ``plugin``; each writer ``name``,
    ``suffixes``, ``write(path, data, axes, pixel_size=..., metadata=...)``, ``open_streamed`` and ``plugin``
    (:class:`microrestore.plugins.Reader` and :class:`microrestore.plugins.Writer`).
    """

    readers: Sequence[Any]
    writers: Sequence[Any]


def _direct(plugin: str, what: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return function(*args, **kwargs)


_source: Callable[[], FormatSource] | None = None
_caller: Callable[..., Any] = _direct


def connect(source: Callable[[], FormatSource] | None, caller: Callable[..., Any] | None = None) -> None:
    """Install where extra formats come from (the plugin host does this; ``None`` disconnects).

    Parameters
    ----------
    source
        Returns the current readers and writers; called only when a file needs a format that TIFF, MRC and
        PNG/JPEG do not cover (it may load the plugins then).
    caller
        ``caller(plugin, what, function, *args, **kwargs)`` runs a reader's or writer's function so that an
        unexpected exception is reported with the plugin's name; by default the function is called directly.
    """
    global _source, _caller
    _source, _caller = source, caller or _direct


def readers() -> list[Any]:
    """Return the extra readers (loading the plugins through the connected source on first use)."""
    return list(_source().readers) if _source is not None else []


def _writers() -> list[Any]:
    return list(_source().writers) if _source is not None else []


def reader_suffixes() -> tuple[str, ...]:
    """Return the lower-case suffixes, with their leading dot, of every extra reader."""
    found: list[str] = []
    for reader in readers():
        found.extend(_dotted(s) for s in reader.suffixes)
    return tuple(dict.fromkeys(found))


def reader_for(path: Path) -> Any:
    """Return the extra reader whose suffix matches ``path``, or ``None``."""
    return _match_suffix(readers(), path)


def writer_for(path: Path) -> Any:
    """Return the extra writer whose suffix matches ``path``, or ``None``."""
    return _match_suffix(_writers(), path)


def call(entry: Any, what: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run ``function`` of a reader or writer ``entry`` through the connected caller (``what``: for messages)."""
    plugin, name = getattr(entry, "plugin", ""), getattr(entry, "name", "")
    return _caller(plugin, f"{what} {name}".strip(), function, *args, **kwargs)


def _dotted(suffix: str) -> str:
    return suffix.lower() if suffix.startswith(".") else f".{suffix.lower()}"


def _match_suffix(items: Sequence[Any], path: Path) -> Any:
    name = path.name.lower()
    for item in items:
        if any(name.endswith(s.lower()) for s in item.suffixes):
            return item
    return None
