"""The screenshots of docs/napari.md, taken from a real napari window.

Qt's xcb platform on Xvfb: the offscreen platform leaves the GL canvas black in window grabs.

Each widget is docked, runs its job on the bundled demo sample (or the simulated SIM stack) and the whole
window is saved to ``docs/figures/napari_<widget>.png``::

    xvfb-run -a -s "-screen 0 1600x1000x24" python scripts/napari_screenshots.py [restore self_supervised ...]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "xcb")  # under Xvfb: the GL canvas is in the window grab

import napari
from qtpy.QtWidgets import QApplication, QTableWidget

FIGURES = Path(__file__).resolve().parents[1] / "docs" / "figures"


def _wait(widget: Any, timeout: float = 900.0) -> None:
    start = time.monotonic()
    while widget.cancel_button.isEnabled():
        QApplication.processEvents()
        time.sleep(0.05)
        if time.monotonic() - start > timeout:
            raise TimeoutError(type(widget).__name__)
    for _ in range(20):
        QApplication.processEvents()
        time.sleep(0.02)
    errors = [text for level, text in widget.messages if level == "error"]
    if errors:
        raise RuntimeError(errors[-1])


def _viewer(name: str, samples: list[tuple[Any, dict[str, Any], str]]) -> napari.Viewer:
    viewer = napari.Viewer(title=f"microrestore - {name}", show=True)
    viewer.window.resize(1500, 950)
    for data, kwargs, _ in samples:
        viewer.add_image(data, **kwargs)
    return viewer


def _shot(viewer: napari.Viewer, widget: Any, name: str) -> None:
    from napari._qt.dialogs.qt_notification import NapariQtNotification

    for table in widget.findChildren(QTableWidget):
        table.resizeColumnsToContents()
    QApplication.processEvents()
    for toast in viewer.window._qt_window.findChildren(NapariQtNotification):
        toast.close()
    for _ in range(20):
        QApplication.processEvents()
        time.sleep(0.02)
    viewer.reset_view()
    path = FIGURES / f"napari_{name}.png"
    viewer.screenshot(str(path), canvas_only=False)
    print("wrote", path)
    viewer.close()


def main() -> None:
    """Take the six screenshots."""
    from microrestore.napari import widgets
    from microrestore.napari.samples import demo_sample, sim_sample

    FIGURES.mkdir(parents=True, exist_ok=True)
    wanted = set(sys.argv[1:]) or {"restore", "self_supervised", "train", "assess", "compare", "sim"}

    if "restore" in wanted:
        _restore(widgets, demo_sample())
    crop = [(data[128:320, 128:320], kwargs, kind) for data, kwargs, kind in demo_sample()]
    if "self_supervised" in wanted:
        _self_supervised(widgets, crop)
    if "train" in wanted:
        _train(widgets, crop)
    if "assess" in wanted:
        _assess(widgets, demo_sample())
    if "compare" in wanted:
        _compare(widgets, crop)
    if "sim" in wanted:
        _sim(widgets, sim_sample())


def _restore(widgets: Any, samples: list[Any]) -> None:
    viewer = _viewer("Restore", samples)
    widget = widgets.RestoreWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Restore", area="right")
    widget.layer_box.select("demo noisy")
    widget.method_box.setCurrentText("care")
    widget.start()
    _wait(widget)
    viewer.layers["demo noisy"].visible = False
    _shot(viewer, widget, "restore")


def _self_supervised(widgets: Any, crop: list[Any]) -> None:
    viewer = _viewer("Self-supervised", crop)
    widget = widgets.SelfSupervisedWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Self-supervised denoise", area="right")
    widget.layer_box.select("demo noisy")
    widget.method_box.setCurrentText("n2v")
    widget.steps.setValue(100)
    widget.seconds.setValue(0)  # no limit: the 100 steps
    widget.start()
    _wait(widget)
    viewer.layers["demo noisy"].visible = False
    _shot(viewer, widget, "self_supervised")


def _train(widgets: Any, crop: list[Any]) -> None:
    viewer = _viewer("Train", crop)
    widget = widgets.TrainWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Train", area="right")
    widget.method_box.setCurrentText("care")
    widget.source_layer.select("demo noisy")
    widget.target_layer.select("demo clean")
    tmp = tempfile.mkdtemp(prefix="microrestore-shot-")
    widget.output.setText(f"{tmp}/care-model")
    widget.steps.setValue(100)
    for key, value in (("base_filters", "16"), ("batch_size", "4"), ("patch_size", "48")):
        widget.set_option(key, value)
    widget.start()
    _wait(widget)
    _shot(viewer, widget, "train")


def _assess(widgets: Any, samples: list[Any]) -> None:
    viewer = _viewer("Assess", samples)
    restore = widgets.RestoreWidget(viewer)
    for method in ("care", "nl-means"):
        restore.layer_box.select("demo noisy")
        restore.method_box.setCurrentText(method)
        restore.start()
        _wait(restore)
    widget = widgets.AssessWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Assess", area="right")
    widget.choose(["demo noisy", "demo noisy [care]", "demo noisy [nl-means]"], "demo clean")
    widget.start()
    _wait(widget)
    for layer in viewer.layers:
        layer.visible = layer.name == "demo noisy [care]"
    _shot(viewer, widget, "assess")


def _compare(widgets: Any, crop: list[Any]) -> None:
    viewer = _viewer("Compare", crop)
    widget = widgets.AssessWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Assess and compare", area="right")
    widget.choose_compare("demo noisy", ["nl-means", "care"])
    widget.start()
    _wait(widget)
    best = widget.comparison.ranking.best
    for layer in viewer.layers:
        layer.visible = layer.name == f"demo noisy [{best}]"
    _shot(viewer, widget, "compare")


def _sim(widgets: Any, samples: list[Any]) -> None:
    viewer = _viewer("SIM reconstruct", samples)
    widget = widgets.SIMWidget(viewer)
    viewer.window.add_dock_widget(widget, name="SIM reconstruct", area="right")
    widget.layer_box.select("SIM raw")
    widget.start()
    _wait(widget)
    viewer.layers["SIM raw"].visible = False
    _shot(viewer, widget, "sim")


if __name__ == "__main__":
    main()
