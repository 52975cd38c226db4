"""Hooks for a front end that runs jobs in a thread (the napari plugin): live training values and cancelling.

The CLI shows progress on the terminal and stops on Ctrl-C; a graphical front end runs a job in a worker thread
and needs the same two things without a terminal or a signal. Inside :func:`observed` (a context manager set in
the job's own thread):

- the trainer calls :func:`training_step` after every step (``on_training(step, total, values)``, ``values``
  the logged losses when the step logged them, else empty), and logs every ``log_every`` steps of the observer
  as well as its own;
- the trainer asks :func:`cancel_requested` after every step: when it is true it writes a checkpoint (so the
  run can be resumed) and raises :class:`Cancelled`;
- inference loops call :func:`check_cancelled` (e.g. from ``PredictOptions.on_progress``) to stop between tiles.

Outside :func:`observed` every function is a no-op, so the CLI is unchanged.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from microrestore.errors import MicrorestoreError

__all__ = [
    "Cancelled",
    "JobObserver",
    "cancel_requested",
    "check_cancelled",
    "log_every",
    "observed",
    "training_step",
]


class Cancelled(MicrorestoreError):
    """The user cancelled a running job (it passes through plugins unchanged, as microrestore's own errors)."""


@dataclass
class JobObserver:
    """What a front end hears from a job, and how it asks it to stop.

    Attributes
    ----------
    on_training
        Called as ``on_training(step, total, values)`` after each training step.
    cancelled
        Returns ``True`` once the user asked to stop.
    log_every
        Also log the losses (a row of ``metrics.csv`` and a point of the live curve) every this many steps, for
        a live loss curve denser than the trainer's own ``log_every``.
    """

    on_training: Callable[[int, int, Mapping[str, float]], None] | None = None
    cancelled: Callable[[], bool] | None = None
    log_every: int | None = None


_local = threading.local()


def current() -> JobObserver | None:
    """The observer of the calling thread's job, or ``None``."""
    return getattr(_local, "observer", None)


@contextlib.contextmanager
def observed(observer: JobObserver) -> Iterator[JobObserver]:
    """Install ``observer`` for the jobs run in the calling thread (the previous one comes back afterwards)."""
    previous = current()
    _local.observer = observer
    try:
        yield observer
    finally:
        _local.observer = previous


def training_step(step: int, total: int, values: Mapping[str, float] | None = None) -> None:
    """Report a completed training step to the calling thread's observer, if any."""
    observer = current()
    if observer is not None and observer.on_training is not None:
        observer.on_training(step, total, dict(values or {}))


def log_every(step: int) -> bool:
    """Whether the calling thread's observer wants the losses logged after ``step`` (its ``log_every``)."""
    observer = current()
    every = observer.log_every if observer is not None else None
    return bool(every and every > 0 and step % every == 0)


def cancel_requested() -> bool:
    """Whether the calling thread's observer asks the job to stop."""
    observer = current()
    return bool(observer is not None and observer.cancelled is not None and observer.cancelled())


def check_cancelled() -> None:
    """Raise :class:`Cancelled` when the calling thread's observer asks the job to stop."""
    if cancel_requested():
        raise Cancelled("cancelled")
