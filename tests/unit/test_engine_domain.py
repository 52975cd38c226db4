"""The domain guard: training inputs summarised camera-independently, far-off inputs named in one line."""

from __future__ import annotations

import numpy as np

from microrestore.engine.domain import check, describe, measure
from microrestore.io import ImageData
from microrestore.simulation import CameraModel, apply_camera


def _image(photons: float, offset: float = 100.0, gain: float = 1.0, seed: int = 0) -> np.ndarray:
    yy, xx = np.mgrid[:96, :96]
    density = 0.05 + 0.95 * (np.sin(xx / 7.0) ** 2) * (np.cos(yy / 11.0) ** 2)
    return apply_camera(density, CameraModel(photons=photons, offset=offset, gain=gain, background=1.0), seed)


def test_measure_is_camera_independent() -> None:
    a = measure(_image(50, offset=100, gain=1.0))
    b = measure(_image(50, offset=1500, gain=4.0, seed=1))
    assert abs(np.log(a["snr"] / b["snr"])) < 0.2
    assert 30 < a["photons"] < 80 and 30 < b["photons"] < 80


def test_inputs_inside_the_range_pass_and_far_ones_are_named() -> None:
    domain = describe([_image(20), _image(60, seed=2)])
    assert domain["dtypes"] == ["uint16"]
    assert check(domain, _image(40, offset=900, gain=2.5, seed=3), "m") == []
    lines = check(domain, ImageData(_image(2000, seed=4), "YX", path="far.tif"), "m")
    assert len(lines) == 1 and lines[0].startswith("far.tif: ") and "above what model m was trained on" in lines[0]
    assert check(domain, _image(1, seed=5), "m")[0].count("below") == 1


def test_pixel_size_outside_the_range_is_named() -> None:
    domain = describe([ImageData(_image(20), "YX", pixel_size={"X": 0.065, "Y": 0.065})])
    near = ImageData(_image(20, seed=1), "YX", pixel_size={"X": 0.08, "Y": 0.08})
    far = ImageData(_image(20, seed=1), "YX", pixel_size={"X": 0.2, "Y": 0.2})
    assert check(domain, near, "m") == []
    assert "pixel size 200 nm" in check(domain, far, "m")[0]


def test_models_without_a_domain_are_not_checked() -> None:
    assert check(None, _image(5000), "m") == [] and check({}, _image(5000), "m") == []
