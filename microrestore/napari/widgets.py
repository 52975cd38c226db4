"""The docked widgets: Restore, Self-supervised denoise, Train, Assess and SIM reconstruct.

Each widget collects its inputs from the form and the layers in the GUI thread (:meth:`JobWidget.prepare`),
runs the job through :mod:`microrestore.api` in a worker thread (:meth:`JobWidget.job`, importing torch only
then) and adds its result as a layer (:meth:`JobWidget.done`). See ``docs/napari.md``.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDoubleSpinBox,
    QFormLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from microrestore.errors import InputError
from microrestore.napari.jobs import JobContext, JobWidget, LayerPicker, LossPlot, PathField, combo, methods_of
from microrestore.napari.layers import (
    axes_choices,
    default_axes,
    ground_truth_pair,
    histogram,
    layer_image,
    one_line,
    result_kwargs,
    sigma_kwargs,
    sim_result_kwargs,
)

__all__ = ["AssessWidget", "RestoreWidget", "SIMWidget", "SelfSupervisedWidget", "TrainWidget"]

DEVICES = ["auto", "cpu", "cuda", "mps"]


def _method(name: str) -> Any:
    from microrestore import api

    if not name:
        raise InputError("choose a method (none is installed for this task)")
    return api.get_method(name)


class _LayerJob(JobWidget):
    """A job on one image layer with an axes choice that follows the layer's dimensionality."""

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__(napari_viewer)
        self.layer_box = LayerPicker(napari_viewer)
        self.axes_box = combo([], editable=True)
        self.layer_box.currentIndexChanged.connect(self._layer_changed)
        self.form.addRow("image layer", self.layer_box)
        self.form.addRow("axes", self.axes_box)
        self._layer_changed()

    def _layer_changed(self, *_: Any) -> None:
        layer = self.layer_box.layer()
        self.axes_box.clear()
        if layer is None:
            return
        choices = list(axes_choices(layer.ndim))
        axes = self.suggested_axes(layer)
        if axes and axes not in choices:
            choices.insert(0, axes)
        self.axes_box.addItems(choices)
        if axes:
            self.axes_box.setCurrentIndex(choices.index(axes))

    def suggested_axes(self, layer: Any) -> str:
        """The axes first offered for ``layer``."""
        return default_axes(layer)

    def chosen_image(self) -> tuple[Any, Any]:
        """The chosen layer and its data as an ``ImageData`` with the chosen axes."""
        layer = self.layer_box.layer()
        if layer is None:
            raise InputError("choose an image layer")
        return layer, layer_image(layer, self.axes_box.currentText())


def _options(device: str, context: JobContext, **kwargs: Any) -> Any:
    from microrestore.plugins import PredictOptions

    return PredictOptions(device=device or "auto", on_progress=context.report, **kwargs)


def _seconds_box(value: float) -> QDoubleSpinBox:
    """A time budget in whole seconds, up to a day; 0 reads "no limit"."""
    box = _spin(0.0, 86_400.0, value, 0, "no limit")
    box.setSuffix(" s")
    return box


# ----------------------------------------------------------------------------------------------------------
# Restore


@dataclass
class _RestoreInputs:
    layer: Any
    image: Any
    method: str
    model: str | None
    device: str
    tile: int | None
    tta: bool
    uncertainty: bool = False


