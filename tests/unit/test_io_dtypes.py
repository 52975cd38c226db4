from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from microrestore.errors import InputError
from microrestore.io.dtypes import dtype_range, iter_blocks, out_of_range_message, parse_dtype, to_dtype


@pytest.mark.parametrize("name", ["uint8", "UINT16", " float32 ", "int16", "float64"])
def test_parse_dtype(name):
    assert parse_dtype(name) == np.dtype(name.strip().lower())


def test_parse_dtype_same_and_none():
    assert parse_dtype("same") is None
    assert parse_dtype("Same") is None
    assert parse_dtype(None) is None


@pytest.mark.parametrize("name", ["uint12", "double", "", "object", "complex64"])
def test_parse_dtype_rejects(name):
    with pytest.raises(InputError, match="unknown --dtype"):
        parse_dtype(name)


def test_float_to_uint16_rounds_counts_and_clips():
    values = np.array([-3.0, 0.4, 0.6, 2.5, 65535.4, 65535.6, 70000.0, np.nan, np.inf, -np.inf], np.float32)
    out, count = to_dtype(values, np.uint16)
    assert out.dtype == np.uint16
    assert count == 6  # -3, 65535.6 (rounds to 65536), 70000, NaN, +inf, -inf
    np.testing.assert_array_equal(out, [0, 0, 1, 2, 65535, 65535, 65535, 0, 65535, 0])


def test_rounding_to_nearest_not_truncation():
    out, count = to_dtype(np.array([1.49, 1.51, 2.99], np.float64), "uint8")
    assert count == 0
    np.testing.assert_array_equal(out, [1, 2, 3])


def test_same_dtype_returns_input_without_copy():
    data = np.arange(6, dtype=np.float32)
    out, count = to_dtype(data, np.float32)
    assert out is data and count == 0


def test_integer_narrowing_counts():
    out, count = to_dtype(np.array([-5, 0, 300, 255], np.int32), np.uint8)
    assert count == 2
    np.testing.assert_array_equal(out, [0, 0, 255, 255])
    out, count = to_dtype(np.array([0, 40000, 65535], np.uint16), np.int16)
    assert count == 2
    np.testing.assert_array_equal(out, [0, 32767, 32767])


def test_integer_widening_counts_nothing():
    out, count = to_dtype(np.array([0, 255], np.uint8), np.float32)
    assert count == 0 and out.dtype == np.float32


def test_float64_to_float32_counts_finite_overflow_only():
    out, count = to_dtype(np.array([1e300, -1e300, np.inf, np.nan, 1.0]), np.float32)
    assert count == 2
    assert out[0] == np.finfo(np.float32).max and out[1] == np.finfo(np.float32).min
    assert np.isinf(out[2]) and np.isnan(out[3]) and out[4] == 1


def test_complex_to_real_refused():
    with pytest.raises(InputError, match="complex"):
        to_dtype(np.ones(3, np.complex64), np.float32)


def test_into_out_array_chunked_and_memmap(tmp_path):
    data = np.linspace(-10, 300, 7 * 11 * 13).reshape(7, 11, 13)
    out = np.lib.format.open_memmap(tmp_path / "o.npy", mode="w+", dtype=np.uint8, shape=data.shape)
    result, count = to_dtype(data, np.uint8, out=out, max_elements=50)
    assert result is out
    expected = np.clip(np.rint(data), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(out, expected)
    assert count == int(np.count_nonzero((np.rint(data) < 0) | (np.rint(data) > 255)))


def test_out_with_wrong_shape():
    with pytest.raises(ValueError, match="out has shape"):
        to_dtype(np.zeros((2, 2)), np.uint8, out=np.zeros((3,), np.uint8))


def test_zero_dim_array():
    out, count = to_dtype(np.array(300.0), np.uint8)
    assert out.shape == () and int(out) == 255 and count == 1


def test_message():
    assert out_of_range_message(3, np.uint16) == (
        "3 pixels outside the uint16 range [0, 65535] were clipped; use --dtype float32 to keep them"
    )
    assert dtype_range("int8") == (-128, 127)


@settings(max_examples=60, deadline=None)
@given(
    shape=hnp.array_shapes(min_dims=1, max_dims=4, max_side=9),
    limit=st.integers(min_value=1, max_value=200),
)
def test_iter_blocks_cover_every_element_once(shape, limit):
    seen = np.zeros(shape, np.int32)
    for index in iter_blocks(shape, limit):
        block = seen[index]
        assert np.size(block) <= max(limit, shape[-1])
        seen[index] += 1
    assert (seen == 1).all()


@settings(max_examples=60, deadline=None)
@given(
    data=hnp.arrays(
        np.float64,
        hnp.array_shapes(max_dims=3, max_side=6),
        elements=st.floats(-1e6, 1e6) | st.sampled_from([np.nan, np.inf, -np.inf, 0.5, 255.5, -0.5]),
    ),
    target=st.sampled_from(["uint8", "uint16", "int16", "int8"]),
)
def test_to_dtype_matches_reference(data, target):
    out, count = to_dtype(data, target, max_elements=7)
    low, high = dtype_range(target)
    rounded = np.rint(data)
    bad = np.isnan(rounded) | (rounded < low) | (rounded > high)
    assert count == int(bad.sum())
    reference = np.clip(np.where(np.isnan(rounded), 0, rounded), low, high).astype(target)
    np.testing.assert_array_equal(out, reference)
