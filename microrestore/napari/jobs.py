"""The widget base of the napari plugin: a form, a job in a worker thread, progress, Cancel, one-line messages.

Every job runs in a napari worker thread (:func:`napari.qt.threading.create_worker`). The job function gets a
:class:`JobContext` to report progress (``report(done, total)``) and runs under a
:class:`~microrestore.engine.observe.JobObserver`, so training reports its steps and losses (the live loss plot)
and Cancel stops the trainer after the current step (with a checkpoint) and inference between tiles. Errors
never reach napari's traceback dialog: the job's exception comes back as its result and is shown as one line
(:func:`napari.utils.notifications.show_error`); warnings raised in the job (the domain guard, SIM estimation
fallbacks) become warning notifications, one line each.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from qtpy.QtCore import QObject, Qt, Signal
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from microrestore.napari.layers import one_line

__all__ = ["JobContext", "JobWidget", "LayerPicker", "LossPlot", "PathField"]


#: Training logs its losses (a point of the live curve) at least every this many steps under a widget.
LOSS_EVERY = 10


class _Bridge(QObject):
    """Signals that carry a job's progress from its worker thread to the widget (queued to the GUI thread)."""

    progress = Signal(int, int)
    training = Signal(int, int, dict)
    message = Signal(str, str)


@dataclass
class JobContext:
    """What a job function may use while it runs in its worker thread.

    Attributes
    ----------
    cancel
        Set when the user pressed Cancel.
    bridge
        The signals to the widget.
    """

    cancel: threading.Event
    bridge: _Bridge
    warnings: list[str] = field(default_factory=list)

    def report(self, done: int, total: int) -> None:
        """Show ``done`` of ``total`` on the progress bar; stop here when the user cancelled."""
        self.bridge.progress.emit(int(done), int(total))
        if self.cancel.is_set():
            from microrestore.engine.observe import Cancelled

            raise Cancelled("cancelled")

    def warn(self, text: str) -> None:
        """Show one warning line (a notification) once the job is done."""
        self.warnings.append(" ".join(str(text).split()))

    def info(self, text: str) -> None:
        """Show one line of information now."""
        self.bridge.message.emit("info", " ".join(str(text).split()))


@dataclass
class _Outcome:
    result: Any = None
    error: BaseException | None = None
    cancelled: bool = False
    warnings: list[str] = field(default_factory=list)


