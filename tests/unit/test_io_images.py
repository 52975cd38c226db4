from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import microrestore.io.imagedata as imagedata
import microrestore.io.images as images
import microrestore.io.tiff as tiff
from microrestore import formats
from microrestore.errors import InputError
from microrestore.io import ImageData, check_finite, output_memmap, read_image, write_image
from microrestore.io.lazy import LazyArray
from microrestore.io.rawfile import RawFileArray

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def _ramp(shape, dtype):
    data = np.arange(int(np.prod(shape))).reshape(shape) % 251
    return data.astype(dtype)


def _files(folder):
    return sorted(p.name for p in folder.iterdir())


# ------------------------------------------------------------------------------------------ ImageData


def test_image_data_properties():
    image = ImageData(np.zeros((3, 4, 5), np.uint16), "zyx", path="a.tif", pixel_size={"x": 0.1, "Z": 0.3})
    assert image.axes == "ZYX"
    assert image.path == Path("a.tif")
    assert (image.shape, image.dtype, image.ndim) == ((3, 4, 5), np.uint16, 3)
    assert image.pixel_size == {"X": 0.1, "Z": 0.3}
    assert image.spatial_axes(2) == "YX"
    assert image.spatial_axes(3) == "ZYX"
    with pytest.raises(InputError, match="needs axes ZYX"):
        ImageData(np.zeros((3, 4, 5)), "TYX").spatial_axes(3)


def test_image_data_validates_axes():
    with pytest.raises(InputError, match="2 dimensions"):
        ImageData(np.zeros((4, 4)), "ZYX")


# ------------------------------------------------------------------------------------------ round trips


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize(
    ("axes", "shape"),
    [("YX", (6, 7)), ("ZYX", (3, 6, 7)), ("TZCYX", (2, 3, 2, 6, 7)), ("TYX", (1, 6, 7)), ("CZYX", (2, 3, 6, 7))],
)
def test_round_trip(tmp_path, dtype, axes, shape):
    data = _ramp(shape, dtype)
    sizes = {"X": 0.0626, "Y": 0.0626} | ({"Z": 0.3} if "Z" in axes else {})
    path = write_image(tmp_path / "img.tif", data, axes, pixel_size=sizes, metadata={"finterval": 0.5})
    assert path == tmp_path / "img.tif"
    image = read_image(path)
    assert image.axes == axes
    assert image.dtype == dtype
    np.testing.assert_array_equal(image.data, data)
    assert image.pixel_size == sizes
    assert image.metadata["finterval"] == 0.5
    assert _files(tmp_path) == ["img.tif"]


def test_imagej_hyperstack_is_imagej(tmp_path):
    write_image(tmp_path / "h.tif", _ramp((2, 3, 2, 6, 7), np.uint16), "TZCYX", pixel_size={"X": 0.1, "Y": 0.1})
    with tifffile.TiffFile(tmp_path / "h.tif") as tif:
        assert tif.is_imagej
        assert tif.series[0].axes == "TZCYX"
        assert tif.imagej_metadata["unit"] == "micron"


def test_non_imagej_types_and_orders_keep_axes(tmp_path):
    data = _ramp((3, 4, 5), np.int32)
    write_image(tmp_path / "a.tif", data, "YXZ", pixel_size={"X": 0.2, "Y": 0.25, "Z": 1.0}, metadata={"k": [1, 2]})
    image = read_image(tmp_path / "a.tif")
    assert (image.axes, image.dtype) == ("YXZ", np.int32)
    np.testing.assert_array_equal(image.data, data)
    assert image.pixel_size == {"X": 0.2, "Y": 0.25, "Z": 1.0}
    assert image.metadata["k"] == [1, 2]


def test_rgb_round_trip(tmp_path):
    data = _ramp((4, 5, 3), np.uint8)
    write_image(tmp_path / "rgb.tif", data, "YXS")
    image = read_image(tmp_path / "rgb.tif")
    assert image.axes == "YXS"
    np.testing.assert_array_equal(image.data, data)


