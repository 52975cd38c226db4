"""SIM reconstruct and Assess widgets, the reader and the sample data on a real napari viewer."""

from __future__ import annotations

import numpy as np
import pytest

from tests.napari.conftest import camera_field, run_job

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def sim_layers():
    from microrestore.napari.samples import sim_sample

    return sim_sample(seed=1)  # 128 x 128: every orientation fits (at 64 x 64 one falls back)


def test_sim_sample_layers(sim_layers):
    (truth, truth_kw, _), (raw, raw_kw, kind) = sim_layers
    assert kind == "image" and raw.shape == (9, 128, 128) and truth.shape == (256, 256)
    assert raw_kw["axis_labels"] == ("T", "Y", "X")
    assert raw_kw["scale"][1:] == pytest.approx((0.0626, 0.0626))
    assert truth_kw["scale"] == pytest.approx((0.0313, 0.0313))
    assert raw_kw["metadata"]["microrestore"]["sim_optics"]["na_exc"] == 1.1


def test_sim_reconstruct_on_the_2x_grid(qtbot, viewer, sim_layers):
    from microrestore.napari.widgets import SIMWidget

    (_, _, _), (raw, raw_kw, _) = sim_layers
    layer = viewer.add_image(raw, **{k: v for k, v in raw_kw.items() if k != "axis_labels"})
    widget = SIMWidget(viewer)
    qtbot.addWidget(widget)
    assert widget.axes_box.currentText() == "TYX"
    assert widget.na_exc.value() == pytest.approx(1.1)  # from the sample's metadata
    widget.device_box.setCurrentText("cpu")
    run_job(qtbot, widget)
    assert not [m for m in widget.messages if m[0] == "error"], widget.messages
    out = viewer.layers["SIM raw [wiener-sim]"]
    assert out.data.shape == (256, 256) and out.data.dtype == np.float32
    np.testing.assert_allclose(out.scale, np.asarray(layer.scale[1:]) / 2)
    np.testing.assert_allclose(out.translate, np.asarray(layer.translate[1:]) - 0.25 * np.asarray(layer.scale[1:]))
    assert len(widget.rows) == 3 and widget.table.rowCount() == 3
    assert widget.table.item(0, 1).text() == widget.rows[0]["angle"]
    assert all(row["fit"].startswith("ok") for row in widget.rows), widget.rows


def test_sim_wrong_frame_count_is_one_error_line(qtbot, viewer):
    from microrestore.napari.widgets import SIMWidget

    viewer.add_image(np.ones((7, 32, 32), np.float32), name="seven", scale=(1, 0.065, 0.065))
    widget = SIMWidget(viewer)
    qtbot.addWidget(widget)
    run_job(qtbot, widget)
    errors = [text for level, text in widget.messages if level == "error"]
    assert len(errors) == 1 and "\n" not in errors[0] and "7" in errors[0]
    assert "seven [wiener-sim]" not in viewer.layers


def test_sim_bad_wiener_is_refused(qtbot, viewer, sim_layers):
    from microrestore.napari.widgets import SIMWidget

    (_, _, _), (raw, _, _) = sim_layers
    viewer.add_image(raw, name="raw")
    widget = SIMWidget(viewer)
    qtbot.addWidget(widget)
    widget.wiener.setEditText("lots")
    widget.start()
    assert widget.messages[-1][0] == "error" and "Wiener" in widget.messages[-1][1]


def test_assess_scores_and_histograms(qtbot, viewer):
    from microrestore.napari.widgets import AssessWidget

    rng = np.random.default_rng(0)
    truth = np.tile(np.linspace(0, 100, 64, dtype=np.float32), (64, 1))
    viewer.add_image(truth, name="truth")
    viewer.add_image(truth + rng.normal(0, 10, truth.shape).astype(np.float32), name="noisy")
    viewer.add_image(truth + rng.normal(0, 1, truth.shape).astype(np.float32), name="restored")
    widget = AssessWidget(viewer)
    qtbot.addWidget(widget)
    widget.choose(["noisy", "restored"], "truth")
    run_job(qtbot, widget)
    assert not [m for m in widget.messages if m[0] == "error"], widget.messages
    assert set(widget.scores) == {"noisy", "restored"}
    assert widget.scores["restored"]["psnr"] > widget.scores["noisy"]["psnr"] + 10
    assert widget.table.rowCount() == 2
    assert len(widget.figure.axes[0].lines) == 3  # two layers and the truth


def test_assess_shape_mismatch_is_one_error_line(qtbot, viewer):
    from microrestore.napari.widgets import AssessWidget

    viewer.add_image(np.ones((32, 32), np.float32), name="truth")
    viewer.add_image(np.ones((16, 32), np.float32), name="other")
    widget = AssessWidget(viewer)
    qtbot.addWidget(widget)
    widget.choose(["other"], "truth")
    widget.start()
    level, text = widget.messages[-1]
    assert level == "error" and "shape (16, 32)" in text and "truth" in text