class JobWidget(QWidget):
    """A docked widget that runs one job at a time: a form, Run and Cancel, a progress bar and a status line.

    Subclasses fill :attr:`form` and implement :meth:`job` (run in the worker thread: no Qt calls, no layer
    access; it receives what :meth:`prepare` collected in the GUI thread) and :meth:`done` (GUI thread: add
    layers, fill tables).

    Parameters
    ----------
    napari_viewer
        The viewer (napari passes it to widget contributions by this name).
    """

    run_label = "Run"

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.worker: Any = None
        #: Every message shown, as ``(level, text)`` (``error``, ``warning`` or ``info``).
        self.messages: list[tuple[str, str]] = []
        self._cancel = threading.Event()
        self._bridge = _Bridge()
        self._bridge.progress.connect(self._on_progress)
        self._bridge.training.connect(self._on_training)
        self._bridge.message.connect(self.notify)
        layout = QVBoxLayout(self)
        self.form = QFormLayout()
        layout.addLayout(self.form)
        self.extra = QVBoxLayout()
        buttons = QHBoxLayout()
        self.run_button = QPushButton(self.run_label)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.run_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addLayout(self.extra)
        layout.addStretch(1)

    # --- to implement -------------------------------------------------------------------------------------

    def prepare(self) -> Any:
        """Collect the job's inputs in the GUI thread (raise an ``InputError`` for bad input)."""
        raise NotImplementedError

    def job(self, inputs: Any, context: JobContext) -> Any:
        """Run the job in the worker thread and return its result."""
        raise NotImplementedError

    def done(self, inputs: Any, result: Any) -> None:
        """Show the result (GUI thread)."""
        raise NotImplementedError

    def on_training(self, step: int, total: int, values: Mapping[str, float]) -> None:
        """A training step completed (GUI thread); the training widgets plot the loss."""

    # --- machinery ----------------------------------------------------------------------------------------

    def notify(self, level: str, text: str) -> None:
        """Show one line as a napari notification (``error``, ``warning`` or ``info``) and in the status line."""
        from napari.utils.notifications import show_error, show_info, show_warning

        text = " ".join(str(text).split())
        self.messages.append((level, text))
        self.status.setText(text)
        {"error": show_error, "warning": show_warning}.get(level, show_info)(text)

    @property
    def running(self) -> bool:
        """Whether a job is running."""
        return self.worker is not None and self.cancel_button.isEnabled()

    def start(self) -> None:
        """Collect the inputs and start the job in a worker thread (bad input: one error line, no job)."""
        from napari.qt.threading import create_worker

        if self.running:
            self.notify("warning", "a job is running; cancel it or wait")
            return
        try:
            inputs = self.prepare()
        except Exception as exc:
            self.notify("error", one_line(exc))
            return
        self._cancel = threading.Event()
        context = JobContext(self._cancel, self._bridge)
        self.progress.setRange(0, 0)  # busy until the job reports
        self.status.setText("running ...")
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.worker = create_worker(self._work, inputs, context, _start_thread=False)
        self.worker.returned.connect(lambda outcome: self._finish(inputs, outcome))
        self.worker.start()

    def cancel(self) -> None:
        """Ask the running job to stop (training stops after the current step, inference between tiles)."""
        if self.running:
            self._cancel.set()
            self.status.setText("cancelling ...")

    def _work(self, inputs: Any, context: JobContext) -> _Outcome:
        from microrestore.engine.observe import Cancelled, JobObserver, observed

        observer = JobObserver(
            on_training=lambda step, total, values: context.bridge.training.emit(step, total, dict(values)),
            cancelled=context.cancel.is_set,
            log_every=LOSS_EVERY,
        )
        outcome = _Outcome(warnings=context.warnings)
        with warnings.catch_warnings(record=True) as caught, observed(observer):
            warnings.simplefilter("always")
            try:
                outcome.result = self.job(inputs, context)
            except Cancelled:
                outcome.cancelled = True
            except BaseException as exc:  # shown as one line; KeyboardInterrupt included (a trainer's stop)
                outcome.error = exc
        for item in caught:
            if not issubclass(item.category, (DeprecationWarning, PendingDeprecationWarning)):
                context.warn(str(item.message))
        outcome.cancelled = outcome.cancelled or (context.cancel.is_set() and outcome.error is None)
        return outcome

    def _finish(self, inputs: Any, outcome: _Outcome) -> None:
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.progress.setRange(0, 1)
        self.progress.setValue(0 if outcome.cancelled or outcome.error is not None else 1)
        for line in dict.fromkeys(outcome.warnings):
            self.notify("warning", line)
        if outcome.cancelled:
            self.notify("info", "cancelled")
            return
        if outcome.error is not None:
            self.notify("error", one_line(outcome.error))
            return
        try:
            self.done(inputs, outcome.result)
        except Exception as exc:
            self.notify("error", one_line(exc))

    def _on_progress(self, done: int, total: int) -> None:
        if total > 0:
            self.progress.setRange(0, total)
            self.progress.setValue(min(done, total))

    def _on_training(self, step: int, total: int, values: dict) -> None:
        self._on_progress(step, total)
        self.on_training(step, total, values)


class LayerPicker(QComboBox):
    """A combo box of the viewer's image layers, kept up to date as layers come and go.

    Parameters
    ----------
    viewer
        The napari viewer.
    none
        Text of a first entry meaning "no layer" (``None``: no such entry).
    """

    def __init__(self, viewer: Any, none: str | None = None) -> None:
        super().__init__()
        self.viewer = viewer
        self.none = none
        self.refresh()
        for event in ("inserted", "removed", "moved", "changed"):
            emitter = getattr(viewer.layers.events, event, None)
            if emitter is not None:
                emitter.connect(self.refresh)

    def refresh(self, *_: Any) -> None:
        """Fill the list again (keeping the chosen layer when it still exists)."""
        from napari.layers import Image

        current = self.currentText()
        self.blockSignals(True)
        self.clear()
        if self.none is not None:
            self.addItem(self.none)
        for layer in self.viewer.layers:
            if isinstance(layer, Image):
                self.addItem(layer.name)
        index = self.findText(current)
        self.blockSignals(False)
        if index >= 0:
            self.setCurrentIndex(index)
        else:
            self.currentIndexChanged.emit(self.currentIndex())

    def layer(self) -> Any:
        """The chosen layer, or ``None``."""
        name = self.currentText()
        if not name or name == self.none or name not in self.viewer.layers:
            return None
        return self.viewer.layers[name]

    def select(self, name: str) -> None:
        """Choose the layer called ``name``."""
        self.refresh()
        index = self.findText(name)
        if index < 0:
            raise ValueError(f"no image layer {name!r}")
        self.setCurrentIndex(index)


