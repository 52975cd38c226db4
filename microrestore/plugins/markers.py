"""The pluggy markers; plugin authors import ``hookimpl`` from :mod:`microrestore`."""

from __future__ import annotations

import pluggy

PROJECT = "microrestore"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)
