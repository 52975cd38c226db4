"""The training display: a live rich progress bar on a terminal, plain log lines elsewhere.

On a terminal: bar, ``step/total``, the latest losses, learning rate, it/s and time remaining. When the output
is not a terminal (CI logs, ``nohup``, redirected output) one plain line is printed every ``log_every`` steps
or ``log_seconds`` seconds, whichever comes first, and at the last step. ``enabled=False`` prints nothing.
With a time budget (``max_seconds``) the time remaining is that of the budget when it ends the run first.
:class:`PlainProgress` prints the same kind of lines for any other loop (e.g. inference tiles).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
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


def remaining_seconds(done: int, total: int, elapsed: float, budget: float | None = None) -> float | None:
    """Honest time remaining: the steps left at the rate so far, capped by what is left of a time budget.

    Parameters
    ----------
    done
        Steps (or items) completed since the start of the timing.
    total
        Steps the run would do without a time budget, counted from the same start.
    elapsed
        Seconds since the start.
    budget
        Seconds after which the run stops whatever the steps (``None``: no budget).

    Returns
    -------
    float or None
        Seconds, or ``None`` when nothing is known yet (no step done and no budget).
    """
    left = None
    if done > 0 and elapsed > 0:
        left = max(total - done, 0) * elapsed / done
    if budget is not None:
        capped = max(budget - elapsed, 0.0)
        left = capped if left is None else min(left, capped)
    return left


class _BudgetRemainingColumn(ProgressColumn):
    """Time remaining as rich estimates it, capped by the task's time budget (field ``budget``)."""

    def render(self, task: Task) -> Text:
        budget = task.fields.get("budget")
        left = task.time_remaining
        if budget is not None and task.elapsed is not None:
            capped = max(float(budget) - task.elapsed, 0.0)
            left = capped if left is None else min(left, capped)
        return Text(_duration(left) if left is not None else "-:--:--", style="progress.remaining")


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
    max_seconds
        Time budget of the run: the time remaining shown never exceeds what is left of it.
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
        max_seconds: float | None = None,
    ) -> None:
        self.total = int(total)
        self.max_seconds = max_seconds
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
                _BudgetRemainingColumn(),
                TextColumn("{task.fields[info]}", markup=False),
                console=self._console,
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(
                self.description, total=self.total, completed=self.start, info="", budget=self.max_seconds
            )
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
        left = remaining_seconds(self._step - self.start, self.total - self.start, elapsed, self.max_seconds)
        eta = _duration(left) if left is not None else "--"
        width = len(str(self.total))
        line = f"{self.description} step {self._step:>{width}}/{self.total}  {rate:.1f} it/s  ETA {eta}"
        details = format_metrics(self._values, self._lr)
        if details:
            line += "  " + details
        self._console.print(line, markup=False, highlight=False, soft_wrap=True)
        self._last_step, self._last_time = self._step, now


class PlainProgress:
    """Plain progress lines for a loop when the output is not a terminal (where a live bar shows nothing).

    ``update(done, total)`` prints ``"<description> 12/40 (30 %)  0:00:05 elapsed  ETA 0:00:12"`` at the first
    call, then at most every ``log_seconds`` seconds, and when ``done`` reaches ``total``.

    Parameters
    ----------
    description
        Label of the lines, e.g. ``"inference tiles"``.
    file
        Output stream (default: standard error).
    log_seconds
        Smallest interval between lines.
    clock
        Time source (seconds), for tests.
    """

    def __init__(
        self,
        description: str,
        file: IO[str] | None = None,
        log_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.description = description
        self._file = file
        self.log_seconds = float(log_seconds)
        self._clock = clock
        self._t0: float | None = None
        self._last: float | None = None
        self._finished = False

    def restart(self, description: str | None = None) -> None:
        """Start timing afresh (e.g. for the next file)."""
        if description is not None:
            self.description = description
        self._t0 = self._last = None
        self._finished = False

    def update(self, done: int, total: int) -> None:
        """Report ``done`` of ``total`` items."""
        now = self._clock()
        if self._t0 is None:
            self._t0 = now
        finished = total > 0 and done >= total
        due = self._last is None or now - self._last >= self.log_seconds
        if not (due or (finished and not self._finished)):
            return
        self._finished = finished
        self._last = now
        elapsed = now - self._t0
        left = remaining_seconds(done, total, elapsed)
        eta = _duration(left) if left is not None and not finished else ("done" if finished else "--")
        share = f" ({100 * done / total:.0f} %)" if total > 0 else ""
        line = f"{self.description} {done}/{total}{share}  {_duration(elapsed)} elapsed  ETA {eta}"
        print(line, file=self._file if self._file is not None else sys.stderr, flush=True)
