from __future__ import annotations

import numpy as np
import pytest

from microrestore.errors import InputError
from microrestore.io.axes import (
    default_axes,
    fits_imagej_order,
    normalize_axes,
    squeeze_axes,
    transpose_from,
    transpose_to,
)


def test_normalize_upper_cases_and_checks_length():
    assert normalize_axes(" zyx ", (3, 4, 5)) == "ZYX"
    assert normalize_axes("TcZyX") == "TCZYX"


def test_normalize_length_mismatch_message():
    with pytest.raises(InputError) as info:
        normalize_axes("ZYX", (512, 512))
    assert str(info.value) == "axes 'ZYX' given but the image has 2 dimensions (512, 512)"


def test_normalize_accepts_ndim():
    assert normalize_axes("tyx", 3) == "TYX"
    with pytest.raises(InputError, match=r"has 2 dimensions$"):
        normalize_axes("TYX", 2)


def test_normalize_names_the_file():
    with pytest.raises(InputError, match=r"^img\.tif: axes 'ZYX' given") as info:
        normalize_axes("zyx", (4, 4), path="img.tif")
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    ("axes", "pattern"),
    [
        ("QYX", r"unknown letter 'Q'.*TCZYXS"),
        ("IYX", r"unknown letter 'I'"),
        ("YYX", r"repeat 'Y'"),
        ("", r"empty"),
        ("ZY", r"must include Y and X"),
    ],
)
def test_normalize_rejects(axes, pattern):
    with pytest.raises(InputError, match=pattern) as info:
        normalize_axes(axes)
    assert "\n" not in str(info.value)


def test_normalize_rejects_non_string():
    with pytest.raises(InputError, match="must be a string"):
        normalize_axes(3)  # type: ignore[arg-type]


def test_default_axes():
    assert default_axes(2) == "YX"
    assert default_axes(3) is None


@pytest.mark.parametrize(
    ("axes", "fits"),
    [("YX", True), ("TZCYX", True), ("ZCYX", True), ("CZYX", False), ("YXS", False), ("XY", False)],
)
def test_fits_imagej_order(axes, fits):
    assert fits_imagej_order(axes) is fits


def test_transpose_to_reorders_and_inserts_singletons_as_view():
    data = np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)  # Z C Y X
    out = transpose_to(data, "ZCYX", "TCZYX")
    assert out.shape == (1, 3, 2, 4, 5)
    assert np.shares_memory(out, data)
    np.testing.assert_array_equal(out[0, 1, 0], data[0, 1])
    back = transpose_from(out, "TCZYX", "ZCYX")
    assert back.shape == data.shape
    np.testing.assert_array_equal(back, data)
    assert np.shares_memory(back, data)


def test_transpose_to_drops_singletons_and_refuses_real_axes():
    data = np.zeros((1, 4, 5))
    assert transpose_to(data, "TYX", "YX").shape == (4, 5)
    with pytest.raises(InputError, match="T axis has 3 elements"):
        transpose_to(np.zeros((3, 4, 5)), "TYX", "ZYX")


def test_transpose_to_identity_is_same_array():
    data = np.zeros((4, 5))
    assert transpose_to(data, "YX", "YX").base is data or transpose_to(data, "YX", "YX") is data


def test_squeeze_axes_keeps_spatial():
    data = np.zeros((1, 1, 1, 4, 5))
    out, axes = squeeze_axes(data, "TCZYX")
    assert axes == "ZYX"
    assert out.shape == (1, 4, 5)
    out, axes = squeeze_axes(np.zeros((2, 1, 4, 5)), "TCYX", keep="YX")
    assert (axes, out.shape) == ("TYX", (2, 4, 5))
