"""Fixtures of the napari plugin tests: a real, hidden napari viewer on the offscreen Qt platform.

Every test here is skipped when napari (the ``napari`` extra) or pytest-qt is not installed.
"""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("napari", reason="the napari extra is not installed")
pytest.importorskip("pytestqt", reason="pytest-qt is not installed")


@pytest.fixture
def viewer(make_napari_viewer):
    """A hidden napari viewer (closed after the test by napari's own fixture)."""
    return make_napari_viewer(show=False)


def run_job(qtbot, widget, timeout: int = 120_000) -> None:
    """Start the widget's job and wait until it finished (its result shown, or its error)."""
    widget.start()
    # The widget's Cancel button is enabled exactly while its job runs (it is re-enabled by the result's handler).
    qtbot.waitUntil(lambda: not widget.cancel_button.isEnabled(), timeout=timeout)