def test_ome_written_by_tifffile(tmp_path):
    data = _ramp((3, 8, 9), np.uint16)
    tifffile.imwrite(
        tmp_path / "x.ome.tif",
        data,
        metadata={
            "axes": "ZYX",
            "PhysicalSizeX": 65.0,
            "PhysicalSizeXUnit": "nm",
            "PhysicalSizeY": 0.065,
            "PhysicalSizeZ": 0.2,
        },
    )
    image = read_image(tmp_path / "x.ome.tif")
    assert image.axes == "ZYX"
    assert image.metadata["format"] == "ome"
    assert image.pixel_size == {"X": 0.065, "Y": 0.065, "Z": 0.2}
    np.testing.assert_array_equal(image.data, data)


def test_ome_round_trip(tmp_path):
    data = _ramp((2, 3, 8, 9), np.float64)
    write_image(tmp_path / "y.ome.tif", data, "CZYX", pixel_size={"X": 0.1, "Y": 0.1, "Z": 0.5})
    with tifffile.TiffFile(tmp_path / "y.ome.tif") as tif:
        assert tif.is_ome
    image = read_image(tmp_path / "y.ome.tif")
    assert (image.axes, image.dtype) == ("CZYX", np.float64)
    assert image.pixel_size == {"X": 0.1, "Y": 0.1, "Z": 0.5}
    np.testing.assert_array_equal(image.data, data)


def test_ome_singleton_axes_survive(tmp_path):
    data = _ramp((1, 3, 1, 6, 7), np.uint16)
    write_image(tmp_path / "s.ome.tif", data, "TCZYX", pixel_size={"X": 0.1, "Y": 0.1, "Z": 0.2})
    image = read_image(tmp_path / "s.ome.tif")
    assert (image.axes, image.shape) == ("TCZYX", (1, 3, 1, 6, 7))
    assert image.pixel_size == {"X": 0.1, "Y": 0.1, "Z": 0.2}


def test_imagej_micro_sign_unit_escaped(tmp_path):
    # ImageJ writes the unit as the literal text "\u00B5m"
    tifffile.imwrite(
        tmp_path / "ij.tif",
        _ramp((2, 8, 9), np.uint16),
        imagej=True,
        resolution=(9.090909, 9.090909),
        metadata={"axes": "TYX", "unit": "\\u00B5m"},
    )
    image = read_image(tmp_path / "ij.tif")
    assert image.axes == "TYX"
    assert image.pixel_size == {"X": 0.11, "Y": 0.11}


@pytest.mark.parametrize(("unit", "factor"), [("um", 1.0), ("nm", 1e-3), ("micron", 1.0), ("mm", 1e3)])
def test_imagej_units(tmp_path, unit, factor):
    tifffile.imwrite(
        tmp_path / "u.tif",
        np.zeros((2, 4, 4), np.uint8),
        imagej=True,
        resolution=(0.5, 0.5),
        metadata={"axes": "ZYX", "unit": unit, "spacing": 4.0},
    )
    image = read_image(tmp_path / "u.tif")
    assert image.pixel_size == pytest.approx({"X": 2 * factor, "Y": 2 * factor, "Z": 4 * factor})


def test_centimetre_resolution_without_imagej(tmp_path):
    tifffile.imwrite(
        tmp_path / "cm.tif",
        np.zeros((4, 4), np.uint8),
        resolution=(1e5, 1e5),
        resolutionunit="CENTIMETER",
        metadata=None,
    )
    assert read_image(tmp_path / "cm.tif").pixel_size == {"X": 0.1, "Y": 0.1}


