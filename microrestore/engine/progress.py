"""The training display: a live rich progress bar on a terminal, plain log lines elsewhere.

On a terminal: bar, ``step/total``, the latest losses, learning rate, it/s and time remaining. When the output
is not a terminal (CI logs, ``nohup``, redirected output) one plain line is printed every ``log_every`` steps
or ``log_seconds`` seconds, whichever comes first, and at the last step. ``enabled=False`` prints nothing.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from types import TracebackType
from typing import IO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text


def format_metrics(values: Mapping[str, float], lr: float | None = None) -> str:
    """Format losses and learning rate compactly: ``"loss 0.0123  D 1.2e-05  lr 2.0e-04"``.

    Parameters
    ----------
    values
        Name to value.
    lr
        Learning rate, appended when given.

    Returns
    -------
    str
        One line.
    """
    parts = [f"{name} {value:.3g}" for name, value in values.items()]
    if lr is not None:
        parts.append(f"lr {lr:.1e}")
    return "  ".join(parts)


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


class _RateColumn(ProgressColumn):
    """Steps per second as rich estimates them."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.1f} it/s" if speed else "-- it/s", style="progress.data.speed")


class TrainingDisplay:
    """Show training progress; use as a context manager.

    Parameters
    ----------
    total
        Final step number.
    start
        Step the run starts (or resumes) from.
    enabled
        ``False``: print nothing.
    log_every
        Without a terminal, print a line at least every this many steps.
    log_seconds
        Without a terminal, print a line at least every this many seconds.
    description
        Label of the bar and the lines.
    file
        Output stream (default: standard error: progress and status go there, results to standard output).
    force_terminal
        Override terminal detection (``True``: live bar, ``False``: plain lines).
    """

    def __init__(
        self,
        total: int,
        *,
        start: int = 0,
        enabled: bool = True,
        log_every: int = 100,
        log_seconds: float = 30.0,
        description: str = "training",
        file: IO[str] | None = None,
        force_terminal: bool | None = None,
    ) -> None:
        self.total = int(total)
        self.start = int(start)
        self.enabled = enabled
        self.log_every = max(1, int(log_every))
        self.log_seconds = float(log_seconds)
        self.description = description
        self._file = file
        self._console = Console(file=file if file is not None else sys.stderr, force_terminal=force_terminal)
        self.live = enabled and self._console.is_terminal
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._values: dict[str, float] = {}
        self._lr: float | None = None
        self._t0 = time.monotonic()
        self._last_step = self.start
        self._last_time = self._t0
        self._step = self.start

    def __enter__(self) -> TrainingDisplay:
        self._t0 = self._last_time = time.monotonic()
        if self.live:
            self._progress = Progress(
                TextColumn("{task.description}", style="progress.description", markup=False),
                BarColumn(),
                MofNCompleteColumn(),
                _RateColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[info]}", markup=False),
                console=self._console,
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(self.description, total=self.total, completed=self.start, info="")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        elif self.enabled and not self.live and self._step != self._last_step:
            self._print_line()

    def update(self, step: int, values: Mapping[str, float] | None = None, lr: float | None = None) -> None:
        """Report that ``step`` steps are complete; ``values`` and ``lr`` replace the shown ones when given.

        Parameters
        ----------
        step
            Completed steps.
        values
            Latest losses and metrics (host floats).
        lr
            Current learning rate.
        """
        if not self.enabled:
            return
        self._step = step
        if values is not None:
            self._values = dict(values)
        if lr is not None:
            self._lr = lr
        if self._progress is not None and self._task is not None:
            if values is not None or lr is not None:
                self._progress.update(self._task, completed=step, info=format_metrics(self._values, self._lr))
            else:
                self._progress.update(self._task, completed=step)
            return
        now = time.monotonic()
        if step - self._last_step >= self.log_every or now - self._last_time >= self.log_seconds or step >= self.total:
            self._print_line(now)

    def message(self, text: str) -> None:
        """Print a line of text (above the bar on a terminal)."""
        if self.enabled:
            self._console.print(text, markup=False, highlight=False)

    def _print_line(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        elapsed = max(now - self._t0, 1e-9)
        rate = (self._step - self.start) / elapsed
        eta = _duration((self.total - self._step) / rate) if rate > 0 else "--"
        width = len(str(self.total))
        line = f"{self.description} step {self._step:>{width}}/{self.total}  {rate:.1f} it/s  ETA {eta}"
        details = format_metrics(self._values, self._lr)
        if details:
            line += "  " + details
        self._console.print(line, markup=False, highlight=False, soft_wrap=True)
        self._last_step, self._last_time = self._step, now