class RestoreWidget(_LayerJob):
    """Restore the chosen layer with any installed method (denoise, deblur, restore) and model.

    The result is a new float32 layer on the input's grid (scale, translate, units) with its contrast limits.
    With *uncertainty* a second float32 layer ``<name> [<method> sigma]`` holds the per-pixel uncertainty
    (standard deviation, input units; see :func:`microrestore.api.restore`); where the method or the image
    cannot give one, the restoration is still shown and one warning line says why.
    """

    run_label = "Restore"

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__(napari_viewer)
        from microrestore.plugins.registry import TASKS

        self.task_box = combo([t for t in TASKS if t != "sim"], "denoise")
        self.method_box = combo([])
        self.model = PathField(placeholder="default model")
        self.device_box = combo(DEVICES, editable=True)
        self.tile = QSpinBox()
        self.tile.setRange(0, 4096)
        self.tile.setSingleStep(32)
        self.tile.setSpecialValueText("auto")
        self.tta = QCheckBox("8 rotations and flips (8x time)")
        self.uncertainty = QCheckBox("also a per-pixel uncertainty (sigma) layer")
        self.form.addRow("task", self.task_box)
        self.form.addRow("method", self.method_box)
        self.form.addRow("model", self.model)
        self.form.addRow("device", self.device_box)
        self.form.addRow("tile", self.tile)
        self.form.addRow("TTA", self.tta)
        self.form.addRow("uncertainty", self.uncertainty)
        self.task_box.currentTextChanged.connect(self._task_changed)
        self.method_box.currentTextChanged.connect(self._method_changed)
        self._task_changed(self.task_box.currentText())

    def _task_changed(self, task: str) -> None:
        self.method_box.clear()
        self.method_box.addItems(methods_of(task))

    def _method_changed(self, name: str) -> None:
        if not name:
            return
        method = _method(name)
        if not method.needs_model:
            self.model.edit.setPlaceholderText("no model (classical method)")
        elif method.default_model:
            self.model.edit.setPlaceholderText(f"default: {method.default_model} (or zoo id, folder, zip)")
        else:
            self.model.edit.setPlaceholderText("zoo id, model folder or zip (no default)")

    def prepare(self) -> _RestoreInputs:
        """Collect the inputs from the form and the layers (GUI thread)."""
        layer, image = self.chosen_image()
        return _RestoreInputs(
            layer=layer,
            image=image,
            method=_method(self.method_box.currentText()).name,
            model=self.model.text() or None,
            device=self.device_box.currentText(),
            tile=self.tile.value() or None,
            tta=self.tta.isChecked(),
            uncertainty=self.uncertainty.isChecked(),
        )

    def job(self, inputs: _RestoreInputs, context: JobContext) -> tuple[np.ndarray, np.ndarray | None]:
        """Run in the worker thread: the restoration and its uncertainty map.

        The map is ``None`` when not asked for, or when the method or image cannot give one (a warning line
        then says why).
        """
        from microrestore import api
        from microrestore.engine.observe import Cancelled

        def run(uncertainty: bool) -> Any:
            options = _options(inputs.device, context, tile=inputs.tile, tta=inputs.tta)
            return api.restore(
                inputs.image,
                inputs.method,
                model=inputs.model,
                options=options,
                dtype="float32",
                warn=context.warn,
                uncertainty=uncertainty,
            )

        if not inputs.uncertainty:
            return run(False), None
        try:
            restored, sigma = run(True)
            return restored, np.asarray(sigma, np.float32)
        except Cancelled:
            raise
        except Exception as exc:
            why = one_line(exc)
        # The restoration again without the map: its own error (a bad model, bad input) is the one shown.
        restored = run(False)
        context.warn(f"no uncertainty map for {inputs.method} on {inputs.layer.name!r}: {why}")
        return restored, None

    def done(self, inputs: _RestoreInputs, result: tuple[np.ndarray, np.ndarray | None]) -> None:
        """Show the result (GUI thread)."""
        restored, sigma = result
        name = f"{inputs.layer.name} [{inputs.method}]"
        self.viewer.add_image(restored, **result_kwargs(inputs.layer, restored, name))
        note = ""
        if sigma is not None:
            sigma_name = f"{inputs.layer.name} [{inputs.method} sigma]"
            self.viewer.add_image(sigma, **sigma_kwargs(inputs.layer, sigma, sigma_name))
            note = f" and its uncertainty {sigma_name!r}"
        self.notify("info", f"restored {inputs.layer.name!r} with {inputs.method}: layer {name!r}{note}")


# ----------------------------------------------------------------------------------------------------------
# Self-supervised


@dataclass
class _SelfSupervisedInputs:
    layer: Any
    image: Any
    method: str
    steps: int | None
    seconds: float | None
    device: str
    save: Path | None