def test_bigtiff_read(tmp_path):
    data = _ramp((3, 8, 9), np.uint16)
    tifffile.imwrite(tmp_path / "b.tif", data, bigtiff=True, photometric="minisblack", metadata={"axes": "ZYX"})
    image = read_image(tmp_path / "b.tif")
    assert image.metadata.get("bigtiff") is True
    np.testing.assert_array_equal(image.data, data)


def test_bigtiff_written_over_threshold(tmp_path, monkeypatch):
    monkeypatch.setattr(tiff, "BIGTIFF_THRESHOLD", 100)
    data = _ramp((3, 8, 9), np.uint16)
    write_image(tmp_path / "b.tif", data, "ZYX", pixel_size={"X": 0.1, "Y": 0.1})
    with tifffile.TiffFile(tmp_path / "b.tif") as tif:
        assert tif.is_bigtiff and not tif.is_imagej
    image = read_image(tmp_path / "b.tif")
    assert image.axes == "ZYX" and image.pixel_size == {"X": 0.1, "Y": 0.1}
    np.testing.assert_array_equal(image.data, data)


@pytest.mark.parametrize("compression", ["bogus", "zstd-nope"])
def test_bad_compression(tmp_path, compression):
    with pytest.raises(InputError, match="cannot write with compression"):
        write_image(tmp_path / "c.tif", np.zeros((4, 4), np.uint16), "YX", compression=compression)
    assert _files(tmp_path) == []


def test_compressed_round_trip_is_not_memmapped(tmp_path):
    data = _ramp((3, 16, 16), np.uint16)
    write_image(tmp_path / "c.tif", data, "ZYX", compression="zlib")
    image = read_image(tmp_path / "c.tif", memmap=True)
    assert not isinstance(image.data, np.memmap)
    np.testing.assert_array_equal(image.data, data)


def test_memmap_read(tmp_path):
    data = _ramp((4, 32, 32), np.float32)
    write_image(tmp_path / "m.tif", data, "ZYX")
    image = read_image(tmp_path / "m.tif", memmap=True)
    assert isinstance(image.data, LazyArray) and isinstance(image.data.base, RawFileArray)  # pread, no map
    with pytest.raises(TypeError):
        image.data[0, 0, 0] = 1  # read-only
    np.testing.assert_array_equal(image.data, data)
    np.testing.assert_array_equal(image.data[1:3, 5:9, ::3], data[1:3, 5:9, ::3])
    assert isinstance(read_image(tmp_path / "m.tif").data, np.ndarray)
    assert isinstance(read_image(tmp_path / "m.tif", memmap=False).data, np.ndarray)


def test_memmap_automatic_above_threshold(tmp_path, monkeypatch):
    monkeypatch.setattr(tiff, "MEMMAP_THRESHOLD", 1000)
    write_image(tmp_path / "m.tif", _ramp((4, 32, 32), np.uint16), "ZYX")
    assert isinstance(read_image(tmp_path / "m.tif").data, LazyArray)
    assert isinstance(read_image(tmp_path / "m.tif", memmap=False).data, np.ndarray)


def test_singleton_axes_survive_imagej(tmp_path):
    data = _ramp((1, 3, 1, 6, 7), np.uint16)
    write_image(tmp_path / "s.tif", data, "TZCYX")
    image = read_image(tmp_path / "s.tif", memmap=True)
    assert image.axes == "TZCYX" and image.shape == (1, 3, 1, 6, 7)


# ------------------------------------------------------------------------------------------ axes rules


def test_plain_2d_defaults_to_yx(tmp_path):
    tifffile.imwrite(tmp_path / "p.tif", np.zeros((5, 6), np.uint8), metadata=None)
    assert read_image(tmp_path / "p.tif").axes == "YX"


def test_3d_without_metadata_needs_axes(tmp_path):
    tifffile.imwrite(tmp_path / "p.tif", np.zeros((3, 5, 6), np.uint16), photometric="minisblack", metadata=None)
    with pytest.raises(InputError, match=r"3 dimensions \(3, 5, 6\).*--axes") as info:
        read_image(tmp_path / "p.tif")
    assert str(info.value).startswith(str(tmp_path / "p.tif"))
    image = read_image(tmp_path / "p.tif", axes="tyx")
    assert image.axes == "TYX"


