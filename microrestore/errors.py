"""Exceptions that carry the CLI's exit status.

Every error a user can cause derives from :class:`InputError` (exit status 2); its message is one line that
names the file or option and the problem. Anything else that goes wrong at run time is a
:class:`MicrorestoreError` (exit status 1).
"""

from __future__ import annotations

from pathlib import Path


class MicrorestoreError(Exception):
    """A failure that is not the user's input (exit status 1)."""

    exit_code = 1


class InputError(MicrorestoreError):
    """Bad input or usage: unreadable file, wrong axes, NaN, wrong model (exit status 2)."""

    exit_code = 2

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        text = f"{self.path}: {message}" if self.path is not None else message
        super().__init__(" ".join(text.split()))


class PluginError(MicrorestoreError):
    """A plugin failed to load or raised while it was called."""


class MicrorestoreWarning(UserWarning):
    """Something the user should know about an input or a result that is not an error (the CLI prints one line)."""


class Terminated(SystemExit):
    """SIGTERM stopped a run cleanly (after a checkpoint); exits with status ``128 + SIGTERM``.

    Distinct from a ``sys.exit`` called by a plugin, which the core reports as the plugin's failure.
    """