class SelfSupervisedWidget(_LayerJob):
    """Train a self-supervised denoiser (``rdl-denoise`` TiS/SiS, ``n2v``) on the chosen layer, then restore it.

    As ``microrestore denoise --self-supervised``: the method's CPU-sized one-shot configuration within a time
    budget; the loss curve is drawn live; the model is kept in a folder when one is given.
    """

    run_label = "Train and denoise"

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__(napari_viewer)
        from microrestore.api import SELF_SUPERVISED_SECONDS

        self.method_box = combo(methods_of(predicate=lambda m: m.self_supervised and m.train is not None))
        self.steps = QSpinBox()
        self.steps.setRange(0, 1_000_000)
        self.steps.setSpecialValueText("method's")
        self.seconds = _seconds_box(SELF_SUPERVISED_SECONDS)
        self.device_box = combo(DEVICES, editable=True)
        self.save = PathField(folder=True, placeholder="optional: keep the model in this folder")
        self.form.addRow("method", self.method_box)
        self.form.addRow("steps", self.steps)
        self.form.addRow("time budget", self.seconds)
        self.form.addRow("device", self.device_box)
        self.form.addRow("save model", self.save)
        self.plot = LossPlot()
        self.extra.addWidget(self.plot)

    def prepare(self) -> _SelfSupervisedInputs:
        """Collect the inputs from the form and the layers (GUI thread)."""
        layer, image = self.chosen_image()
        self.plot.clear()
        return _SelfSupervisedInputs(
            layer=layer,
            image=image,
            method=_method(self.method_box.currentText()).name,
            steps=self.steps.value() or None,
            seconds=self.seconds.value() or None,
            device=self.device_box.currentText(),
            save=Path(self.save.text()).expanduser() if self.save.text() else None,
        )

    def job(self, inputs: _SelfSupervisedInputs, context: JobContext) -> np.ndarray:
        """Run in the worker thread."""
        from microrestore import api

        plan = api.SelfSupervised(
            steps=inputs.steps,
            max_seconds=inputs.seconds,
            save_models=inputs.save,
            progress=False,
        )
        options = _options(inputs.device, context)
        return api.restore(
            inputs.image, inputs.method, options=options, dtype="float32", self_supervised=plan, warn=context.warn
        )

    def on_training(self, step: int, total: int, values: Mapping[str, float]) -> None:
        """Plot the logged losses."""
        self.plot.add(step, values)
        self.status.setText(f"training step {step}/{total}")

    def done(self, inputs: _SelfSupervisedInputs, result: np.ndarray) -> None:
        """Show the result (GUI thread)."""
        name = f"{inputs.layer.name} [{inputs.method} self-supervised]"
        self.viewer.add_image(result, **result_kwargs(inputs.layer, result, name))
        where = f"; model saved in {inputs.save / 'input'}" if inputs.save is not None else ""
        self.notify("info", f"trained {inputs.method} on {inputs.layer.name!r} and restored it{where}")


# ----------------------------------------------------------------------------------------------------------
# Train


def _yaml_text(value: Any) -> str:
    """A configuration value as one line of YAML (what the options table shows and parses back)."""
    import yaml
    from pydantic import BaseModel

    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    elif isinstance(value, Path):
        value = str(value)
    elif isinstance(value, tuple):
        value = list(value)
    try:
        text = yaml.safe_dump(value, default_flow_style=True, width=10_000)
    except yaml.YAMLError:
        return str(value)
    return text.removesuffix("\n").removesuffix("\n...").strip()


def schema_rows(schema: Any) -> list[tuple[str, str, str]]:
    """``(name, default as YAML, description)`` of each field of a method's pydantic configuration."""
    rows = []
    for name, info in schema.model_fields.items():
        default = info.get_default(call_default_factory=True)
        rows.append((name, _yaml_text(default), (info.description or "").strip()))
    return rows


@dataclass
class _TrainInputs:
    method: str
    source: list[Any]
    target: list[Any]
    output: Path
    config: dict[str, Any]
    steps: int | None
    resume: bool
    device: str
    axes: str | None
    layers: dict[str, tuple[Any, str]] = field(default_factory=dict)


