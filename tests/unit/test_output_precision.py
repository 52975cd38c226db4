"""``--dtype auto`` (the default): restored images are never posterised; the input's dtype only where lossless."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile

from microrestore import api
from microrestore.engine.outputs import OutputSink
from microrestore.io import ImageData, integer_valued, read_image, working_dtype
from microrestore.plugins import PredictOptions

NOISE = {"gain": 1.0, "read_noise": 1.0, "offset": 100.0}  # small images: too small to estimate it


@pytest.mark.parametrize(
    ("source", "requested", "expected", "narrow"),
    [
        ("uint16", "auto", "float32", True),
        ("uint8", "AUTO", "float32", True),
        ("int16", "auto", "float32", True),
        ("bool", "auto", "float32", False),
        ("float16", "auto", "float32", False),
        ("float32", "auto", "float32", False),
        ("float64", "auto", "float64", False),
        ("uint16", "same", "uint16", False),
        ("uint16", None, "uint16", False),
        ("float16", "same", "float32", False),
        ("uint8", "float64", "float64", False),
    ],
)
def test_working_dtype(source: str, requested: str | None, expected: str, narrow: bool) -> None:
    assert working_dtype(np.dtype(source), requested) == (np.dtype(expected), narrow)


def test_integer_valued_allows_rounding_error_only() -> None:
    assert integer_valued(np.array([0.0, 1.0004, 65535.0 + 0.02, 7.9996], np.float64), np.uint16)
    assert not integer_valued(np.array([0.0, 1.01]), np.uint16)  # a hundredth of a count would be lost
    assert not integer_valued(np.array([0.0, 2.5]), np.uint16)
    assert not integer_valued(np.array([-1.0, 2.0]), np.uint16)  # does not fit
    assert not integer_valued(np.array([65536.0]), np.uint16)
    assert not integer_valued(np.array([np.nan]), np.uint16)
    assert integer_valued(np.array([-1.0, 2.0]), np.int16)
    assert integer_valued(np.array([3, 4], np.int32), np.uint8)


class _Writes:
    """A predictor that writes a fixed function of the input into the sink, block by block."""

    def __init__(self, function: Any) -> None:
        self.function = function

    def predict(self, image: ImageData, out: Any = None) -> Any:
        data = np.asarray(image.data, np.float32)
        half = data.shape[0] // 2
        out[:half] = self.function(data[:half])
        out[half:] = self.function(data[half:])
        return out


def _restore(tmp_path: Path, function: Any, dtype: str = "auto", name: str = "out.tif") -> tuple[Any, np.ndarray]:
    image = ImageData((np.arange(40 * 30).reshape(40, 30) % 200 + 100).astype(np.uint16), "YX")
    result = api._restore_one(_Writes(function), image, tmp_path / name, dtype, None)
    return result, tifffile.imread(tmp_path / name)


def test_auto_keeps_an_integer_dtype_only_when_every_value_is_an_integer(tmp_path: Path) -> None:
    result, out = _restore(tmp_path, lambda x: 2 * x - 100 + 1e-4)  # integers, up to float rounding
    assert out.dtype == np.uint16 and result.dtype == "uint16"
    np.testing.assert_array_equal(out[:2, :3], [[100, 102, 104], [160, 162, 164]])
    result, out = _restore(tmp_path, lambda x: x / 3, name="third.tif")  # fractions: float32, nothing rounded
    assert out.dtype == np.float32 and result.dtype == "float32"
    image = (np.arange(40 * 30).reshape(40, 30) % 200 + 100).astype(np.float32)
    np.testing.assert_allclose(out, image / 3, rtol=1e-6)
    _, out = _restore(tmp_path, lambda x: x - 200, name="negative.tif")  # integers that do not fit uint16
    assert out.dtype == np.float32 and out.min() < 0
    _, out = _restore(tmp_path, lambda x: x / 3, dtype="same", name="same.tif")  # the old behaviour
    assert out.dtype == np.uint16


def test_sink_stops_checking_after_the_first_fractional_block() -> None:
    sink = OutputSink(np.empty((2, 3), np.float32), np.dtype(np.uint16))
    sink[0] = np.array([1.0, 2.0, 3.0])
    assert sink.integral
    sink[1] = np.array([1.5, 2.0, 3.0])
    assert not sink.integral
    sink[0] = np.array([1.0, 2.0, 3.0])
    assert not sink.integral
    assert not OutputSink(np.empty(3, np.float32)).integral  # nothing tracked without integers_of


def test_low_count_restoration_is_not_posterised_by_default(tmp_path: Path) -> None:
    # A low-count image: rounding nl-means' output to whole counts would leave few grey levels.
    rng = np.random.default_rng(0)
    clean = 100 + 4 * (np.add.outer(np.sin(np.arange(64) / 5), np.cos(np.arange(64) / 7)) + 2)
    noisy = rng.poisson(clean).astype(np.uint16)
    tifffile.imwrite(tmp_path / "in.tif", noisy)
    options = PredictOptions(params=dict(NOISE))
    (result,) = api.restore_files([tmp_path / "in.tif"], tmp_path / "auto.tif", method="nl-means", options=options)
    auto = read_image(tmp_path / "auto.tif").data
    assert result.dtype == "float32" and auto.dtype == np.float32
    api.restore_files([tmp_path / "in.tif"], tmp_path / "same.tif", method="nl-means", options=options, dtype="same")
    same = read_image(tmp_path / "same.tif").data
    assert same.dtype == np.uint16
    assert len(np.unique(auto)) > 10 * len(np.unique(same))
    np.testing.assert_array_equal(same, np.rint(auto).astype(np.uint16))
    # The in-memory API follows the same rule with dtype="auto"; float inputs keep their type.
    image = read_image(tmp_path / "in.tif")
    np.testing.assert_array_equal(api.restore(image, "nl-means", dtype="auto", **NOISE), auto)
    as_float = ImageData(noisy.astype(np.float64), "YX")
    assert api.restore(as_float, "nl-means", dtype="auto", **NOISE).dtype == np.float64
