"""The Restore widget on a real napari viewer: results as layers on the input's grid, cancel, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from tests.napari.conftest import camera_field, run_job

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _noisy(shape, seed=0):
    rng = np.random.default_rng(seed)
    return (100 + 20 * rng.standard_normal(shape)).astype(np.float32)


def test_restore_2d_keeps_the_grid(qtbot, viewer):
    from microrestore.napari.widgets import RestoreWidget

    layer = viewer.add_image(
        _noisy((48, 40)),
        name="cells",
        scale=(0.1, 0.2),
        translate=(5.0, -3.0),
        units=("um", "um"),
        contrast_limits=(50, 150),
    )
    widget = RestoreWidget(viewer)
    qtbot.addWidget(widget)
    widget.method_box.setCurrentText("nl-means")
    run_job(qtbot, widget)
    assert not [m for m in widget.messages if m[0] == "error"], widget.messages
    out = viewer.layers["cells [nl-means]"]
    assert out.data.shape == (48, 40) and out.data.dtype == np.float32
    np.testing.assert_allclose(out.scale, layer.scale)
    np.testing.assert_allclose(out.translate, layer.translate)
    assert tuple(str(u) for u in out.units) == tuple(str(u) for u in layer.units)
    assert tuple(out.contrast_limits) == (50, 150)
    assert out.data.std() < layer.data.std()  # it denoised


def test_restore_3d_layer_with_time_axes(qtbot, viewer):
    from microrestore.napari.widgets import RestoreWidget

    viewer.add_image(_noisy((3, 32, 32)), name="movie", scale=(2.0, 0.1, 0.1))
    widget = RestoreWidget(viewer)
    qtbot.addWidget(widget)
    widget.method_box.setCurrentText("nl-means")
    assert widget.axes_box.currentText() == "ZYX"
    widget.axes_box.setCurrentText("TYX")
    run_job(qtbot, widget)
    out = viewer.layers["movie [nl-means]"]
    assert out.data.shape == (3, 32, 32) and out.data.dtype == np.float32
    np.testing.assert_allclose(out.scale, (2.0, 0.1, 0.1))


def test_restore_with_a_network_model(qtbot, viewer):
    """The default CARE model (bundled with the zoo) runs through the tiled predictor with progress."""
    from microrestore.napari.widgets import RestoreWidget

    viewer.add_image(_noisy((64, 64)), name="img")
    widget = RestoreWidget(viewer)
    qtbot.addWidget(widget)
    widget.method_box.setCurrentText("care")
    widget.device_box.setCurrentText("cpu")
    run_job(qtbot, widget)
    assert not [m for m in widget.messages if m[0] == "error"], widget.messages
    out = viewer.layers["img [care]"]
    assert out.data.shape == (64, 64) and out.data.dtype == np.float32


def test_no_image_layer_is_one_error_line(qtbot, viewer):
    from microrestore.napari.widgets import RestoreWidget

    viewer.add_points([[1, 1]], name="spots")
    widget = RestoreWidget(viewer)
    qtbot.addWidget(widget)
    n = len(viewer.layers)
    widget.start()
    assert widget.messages[-1] == ("error", "choose an image layer")
    assert len(viewer.layers) == n and widget.run_button.isEnabled()


def test_empty_data_is_refused_naming_the_layer():
    """napari cannot show a zero-size layer; its data can still reach the widget (e.g. from a script)."""
    from types import SimpleNamespace

    from microrestore.errors import InputError
    from microrestore.napari.layers import layer_image

    layer = SimpleNamespace(name="empty", data=np.zeros((0, 16), np.float32), ndim=2, scale=(1, 1), units=None)
    with pytest.raises(InputError, match="layer 'empty' is empty"):
        layer_image(layer, "YX")


def test_nan_layer_is_one_error_line(qtbot, viewer):
    from microrestore.napari.widgets import RestoreWidget

    data = _noisy((32, 32))
    data[3, 4] = np.nan
    viewer.add_image(data, name="holes", contrast_limits=(0, 200))
    widget = RestoreWidget(viewer)
    qtbot.addWidget(widget)
    widget.method_box.setCurrentText("nl-means")
    run_job(qtbot, widget)
    errors = [text for level, text in widget.messages if level == "error"]
    assert len(errors) == 1 and "NaN" in errors[0] and "\n" not in errors[0]
    assert "holes [nl-means]" not in viewer.layers


def test_wrong_dimensionality_is_one_error_line(qtbot, viewer):
    from microrestore.napari.widgets import RestoreWidget

    viewer.add_image(_noisy((2, 2, 2, 2, 8, 8)), name="six")
    widget = RestoreWidget(viewer)
    qtbot.addWidget(widget)
    widget.layer_box.select("six")
    widget.method_box.setCurrentText("nl-means")
    widget.start()
    level, text = widget.messages[-1]
    assert level == "error" and "layer 'six' has 6 dimensions" in text


def test_axes_that_do_not_fit(qtbot, viewer):
    from microrestore.napari.widgets import RestoreWidget

    viewer.add_image(_noisy((16, 16)), name="flat")
    widget = RestoreWidget(viewer)
    qtbot.addWidget(widget)
    widget.axes_box.setCurrentText("ZYX")
    widget.start()
    assert widget.messages[-1][0] == "error" and "axes 'ZYX'" in widget.messages[-1][1]


def test_error_in_the_job_is_a_notification(qtbot, viewer):
    """A model that does not exist: the worker's error comes back as one line; no layer, no crash."""
    from microrestore.napari.widgets import RestoreWidget

    viewer.add_image(_noisy((32, 32)), name="img")
    widget = RestoreWidget(viewer)
    qtbot.addWidget(widget)
    widget.method_box.setCurrentText("care")
    widget.model.setText("/nonexistent/model-folder")
    run_job(qtbot, widget)
    errors = [text for level, text in widget.messages if level == "error"]
    assert len(errors) == 1 and "Traceback" not in errors[0] and "\n" not in errors[0]
    assert "img [care]" not in viewer.layers


