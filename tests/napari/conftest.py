"""Fixtures of the napari plugin tests: a real, hidden napari viewer on the offscreen Qt platform.

Every test here is skipped when napari or pytest-qt is not installed (the ``napari-test`` extra), or, on Linux,
when there is no X display for OpenGL (run them under ``xvfb-run -a``). CI sets ``MICRORESTORE_REQUIRE_NAPARI=1``:
then a missing package or display fails the run instead of skipping.
"""

from __future__ import annotations

import importlib.util
import os
import sys

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def _missing() -> str | None:
    for module, what in (("napari", "napari (the napari extra)"), ("pytestqt", "pytest-qt")):
        if importlib.util.find_spec(module) is None:
            return f"{what} is not installed: pip install -e '.[napari-test]'"
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display for napari's OpenGL canvas: run the tests under xvfb-run -a"
    return None


_reason = _missing()
if _reason is not None and os.environ.get("MICRORESTORE_REQUIRE_NAPARI") == "1":
    raise RuntimeError(f"the napari plugin tests cannot run: {_reason}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip this folder's tests, naming why, when napari, pytest-qt or a display is missing."""
    if _reason is None:
        return
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.path).startswith(here):
            item.add_marker(pytest.mark.skip(reason=_reason))


@pytest.fixture
def viewer(request):
    """A hidden napari viewer (closed after the test by napari's own fixture ``make_napari_viewer``)."""
    return request.getfixturevalue("make_napari_viewer")(show=False)


def run_job(qtbot, widget, timeout: int = 120_000) -> None:
    """Start the widget's job and wait until it finished (its result shown, or its error)."""
    widget.start()
    # The widget's Cancel button is enabled exactly while its job runs (it is re-enabled by the result's handler).
    qtbot.waitUntil(lambda: not widget.cancel_button.isEnabled(), timeout=timeout)


def camera_field(size: int = 64, seed: int = 3):
    """A small simulated noisy Poisson-Gaussian field (what the ground-truth-free assessment models)."""
    import numpy as np
    from scipy.ndimage import gaussian_filter

    from microrestore.simulation import CameraModel, apply_camera, nuclei, tubules

    rng = np.random.default_rng(seed)
    density = gaussian_filter(0.6 * tubules((size, size), rng) + 0.4 * nuclei((size, size), rng), 1.2)
    camera = CameraModel(photons=20.0, offset=100.0, gain=1.0, read_noise=1.5)
    return apply_camera(density, camera, rng).astype(np.float32)
