from __future__ import annotations

import io
import sys

import numpy as np
import pytest

from microrestore.errors import InputError
from microrestore.io import read_image, write_image
from microrestore.io.lazy import LazyArray
from microrestore.io.mrc import read_mrc_header

mrcfile = pytest.importorskip("mrcfile")


def _write_mrcfile(path, data, voxel_size=(626.0, 626.0, 1600.0)):
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(data)
        mrc.voxel_size = voxel_size
    return path


@pytest.fixture(params=["mrcfile", "fallback"])
def reader(request, monkeypatch):
    if request.param == "fallback":
        monkeypatch.setitem(sys.modules, "mrcfile", None)
        monkeypatch.setitem(sys.modules, "mrcfile.utils", None)
    return request.param


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.float32, np.uint16, np.complex64, np.float16])
def test_read_mrcfile_written(tmp_path, dtype):
    data = (np.arange(3 * 5 * 7).reshape(3, 5, 7) % 100).astype(dtype)
    path = _write_mrcfile(tmp_path / "s.mrc", data)
    for mode in ("mrcfile", "fallback"):
        with pytest.MonkeyPatch.context() as mp:
            if mode == "fallback":
                mp.setitem(sys.modules, "mrcfile", None)
                mp.setitem(sys.modules, "mrcfile.utils", None)
            image = read_image(path)
        assert image.axes == "ZYX"
        assert image.dtype == dtype
        np.testing.assert_array_equal(image.data, data)
        assert image.pixel_size == {"X": 0.0626, "Y": 0.0626, "Z": 0.16}
        assert image.metadata["format"] == "mrc"


def test_user_axes_and_memmap(tmp_path, reader):
    data = np.arange(2 * 4 * 6, dtype=np.uint16).reshape(2, 4, 6)
    path = _write_mrcfile(tmp_path / "s.st", data)
    image = read_image(path, axes="tyx", memmap=True)
    assert image.axes == "TYX"
    assert isinstance(image.data, LazyArray)  # read on indexing
    assert image.pixel_size == {"X": 0.0626, "Y": 0.0626}
    np.testing.assert_array_equal(image.data, data)
    with pytest.raises(InputError, match="axes 'YX' given but the image has 3 dimensions"):
        read_image(path, axes="YX")


def test_2d_and_complex_otf(tmp_path, reader):
    otf = (np.arange(257) * (1 + 1j)).astype(np.complex64)[None, :]
    path = _write_mrcfile(tmp_path / "otf.mrc", otf, voxel_size=(312.0, 312.0, 500.0))
    image = read_image(path)
    assert (image.axes, image.dtype, image.shape) == ("YX", np.complex64, (1, 257))
    np.testing.assert_array_equal(image.data, otf)


def test_truncated(tmp_path, reader):
    path = _write_mrcfile(tmp_path / "t.mrc", np.zeros((4, 16, 16), np.float32))
    raw = path.read_bytes()
    path.write_bytes(raw[:-100])
    with pytest.raises(InputError, match=rf"truncated: expected {len(raw)} bytes, found {len(raw) - 100}"):
        read_image(path)
    path.write_bytes(raw[:500])
    with pytest.raises(InputError, match="header truncated"):
        read_image(path)


def test_random_bytes(tmp_path, reader):
    path = tmp_path / "r.mrc"
    path.write_bytes(np.random.default_rng(3).bytes(4096))
    with pytest.raises(InputError, match=r"not a readable MRC|truncated|too large|empty image"):
        read_image(path)


def test_unsupported_mode(tmp_path, reader):
    path = _write_mrcfile(tmp_path / "m.mrc", np.zeros((4, 4), np.float32))
    raw = bytearray(path.read_bytes())
    raw[12:16] = np.int32(3).tobytes()
    path.write_bytes(bytes(raw))
    with pytest.raises(InputError, match="not a readable MRC"):
        read_image(path)


def test_legacy_header_without_map_id(tmp_path, reader):
    """SIM software writes headers without 'MAP ' and keeps the pixel size in micrometres."""
    data = np.arange(3 * 8 * 8, dtype=np.uint16).reshape(3, 8, 8)
    header = np.zeros(256, "<i4")
    header[0:4] = (8, 8, 3, 6)
    header[7:10] = (1, 1, 1)
    header.view("<f4")[10:13] = (0.0626, 0.0626, 0.16)
    (tmp_path / "old.mrc").write_bytes(header.tobytes() + data.tobytes())
    image = read_image(tmp_path / "old.mrc")
    assert image.pixel_size == {"X": 0.0626, "Y": 0.0626, "Z": 0.16}
    np.testing.assert_array_equal(image.data, data)


def test_big_endian(tmp_path, reader):
    data = np.arange(12, dtype=">f4").reshape(3, 4)
    with mrcfile.new(tmp_path / "be.mrc", overwrite=True) as mrc:
        mrc.set_data(data)
    image = read_image(tmp_path / "be.mrc")
    np.testing.assert_array_equal(image.data, data.astype(np.float32))


def test_write_round_trip_valid_mrc(tmp_path):
    data = np.arange(3 * 5 * 7, dtype=np.float32).reshape(3, 5, 7)
    write_image(tmp_path / "o.mrc", data, "ZYX", pixel_size={"X": 0.1, "Y": 0.1, "Z": 0.3})
    report = io.StringIO()
    assert mrcfile.validate(str(tmp_path / "o.mrc"), print_file=report), report.getvalue()
    with mrcfile.open(tmp_path / "o.mrc") as mrc:
        np.testing.assert_array_equal(mrc.data, data)
        assert mrc.voxel_size.x == pytest.approx(1000.0)
    image = read_image(tmp_path / "o.mrc")
    assert image.pixel_size == {"X": 0.1, "Y": 0.1, "Z": 0.3}
    np.testing.assert_array_equal(image.data, data)


def test_write_refuses_types_mrc_cannot_hold(tmp_path):
    with pytest.raises(InputError, match="MRC files cannot hold uint8"):
        write_image(tmp_path / "o.mrc", np.zeros((4, 4), np.uint8), "YX")
    with pytest.raises(InputError, match="2D or 3D"):
        write_image(tmp_path / "o.mrc", np.zeros((2, 2, 4, 4), np.float32), "TZYX")
    assert list(tmp_path.iterdir()) == []


def test_header_helper(tmp_path):
    path = _write_mrcfile(tmp_path / "h.mrc", np.zeros((2, 3, 4), np.int16))
    header = read_mrc_header(path)
    assert header.shape == (2, 3, 4) and header.mode == 1 and header.standard
