"""RawFileArray: reading and writing raw arrays with pread/pwrite gives exactly what numpy indexing gives."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from microrestore.errors import InputError
from microrestore.io.rawfile import RawFileArray

SHAPE = (3, 5, 7, 6)


def _item(n: int) -> st.SearchStrategy:
    index = st.integers(-n, n - 1)
    bound = st.none() | st.integers(-n - 2, n + 2)
    step = st.none() | st.sampled_from([1, 2, 3, -1, -2])
    return index | st.builds(slice, bound, bound, step)


_INDEX = st.integers(0, len(SHAPE)).flatmap(lambda k: st.tuples(*[_item(n) for n in SHAPE[:k]]))


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    data = np.random.default_rng(0).integers(0, 60000, SHAPE).astype(">u2")  # the file's byte order is kept
    path = tmp_path_factory.mktemp("raw") / "raw.bin"
    path.write_bytes(b"header!" + data.tobytes())
    return path, data


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(index=_INDEX)
def test_reads_equal_numpy_indexing(stored: tuple[Path, np.ndarray], index: tuple) -> None:
    path, data = stored
    got = RawFileArray(path, data.dtype, SHAPE, offset=7)[index]
    expected = np.asarray(data[index], dtype=data.dtype)  # a 0-d result keeps the byte order too
    assert got.shape == expected.shape and got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


@settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(indices=st.lists(_INDEX, min_size=1, max_size=5))
def test_writes_equal_numpy_assignment(tmp_path: Path, indices: list[tuple]) -> None:
    path = tmp_path / "w.bin"
    path.write_bytes(bytes(7 + 2 * int(np.prod(SHAPE))))
    array = RawFileArray(path, np.uint16, SHAPE, offset=7, writable=True)
    expected = np.zeros(SHAPE, np.uint16)
    for n, index in enumerate(indices):
        block = (np.arange(expected[index].size).reshape(expected[index].shape) + 100 * n).astype(np.uint16)
        expected[index] = block
        array[index] = block
    array[0, 0, 0, 0] = 7  # scalars broadcast
    expected[0, 0, 0, 0] = 7
    np.testing.assert_array_equal(array[...], expected)
    np.testing.assert_array_equal(np.asarray(array), expected)
    array.close()


def test_read_only_pickles_and_names_the_user_file(stored: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    path, data = stored
    array = RawFileArray(path, data.dtype, SHAPE, offset=7, name="shown.tif")
    with pytest.raises(ValueError, match="read-only"):
        array[0] = 1
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(array))[2], data[2])  # a worker reopens the file
    short = tmp_path / "short.bin"
    short.write_bytes(path.read_bytes()[:100])
    with pytest.raises(InputError, match=r"^shown\.tif: the file was truncated while in use"):
        RawFileArray(short, data.dtype, SHAPE, offset=7, name="shown.tif")[2]