def test_compare_without_ground_truth(qtbot, viewer):
    from microrestore.napari.widgets import COMPARE_COLUMNS, MODES, AssessWidget

    layer = viewer.add_image(camera_field(), name="noisy", scale=(0.1, 0.1), translate=(2.0, 1.0))
    widget = AssessWidget(viewer)
    qtbot.addWidget(widget)
    assert widget.mode_box.currentText() == MODES[0]  # the ground-truth mode stays the default
    assert {"nl-means", "care"} <= {item.text() for item in widget.methods_list.selectedItems()}  # defaults
    widget.choose_compare("noisy", ["nl-means", "care"])
    widget.device_box.setCurrentText("cpu")
    assert widget.compare_panel.isVisibleTo(widget) and not widget.truth_panel.isVisibleTo(widget)
    run_job(qtbot, widget)
    assert not [m for m in widget.messages if m[0] in ("error", "warning")], widget.messages
    order = widget.comparison.ranking.order
    assert set(order) == {"nl-means", "care"} and widget.table.rowCount() == 2
    assert [widget.table.horizontalHeaderItem(c).text() for c in range(widget.table.columnCount())] == list(
        COMPARE_COLUMNS
    )
    assert [widget.table.verticalHeaderItem(r).text() for r in range(2)] == list(order)
    for r, name in enumerate(order):
        err = widget.comparison.assessments[name].error
        assert widget.table.item(r, 0).text() == str(r + 1)
        assert float(widget.table.item(r, 1).text()) == pytest.approx(err.estimated_rmse, rel=1e-3)
        low, high = (float(v) for v in widget.table.item(r, 2).text().split(" - "))
        assert low <= float(widget.table.item(r, 1).text()) <= high
        assert float(widget.table.item(r, 3).text()) == pytest.approx(err.psnr, abs=0.01)
        out = viewer.layers[f"noisy [{name}]"]
        assert out.data.shape == (64, 64) and out.data.dtype == np.float32
        np.testing.assert_allclose(out.scale, layer.scale)
        np.testing.assert_allclose(out.translate, layer.translate)
    assert widget.recommendation.text().startswith(f"recommended: {order[0]} (")
    assert len(widget.figure.axes[0].lines) == 3  # the input and two outputs


def test_compare_without_a_method_is_one_error_line(qtbot, viewer):
    from microrestore.napari.widgets import AssessWidget

    viewer.add_image(camera_field(32), name="noisy")
    widget = AssessWidget(viewer)
    qtbot.addWidget(widget)
    widget.choose_compare("noisy", [])
    n = len(viewer.layers)
    widget.start()
    assert widget.messages[-1] == ("error", "select at least one method to compare")
    assert len(viewer.layers) == n


def test_reader_mrc_pixel_size_to_scale(tmp_path):
    from microrestore.io.mrc import write_mrc
    from microrestore.napari.reader import get_reader

    data = np.arange(3 * 8 * 10, dtype=np.float32).reshape(3, 8, 10)
    path = tmp_path / "stack.mrc"
    write_mrc(path, data, "ZYX", pixel_size={"X": 0.08, "Y": 0.08, "Z": 0.2})
    assert get_reader(str(tmp_path / "image.tif")) is None
    reader = get_reader(str(path))
    [(array, kwargs, kind)] = reader(str(path))
    assert kind == "image" and array.shape == (3, 8, 10)
    assert kwargs["scale"] == pytest.approx((0.2, 0.08, 0.08))
    assert kwargs["units"] == ("micrometer",) * 3 and kwargs["axis_labels"] == ("Z", "Y", "X")


def test_reader_layers_open_in_napari(viewer, tmp_path):
    from microrestore.io.mrc import write_mrc

    path = tmp_path / "plane.mrc"
    write_mrc(path, np.ones((8, 10), np.float32), "YX", pixel_size={"X": 0.1, "Y": 0.1})
    [layer] = viewer.open(str(path), plugin="microrestore") if _plugin_installed() else _open_direct(viewer, path)
    assert layer.data.shape == (8, 10)
    np.testing.assert_allclose(layer.scale, (0.1, 0.1))


def _plugin_installed() -> bool:
    from importlib.metadata import entry_points

    return any(ep.name == "microrestore" for ep in entry_points(group="napari.manifest"))


def _open_direct(viewer, path):
    from microrestore.napari.reader import read_layers

    return [viewer.add_image(data, **kwargs) for data, kwargs, _ in read_layers(str(path))]


def test_reader_ome_zarr(tmp_path):
    pytest.importorskip("zarr")
    from microrestore.io import write_image
    from microrestore.napari.reader import get_reader

    path = write_image(tmp_path / "img.ome.zarr", np.ones((2, 8, 8), np.uint16), "ZYX", pixel_size={"X": 0.1, "Y": 0.1})
    [(array, kwargs, _)] = get_reader(str(path))(str(path))
    assert array.shape == (2, 8, 8) and kwargs["name"] == "img"
    assert kwargs["scale"][1:] == pytest.approx((0.1, 0.1))


def test_demo_sample():
    from microrestore.napari.samples import demo_sample

    (clean, clean_kw, _), (noisy, noisy_kw, _) = demo_sample()
    assert noisy.shape == clean.shape == (384, 384) and noisy.dtype == np.uint16
    assert noisy_kw["name"] == "demo noisy" and clean_kw["visible"] is False


def test_cancel_stops_a_comparison(qtbot, viewer):
    """Cancel while the first method is assessed: the comparison stops before the next one; no layer, no table."""
    from microrestore.napari.widgets import AssessWidget

    viewer.add_image(camera_field(), name="noisy")
    widget = AssessWidget(viewer)
    qtbot.addWidget(widget)
    widget.choose_compare("noisy", ["nl-means", "care"])
    widget.device_box.setCurrentText("cpu")
    widget._bridge.progress.connect(lambda done, total: widget.cancel())  # cancel at the first method
    run_job(qtbot, widget)
    assert widget.messages[-1] == ("info", "cancelled")
    assert [layer.name for layer in viewer.layers] == ["noisy"]
    assert widget.table.rowCount() == 0 and widget.comparison is None