class PathField(QWidget):
    """A line edit with a Browse button for a file or a folder.

    Parameters
    ----------
    folder
        Browse for a folder instead of a file.
    placeholder
        Grey hint text.
    """

    def __init__(self, folder: bool = False, placeholder: str = "") -> None:
        super().__init__()
        self.folder = folder
        self.edit = QLineEdit()
        self.edit.setPlaceholderText(placeholder)
        browse = QPushButton("...")
        browse.setMaximumWidth(30)
        browse.clicked.connect(self._browse)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.edit)
        layout.addWidget(browse)

    def _browse(self) -> None:
        if self.folder:
            chosen = QFileDialog.getExistingDirectory(self, "Choose a folder")
        else:
            chosen = QFileDialog.getOpenFileName(self, "Choose a file")[0]
        if chosen:
            self.edit.setText(chosen)

    def text(self) -> str:
        """The path given (stripped), or ``""``."""
        return self.edit.text().strip()

    def setText(self, text: str) -> None:
        """Set the path."""
        self.edit.setText(text)


class LossPlot(QWidget):
    """A live plot of training losses against the step (a small matplotlib canvas)."""

    def __init__(self, title: str = "training loss") -> None:
        super().__init__()
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        self.figure = Figure(figsize=(3.6, 2.4), tight_layout=True)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.axes = self.figure.add_subplot(111)
        self.title = title
        #: Loss name to ``(steps, values)``.
        self.series: dict[str, tuple[list[int], list[float]]] = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas)
        self.canvas.setMinimumHeight(180)
        self.clear()

    def clear(self) -> None:
        """Forget the curves."""
        self.series = {}
        self._draw()

    def add(self, step: int, values: Mapping[str, float]) -> None:
        """Add one point per loss value (names starting with ``lr`` are left out)."""
        for name, value in values.items():
            if name.startswith("lr") or name == "step":
                continue
            steps, ys = self.series.setdefault(name, ([], []))
            steps.append(int(step))
            ys.append(float(value))
        if values:
            self._draw()

    def _draw(self) -> None:
        self.axes.clear()
        for name, (steps, ys) in self.series.items():
            self.axes.plot(steps, ys, label=name, marker="." if len(steps) < 50 else None)
        self.axes.set_xlabel("step")
        self.axes.set_title(self.title, fontsize=9)
        if self.series:
            self.axes.legend(fontsize=7)
            if all(y > 0 for _, ys in self.series.values() for y in ys):
                self.axes.set_yscale("log")
        self.canvas.draw_idle()


def combo(items: list[str], current: str | None = None, editable: bool = False) -> QComboBox:
    """A combo box of ``items`` (``current`` chosen)."""
    box = QComboBox()
    box.setEditable(editable)
    box.addItems(items)
    if current is not None:
        index = box.findText(current)
        if index >= 0:
            box.setCurrentIndex(index)
        elif editable:
            box.setEditText(current)
    return box


def align_top(widget: QWidget) -> QWidget:
    """``widget`` aligned to the top of its dock."""
    widget.layout().setAlignment(Qt.AlignmentFlag.AlignTop)
    return widget


def methods_of(task: str | None = None, predicate: Callable[[Any], bool] | None = None) -> list[str]:
    """Names of installed methods (of ``task`` when given, passing ``predicate``), sorted."""
    from microrestore.plugins import get_registry

    return sorted(
        m.name
        for m in get_registry().methods.values()
        if (task is None or m.task == task) and (predicate is None or predicate(m))
    )
