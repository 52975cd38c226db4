"""Self-supervised and Train widgets: live loss, a restored layer, cancel with a checkpoint, resume."""

from __future__ import annotations

import numpy as np
import pytest

from tests.napari.conftest import run_job

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"), pytest.mark.slow]


def _pair(shape=(96, 96), seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    clean = (100 + 80 * (np.sin(xx / 5.0) * np.cos(yy / 7.0) > 0.3)).astype(np.float32)
    noisy = rng.poisson(clean).astype(np.float32)
    return noisy, clean


def test_self_supervised_n2v_trains_and_restores(qtbot, viewer, tmp_path):
    from microrestore.napari.widgets import SelfSupervisedWidget

    noisy, _ = _pair()
    layer = viewer.add_image(noisy, name="noisy", scale=(0.1, 0.1), units=("um", "um"))
    widget = SelfSupervisedWidget(viewer)
    qtbot.addWidget(widget)
    widget.method_box.setCurrentText("n2v")
    widget.steps.setValue(4)
    widget.device_box.setCurrentText("cpu")
    widget.save.setText(str(tmp_path / "models"))
    steps = []
    widget._bridge.training.connect(lambda step, total, values: steps.append((step, total)))
    run_job(qtbot, widget, timeout=300_000)
    assert not [m for m in widget.messages if m[0] == "error"], widget.messages
    out = viewer.layers["noisy [n2v self-supervised]"]
    assert out.data.shape == noisy.shape and out.data.dtype == np.float32
    np.testing.assert_allclose(out.scale, layer.scale)
    assert steps and steps[-1] == (4, 4)
    assert widget.plot.series, "the loss curve got no point"
    assert (tmp_path / "models" / "input").is_dir()


def _train_widget(qtbot, viewer, tmp_path, steps):
    from microrestore.napari.widgets import TrainWidget

    noisy, clean = _pair()
    viewer.add_image(noisy, name="low")
    viewer.add_image(clean, name="high")
    widget = TrainWidget(viewer)
    qtbot.addWidget(widget)
    widget.method_box.setCurrentText("care")
    widget.source_layer.select("low")
    widget.target_layer.select("high")
    widget.output.setText(str(tmp_path / "model"))
    widget.steps.setValue(steps)
    widget.device_box.setCurrentText("cpu")
    for key, value in (("base_filters", "8"), ("batch_size", "2"), ("patch_size", "32"), ("checkpoint_every", "1")):
        widget.set_option(key, value)
    return widget


def test_train_on_layers_with_schema_options(qtbot, viewer, tmp_path):
    widget = _train_widget(qtbot, viewer, tmp_path, steps=3)
    assert widget.changed_options() == {"base_filters": 8, "batch_size": 2, "patch_size": 32, "checkpoint_every": 1}
    run_job(qtbot, widget, timeout=300_000)
    assert not [m for m in widget.messages if m[0] == "error"], widget.messages
    assert widget.messages[-1][1].startswith("model written to")
    assert (tmp_path / "model" / "config.json").exists() or any((tmp_path / "model").iterdir())
    assert widget.plot.series


def test_train_cancel_keeps_a_checkpoint_and_resume_finishes(qtbot, viewer, tmp_path):
    widget = _train_widget(qtbot, viewer, tmp_path, steps=40)
    stop = widget._bridge.training.connect(lambda step, total, values: widget.cancel())
    run_job(qtbot, widget, timeout=300_000)
    assert widget.messages[-1] == ("info", "cancelled")
    widget._bridge.training.disconnect(stop)
    done = []
    widget._bridge.training.connect(lambda step, total, values: done.append(step))
    widget.steps.setValue(4)
    widget.resume.setChecked(True)
    run_job(qtbot, widget, timeout=300_000)
    assert not [m for m in widget.messages if m[0] == "error"], widget.messages
    assert done and done[0] > 1 and done[-1] == 4  # continued after the checkpoint, not from step 1


def test_train_bad_option_is_one_error_line(qtbot, viewer, tmp_path):
    widget = _train_widget(qtbot, viewer, tmp_path, steps=2)
    widget.set_option("batch_size", "many")
    run_job(qtbot, widget)
    errors = [text for level, text in widget.messages if level == "error"]
    assert len(errors) == 1 and "batch_size" in errors[0] and "\n" not in errors[0]


def test_train_needs_a_model_folder(qtbot, viewer, tmp_path):
    widget = _train_widget(qtbot, viewer, tmp_path, steps=2)
    widget.output.setText("")
    widget.start()
    assert widget.messages[-1] == ("error", "give the model folder to write")