def test_q_placeholder_axes_count_as_no_metadata(tmp_path):
    tifffile.imwrite(tmp_path / "q.tif", np.zeros((3, 5, 6), np.uint16), photometric="minisblack")
    with tifffile.TiffFile(tmp_path / "q.tif") as tif:
        assert tif.series[0].axes[0] in "QI"
    assert read_image(tmp_path / "q.tif", axes="ZYX").axes == "ZYX"


def test_user_axes_must_agree_with_metadata(tmp_path):
    write_image(tmp_path / "t.tif", np.zeros((3, 5, 6), np.uint16), "TYX")
    assert read_image(tmp_path / "t.tif", axes="tyx").axes == "TYX"
    with pytest.raises(InputError, match="axes 'ZYX' given but the file's metadata says 'TYX'"):
        read_image(tmp_path / "t.tif", axes="ZYX")
    with pytest.raises(InputError, match="axes 'ZYXC' given but the image has 3 dimensions"):
        read_image(tmp_path / "t.tif", axes="ZYXC")
    with pytest.raises(InputError, match="unknown letter 'Q'"):
        read_image(tmp_path / "t.tif", axes="QYX")


# ------------------------------------------------------------------------------------------ bad files


def test_missing_and_folder(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_image(tmp_path / "nope.tif")
    with pytest.raises(InputError, match="is a folder"):
        read_image(tmp_path)


@pytest.mark.parametrize("compression", [None, "zlib"])
@pytest.mark.parametrize("imagej", [True, False])
@pytest.mark.parametrize("keep", [0.9, 0.5, 0.02])
def test_truncated_tiff(tmp_path, compression, imagej, keep):
    data = np.random.default_rng(0).integers(0, 4000, (4, 64, 64)).astype(np.uint16)
    tifffile.imwrite(
        tmp_path / "full.tif",
        data,
        imagej=imagej,
        compression=compression,
        photometric="minisblack",
        metadata={"axes": "ZYX"},
    )
    raw = (tmp_path / "full.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(raw[: int(len(raw) * keep)])
    with pytest.raises(InputError) as info:
        read_image(tmp_path / "cut.tif", axes="ZYX" if not imagej else None)
    message = str(info.value)
    assert "\n" not in message
    assert "truncated" in message or "not a readable TIFF" in message


def test_truncated_uncompressed_message(tmp_path):
    tifffile.imwrite(
        tmp_path / "full.tif", np.zeros((4, 64, 64), np.uint16), photometric="minisblack", metadata={"axes": "ZYX"}
    )
    raw = (tmp_path / "full.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(raw[:-1000])
    with pytest.raises(InputError, match=rf"truncated: expected \d+ bytes, found {len(raw) - 1000}$"):
        read_image(tmp_path / "cut.tif", memmap=True)


def test_corrupt_tiff_does_not_spill_tifffile_log(tmp_path, caplog):
    data = np.random.default_rng(0).integers(0, 4000, (4, 64, 64)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "f.tif", data, compression="zlib", photometric="minisblack", metadata={"axes": "ZYX"})
    raw = (tmp_path / "f.tif").read_bytes()
    (tmp_path / "f.tif").write_bytes(raw[: len(raw) // 2])
    with caplog.at_level("DEBUG"), pytest.raises(InputError, match="not a readable TIFF: invalid page offset"):
        read_image(tmp_path / "f.tif")
    assert not [r for r in caplog.records if r.name == "tifffile"]


def test_random_bytes(tmp_path):
    (tmp_path / "r.tif").write_bytes(np.random.default_rng(1).bytes(5000))
    with pytest.raises(InputError, match="not a readable TIFF"):
        read_image(tmp_path / "r.tif")
    (tmp_path / "r2.tif").write_bytes(b"II*\x00" + np.random.default_rng(2).bytes(5000))
    with pytest.raises(InputError, match="not a readable TIFF"):
        read_image(tmp_path / "r2.tif")


def test_empty_file(tmp_path):
    (tmp_path / "e.tif").write_bytes(b"")
    with pytest.raises(InputError, match="empty file"):
        read_image(tmp_path / "e.tif")


@pytest.mark.filterwarnings("ignore:.*zero-size array:UserWarning")
def test_zero_size_dimension(tmp_path):
    tifffile.imwrite(tmp_path / "z.tif", np.zeros((0, 8, 8), np.uint16), metadata={"axes": "ZYX"})
    with pytest.raises(InputError, match=r"z\.tif: empty image \(shape \(0, 8, 8\)\)$"):
        read_image(tmp_path / "z.tif")


def test_zero_size_check_message(tmp_path):
    with pytest.raises(InputError, match=r"empty image \(shape \(0, 512\)\)"):
        imagedata.check_array((0, 512), np.dtype(np.uint8), tmp_path / "x", allow_complex=False)


def test_dimension_bomb_refused(tmp_path):
    with pytest.raises(InputError, match="image too large"):
        imagedata.check_array((2**21, 2**20), np.dtype(np.uint8), tmp_path / "x", allow_complex=False)


def test_complex_tiff_refused(tmp_path):
    tifffile.imwrite(tmp_path / "c.tif", np.ones((4, 4), np.complex64))
    with pytest.raises(InputError, match="complex data"):
        read_image(tmp_path / "c.tif")


def test_unsupported_suffix(tmp_path):
    (tmp_path / "x.bmp").write_bytes(b"BM....")
    with pytest.raises(InputError, match=r"unsupported file type '\.bmp'.*\.png"):
        read_image(tmp_path / "x.bmp")
    (tmp_path / "x.png").write_bytes(b"\x89PNG....")  # PNG is read through Pillow; a broken one is refused
    with pytest.raises(InputError, match=r"x\.png: not a readable PNG/JPEG image"):
        read_image(tmp_path / "x.png")


def test_tiff_with_other_suffix_is_sniffed(tmp_path):
    tifffile.imwrite(tmp_path / "x.dat", np.ones((4, 5), np.uint8))
    (tmp_path / "x.data").write_bytes((tmp_path / "x.dat").read_bytes())
    assert read_image(tmp_path / "x.data").shape == (4, 5)


# ------------------------------------------------------------------------------------------ NaN check


def test_check_finite(tmp_path):
    data = np.ones((5, 8, 8), np.float32)
    check_finite(ImageData(data, "ZYX"))
    data[1, 2, 3] = np.nan
    data[4, 0, 0] = -np.inf
    write_image(tmp_path / "n.tif", data, "ZYX")
    image = read_image(tmp_path / "n.tif", memmap=True)
    with pytest.raises(InputError, match=r"n\.tif: contains 2 NaN/Inf values"):
        check_finite(image)
    check_finite(np.zeros((3, 3), np.uint16))


def test_check_finite_is_chunked(monkeypatch):
    calls = []
    original = images.iter_blocks

    def spy(shape, max_elements=images.iter_blocks.__defaults__[0]):
        for index in original(shape, 64):
            calls.append(index)
            yield index

    monkeypatch.setattr(images, "iter_blocks", spy)
    data = np.zeros((10, 16, 16), np.float32)
    data[9, 15, 15] = np.inf
    with pytest.raises(InputError, match="contains 1 NaN/Inf"):
        check_finite(data)
    assert len(calls) > 10


# ------------------------------------------------------------------------------------------ atomic writes


def test_write_failure_leaves_nothing(tmp_path, monkeypatch):
    real = tifffile.imwrite

    def broken(path, data, **kwargs):
        real(path, data[:1], **{k: v for k, v in kwargs.items() if k not in ("metadata", "imagej")})
        raise RuntimeError("disk full")

    monkeypatch.setattr(images.tifffile, "imwrite", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        write_image(tmp_path / "o.tif", np.zeros((3, 4, 4), np.uint16), "ZYX")
    assert _files(tmp_path) == []


def test_write_failure_keeps_previous_file(tmp_path, monkeypatch):
    write_image(tmp_path / "o.tif", np.ones((4, 4), np.uint8), "YX")
    monkeypatch.setattr(images.tifffile, "imwrite", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        write_image(tmp_path / "o.tif", np.zeros((4, 4), np.uint8), "YX")
    assert _files(tmp_path) == ["o.tif"]
    assert read_image(tmp_path / "o.tif").data.max() == 1


def test_write_unknown_suffix(tmp_path):
    with pytest.raises(InputError, match=r"cannot write '\.png'"):
        write_image(tmp_path / "o.png", np.zeros((4, 4), np.uint8), "YX")


def test_write_checks_axes(tmp_path):
    with pytest.raises(InputError, match="2 dimensions"):
        write_image(tmp_path / "o.tif", np.zeros((4, 4), np.uint8), "ZYX")


def test_write_complex_tiff_refused(tmp_path):
    with pytest.raises(InputError, match="complex"):
        write_image(tmp_path / "o.tif", np.zeros((4, 4), np.complex64), "YX")
    assert _files(tmp_path) == []


def test_output_memmap_success(tmp_path):
    with output_memmap(tmp_path / "o.tif", (1, 3, 8, 9), np.uint16, "TZYX", pixel_size={"X": 0.1, "Y": 0.1}) as out:
        assert isinstance(out, RawFileArray)  # written with pwrite, never through a memory map
        assert out.shape == (1, 3, 8, 9)
        assert not (tmp_path / "o.tif").exists()
        out[:] = _ramp((1, 3, 8, 9), np.uint16)
    image = read_image(tmp_path / "o.tif")
    assert image.axes == "TZYX"
    assert image.pixel_size == {"X": 0.1, "Y": 0.1}
    np.testing.assert_array_equal(image.data, _ramp((1, 3, 8, 9), np.uint16))
    assert _files(tmp_path) == ["o.tif"]


def test_output_memmap_non_imagej(tmp_path):
    with output_memmap(tmp_path / "o.tif", (2, 8, 9), "float64", "CYX") as out:
        out[1] = 5.0
    image = read_image(tmp_path / "o.tif")
    assert (image.axes, image.dtype, float(image.data[1].mean())) == ("CYX", np.float64, 5.0)


def test_output_memmap_failure_leaves_nothing(tmp_path):
    with pytest.raises(ValueError, match="boom"), output_memmap(tmp_path / "o.tif", (8, 9), np.uint8, "YX") as out:
        out[:] = 1
        raise ValueError("boom")
    assert _files(tmp_path) == []


def test_output_memmap_requires_tiff(tmp_path):
    with pytest.raises(InputError, match=r"\.tif"), output_memmap(tmp_path / "o.mrc", (8, 9), np.uint8, "YX"):
        pass


# ------------------------------------------------------------------------------------------ plugins


def _fake_registry(monkeypatch, reader=None, writer=None):
    registry = types.SimpleNamespace(readers=[reader] if reader else [], writers=[writer] if writer else [])
    monkeypatch.setattr(formats, "_source", lambda: registry)


def test_plugin_reader_and_writer(tmp_path, monkeypatch):
    seen = {}

    def read(path, axes=None):
        seen["axes"] = axes
        return ImageData(np.zeros((2, 3, 4), np.uint16), axes or "ZYX")

    def write(path, data, axes, pixel_size=None, metadata=None):
        assert path.name == "o.fancy" and path.parent != tmp_path
        path.write_bytes(b"fancy")
        return path

    reader = types.SimpleNamespace(read=read, suffixes=(".fancy",))
    _fake_registry(monkeypatch, reader, types.SimpleNamespace(write=write, suffixes=(".fancy",)))
    (tmp_path / "i.fancy").write_bytes(b"x")
    image = read_image(tmp_path / "i.fancy", axes="TYX")
    assert (image.axes, image.path, seen["axes"]) == ("TYX", tmp_path / "i.fancy", "TYX")
    write_image(tmp_path / "o.fancy", image.data, image.axes)
    assert (tmp_path / "o.fancy").read_bytes() == b"fancy"
    assert _files(tmp_path) == ["i.fancy", "o.fancy"]


def test_plugins_unavailable_means_no_reader(tmp_path, monkeypatch):
    monkeypatch.setattr(formats, "_source", None)
    assert formats.reader_for(tmp_path / "x.fancy") is None
    assert formats.writer_for(tmp_path / "x.fancy") is None
    with pytest.raises(InputError, match="unsupported file type"):
        (tmp_path / "x.fancy").write_bytes(b"not a tiff")
        read_image(tmp_path / "x.fancy")


# ------------------------------------------------------------------------------------------ property test

_AXES = st.sampled_from(
    ["YX", "ZYX", "TYX", "CYX", "TZYX", "TCYX", "ZCYX", "CZYX", "TZCYX", "YXS", "ZYXS", "YXZ", "SYX", "XY"]
)
_DTYPES = st.sampled_from([np.uint8, np.uint16, np.int16, np.int32, np.float32, np.float64])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(axes=_AXES, dtype=_DTYPES, data=st.data())
def test_round_trip_property(tmp_path, axes, dtype, data):
    shape = tuple(data.draw(st.integers(1, 4 if c not in "YX" else 9), label=c) for c in axes)
    if axes.endswith("S"):
        shape = (*shape[:-1], data.draw(st.sampled_from([1, 2, 3, 4]), label="S"))
    values = np.random.default_rng(data.draw(st.integers(0, 2**16))).integers(0, 200, shape).astype(dtype)
    sizes = {c: data.draw(st.sampled_from([0.05, 0.1, 0.0625, 0.3, 1.0]), label=c) for c in "XYZ" if c in axes}
    name = data.draw(st.sampled_from(["o.tif", "o.tiff", "o.ome.tif"]))
    path = write_image(tmp_path / name, values, axes, pixel_size=sizes)
    image = read_image(path, memmap=data.draw(st.sampled_from([None, True, False])))
    assert image.axes == axes
    assert image.dtype == dtype
    assert image.shape == shape
    np.testing.assert_array_equal(image.data, values)
    assert image.pixel_size == pytest.approx(sizes)


# ------------------------------------------------------------------------------------------ shared data


@pytest.mark.shared_data
def test_shared_mrc_sim_stack():
    path = SHARED / "sim" / "rdlsim_microtubules" / "MT.mrc"
    if not path.exists():
        pytest.skip("../shared/data not available")
    image = read_image(path)
    assert (image.shape, image.dtype, image.axes) == ((9, 256, 256), np.uint16, "ZYX")
    assert image.pixel_size["X"] == pytest.approx(0.0626)
    assert read_image(path, axes="TYX", memmap=True).axes == "TYX"


@pytest.mark.shared_data
def test_shared_timelapse_tiff():
    path = SHARED / "denoise" / "spotiflow_timelapse_telomeres_2d.tif"
    if not path.exists():
        pytest.skip("../shared/data not available")
    image = read_image(path)
    assert (image.shape, image.dtype, image.axes) == ((200, 133, 162), np.uint16, "TYX")
    assert image.pixel_size == {"X": pytest.approx(0.11), "Y": pytest.approx(0.11)}
    assert 90 <= int(image.data.min()) and int(image.data.max()) <= 180