class TrainWidget(JobWidget):
    """Train any trainable method on folders (or on layers) with options from its configuration schema.

    Source and target are folders, files or globs, or image layers (written to a temporary TIFF for the run);
    the table lists the method's configuration with its defaults (only changed rows are passed, as
    ``--set``). Live progress and loss curve; Cancel writes a checkpoint that *resume* continues from.
    """

    run_label = "Train"

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__(napari_viewer)
        self.method_box = combo(methods_of(predicate=lambda m: m.train is not None))
        self.source = PathField(folder=True, placeholder="folder, file or glob")
        self.source_layer = LayerPicker(napari_viewer, none="(the folder above)")
        self.target = PathField(folder=True, placeholder="paired methods: folder, file or glob")
        self.target_layer = LayerPicker(napari_viewer, none="(the folder above)")
        self.axes_box = combo(["", "YX", "ZYX", "TYX"], editable=True)
        self.output = PathField(folder=True, placeholder="model folder to write")
        self.steps = QSpinBox()
        self.steps.setRange(0, 10_000_000)
        self.steps.setSpecialValueText("config's")
        self.resume = QCheckBox("continue from the folder's checkpoint")
        self.device_box = combo(DEVICES, editable=True)
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["option", "value"])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setMinimumHeight(160)
        self._defaults: dict[str, str] = {}
        for label, widget in (
            ("method", self.method_box),
            ("source", self.source),
            ("source layer", self.source_layer),
            ("target", self.target),
            ("target layer", self.target_layer),
            ("axes", self.axes_box),
            ("model folder", self.output),
            ("steps", self.steps),
            ("resume", self.resume),
            ("device", self.device_box),
        ):
            self.form.addRow(label, widget)
        self.extra.addWidget(self.table)
        self.plot = LossPlot()
        self.extra.addWidget(self.plot)
        self.method_box.currentTextChanged.connect(self._method_changed)
        self._method_changed(self.method_box.currentText())

    def _method_changed(self, name: str) -> None:
        self.table.setRowCount(0)
        self._defaults = {}
        if not name:
            return
        schema = _method(name).config_schema
        rows = schema_rows(schema) if schema is not None else []
        self.table.setRowCount(len(rows))
        for i, (key, text, description) in enumerate(rows):
            item = QTableWidgetItem(key)
            item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
            item.setToolTip(description)
            self.table.setItem(i, 0, item)
            self.table.setItem(i, 1, QTableWidgetItem(text))
            self._defaults[key] = text

    def set_option(self, key: str, text: str) -> None:
        """Set the value of option ``key`` in the table (as typed)."""
        for row in range(self.table.rowCount()):
            if self.table.item(row, 0).text() == key:
                self.table.item(row, 1).setText(text)
                return
        raise KeyError(key)

    def changed_options(self) -> dict[str, Any]:
        """The options whose value differs from the default, parsed as YAML."""
        import yaml

        values: dict[str, Any] = {}
        for row in range(self.table.rowCount()):
            key = self.table.item(row, 0).text()
            text = self.table.item(row, 1).text().strip()
            if text == self._defaults.get(key):
                continue
            try:
                values[key] = yaml.safe_load(text)
            except yaml.YAMLError:
                raise InputError(
                    f"option {key}: cannot read {text!r} (give a number, true/false, text or [a, b])"
                ) from None
        return values

    def prepare(self) -> _TrainInputs:
        """Collect the inputs from the form and the layers (GUI thread)."""
        method = _method(self.method_box.currentText())
        if not self.output.text():
            raise InputError("give the model folder to write")
        layers: dict[str, tuple[Any, str]] = {}
        sides: dict[str, list[Any]] = {}
        axes = self.axes_box.currentText().strip().upper() or None
        for side, path, picker in (
            ("source", self.source, self.source_layer),
            ("target", self.target, self.target_layer),
        ):
            layer = picker.layer()
            if layer is not None:
                layer_axes = axes or default_axes(layer)
                layer_image(layer, layer_axes)  # checks it now: one line naming the layer
                layers[side] = (layer, layer_axes)
                sides[side] = []
            else:
                sides[side] = [path.text()] if path.text() else []
        if not sides["source"] and "source" not in layers:
            raise InputError("give the training source: a folder, file or glob, or an image layer")
        return _TrainInputs(
            method=method.name,
            source=sides["source"],
            target=sides["target"],
            output=Path(self.output.text()).expanduser(),
            config=self.changed_options(),
            steps=self.steps.value() or None,
            resume=self.resume.isChecked(),
            device=self.device_box.currentText(),
            axes=axes,
            layers=layers,
        )

    def job(self, inputs: _TrainInputs, context: JobContext) -> Path:
        """Run in the worker thread."""
        from microrestore import api
        from microrestore.io import write_image

        with tempfile.TemporaryDirectory(prefix="microrestore-napari-") as tmp:
            files = {"source": inputs.source, "target": inputs.target}
            axes = inputs.axes
            for side, (layer, layer_axes) in inputs.layers.items():
                image = layer_image(layer, layer_axes)
                (Path(tmp) / side).mkdir()
                path = write_image(Path(tmp) / side / "layer.tif", image.data, image.axes, pixel_size=image.pixel_size)
                files[side] = [path]
                axes = axes or layer_axes
            return api.train(
                inputs.method,
                files["source"],
                inputs.output,
                target=files["target"],
                config=inputs.config,
                steps=inputs.steps,
                resume=inputs.resume,
                device=inputs.device or "auto",
                axes=axes,
                progress=False,
            )

    def on_training(self, step: int, total: int, values: Mapping[str, float]) -> None:
        """Plot the logged losses."""
        self.plot.add(step, values)
        self.status.setText(f"training step {step}/{total}")

    def start(self) -> None:
        """Start training (the loss plot starts afresh unless resuming)."""
        if not self.running and not self.resume.isChecked():
            self.plot.clear()
        super().start()

    def done(self, inputs: _TrainInputs, result: Path) -> None:
        """Show the result (GUI thread)."""
        self.notify("info", f"model written to {result}; restore with it from the Restore widget (model: {result})")


# ----------------------------------------------------------------------------------------------------------
# Assess


#: The scores shown against a ground truth, in order.
SCORES = ("psnr", "ssim", "pcc", "nrmse", "psnr_affine", "ssim_affine")
SCORE_HEADERS = [s.upper().replace("_AFFINE", " aff.") for s in SCORES]

#: The columns of the ground-truth-free comparison table.
COMPARE_COLUMNS = ("rank", "est. RMSE", "90 % interval", "est. PSNR dB", "PSNR interval", "unsupported")

#: The two modes of the Assess widget.
MODES = ("ground truth", "compare (no ground truth)")