def test_cancel_stops_inference(qtbot, viewer):
    """Cancel during tiled inference: the job stops between tiles and no layer is added."""
    from microrestore.napari.widgets import RestoreWidget

    viewer.add_image(_noisy((4, 256, 256)), name="stack")
    widget = RestoreWidget(viewer)
    qtbot.addWidget(widget)
    widget.axes_box.setCurrentText("TYX")
    widget.method_box.setCurrentText("care")
    widget.device_box.setCurrentText("cpu")
    widget.tile.setValue(64)
    widget._bridge.progress.connect(lambda done, total: widget.cancel())  # cancel at the first tile
    run_job(qtbot, widget)
    assert widget.messages[-1] == ("info", "cancelled")
    assert "stack [care]" not in viewer.layers
    assert widget.run_button.isEnabled()


def test_restore_with_uncertainty_adds_a_sigma_layer(qtbot, viewer):
    from microrestore.napari.widgets import RestoreWidget

    layer = viewer.add_image(camera_field(), name="cells", scale=(0.1, 0.2), translate=(5.0, -3.0), units=("um", "um"))
    widget = RestoreWidget(viewer)
    qtbot.addWidget(widget)
    widget.method_box.setCurrentText("nl-means")
    widget.uncertainty.setChecked(True)
    run_job(qtbot, widget)
    assert not [m for m in widget.messages if m[0] in ("error", "warning")], widget.messages
    assert "cells [nl-means]" in viewer.layers
    sigma = viewer.layers["cells [nl-means sigma]"]
    assert sigma.data.shape == (64, 64) and sigma.data.dtype == np.float32
    np.testing.assert_allclose(sigma.scale, layer.scale)
    np.testing.assert_allclose(sigma.translate, layer.translate)
    assert tuple(str(u) for u in sigma.units) == tuple(str(u) for u in layer.units)
    assert np.all(sigma.data >= 0) and sigma.data.mean() > 0
    assert sigma.contrast_limits[0] == 0 and sigma.contrast_limits[1] <= float(sigma.data.max())


def test_uncertainty_not_available_is_one_warning_line(qtbot, viewer):
    """A noise-free image has no noise model to build the map from: the restoration still comes, with one line."""
    from microrestore.napari.widgets import RestoreWidget

    viewer.add_image(np.tile(np.linspace(100, 200, 32, dtype=np.float32), (32, 1)), name="ramp")
    widget = RestoreWidget(viewer)
    qtbot.addWidget(widget)
    widget.method_box.setCurrentText("care")
    widget.device_box.setCurrentText("cpu")
    widget.uncertainty.setChecked(True)
    run_job(qtbot, widget)
    assert not [m for m in widget.messages if m[0] == "error"], widget.messages
    warnings = [text for level, text in widget.messages if level == "warning"]
    assert len(warnings) == 1 and warnings[0].startswith("no uncertainty map for care on 'ramp'"), warnings
    assert "\n" not in warnings[0]
    assert "ramp [care]" in viewer.layers and "ramp [care sigma]" not in viewer.layers