#: Default time budget of a comparison, seconds (methods that would exceed it are skipped).
COMPARE_SECONDS = 300.0


@dataclass
class _CompareInputs:
    layer: Any
    image: Any
    methods: list[str]
    budget: float | None
    device: str


def _interval(low: float, high: float) -> str:
    return f"{low:.4g} - {high:.4g}"


def compare_rows(comparison: Any) -> list[tuple[str, list[str]]]:
    """``(method, cells)`` of a :class:`~microrestore.assess.Comparison` in rank order (``COMPARE_COLUMNS``)."""
    rows = []
    order = comparison.ranking.order if comparison.ranking is not None else ()
    for i, name in enumerate(order, 1):
        found = comparison.assessments[name]
        err = found.error
        cells = [
            str(i),
            f"{err.estimated_rmse:.4g}",
            _interval(*err.rmse_interval),
            f"{err.psnr:.2f}",
            _interval(*err.psnr_interval),
            f"{100 * found.unsupported.added:.2g} %",
        ]
        rows.append((name, cells))
    return rows


def _panel() -> tuple[QWidget, QFormLayout]:
    """A widget holding a form of its own (a group of rows shown or hidden together)."""
    panel = QWidget()
    form = QFormLayout(panel)
    form.setContentsMargins(0, 0, 0, 0)
    return panel, form


def _multi_list() -> QListWidget:
    """A short list in which several entries can be selected."""
    box = QListWidget()
    box.setSelectionMode(QAbstractItemView.SelectionMode.MultiSelection)
    box.setMaximumHeight(110)
    return box


class AssessWidget(JobWidget):
    """Assess restorations, with a ground truth or without one.

    *ground truth*: score layers against a ground-truth layer (PSNR, SSIM, PCC, NRMSE, raw and affine-fitted).
    *compare (no ground truth)*: run :func:`microrestore.api.compare` on a noisy layer with the chosen methods
    within a time budget; each method's output becomes a layer and the table holds the estimated RMSE and PSNR
    with their 90 % intervals and the unsupported-structure fraction, in rank order; the recommended method and
    the ranking's confidence show below it. Both modes draw the intensity histograms (a restoration that
    shifts or clips intensities shows at once).
    """

    run_label = "Assess"

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__(napari_viewer)
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        from microrestore import api

        self.mode_box = combo(list(MODES))
        self.form.addRow("mode", self.mode_box)
        # ground-truth mode
        self.truth_panel, truth_form = _panel()
        self.truth_box = LayerPicker(napari_viewer)
        self.layers_list = _multi_list()
        truth_form.addRow("ground truth", self.truth_box)
        truth_form.addRow("layers to score", self.layers_list)
        # compare mode
        self.compare_panel, compare_form = _panel()
        self.noisy_box = LayerPicker(napari_viewer)
        self.methods_list = _multi_list()
        defaults = set(api.compare_candidates())
        for name in methods_of("denoise"):
            self.methods_list.addItem(name)
            self.methods_list.item(self.methods_list.count() - 1).setSelected(name in defaults)
        self.budget = _seconds_box(COMPARE_SECONDS)
        self.device_box = combo(DEVICES, editable=True)
        compare_form.addRow("noisy layer", self.noisy_box)
        compare_form.addRow("methods", self.methods_list)
        compare_form.addRow("time budget", self.budget)
        compare_form.addRow("device", self.device_box)
        self.form.addRow(self.truth_panel)
        self.form.addRow(self.compare_panel)
        self.table = QTableWidget(0, len(SCORES))
        self.table.setMinimumHeight(120)
        self.recommendation = QLabel("")
        self.recommendation.setWordWrap(True)
        self.figure = Figure(figsize=(3.6, 2.4), tight_layout=True)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(180)
        self.extra.addWidget(self.table)
        self.extra.addWidget(self.recommendation)
        self.extra.addWidget(self.canvas)
        #: The scores of the last ground-truth run, layer name to metric to value.
        self.scores: dict[str, dict[str, float]] = {}
        #: The last comparison (a :class:`~microrestore.assess.Comparison`), or ``None``.
        self.comparison: Any = None
        self.refresh_layers()
        for event in ("inserted", "removed"):
            getattr(napari_viewer.layers.events, event).connect(self.refresh_layers)
        self.mode_box.currentTextChanged.connect(self._mode_changed)
        self._mode_changed(self.mode_box.currentText())

    @property
    def comparing(self) -> bool:
        """Whether the widget is in the ground-truth-free compare mode."""
        return self.mode_box.currentText() == MODES[1]

    def _mode_changed(self, *_: Any) -> None:
        self.truth_panel.setVisible(not self.comparing)
        self.compare_panel.setVisible(self.comparing)
        self.run_button.setText("Compare" if self.comparing else self.run_label)
        self._set_columns(COMPARE_COLUMNS if self.comparing else SCORE_HEADERS)

    def _set_columns(self, headers: Any) -> None:
        self.table.setRowCount(0)
        self.table.setColumnCount(len(headers))
        self.table.setHorizontalHeaderLabels(list(headers))
        self.recommendation.setText("")

    def refresh_layers(self, *_: Any) -> None:
        """List the viewer's image layers (keeping the selection)."""
        from napari.layers import Image

        chosen = {item.text() for item in self.layers_list.selectedItems()}
        self.layers_list.clear()
        for layer in self.viewer.layers:
            if isinstance(layer, Image):
                self.layers_list.addItem(layer.name)
                if layer.name in chosen:
                    self.layers_list.item(self.layers_list.count() - 1).setSelected(True)

    def choose(self, names: list[str], truth: str) -> None:
        """Ground-truth mode: select the layers ``names`` to score against ``truth``."""
        self.mode_box.setCurrentText(MODES[0])
        self.refresh_layers()
        self.truth_box.select(truth)
        for i in range(self.layers_list.count()):
            item = self.layers_list.item(i)
            item.setSelected(item.text() in names)

    def choose_compare(self, layer: str, methods: list[str]) -> None:
        """Compare mode: compare ``methods`` on the layer called ``layer``."""
        self.mode_box.setCurrentText(MODES[1])
        self.noisy_box.select(layer)
        for i in range(self.methods_list.count()):
            item = self.methods_list.item(i)
            item.setSelected(item.text() in methods)

    def prepare(self) -> Any:
        """Collect the inputs from the form and the layers (GUI thread)."""
        if self.comparing:
            return self._prepare_compare()
        truth = self.truth_box.layer()
        if truth is None:
            raise InputError("choose the ground-truth layer")
        names = [item.text() for item in self.layers_list.selectedItems() if item.text() != truth.name]
        if not names:
            raise InputError("select at least one layer to score (other than the ground truth)")
        pairs = [ground_truth_pair(self.viewer.layers[name], truth) for name in names]
        return [(name, pair[0]) for name, pair in zip(names, pairs)], (truth.name, pairs[0][1])

    def _prepare_compare(self) -> _CompareInputs:
        layer = self.noisy_box.layer()
        if layer is None:
            raise InputError("choose the noisy image layer to compare methods on")
        methods = [item.text() for item in self.methods_list.selectedItems()]
        if not methods:
            raise InputError("select at least one method to compare")
        return _CompareInputs(
            layer=layer,
            image=layer_image(layer, default_axes(layer)),
            methods=methods,
            budget=self.budget.value() or None,
            device=self.device_box.currentText(),
        )

    def job(self, inputs: Any, context: JobContext) -> Any:
        """Run in the worker thread."""
        from microrestore import api

        if isinstance(inputs, _CompareInputs):
            return self._compare(inputs, context)
        layers, (_, truth) = inputs
        scores = {}
        for i, (name, data) in enumerate(layers):
            context.report(i, len(layers))
            scores[name] = api.evaluate(data, truth)
        context.report(len(layers), len(layers))
        return scores

    def _compare(self, inputs: _CompareInputs, context: JobContext) -> Any:
        from microrestore import api
        from microrestore.engine.observe import Cancelled

        def check(*_: Any) -> None:  # tiles: stop on Cancel without moving the per-method progress bar
            if context.cancel.is_set():
                raise Cancelled("cancelled")

        started = [0]

        def on_method(name: str) -> None:
            context.report(started[0], len(inputs.methods))
            started[0] += 1
            context.info(f"assessing {name} ({started[0]}/{len(inputs.methods)})")

        options = _options(inputs.device, context)
        options.on_progress = check
        result = api.compare(inputs.image, inputs.methods, options=options, budget=inputs.budget, on_method=on_method)
        context.report(len(inputs.methods), len(inputs.methods))
        if result.ranking is None:
            reasons = "; ".join(f"{k}: {v}" for k, v in result.skipped.items())
            raise InputError(f"no method could be assessed on layer {inputs.layer.name!r} ({reasons})")
        for name, why in result.skipped.items():
            context.warn(f"skipped {name}: {why}")
        return result

    def done(self, inputs: Any, result: Any) -> None:
        """Show the result (GUI thread)."""
        if isinstance(inputs, _CompareInputs):
            self._show_comparison(inputs, result)
            return
        layers, (truth_name, truth) = inputs
        self._set_columns(SCORE_HEADERS)
        self.scores = result
        self.table.setRowCount(len(result))
        self.table.setVerticalHeaderLabels(list(result))
        for row, values in enumerate(result.values()):
            for col, key in enumerate(SCORES):
                value = values.get(key, math.nan)
                self.table.setItem(row, col, QTableWidgetItem(f"{value:.4g}"))
        names = [name for name, _ in layers] + [f"{truth_name} (truth)"]
        self._histograms(names, [data for _, data in layers] + [truth])
        best = max(result, key=lambda n: result[n].get("psnr", -math.inf))
        self.notify("info", f"scored {len(result)} layer(s) against {truth_name!r}; best PSNR: {best!r}")

    def _show_comparison(self, inputs: _CompareInputs, result: Any) -> None:
        self.comparison = result
        rows = compare_rows(result)
        self._set_columns(COMPARE_COLUMNS)
        self.table.setRowCount(len(rows))
        self.table.setVerticalHeaderLabels([name for name, _ in rows])
        for r, (name, cells) in enumerate(rows):
            for c, text in enumerate(cells):
                self.table.setItem(r, c, QTableWidgetItem(text))
            output = np.asarray(result.assessments[name].output, np.float32)
            layer_name = f"{inputs.layer.name} [{name}]"
            self.viewer.add_image(output, **result_kwargs(inputs.layer, output, layer_name))
        ranking = result.ranking
        text = (
            f"recommended: {ranking.best} ({ranking.verdict}: best in {ranking.confidence:.0%} of the bootstrap "
            f"resamples; {ranking.within_tolerance:.0%} put it within {ranking.tolerance_db:g} dB of the best)"
        )
        self.recommendation.setText(text)
        names = [f"{inputs.layer.name} (input)"] + [name for name, _ in rows]
        arrays = [np.asarray(inputs.layer.data)] + [result.assessments[name].output for name, _ in rows]
        self._histograms(names, arrays)
        self.notify("info", f"compared {len(rows)} method(s) on {inputs.layer.name!r} without ground truth; {text}")

    def _histograms(self, names: list[str], arrays: list[np.ndarray]) -> None:
        self.figure.clear()
        axes = self.figure.add_subplot(111)
        edges, counts = histogram(arrays)
        centres = 0.5 * (edges[1:] + edges[:-1])
        for name, count in zip(names, counts):
            axes.step(centres, count, where="mid", label=name)
        axes.set_yscale("log")
        axes.set_xlabel("intensity")
        axes.set_ylabel("pixels")
        axes.legend(fontsize=7)
        self.canvas.draw_idle()


# ----------------------------------------------------------------------------------------------------------
# SIM


#: The parameter table's columns: key in the rows of ``microrestore sim``'s table, and header.
SIM_COLUMNS = (
    ("orientation", "#"),
    ("angle", "angle deg"),
    ("k", "|k| 1/um"),
    ("versus", "vs nominal"),
    ("period", "period nm"),
    ("phase", "phase rad"),
    ("modulation", "modulation"),
    ("fit", "fit"),
)


@dataclass
class _SIMInputs:
    layer: Any
    image: Any
    axes: str
    method: str
    model: str | None
    values: dict[str, Any]
    device: str


def _positive(box: QDoubleSpinBox) -> float | None:
    return float(box.value()) if box.value() > 0 else None


def _spin(low: float, high: float, value: float, decimals: int, special: str | None = None) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(low, high)
    box.setDecimals(decimals)
    box.setValue(value)
    if special is not None:
        box.setSpecialValueText(special)
    return box


class SIMWidget(_LayerJob):
    """Reconstruct a raw 2D-SIM layer (9 frames, or 9 x n) on the 2x grid: Wiener-SIM or rDL-SIM.

    The illumination parameters used (estimated or given) fill the table: angle, ``|k|`` against the nominal
    ``2 NA_exc / lambda_exc``, period, phase, modulation and which values fell back to nominal ones.
    """

    run_label = "Reconstruct"

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__(napari_viewer)
        self.method_box = combo(methods_of("sim"), "wiener-sim")
        self.model = PathField(placeholder="rdl-sim: default model, zoo id or folder")
        self.na = _spin(0.0, 1.7, 1.4, 3)
        self.wavelength = _spin(0.0, 2000.0, 525.0, 1)
        self.pixel = _spin(0.0, 10_000.0, 0.0, 2, "from the layer")
        self.na_exc = _spin(0.0, 1.7, 0.0, 3, "= NA")
        self.wavelength_exc = _spin(0.0, 2000.0, 0.0, 1, "= wavelength")
        self.otf = PathField(placeholder="optional: MRC/TIFF OTF or PSF (default: ideal OTF)")
        self.wiener = combo(["auto", "0.02", "0.05", "0.1", "0.2", "0.5"], "auto", editable=True)
        self.order = combo(["angle-major", "phase-major"])
        self.device_box = combo(DEVICES, editable=True)
        for label, widget in (
            ("method", self.method_box),
            ("model", self.model),
            ("NA", self.na),
            ("emission nm", self.wavelength),
            ("pixel size nm", self.pixel),
            ("excitation NA", self.na_exc),
            ("excitation nm", self.wavelength_exc),
            ("OTF file", self.otf),
            ("Wiener w", self.wiener),
            ("frame order", self.order),
            ("device", self.device_box),
        ):
            self.form.addRow(label, widget)
        self.table = QTableWidget(0, len(SIM_COLUMNS))
        self.table.setHorizontalHeaderLabels([header for _, header in SIM_COLUMNS])
        self.table.setMinimumHeight(120)
        self.extra.addWidget(self.table)
        #: The parameter rows of the last reconstruction.
        self.rows: list[dict[str, str]] = []
        self._layer_changed()

    def _layer_changed(self, *args: Any) -> None:
        """Offer the layer's axes, and its optics when its metadata holds them (the simulated sample does)."""
        super()._layer_changed(*args)
        layer = self.layer_box.layer()
        optics = (getattr(layer, "metadata", None) or {}).get("microrestore", {}).get("sim_optics", {})
        if not hasattr(self, "na"):
            return
        for key, box in (
            ("na", self.na),
            ("wavelength_nm", self.wavelength),
            ("na_exc", self.na_exc),
            ("wavelength_exc_nm", self.wavelength_exc),
        ):
            if key in optics:
                box.setValue(float(optics[key]))

    def suggested_axes(self, layer: Any) -> str:
        """Raw SIM frames: a 3D layer is ``TYX`` (its 9 n frames), a 4D one ``ZTYX``."""
        return {3: "TYX", 4: "ZTYX"}.get(layer.ndim, default_axes(layer))

    def prepare(self) -> _SIMInputs:
        """Collect the inputs from the form and the layers (GUI thread)."""
        layer, image = self.chosen_image()
        wiener_text = self.wiener.currentText().strip().lower()
        wiener: float | str = "auto"
        if wiener_text != "auto":
            try:
                wiener = float(wiener_text)
            except ValueError:
                raise InputError(f"Wiener w must be auto or a number in (0, 10], got {wiener_text!r}") from None
        given = {
            "na": _positive(self.na),
            "wavelength_nm": _positive(self.wavelength),
            "pixel_size_nm": _positive(self.pixel),
            "na_exc": _positive(self.na_exc),
            "wavelength_exc_nm": _positive(self.wavelength_exc),
            "otf": self.otf.text() or None,
            "wiener": wiener,
            "order": self.order.currentText(),
        }
        return _SIMInputs(
            layer=layer,
            image=image,
            axes=image.axes,
            method=_method(self.method_box.currentText()).name,
            model=self.model.text() or None,
            values={k: v for k, v in given.items() if v is not None},
            device=self.device_box.currentText(),
        )

    def job(self, inputs: _SIMInputs, context: JobContext) -> tuple[np.ndarray, list[dict[str, str]]]:
        """Run in the worker thread."""
        from microrestore import api
        from microrestore.structured_illumination.options import SIMOptions

        options = _options(inputs.device, context, params=dict(inputs.values))
        predictor = api.load_predictor(_method(inputs.method), inputs.model, options)
        sr = np.asarray(predictor.predict(inputs.image), dtype=np.float32)
        context.report(1, 1)
        chosen = getattr(predictor, "last_wiener", None)
        if chosen is not None:
            context.info(chosen.describe())
        used = getattr(predictor, "last_params", None)
        rows: list[dict[str, str]] = []
        if used is not None:
            from microrestore_wiener_sim.cli import params_rows

            known = {k: v for k, v in options.params.items() if k in SIMOptions.model_fields}
            rows = params_rows(used, SIMOptions.model_validate(known).nominal_k_per_um())
        return sr, rows

    def done(self, inputs: _SIMInputs, result: tuple[np.ndarray, list[dict[str, str]]]) -> None:
        """Show the result (GUI thread)."""
        sr, rows = result
        name = f"{inputs.layer.name} [{inputs.method}]"
        data, kwargs = sim_result_kwargs(inputs.layer, inputs.axes, sr, name)
        self.viewer.add_image(data, **kwargs)
        self.rows = rows
        self.table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, (key, _) in enumerate(SIM_COLUMNS):
                self.table.setItem(r, c, QTableWidgetItem(row.get(key, "")))
        fallbacks = [row["orientation"] for row in rows if row.get("fit", "").startswith("fallback")]
        note = f"; fallback values in orientation(s) {', '.join(fallbacks)}" if fallbacks else ""
        self.notify("info", f"reconstructed {inputs.layer.name!r} on the 2x grid: layer {name!r}{note}")
